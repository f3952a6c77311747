"""Server-side apply and managedFields through ObjectService: every write path, bad input, no-op writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tmc.apimachinery import errors
from tmc.registry.managedfields import LAST_APPLIED
from tmc.registry.resources import BUILTIN_RESOURCES, CRDS, ResourceRegistry
from tmc.registry.service import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, ObjectService, WriteOptions
from tmc.storage.sqlite import SqliteStore

CM = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps")
DEPLOY = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")


def run(tmp_path: Path, test: Callable[[ObjectService], Awaitable[None]]) -> None:
    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            service = ObjectService(store, ResourceRegistry(store))
            await service.ensure_namespace("root", "default")
            await test(service)
        finally:
            await store.close()

    asyncio.run(main())


def opts(manager: str = "", **kw: Any) -> WriteOptions:
    return WriteOptions(field_manager=manager, **kw)


def deployment(replicas: int = 2, *containers: str) -> bytes:
    names = containers or ("a",)
    return orjson.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": n, "image": "x"} for n in names]},
                },
            },
        }
    )


async def apply(svc: ObjectService, body: bytes, manager: str = "alice", **kw: Any) -> dict[str, Any]:
    return await svc.patch(DEPLOY, "root", "default", "web", APPLY_PATCH, body, opts(manager, **kw))


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


async def fails(call: Awaitable[Any], code: int, text: str = "") -> errors.StatusError:
    with pytest.raises(errors.StatusError) as caught:
        await call
    assert caught.value.code == code, caught.value.to_status()
    assert text in caught.value.message
    return caught.value


def test_create_update_and_patch_record_their_managers(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        obj = await svc.create(CM, "root", "default", {"metadata": {"name": "c"}, "data": {"a": "1"}}, opts("mk"))
        entry = obj["metadata"]["managedFields"][0]
        assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
        assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("mk", "Update", "v1")
        patch = orjson.dumps({"data": {"b": "2"}})
        obj = await svc.patch(CM, "root", "default", "c", MERGE_PATCH, patch, opts("other"))
        by = {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}
        assert by == {"mk": {"f:data": {".": {}, "f:a": {}}}, "other": {"f:data": {"f:b": {}}}}
        body = {**obj, "data": {"a": "9", "b": "2"}}
        obj = await svc.update(CM, "root", "default", "c", body, opts("mk"))
        by = {e["manager"]: e["fieldsV1"] for e in obj["metadata"]["managedFields"]}
        assert by["mk"] == {"f:data": {".": {}, "f:a": {}}}

    run(tmp_path, test)


def test_apply_creates_then_updates_and_a_no_op_writes_nothing(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        created = await apply(svc, deployment(2))
        assert managers(created) == [("alice", "Apply")]
        same = await apply(svc, deployment(2))
        assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        assert same["metadata"]["managedFields"] == created["metadata"]["managedFields"]
        changed = await apply(svc, deployment(3))
        assert changed["spec"]["replicas"] == 3
        assert changed["metadata"]["generation"] == 2

    run(tmp_path, test)


def test_conflict_force_and_dry_run(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        await apply(svc, deployment(2))
        err = await fails(apply(svc, deployment(5), "bob"), 409, 'conflict with "alice": .spec.replicas')
        assert err.details["causes"][0]["field"] == ".spec.replicas"
        dry = await apply(svc, deployment(5), "bob", force=True, dry_run=True)
        assert dry["spec"]["replicas"] == 5
        assert svc.get(DEPLOY, "root", "default", "web").obj["spec"]["replicas"] == 2
        forced = await apply(svc, deployment(5), "bob", force=True)
        assert forced["spec"]["replicas"] == 5
        assert managers(forced) == [("alice", "Apply"), ("bob", "Apply")]

    run(tmp_path, test)


def test_removed_container_goes_when_nobody_else_owns_it(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        await apply(svc, deployment(2, "a", "b"))
        obj = await apply(svc, deployment(2, "a"))
        assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a"]

    run(tmp_path, test)


def test_client_side_apply_upgrade_takes_over_csa_fields(tmp_path: Path) -> None:
    """kubectl 1.26+ rewrites the kubectl-client-side-apply Update entry into its Apply entry with a JSON patch;
    the next apply without a container removes it."""

    async def test(svc: ObjectService) -> None:
        body = orjson.loads(deployment(2, "a", "b"))
        body["metadata"]["annotations"] = {LAST_APPLIED: deployment(2, "a", "b").decode()}
        obj = await svc.create(DEPLOY, "root", "default", body, opts("kubectl-client-side-apply"))
        entry = obj["metadata"]["managedFields"][0]
        upgraded = [{**entry, "manager": "kubectl", "operation": "Apply"}]
        ops = [
            {"op": "replace", "path": "/metadata/managedFields", "value": upgraded},
            {"op": "replace", "path": "/metadata/resourceVersion", "value": obj["metadata"]["resourceVersion"]},
        ]
        obj = await svc.patch(DEPLOY, "root", "default", "web", JSON_PATCH, orjson.dumps(ops), opts("kubectl"))
        assert managers(obj) == [("kubectl", "Apply")]
        obj = await apply(svc, deployment(2, "a"), "kubectl")
        assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a"]
        # the client-side apply annotation follows what kubectl applied server-side (upstream's lastAppliedUpdater)
        recorded = orjson.loads(obj["metadata"]["annotations"][LAST_APPLIED])
        assert [c["name"] for c in recorded["spec"]["template"]["spec"]["containers"]] == ["a"]

    run(tmp_path, test)


def test_managed_fields_garbage_is_ignored_and_an_empty_list_clears(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        obj = await svc.create(CM, "root", "default", {"metadata": {"name": "c"}, "data": {"a": "1"}}, opts("mk"))
        live = obj["metadata"]["managedFields"]
        # A wrong JSON type is the decoder's 400; well-typed nonsense is ignored, as upstream does.
        junk = [{"manager": 1}]
        bad = {**obj, "metadata": {**obj["metadata"], "managedFields": junk}}
        await fails(svc.update(CM, "root", "default", "c", bad, opts("mk")), 400, "managedFields")
        junk = [{"manager": "m", "operation": "Bogus", "fieldsType": "FieldsV1", "fieldsV1": {"nonsense": 1}}]
        bad = {**obj, "metadata": {**obj["metadata"], "managedFields": junk}}
        obj = await svc.update(CM, "root", "default", "c", bad, opts("mk"))
        assert obj["metadata"]["managedFields"] == live
        cleared = {**obj, "metadata": {**obj["metadata"], "managedFields": []}}
        obj = await svc.update(CM, "root", "default", "c", cleared, opts("mk"))
        assert "managedFields" not in obj["metadata"]

    run(tmp_path, test)


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        (b"{not: [yaml", 400, "error decoding YAML"),
        (b'{"kind": "Deployment", "metadata": {"name": "web"}}', 400, "apiVersion"),
        (b'{"apiVersion": "apps/v1beta1", "kind": "Deployment"}', 400, "Incorrect version specified in apply patch"),
        (b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"managedFields": [{}]}}', 400, "must be nil"),
        (b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "other"}}', 400, "does not match"),
        (b'{"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "x"}}', 422, ""),
    ],
)
def test_bad_apply_bodies_change_nothing(tmp_path: Path, body: bytes, code: int, text: str) -> None:
    async def test(svc: ObjectService) -> None:
        await fails(apply(svc, body), code, text)
        assert svc.store.get(DEPLOY.key("root", "default", "web")) is None

    run(tmp_path, test)


def test_apply_options(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        err = await fails(apply(svc, deployment(), ""), 422)
        assert err.details["causes"][0]["field"] == "fieldManager"
        await apply(svc, deployment())
        patch = orjson.dumps({"spec": {"replicas": 1}})
        err = await fails(svc.patch(DEPLOY, "root", "default", "web", MERGE_PATCH, patch, opts("x", force=True)), 422)
        assert err.details["causes"][0]["field"] == "force"

    run(tmp_path, test)


def test_status_and_scale_writes_record_their_subresource(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        await apply(svc, deployment())
        status = b'{"apiVersion": "apps/v1", "kind": "Deployment", "status": {"replicas": 2}}'
        obj = await svc.patch(DEPLOY, "root", "default", "web", APPLY_PATCH, status, opts("st"), "status")
        assert obj["status"]["replicas"] == 2
        entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "st")
        assert (entry["operation"], entry["subresource"], entry["fieldsV1"]) == (
            "Apply",
            "status",
            {"f:status": {"f:replicas": {}}},
        )
        scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 4}}
        await svc.update(DEPLOY, "root", "default", "web", scale, opts("hpa"), "scale")
        obj = svc.get(DEPLOY, "root", "default", "web").obj
        entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "hpa")
        assert entry["subresource"] == "scale" and entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    run(tmp_path, test)


def test_custom_resources_merge_by_their_crd_schema(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "tags": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "set",
                                            "items": {"type": "string"},
                                        },
                                        "ports": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["name"],
                                            "items": {
                                                "type": "object",
                                                "required": ["name"],
                                                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                                            },
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }

    async def test(svc: ObjectService) -> None:
        await svc.patch(CRDS, "root", None, crd["metadata"]["name"], APPLY_PATCH, orjson.dumps(crd), opts("a"))
        info = svc.registry.lookup("root", "example.com", "v1", "widgets")
        assert info is not None

        def widget(tags: list[str], ports: list[dict[str, Any]]) -> bytes:
            w = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"tags": tags, "ports": ports}}
            return orjson.dumps(w)

        await svc.patch(info, "root", "default", "w", APPLY_PATCH, widget(["x"], [{"name": "p", "port": 1}]), opts("a"))
        obj = await svc.patch(
            info, "root", "default", "w", APPLY_PATCH, widget(["y"], [{"name": "q", "port": 2}]), opts("b")
        )
        assert obj["spec"]["tags"] == ["x", "y"]
        assert obj["spec"]["ports"] == [{"name": "p", "port": 1}, {"name": "q", "port": 2}]

    run(tmp_path, test)


def test_a_status_apply_ignores_the_spec_it_carries(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        await apply(svc, deployment(2))
        body = orjson.loads(deployment(9))
        body["status"] = {"replicas": 1}
        obj = await svc.patch(DEPLOY, "root", "default", "web", APPLY_PATCH, orjson.dumps(body), opts("st"), "status")
        assert obj["spec"]["replicas"] == 2 and obj["status"]["replicas"] == 1  # no conflict on .spec.replicas

    run(tmp_path, test)
