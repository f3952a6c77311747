"""Discovery documents, OpenAPI v3 documents and server-side printing (Tables)."""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s

from tmc.apimachinery.errors import StatusError
from tmc.apimachinery.jsonpath import jsonpath
from tmc.apimachinery.printers import human_duration
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.apimachinery.schemas import Schema
from tmc.apimachinery.tables import to_table, watch_event_table
from tmc.apiserver import discovery, openapi

NOW = datetime.datetime.now(datetime.UTC)
WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A widget.",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "description": "How many widgets."},
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}
WIDGET_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "First", "type": "string", "jsonPath": ".spec.list[0].x", "priority": 1, "description": "first x"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def widget(
    version: str, *, columns: tuple[dict[str, Any], ...] = (), schema: dict[str, Any] | None = None
) -> ResourceInfo:
    return ResourceInfo(
        group="example.com",
        version=version,
        kind="Widget",
        plural="widgets",
        singular="widget",
        namespaced=True,
        short_names=("wd",),
        categories=("all",),
        subresources=("status", "scale"),
        schema=Schema(schema or WIDGET_SCHEMA, {}),
        definition_name=f"com.example.{version}.Widget",
        crd=True,
        printer_columns=columns,
        scale_paths={"specReplicasPath": ".spec.replicas"},
        storage_version="v1",
    )


RESOURCES: list[ResourceInfo] = [
    *BUILTIN_RESOURCES,
    *(widget(v, columns=WIDGET_COLUMNS) for v in ("v1alpha1", "v1beta1", "v1", "v1beta2")),
]


def builtin(group: str, kind: str) -> ResourceInfo:
    return next(r for r in BUILTIN_RESOURCES if r.group == group and r.kind == kind)


def deserialize(doc: dict[str, Any], model: str) -> Any:
    """Run a document through the Python client's model layer (client-side validation raises on missing fields)."""
    api = k8s.ApiClient()
    try:
        return api.deserialize(orjson.dumps(doc).decode(), model, "application/json")
    except TypeError:  # older clients: deserialize(response, type) reading response.data

        class Response:
            data = orjson.dumps(doc).decode()

        return api.deserialize(Response(), model)


def table_at_now(info: ResourceInfo, objects: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return to_table(info, objects, now=NOW, **kwargs)


def ts(delta: datetime.timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------ discovery


def test_version_info_is_all_strings_with_integer_major_minor() -> None:
    info = discovery.version_info()
    assert set(info) >= {"major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion"}
    assert all(isinstance(v, str) for v in info.values())
    assert (info["major"], info["minor"]) == ("1", "32")
    assert re.fullmatch(r"v1\.32\.0\+tmc-[0-9A-Za-z.-]+", info["gitVersion"])
    assert re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+", info["platform"])
    assert deserialize(info, "VersionInfo").git_version == info["gitVersion"]


def test_version_sort_key_orders_like_kube() -> None:
    versions = ["v1alpha1", "v2", "foo", "v1beta1", "v1", "v11alpha2", "v1beta2", "v10", "bar"]
    assert sorted(versions, key=discovery.version_sort_key) == [
        "v10", "v2", "v1", "v1beta2", "v1beta1", "v11alpha2", "v1alpha1", "bar", "foo",
    ]  # fmt: skip


def test_legacy_api_and_group_list() -> None:
    assert deserialize(discovery.legacy_api_versions(), "V1APIVersions").versions == ["v1"]
    assert discovery.legacy_api_versions("10.0.0.1:6443")["serverAddressByClientCIDRs"][0]["serverAddress"]
    doc = discovery.api_group_list(RESOURCES)
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    names = [g["name"] for g in doc["groups"]]
    assert "" not in names
    # Built-in groups by upstream priority, custom groups after them.
    assert names.index("apps") < names.index("batch") < names.index("rbac.authorization.k8s.io")
    assert names.index("apiextensions.k8s.io") < names.index("example.com")
    widgets = next(g for g in doc["groups"] if g["name"] == "example.com")
    assert [v["version"] for v in widgets["versions"]] == ["v1", "v1beta2", "v1beta1", "v1alpha1"]
    assert widgets["preferredVersion"] == {"groupVersion": "example.com/v1", "version": "v1"}
    parsed = deserialize(doc, "V1APIGroupList")
    assert parsed.groups[0].preferred_version.group_version == "apps/v1"


def test_api_group() -> None:
    group = discovery.api_group(RESOURCES, "example.com")
    assert group is not None and (group["kind"], group["name"]) == ("APIGroup", "example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert deserialize(group, "V1APIGroup").name == "example.com"
    assert discovery.api_group(RESOURCES, "nope.io") is None
    assert discovery.api_group(RESOURCES, "") is None


def test_core_resource_list_with_subresources() -> None:
    doc = discovery.api_resource_list(RESOURCES, "", "v1")
    assert doc is not None and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert [r["name"] for r in doc["resources"]] == sorted(by_name)
    ns = by_name["namespaces"]
    assert (ns["namespaced"], ns["kind"], ns["singularName"], ns["shortNames"]) == (
        False,
        "Namespace",
        "namespace",
        ["ns"],
    )
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    assert by_name["namespaces/finalize"]["kind"] == "Namespace"
    assert by_name["namespaces/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["pods"]["categories"] == ["all"]
    assert by_name["configmaps"]["verbs"] == sorted(by_name["configmaps"]["verbs"])
    parsed = deserialize(doc, "V1APIResourceList")
    assert {r.name for r in parsed.resources} == set(by_name)


def test_group_resource_list_scale_kind() -> None:
    doc = discovery.api_resource_list(RESOURCES, "apps", "v1")
    assert doc is not None
    by_name = {r["name"]: r for r in doc["resources"]}
    scale = by_name["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert scale["verbs"] == ["get", "patch", "update"]
    assert "group" not in by_name["deployments/status"] and by_name["deployments/status"]["kind"] == "Deployment"
    assert by_name["deployments"]["shortNames"] == ["deploy"]
    assert discovery.api_resource_list(RESOURCES, "apps", "v2") is None
    assert discovery.api_resource_list(RESOURCES, "example.com", "v1beta1") is not None


def test_aggregated_discovery() -> None:
    assert discovery.AGGREGATED_CONTENT_TYPE == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    core = discovery.aggregated_core(RESOURCES)
    assert (core["kind"], core["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    assert len(core["items"]) == 1 and [v["version"] for v in core["items"][0]["versions"]] == ["v1"]
    groups = discovery.aggregated_groups(RESOURCES)
    assert "" not in [g["metadata"].get("name", "") for g in groups["items"]]
    for doc in (core, groups):
        for group in doc["items"]:
            for version in group["versions"]:
                assert version["freshness"] == "Current"
                for res in version["resources"]:
                    assert res["responseKind"]["kind"] and res["scope"] in ("Namespaced", "Cluster")
                    assert res["singularResource"] and res["verbs"]
                    for sub in res.get("subresources", []):
                        assert sub["responseKind"]["kind"] and sub["verbs"]
        deserialize(doc, "V2APIGroupDiscoveryList")
    apps = next(g for g in groups["items"] if g["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    subs = {s["subresource"]: s for s in deploy["subresources"]}
    assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert subs["status"]["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    example = next(g for g in groups["items"] if g["metadata"]["name"] == "example.com")
    assert [v["version"] for v in example["versions"]] == ["v1", "v1beta2", "v1beta1", "v1alpha1"]


# ------------------------------------------------------------------------------------------------ OpenAPI


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _doc(path: str, resources: list[ResourceInfo] = RESOURCES) -> dict[str, Any]:
    doc = openapi.group_version_document(resources, path)
    assert doc is not None
    return doc


def test_openapi_index_urls_and_hashes() -> None:
    index = openapi.index(RESOURCES)
    assert {"api/v1", "apis/apps/v1", "apis/example.com/v1", "apis/example.com/v1alpha1"} <= set(index["paths"])
    for key, entry in index["paths"].items():
        m = re.fullmatch(r"/openapi/v3/(.+)\?hash=([0-9A-F]{128})", entry["serverRelativeURL"])
        assert m is not None and m.group(1) == key
        body = openapi.group_version_bytes(RESOURCES, key)
        assert body is not None and hashlib.sha512(body).hexdigest().upper() == m.group(2)
    assert openapi.index(list(RESOURCES)) == index  # stable


def test_openapi_hash_changes_with_crd_schema() -> None:
    changed = [*BUILTIN_RESOURCES, widget("v1", schema={**WIDGET_SCHEMA, "description": "Changed."})]
    before = openapi.index(RESOURCES)["paths"]
    after = openapi.index(changed)["paths"]
    assert before["apis/example.com/v1"] != after["apis/example.com/v1"]
    assert before["apis/apps/v1"] == after["apis/apps/v1"]


def test_openapi_unknown_paths() -> None:
    assert openapi.group_version_document(RESOURCES, "apis/nope.io/v1") is None
    assert openapi.group_version_document(RESOURCES, "apis/apps") is None
    assert openapi.group_version_document(RESOURCES, "apis/apps/v1?hash=ABC") is not None


@pytest.mark.parametrize(
    "path", ["api/v1", "apis/apps/v1", "apis/batch/v1", "apis/example.com/v1", "apis/rbac.authorization.k8s.io/v1"]
)
def test_openapi_refs_resolve_and_schemas_are_openapi3(path: str) -> None:
    doc = _doc(path)
    assert doc["openapi"].startswith("3.0") and doc["info"]["title"] == "Kubernetes"
    schemas = doc["components"]["schemas"]
    for node in _walk(doc):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/components/schemas/") and ref.removeprefix("#/components/schemas/") in schemas
    for node in _walk(schemas):
        assert not isinstance(node.get("type"), list)
        assert node.get("additionalProperties") is not False
    for meta in ("ObjectMeta", "ListMeta", "Status", "DeleteOptions", "WatchEvent", "Patch"):
        assert f"io.k8s.apimachinery.pkg.apis.meta.v1.{meta}" in schemas
    for path_key, item in doc["paths"].items():
        if path_key.endswith("/"):
            continue  # the group-version root ("get available resources") carries no kind, as upstream
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                assert item[method]["x-kubernetes-action"] in (
                    "get",
                    "list",
                    "put",
                    "post",
                    "patch",
                    "delete",
                    "deletecollection",
                )
                assert set(item[method]["x-kubernetes-group-version-kind"]) == {"group", "version", "kind"}


def test_openapi_deployment_patch_declares_field_validation_and_smp() -> None:
    doc = _doc("apis/apps/v1")
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    query = {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= query
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    }
    assert {"get", "put", "delete"} <= set(item)
    collection = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert collection["get"]["x-kubernetes-action"] == "list" and collection["post"]["x-kubernetes-action"] == "post"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    assert "watch" in {p["name"] for p in collection["get"]["parameters"]}
    assert doc["paths"]["/apis/apps/v1/deployments"]["get"]["x-kubernetes-action"] == "list"
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert scale["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("autoscaling.v1.Scale")


def test_openapi_builtin_schemas_keep_patch_metadata_and_descriptions() -> None:
    schemas = _doc("apis/apps/v1")["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["type"] == "object" and "enum" not in deployment["properties"]["kind"]
    assert deployment["properties"]["spec"]["$ref"] == "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert "Number of desired pods" in spec["properties"]["replicas"]["description"]
    assert spec["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == ["name"]
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["x-kubernetes-int-or-string"] is True and int_or_string["format"] == "int-or-string"
    assert (
        schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"] == "DeploymentList"
    )


def test_openapi_crd_document() -> None:
    doc = _doc("apis/example.com/v1")
    schemas = doc["components"]["schemas"]
    kind = schemas["com.example.v1.Widget"]
    assert kind["x-kubernetes-group-version-kind"] == [{"group": "example.com", "kind": "Widget", "version": "v1"}]
    assert (
        kind["properties"]["metadata"]["$ref"] == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert kind["properties"]["spec"]["properties"]["replicas"]["description"] == "How many widgets."
    assert kind["properties"]["spec"]["properties"]["port"]["x-kubernetes-int-or-string"] is True
    listed = schemas["com.example.v1.WidgetList"]
    assert listed["properties"]["items"]["items"]["$ref"] == "#/components/schemas/com.example.v1.Widget"
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status" in doc["paths"]
    assert openapi.group_version_document(RESOURCES, "apis/example.com/v1") is doc  # memoised


def test_openapi_cluster_scoped_and_finalize_paths() -> None:
    paths = _doc("api/v1")["paths"]
    assert "/api/v1/namespaces/{name}" in paths and "/api/v1/namespaces" in paths
    finalize = paths["/api/v1/namespaces/{name}/finalize"]
    assert set(finalize) == {"put", "parameters"}
    assert (
        paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]["x-kubernetes-group-version-kind"]["kind"]
        == "ConfigMap"
    )
    assert "/api/v1/" in paths


# ------------------------------------------------------------------------------------------------ tables


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (192, "3m12s"),
        (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (7 * 3600 + 300, "7h5m"), (30 * 3600, "30h"),
        (52 * 3600, "2d4h"), (72 * 3600, "3d"), (30 * 86400, "30d"), (3 * 365 * 86400 + 45 * 86400, "3y45d"),
        (10 * 365 * 86400, "10y"),
    ],
)  # fmt: skip
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_jsonpath_subset() -> None:
    obj = {
        "spec": {"list": [{"x": 1}, {"x": 2}], "labels": {"a.b/c": "v"}},
        "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
    }
    assert jsonpath(".spec.list[0].x", obj) == [1]
    assert jsonpath("{.spec.list[*].x}", obj) == [1, 2]
    assert jsonpath(".spec.list[-1:]", obj) == [{"x": 2}]
    assert jsonpath('.status.conditions[?(@.type=="Ready")].status', obj) == ["True"]
    assert jsonpath(".status.conditions[?(@.type == 'Synced')].status", obj) == ["False"]
    assert jsonpath(".spec.list[?(@.x > 1)].x", obj) == [2]
    assert jsonpath(".spec.labels['a.b/c']", obj) == ["v"]
    assert jsonpath(".spec.missing.deeper", obj) == []
    with pytest.raises(ValueError):
        jsonpath("..x", obj)


def _deployment() -> dict[str, Any]:
    created = ts(datetime.timedelta(minutes=3, seconds=12))
    containers = [{"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]
    tier = {"key": "tier", "operator": "In", "values": ["b", "a"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "labels": {"app": "web"},
            "creationTimestamp": created,
            "resourceVersion": "7",
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [tier]},
            "template": {"spec": {"containers": containers}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }


def test_deployment_table() -> None:
    table = table_at_now(
        builtin("apps", "Deployment"), [_deployment()], list_meta={"resourceVersion": "9", "continue": "c"}
    )
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "9", "continue": "c"}
    cols = table["columnDefinitions"]
    assert [(c["name"], c["priority"]) for c in cols] == [
        ("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0),
        ("Containers", 1), ("Images", 1), ("Selector", 1),
    ]  # fmt: skip
    assert cols[0]["format"] == "name" and cols[0]["type"] == "string" and cols[0]["description"]
    assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in cols)
    row = table["rows"][0]
    assert row["cells"] == ["web", "2/3", 3, 2, "3m12s", "nginx,log", "nginx:1.25,busybox", "app=web,tier in (a,b)"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": _deployment()["metadata"],
    }


def test_include_object_modes() -> None:
    info, obj = builtin("apps", "Deployment"), _deployment()
    assert table_at_now(info, [obj], include_object="Object", list_meta={})["rows"][0]["object"] == obj
    assert "object" not in table_at_now(info, [obj], include_object="None", list_meta={})["rows"][0]
    assert (
        table_at_now(info, [obj], include_object="", list_meta={})["rows"][0]["object"]["kind"]
        == "PartialObjectMetadata"
    )
    with pytest.raises(StatusError) as e:
        table_at_now(info, [obj], include_object="Everything", list_meta={})
    assert e.value.code == 400


def test_pod_table() -> None:
    last_state = {"terminated": {"finishedAt": ts(datetime.timedelta(minutes=5))}}
    running = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p1", "creationTimestamp": ts(datetime.timedelta(hours=4))},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.5"}],
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 3, "state": {"running": {}}, "lastState": last_state},
                {"name": "b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ],
        },
    }
    done = {"metadata": {"name": "p2"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded"}}
    table = table_at_now(builtin("", "Pod"), [running, done], list_meta={})
    names = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 1][:2] == ["IP", "Node"]
    assert table["rows"][0]["cells"] == [
        "p1",
        "1/2",
        "CrashLoopBackOff",
        "3 (5m ago)",
        "4h",
        "10.0.0.5",
        "n1",
        "<none>",
        "<none>",
    ]
    assert table["rows"][1]["cells"][:5] == ["p2", "0/1", "Succeeded", "0", "<unknown>"]
    assert table["rows"][1]["conditions"][0]["type"] == "Completed" and "conditions" not in table["rows"][0]


def test_configmap_secret_service_tables() -> None:
    cm = {
        "metadata": {"name": "cfg", "creationTimestamp": ts(datetime.timedelta(days=2, hours=4))},
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
    }
    table = table_at_now(builtin("", "ConfigMap"), [cm], list_meta={})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"] == ["cfg", 2, "2d4h"]
    secret = table_at_now(
        builtin("", "Secret"),
        [{"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"a": "", "b": ""}}],
        list_meta={},
    )
    assert [c["name"] for c in secret["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert secret["rows"][0]["cells"][:3] == ["s", "kubernetes.io/tls", 2]
    svc = {
        "metadata": {"name": "api"},
        "spec": {
            "clusterIP": "10.96.0.10",
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 80, "nodePort": 30080}],
            "selector": {"k": "v"},
        },
    }
    table = table_at_now(builtin("", "Service"), [svc], list_meta={})
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Type",
        "Cluster-IP",
        "External-IP",
        "Port(s)",
        "Age",
        "Selector",
    ]
    assert table["rows"][0]["cells"][:5] == ["api", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,80:30080/TCP"]
    assert table["rows"][0]["cells"][6] == "k=v"


def test_other_builtin_columns() -> None:
    expected = {
        ("", "Namespace"): ["Name", "Status", "Age"],
        ("", "ServiceAccount"): ["Name", "Secrets", "Age"],
        ("", "Event"): ["Last Seen", "Type", "Reason", "Object", "Message"],
        ("events.k8s.io", "Event"): ["Last Seen", "Type", "Reason", "Object", "Message"],
        ("", "Node"): ["Name", "Status", "Roles", "Age", "Version"],
        ("apps", "ReplicaSet"): ["Name", "Desired", "Current", "Ready", "Age"],
        ("apps", "StatefulSet"): ["Name", "Ready", "Age"],
        ("apps", "DaemonSet"): [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age",
        ],
        ("batch", "Job"): ["Name", "Status", "Completions", "Duration", "Age"],
        ("batch", "CronJob"): ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
        ("networking.k8s.io", "Ingress"): ["Name", "Class", "Hosts", "Address", "Ports", "Age"],
        ("coordination.k8s.io", "Lease"): ["Name", "Holder", "Age"],
        ("rbac.authorization.k8s.io", "Role"): ["Name", "Created At"],
        ("rbac.authorization.k8s.io", "ClusterRole"): ["Name", "Created At"],
        ("rbac.authorization.k8s.io", "RoleBinding"): ["Name", "Role", "Age"],
        ("apiextensions.k8s.io", "CustomResourceDefinition"): ["Name", "Created At"],
    }
    for (group, kind), names in expected.items():
        table = table_at_now(
            builtin(group, kind),
            [{"metadata": {"name": "x", "creationTimestamp": "2024-05-01T10:00:00Z"}}],
            list_meta={},
        )
        cols = table["columnDefinitions"]
        assert [c["name"] for c in cols if c["priority"] == 0] == names, kind
        assert len(table["rows"][0]["cells"]) == len(cols), kind
    created = table_at_now(
        builtin("rbac.authorization.k8s.io", "ClusterRole"),
        [{"metadata": {"name": "admin", "creationTimestamp": "2024-05-01T10:00:00Z"}}],
        list_meta={},
    )
    assert created["columnDefinitions"][1]["type"] == "date"
    assert created["rows"][0]["cells"] == ["admin", "2024-05-01T10:00:00Z"]


def test_event_and_job_cells() -> None:
    event = {
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p1", "fieldPath": "spec.containers{a}"},
        "type": "Warning", "reason": "BackOff", "message": " Back-off restarting \n", "count": 4,
        "lastTimestamp": ts(datetime.timedelta(seconds=30)), "firstTimestamp": ts(datetime.timedelta(minutes=20)),
        "source": {"component": "kubelet", "host": "n1"},
    }  # fmt: skip
    cells = table_at_now(builtin("", "Event"), [event], list_meta={})["rows"][0]["cells"]
    assert cells == [
        "30s",
        "Warning",
        "BackOff",
        "pod/p1",
        "spec.containers{a}",
        "kubelet, n1",
        "Back-off restarting",
        "20m",
        4,
        "e1",
    ]
    new_event = {
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Node", "name": "n1"},
        "note": "hi",
        "eventTime": ts(datetime.timedelta(seconds=9)),
        "reason": "R",
        "type": "Normal",
    }
    cells = table_at_now(builtin("events.k8s.io", "Event"), [new_event], list_meta={})["rows"][0]["cells"]
    assert cells[:4] == ["9s", "Normal", "R", "node/n1"] and cells[6] == "hi" and cells[8] == 1
    job = {
        "metadata": {"name": "j"},
        "spec": {"completions": 3},
        "status": {
            "succeeded": 3,
            "startTime": "2024-01-01T00:00:00Z",
            "completionTime": "2024-01-01T00:01:05Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    cells = table_at_now(builtin("batch", "Job"), [job], list_meta={})["rows"][0]["cells"]
    assert cells[:4] == ["j", "Complete", "3/3", "65s"]


def test_crd_printer_columns() -> None:
    info = next(r for r in RESOURCES if r.crd and r.version == "v1")
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "creationTimestamp": ts(datetime.timedelta(hours=5, minutes=30))},
        "spec": {"replicas": 4, "list": [{"x": 1.5}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip
    table = table_at_now(info, [obj, {"metadata": {"name": "w2"}}], list_meta={"resourceVersion": "3"})
    cols = table["columnDefinitions"]
    assert [(c["name"], c["type"], c["priority"]) for c in cols] == [
        ("Name", "string", 0),
        ("Replicas", "integer", 0),
        ("Ready", "string", 0),
        ("First", "string", 1),
        ("Age", "date", 0),
    ]
    assert cols[0]["format"] == "name"
    assert cols[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.replicas"
    assert cols[3]["description"] == "first x"
    assert table["rows"][0]["cells"] == ["w1", 4, "True", "1.5", "5h30m"]
    assert table["rows"][1]["cells"] == ["w2", None, None, None, None]


def test_crd_without_columns_gets_age() -> None:
    info = widget("v1")
    table = table_at_now(
        info, [{"metadata": {"name": "w", "creationTimestamp": ts(datetime.timedelta(seconds=42))}}], list_meta={}
    )
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Age", "date")]
    assert table["rows"][0]["cells"] == ["w", "42s"]


def test_watch_event_table() -> None:
    table = watch_event_table(builtin("apps", "Deployment"), _deployment(), now=NOW)
    assert table["metadata"] == {"resourceVersion": "7"} and len(table["rows"]) == 1
    assert table["columnDefinitions"][0]["name"] == "Name"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
