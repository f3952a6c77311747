"""Malformed input to the object service is a 4xx Status naming the field, and changes nothing (issue 9)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tmc.apimachinery import errors
from tmc.apiserver.httputil import json_response
from tmc.apiserver.lists import parse_list_query
from tmc.registry.resources import BUILTIN_RESOURCES, ResourceRegistry
from tmc.registry.service import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, ObjectService, WriteOptions
from tmc.storage.sqlite import SqliteStore

CM = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps")
NS = next(r for r in BUILTIN_RESOURCES if r.plural == "namespaces")
DEPLOY = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")
BY_KIND = {r.kind: r for r in BUILTIN_RESOURCES if r.group in ("", "apps")}

DEPLOYMENT = {
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    },
}


def with_service(tmp_path: Path, test: Callable[[ObjectService], Awaitable[None]]) -> None:
    async def main() -> None:
        store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
        await store.start()
        try:
            service = ObjectService(store, ResourceRegistry(store))
            await service.ensure_namespace("root", "default")
            await service.create(CM, "root", "default", {"metadata": {"name": "c"}, "data": {"a": "1"}}, WriteOptions())
            await service.create(DEPLOY, "root", "default", DEPLOYMENT, WriteOptions())
            await test(service)
        finally:
            await store.close()

    asyncio.run(main())


async def fails(call: Awaitable[Any], code: int, *named: str) -> errors.StatusError:
    with pytest.raises(errors.StatusError) as caught:
        await call
    err = caught.value
    assert err.code == code, err.to_status()
    for text in named:
        assert text in err.message, err.message
    return err


# ------------------------------------------------------------------ DeleteOptions

BAD_DELETE_OPTIONS = [
    ({"dryRun": "All"}, "DeleteOptions.dryRun of type []string"),
    ({"dryRun": 5}, "DeleteOptions.dryRun"),
    ({"dryRun": [1]}, "DeleteOptions.dryRun of type string"),
    ({"preconditions": []}, "DeleteOptions.preconditions of type v1.Preconditions"),
    ({"preconditions": "x"}, "DeleteOptions.preconditions"),
    ({"preconditions": {"uid": 5}}, "Preconditions.preconditions.uid"),
    ({"gracePeriodSeconds": "AAA"}, "DeleteOptions.gracePeriodSeconds of type int64"),
    ({"propagationPolicy": ["Orphan"]}, "DeleteOptions.propagationPolicy"),
    ({"orphanDependents": "yes"}, "DeleteOptions.orphanDependents of type bool"),
]


@pytest.mark.parametrize(("options", "named"), BAD_DELETE_OPTIONS, ids=[str(o) for o, _ in BAD_DELETE_OPTIONS])
def test_delete_options_of_the_wrong_json_type_are_400(tmp_path: Path, options: dict[str, Any], named: str) -> None:
    async def test(svc: ObjectService) -> None:
        await fails(svc.delete(CM, "root", "default", "c", options), 400, named)
        assert svc.get(CM, "root", "default", "c").obj["data"] == {"a": "1"}

    with_service(tmp_path, test)


def test_unsupported_propagation_policy_is_422(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        err = await fails(svc.delete(CM, "root", "default", "c", {"propagationPolicy": "Never"}), 422)
        assert err.details and err.details["causes"][0]["field"] == "propagationPolicy"
        svc.get(CM, "root", "default", "c")

    with_service(tmp_path, test)


def test_orphan_dependents_with_a_propagation_policy_is_422(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        options = {"propagationPolicy": "Background", "orphanDependents": False}
        err = await fails(svc.delete(CM, "root", "default", "c", options), 422, "cannot be both set")
        assert err.details and err.details["causes"][0]["field"] == "propagationPolicy"
        svc.get(CM, "root", "default", "c")

    with_service(tmp_path, test)


# ------------------------------------------------------------------ objects of the wrong JSON type


@pytest.mark.parametrize(
    "kind", ["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Service", "Pod", "Namespace"]
)
def test_null_spec_is_an_empty_spec(tmp_path: Path, kind: str) -> None:
    """Go decodes null into a struct as its zero value: `spec: null` is defaulted like a missing spec (found by the
    fuzzer as a 500 from the defaulting strategy)."""
    info = BY_KIND[kind]
    ns = "default" if info.namespaced else None

    async def test(svc: ObjectService) -> None:
        try:
            created = await svc.create(info, "root", ns, {"metadata": {"name": "x"}, "spec": None}, WriteOptions())
        except errors.StatusError as e:
            assert e.code in (400, 422), e.to_status()  # a workload without a selector is invalid, never a 500
        else:
            assert isinstance(created.get("spec"), dict)

    with_service(tmp_path, test)


@pytest.mark.parametrize("kind", ["Service", "Deployment", "Pod", "Namespace", "ConfigMap"])
@pytest.mark.parametrize("part", ["spec", "labels"])
def test_wrong_json_type_is_400_before_defaulting(tmp_path: Path, kind: str, part: str) -> None:
    info = BY_KIND[kind]
    body: dict[str, Any] = {"metadata": {"name": "x"}}
    if part == "spec":
        if kind == "ConfigMap":
            return
        body["spec"] = []
    else:
        body["metadata"]["labels"] = []
    ns = "default" if info.namespaced else None
    named = "spec of type" if part == "spec" else "ObjectMeta.metadata.labels"

    async def test(svc: ObjectService) -> None:
        await fails(svc.create(info, "root", ns, body, WriteOptions()), 400, named, "cannot unmarshal array")
        assert svc.store.get(info.key("root", ns, "x")) is None

    with_service(tmp_path, test)


def test_wrong_json_type_on_update_is_400(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        before = svc.get(DEPLOY, "root", "default", "web")
        body = {"metadata": {"name": "web"}, "spec": {"strategy": []}}
        await fails(svc.update(DEPLOY, "root", "default", "web", body, WriteOptions()), 400, "spec.strategy")
        assert svc.get(DEPLOY, "root", "default", "web").rev == before.rev

    with_service(tmp_path, test)


# ------------------------------------------------------------------ patches


@pytest.mark.parametrize("ctype", [MERGE_PATCH, STRATEGIC_PATCH])
@pytest.mark.parametrize("metadata", [[], "x", 5])
def test_patch_with_metadata_not_an_object(tmp_path: Path, ctype: str, metadata: Any) -> None:
    body = orjson.dumps({"metadata": metadata})

    async def test(svc: ObjectService) -> None:
        before = svc.get(CM, "root", "default", "c")
        err = await fails(svc.patch(CM, "root", "default", "c", ctype, body, WriteOptions()), 422, "patch")
        assert err.details and err.details["causes"][0]["field"] == "patch"
        assert svc.get(CM, "root", "default", "c").rev == before.rev
        await fails(svc.patch(CM, "root", "default", "missing", ctype, body, WriteOptions()), 404)

    with_service(tmp_path, test)


def test_patch_producing_a_wrong_json_type_is_422(tmp_path: Path) -> None:
    async def test(svc: ObjectService) -> None:
        before = svc.get(DEPLOY, "root", "default", "web")
        for ctype, patch in (
            (MERGE_PATCH, {"spec": []}),
            (STRATEGIC_PATCH, {"spec": {"strategy": []}}),
            (JSON_PATCH, [{"op": "replace", "path": "/metadata", "value": []}]),
            (JSON_PATCH, [{"op": "add", "path": "/metadata/labels", "value": []}]),
        ):
            call = svc.patch(DEPLOY, "root", "default", "web", ctype, orjson.dumps(patch), WriteOptions())
            await fails(call, 422, "patch", "cannot unmarshal array")
        assert svc.get(DEPLOY, "root", "default", "web").rev == before.rev

    with_service(tmp_path, test)


@pytest.mark.parametrize("ctype", [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH])
def test_deeply_nested_patch_is_400(tmp_path: Path, ctype: str) -> None:
    def body(depth: int) -> bytes:
        value = b'{"a":' * depth + b'"x"' + b"}" * depth
        if ctype == JSON_PATCH:
            return b'[{"op":"add","path":"/metadata/annotations","value":' + value + b"}]"
        return b'{"metadata":{"annotations":' + value + b"}}"

    async def test(svc: ObjectService) -> None:
        before = svc.get(CM, "root", "default", "c")
        await fails(svc.patch(CM, "root", "default", "c", ctype, body(600), WriteOptions()), 400, "max depth")
        assert svc.get(CM, "root", "default", "c").rev == before.rev

    with_service(tmp_path, test)


# ------------------------------------------------------------------ scale


@pytest.mark.parametrize("part", ["spec", "metadata"])
def test_scale_with_a_part_not_an_object(tmp_path: Path, part: str) -> None:
    async def test(svc: ObjectService) -> None:
        before = svc.get(DEPLOY, "root", "default", "web")
        body = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 2}}
        body[part] = []
        update = svc.update(DEPLOY, "root", "default", "web", body, WriteOptions(), "scale")
        await fails(update, 400, f"Scale.{part}")
        for ctype in (MERGE_PATCH, STRATEGIC_PATCH):
            patch = orjson.dumps({part: "x"})
            await fails(svc.patch(DEPLOY, "root", "default", "web", ctype, patch, WriteOptions(), "scale"), 422, part)
        assert svc.get(DEPLOY, "root", "default", "web").rev == before.rev

    with_service(tmp_path, test)


SCALED_CRD = {
    "metadata": {"name": "dials.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "dials", "kind": "Dial"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"replicas": "two"}, "is of the type string, expected int64"),
        ({"replicas": 2.5}, "is of the type float64, expected int64"),
        ({"replicas": True}, "is of the type bool, expected int64"),
        ({"replicas": -1}, "should be a non-negative integer"),
        ({"replicas": 2**31}, "should be less than or equal to 2147483647"),
    ],
)
def test_custom_resource_that_could_not_be_scaled_is_422(tmp_path: Path, spec: dict[str, Any], named: str) -> None:
    """Under x-kubernetes-preserve-unknown-fields the schema allows anything at the scale paths; the scale
    subresource does not (found by make fuzz: /scale of such an object answered 500)."""

    async def test(svc: ObjectService) -> None:
        crds = next(r for r in BUILTIN_RESOURCES if r.plural == "customresourcedefinitions")
        await svc.create(crds, "root", None, SCALED_CRD, WriteOptions())
        dials = svc.registry.lookup("root", "example.com", "v1", "dials")
        assert dials is not None
        err = await fails(
            svc.create(dials, "root", "default", {"metadata": {"name": "d"}, "spec": spec}, WriteOptions()), 422, named
        )
        assert err.details and err.details["causes"][0]["field"] == ".spec.replicas"
        good = {"metadata": {"name": "d"}, "spec": {"replicas": 1}}
        await svc.create(dials, "root", "default", good, WriteOptions())
        await fails(svc.update(dials, "root", "default", "d", {**good, "spec": spec}, WriteOptions()), 422, named)
        status = {**good, "status": {"replicas": 1, "selector": {"app": "x"}}}
        await fails(svc.update(dials, "root", "default", "d", status, WriteOptions(), "status"), 422, "expected string")
        scale = svc.scale_of(dials, svc.get(dials, "root", "default", "d"))
        assert scale["spec"] == {"replicas": 1}

    with_service(tmp_path, test)


# ------------------------------------------------------------------ protected namespaces


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
@pytest.mark.parametrize("cluster", ["root", "root:team-a"])
def test_protected_namespaces_cannot_be_deleted(tmp_path: Path, name: str, cluster: str) -> None:
    async def test(svc: ObjectService) -> None:
        await svc.ensure_namespace(cluster, name)
        for dry_run in (True, False):
            err = await fails(svc.delete(NS, cluster, None, name, {}, dry_run), 403)
            assert err.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
        ns = svc.get(NS, cluster, None, name).obj
        assert not ns["metadata"].get("deletionTimestamp") and ns["status"]["phase"] == "Active"
        await svc.ensure_namespace(cluster, "other")
        _, gone = await svc.delete(NS, cluster, None, "other", {})
        assert svc.get(NS, cluster, None, "other").obj["metadata"]["deletionTimestamp"] and not gone

    with_service(tmp_path, test)


# ------------------------------------------------------------------ warnings


def test_unknown_field_with_control_characters(tmp_path: Path) -> None:
    field = "a\x01b\nc\rd"

    async def test(svc: ObjectService) -> None:
        opts = WriteOptions(field_validation="Strict")
        body = {"metadata": {"name": "strict"}, field: 1}
        await fails(svc.create(CM, "root", "default", body, opts), 400, 'unknown field "a\\x01b\\nc\\rd"')
        assert svc.store.get(CM.key("root", "default", "strict")) is None
        opts = WriteOptions(field_validation="Warn")
        await svc.create(CM, "root", "default", {"metadata": {"name": "warn"}, field: 1}, opts)
        assert opts.warnings == ['unknown field "a\\x01b\\nc\\rd"']
        header = json_response({}, 201, opts.warnings).headers["Warning"]
        assert header == '299 - "unknown field \\"a\\\\x01b\\\\nc\\\\rd\\""'

    with_service(tmp_path, test)


def test_warning_header_never_holds_a_control_character() -> None:
    every = "".join(chr(c) for c in range(0, 0x3000))
    header = json_response({}, 200, [every, 'say "hi"']).headers["Warning"]
    assert header.isprintable() and header.startswith('299 - "') and header.endswith('299 - "say \\"hi\\""')


# ------------------------------------------------------------------ query parameters


@pytest.mark.parametrize("text", ["AAA", "1.5", "1_0", " 1", "nan", "99999999999999999999"])
def test_integer_query_parameters_are_integers(text: str) -> None:
    from tmc.apiserver.lists import query_int  # the parser this issue added

    for name in ("gracePeriodSeconds", "limit", "timeoutSeconds"):
        with pytest.raises(errors.StatusError) as caught:
            query_int({name: text}, name)
        assert caught.value.code == 400 and name in caught.value.message
    for name in ("limit", "timeoutSeconds"):
        with pytest.raises(errors.StatusError) as caught:
            parse_list_query({name: text}, CM, watch=name == "timeoutSeconds")
        assert caught.value.code == 400 and name in caught.value.message
    assert query_int({"limit": "-3"}, "limit") == -3 and query_int({}, "limit") is None
