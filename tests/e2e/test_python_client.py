"""The official `kubernetes` Python client against the hub."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.crds import gadget_crd
from tests.e2e.harness import wait_until


def cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})


def test_typed_core_v1_crud(api_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map(namespace, cm("crud", {"a": "1"}))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.metadata.namespace == namespace

    got = core.read_namespaced_config_map("crud", namespace)
    assert got.data == {"a": "1"} and got.metadata.uid == created.metadata.uid

    got.data["b"] = "2"
    replaced = core.replace_namespaced_config_map("crud", namespace, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    patched = core.patch_namespaced_config_map("crud", namespace, {"data": {"c": "3"}})  # strategic merge
    assert patched.data == {"a": "1", "b": "2", "c": "3"}
    patched = core.patch_namespaced_config_map("crud", namespace, [{"op": "remove", "path": "/data/a"}])  # json patch
    assert patched.data == {"b": "2", "c": "3"}

    names = [i.metadata.name for i in core.list_namespaced_config_map(namespace).items]
    assert "crud" in names
    status = core.delete_namespaced_config_map("crud", namespace)
    status = status if isinstance(status, dict) else api_client.sanitize_for_serialization(status)
    assert (status["kind"], status["status"], status["details"]["name"]) == ("Status", "Success", "crud")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("crud", namespace)
    assert err.value.status == 404
    core.create_namespaced_config_map(namespace, cm("again"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, cm("again"))
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body.replace(" ", "")


def test_secret_string_data_is_folded_into_data(api_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    secret = core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"password": "hunter2"})
    )
    assert secret.data == {"password": "aHVudGVyMg=="}
    assert secret.string_data is None  # write-only: never stored or returned
    assert secret.type == "Opaque"  # defaulted
    assert core.read_namespaced_secret("s", namespace).data == {"password": "aHVudGVyMg=="}
    patched = core.patch_namespaced_secret("s", namespace, {"stringData": {"user": "admin"}})
    assert patched.data == {"password": "aHVudGVyMg==", "user": "YWRtaW4="}


def test_typed_apps_v1_crud(api_client: Any, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    labels = {"app": "api"}
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(name="app", image="app:1"),
                        client.V1Container(name="proxy", image="proxy:1"),
                    ]
                ),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted

    patched = apps.patch_namespaced_deployment(
        "api", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:2"}]}}}}
    )
    assert [(c.name, c.image) for c in patched.spec.template.spec.containers] == [
        ("app", "app:1"),
        ("proxy", "proxy:2"),
    ]
    assert patched.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("api", namespace)
    assert scale.spec.replicas == 2
    scale.spec.replicas = 4
    apps.replace_namespaced_deployment_scale("api", namespace, scale)
    assert apps.read_namespaced_deployment("api", namespace).spec.replicas == 4

    listed = apps.list_namespaced_deployment(namespace)
    assert [d.metadata.name for d in listed.items] == ["api"]
    apps.delete_namespaced_deployment("api", namespace)
    wait_until(lambda: apps.list_namespaced_deployment(namespace).items == [], what="deployment deleted")


def test_watch_resumed_from_resource_version_gets_exactly_later_events(api_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    labels = {"e2e": "watch"}
    core.create_namespaced_config_map(namespace, cm("before", labels=labels))
    start_rv = core.list_namespaced_config_map(namespace, label_selector="e2e=watch").metadata.resource_version

    core.create_namespaced_config_map(namespace, cm("later", labels=labels))
    core.patch_namespaced_config_map("before", namespace, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("later", namespace)

    w = watch.Watch()
    events = []
    for event in w.stream(
        core.list_namespaced_config_map,
        namespace,
        label_selector="e2e=watch",
        resource_version=start_rv,
        timeout_seconds=1,
        _request_timeout=15,
    ):
        events.append((event["type"], event["object"].metadata.name, event["object"].metadata.resource_version))
    assert [(t, n) for t, n, _ in events] == [("ADDED", "later"), ("MODIFIED", "before"), ("DELETED", "later")]
    rvs = [int(rv) for _, _, rv in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3 and rvs[0] > int(start_rv)

    # A watch resumed from the last event's resourceVersion sees nothing more.
    after = list(
        w.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=str(rvs[-1]),
            timeout_seconds=1,
            _request_timeout=15,
        )
    )
    assert after == []


def test_stale_update_fails_with_409_conflict(api_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, cm("racy", {"v": "0"}))
    first = core.read_namespaced_config_map("racy", namespace)
    second = core.read_namespaced_config_map("racy", namespace)
    first.data["v"] = "1"
    core.replace_namespaced_config_map("racy", namespace, first)
    second.data["v"] = "2"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("racy", namespace, second)
    assert err.value.status == 409
    assert '"reason":"Conflict"' in err.value.body.replace(" ", "")
    assert "the object has been modified" in err.value.body
    assert core.read_namespaced_config_map("racy", namespace).data == {"v": "1"}


def test_paginated_list(api_client: Any, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    names = [f"page-{i:02d}" for i in range(7)]
    for name in reversed(names):
        core.create_namespaced_config_map(namespace, cm(name, labels={"e2e": "page"}))

    seen: list[str] = []
    remaining: list[int | None] = []
    rvs: set[str] = set()
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(namespace, limit=3, _continue=token)
        pages += 1
        seen += [i.metadata.name for i in page.items]
        remaining.append(page.metadata.remaining_item_count)
        rvs.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
        # A write between pages does not change what later pages report (same snapshot).
        if pages == 1:
            core.create_namespaced_config_map(namespace, cm("page-03a", labels={"e2e": "page"}))
        assert pages < 10
    assert seen == names
    assert remaining == [4, 1, None]
    assert len(rvs) == 1, rvs
    assert len(core.list_namespaced_config_map(namespace, label_selector="e2e=page").items) == 8
    # With a label selector the server cannot know how many remain: remainingItemCount is unset.
    selected = core.list_namespaced_config_map(namespace, label_selector="e2e=page", limit=3)
    assert len(selected.items) == 3 and selected.metadata._continue
    assert selected.metadata.remaining_item_count is None


@pytest.fixture
def widgets_crd(api_client: Any) -> Iterator[str]:
    group = f"dyn{os.urandom(3).hex()}.example.com"
    ext = client.ApiextensionsV1Api(api_client)
    size = {"type": "object", "properties": {"size": {"type": "integer"}}}
    ext.create_custom_resource_definition(
        gadget_crd(group, size, status={"type": "object", "properties": {"ok": {"type": "boolean"}}})
    )
    wait_until(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in (ext.read_custom_resource_definition(f"gadgets.{group}").status.conditions or [])
        ),
        what="CRD established",
    )
    yield group
    ext.delete_custom_resource_definition(f"gadgets.{group}")


def test_dynamic_client_on_crd(api_client: Any, namespace: str, widgets_crd: str, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    gadgets = wait_until(lambda: dyn.resources.get(api_version=f"{widgets_crd}/v1", kind="Gadget"), what="discovery")
    assert gadgets.namespaced and gadgets.name == "gadgets"

    body = {"apiVersion": f"{widgets_crd}/v1", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 1}}
    created = gadgets.create(body=body, namespace=namespace)
    assert created.metadata.uid and created.spec.size == 1
    assert gadgets.get(name="g1", namespace=namespace).spec.size == 1

    patched = gadgets.patch(
        name="g1", namespace=namespace, body={"spec": {"size": 2}}, content_type="application/merge-patch+json"
    )
    assert patched.spec.size == 2
    # Strategic merge patch is not defined for custom resources: 415.
    with pytest.raises(ApiException) as err:
        gadgets.patch(name="g1", namespace=namespace, body={"spec": {"size": 3}})
    assert err.value.status == 415

    status_api = gadgets.subresources["status"]
    obj = gadgets.get(name="g1", namespace=namespace).to_dict()
    obj["status"] = {"ok": True}
    obj["spec"]["size"] = 99  # ignored by the status subresource
    updated = status_api.replace(body=obj, namespace=namespace)
    assert updated.status.ok is True and updated.spec.size == 2

    listed = gadgets.get(namespace=namespace)
    assert [i.metadata.name for i in listed.items] == ["g1"]
    gadgets.delete(name="g1", namespace=namespace)
    assert gadgets.get(namespace=namespace).items == []

    custom = client.CustomObjectsApi(api_client)
    made = custom.create_namespaced_custom_object(
        widgets_crd, "v1", namespace, "gadgets", {**body, "metadata": {"name": "g2"}}
    )
    assert made["metadata"]["name"] == "g2"
    assert custom.list_namespaced_custom_object(widgets_crd, "v1", namespace, "gadgets")["items"][0]["spec"] == {
        "size": 1
    }
