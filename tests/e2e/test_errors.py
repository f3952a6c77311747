"""Bad input gets a 4xx Status (never a 5xx) and leaves the store unchanged; authentication failures are 401."""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.e2e.harness import Hub, status_of

ROOT = "/clusters/root"


def cms(ns: str) -> str:
    return f"{ROOT}/api/v1/namespaces/{ns}/configmaps"


def snapshot(hub: Hub, ns: str) -> list[tuple[str, str, Any]]:
    status, body = hub.request("GET", cms(ns))
    assert status == 200, body
    return [(i["metadata"]["name"], i["metadata"]["resourceVersion"], i.get("data")) for i in body["items"]]


def assert_status(status: int, body: Any, code: int, reason: str) -> None:
    assert status < 500, f"server error {status}: {body}"
    assert status_of(body) == ("Status", code, reason), f"HTTP {status}: {body}"
    assert status == code
    assert body["status"] == "Failure" and body["apiVersion"] == "v1" and body.get("message")


@pytest.fixture
def seeded(hub: Hub, namespace: str) -> str:
    status, body = hub.request(
        "POST",
        cms(namespace),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"}, "data": {"a": "1"}},
    )
    assert status == 201, body
    return namespace


@dataclass
class Case:
    id: str
    method: str
    path: str  # relative to the namespace's configmaps collection; "?..." for query strings
    body: bytes
    content_type: str
    code: int
    reason: str


CM = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"},"data":{"a":"1"}}'
WRITE_CASES = [
    Case("malformed-json", "POST", "", b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {', "application/json",
         400, "BadRequest"),
    Case("json-not-an-object", "POST", "", b'["apiVersion", "v1"]', "application/json", 400, "BadRequest"),
    Case("malformed-yaml", "POST", "", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n  data: :\n",
         "application/yaml", 400, "BadRequest"),
    Case("wrong-kind", "POST", "", b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"new"}}',
         "application/json", 400, "BadRequest"),
    Case("wrong-apiversion", "POST", "", b'{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"new"}}',
         "application/json", 400, "BadRequest"),
    Case("wrong-kind-on-update", "PUT", "/target",
         b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"target"},"data":{}}', "application/json",
         400, "BadRequest"),
    Case("name-mismatch-on-update", "PUT", "/target",
         b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"},"data":{}}', "application/json",
         400, "BadRequest"),
    Case("unsupported-content-type", "POST", "", CM, "text/plain", 415, "UnsupportedMediaType"),
    Case("bad-dry-run", "POST", "?dryRun=Sometimes", CM, "application/json", 422, "Invalid"),
    Case("bad-field-validation", "POST", "?fieldValidation=Loose", CM, "application/json", 422, "Invalid"),
    Case("unknown-field-strict", "POST", "?fieldValidation=Strict",
         b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"new"},"dataa":{}}', "application/json",
         400, "BadRequest"),
    Case("invalid-name", "POST", "", b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}',
         "application/json", 422, "Invalid"),
    Case("already-exists", "POST", "", b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"target"}}',
         "application/json", 409, "AlreadyExists"),
    Case("json-patch-malformed", "PATCH", "/target", b'[{"op": "add", "path": ', "application/json-patch+json",
         400, "BadRequest"),
    Case("json-patch-not-a-list", "PATCH", "/target", b'{"op": "add"}', "application/json-patch+json",
         400, "BadRequest"),
    Case("json-patch-unknown-op", "PATCH", "/target", b'[{"op": "frobnicate", "path": "/data/a"}]',
         "application/json-patch+json", 422, "Invalid"),
    Case("json-patch-missing-path", "PATCH", "/target", b'[{"op": "remove", "path": "/data/nope"}]',
         "application/json-patch+json", 422, "Invalid"),
    Case("json-patch-failed-test", "PATCH", "/target", b'[{"op": "test", "path": "/data/a", "value": "2"}]',
         "application/json-patch+json", 422, "Invalid"),
    Case("merge-patch-malformed", "PATCH", "/target", b'{"data": {"a": ', "application/merge-patch+json",
         400, "BadRequest"),
    Case("strategic-patch-malformed", "PATCH", "/target", b'{"data": ', "application/strategic-merge-patch+json",
         400, "BadRequest"),
    Case("patch-unsupported-type", "PATCH", "/target", b'{"data": {}}', "application/json", 415,
         "UnsupportedMediaType"),
    Case("patch-missing-object", "PATCH", "/missing", b'{"data": {"a": "2"}}', "application/merge-patch+json",
         404, "NotFound"),
    # issue 9: each of these was a 5xx
    Case("labels-not-an-object", "POST", "", b'{"metadata":{"name":"new","labels":[]}}', "application/json",
         400, "BadRequest"),
    Case("merge-patch-metadata-array", "PATCH", "/target", b'{"metadata": []}', "application/merge-patch+json",
         422, "Invalid"),
    Case("strategic-patch-metadata-string", "PATCH", "/target", b'{"metadata": "x"}',
         "application/strategic-merge-patch+json", 422, "Invalid"),
    Case("merge-patch-metadata-array-missing-object", "PATCH", "/missing", b'{"metadata": []}',
         "application/merge-patch+json", 404, "NotFound"),
    Case("merge-patch-too-deep", "PATCH", "/target", b'{"data":' + b'{"a":' * 600 + b"1" + b"}" * 601,
         "application/merge-patch+json", 400, "BadRequest"),
    Case("json-patch-too-deep", "PATCH", "/target",
         b'[{"op":"add","path":"/data","value":' + b"[" * 600 + b"]" * 600 + b"}]", "application/json-patch+json",
         400, "BadRequest"),
    Case("delete-dry-run-not-a-list", "DELETE", "/target", b'{"dryRun": "All"}', "application/json",
         400, "BadRequest"),
    Case("delete-preconditions-not-an-object", "DELETE", "/target", b'{"preconditions": []}', "application/json",
         400, "BadRequest"),
    Case("delete-grace-period-not-an-integer", "DELETE", "/target?gracePeriodSeconds=AAA", b"", "application/json",
         400, "BadRequest"),
    Case("delete-collection-dry-run-not-a-list", "DELETE", "", b'{"dryRun": 5}', "application/json",
         400, "BadRequest"),
    Case("delete-collection-preconditions-string", "DELETE", "", b'{"preconditions": "x"}', "application/json",
         400, "BadRequest"),
    Case("delete-collection-grace-period-not-an-integer", "DELETE", "?gracePeriodSeconds=AAA", b"",
         "application/json", 400, "BadRequest"),
]  # fmt: skip


@pytest.mark.parametrize("case", WRITE_CASES, ids=[c.id for c in WRITE_CASES])
def test_bad_write_is_a_4xx_status_and_changes_nothing(hub: Hub, seeded: str, case: Case) -> None:
    before = snapshot(hub, seeded)
    status, body = hub.request(case.method, cms(seeded) + case.path, case.body, content_type=case.content_type)
    assert_status(status, body, case.code, case.reason)
    assert snapshot(hub, seeded) == before


def test_object_over_1_5_mb_is_refused(hub: Hub, seeded: str) -> None:
    before = snapshot(hub, seeded)
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"blob": "x" * 1_600_000}}
    status, body = hub.request("POST", cms(seeded), big)
    assert status < 500, body
    # Upstream: ConfigMap validation (1 MiB of data) answers 422 Invalid; a storage-level size cap answers 413.
    assert status_of(body) in (("Status", 422, "Invalid"), ("Status", 413, "RequestEntityTooLarge")), body
    assert snapshot(hub, seeded) == before

    # Growing an existing object past the limit with a patch is refused the same way.
    status, body = hub.request(
        "PATCH",
        cms(seeded) + "/target",
        {"data": {"blob": "y" * 1_600_000}},
        content_type="application/merge-patch+json",
    )
    assert status_of(body) in (("Status", 422, "Invalid"), ("Status", 413, "RequestEntityTooLarge")), body
    # A body over the 3 MiB request limit is 413 before it is even decoded.
    status, body = hub.request("POST", cms(seeded), b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}")
    assert_status(status, body, 413, "RequestEntityTooLarge")
    assert snapshot(hub, seeded) == before


def test_configmap_data_over_1_mib_is_invalid(hub: Hub, seeded: str) -> None:
    """ConfigMap (and Secret) data is capped at 1 MiB by validation, below the 1.5 MiB storage limit."""
    before = snapshot(hub, seeded)
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"blob": "x" * 1_200_000}}
    status, body = hub.request("POST", cms(seeded), big)
    assert_status(status, body, 422, "Invalid")
    assert snapshot(hub, seeded) == before


BAD_QUERIES = [
    ("label-selector-syntax", "labelSelector=a%20in%20(b", 400, "BadRequest"),
    ("label-selector-bad-value", "labelSelector=" + urllib.parse.quote("a=b c"), 400, "BadRequest"),
    ("label-selector-bad-key", "labelSelector=" + urllib.parse.quote("-a=b"), 400, "BadRequest"),
    ("field-selector-unsupported", "fieldSelector=spec.nope%3Dx", 400, "BadRequest"),
    ("field-selector-syntax", "fieldSelector=metadata.name", 400, "BadRequest"),
    ("bad-limit", "limit=ten", 400, "BadRequest"),
    ("bad-continue", "limit=1&continue=not-a-token", 400, "BadRequest"),
    ("rv-match-without-rv", "resourceVersionMatch=NotOlderThan", 422, "Invalid"),
    ("rv-match-unknown", "resourceVersion=1&resourceVersionMatch=Sometimes", 422, "Invalid"),
    ("bad-resource-version", "resourceVersion=abc", 400, "BadRequest"),
    ("limit-not-an-integer", "limit=1.5", 400, "BadRequest"),
    ("timeout-seconds-not-an-integer", "timeoutSeconds=1.5", 400, "BadRequest"),
]


@pytest.mark.parametrize(("query", "code", "reason"), [q[1:] for q in BAD_QUERIES], ids=[q[0] for q in BAD_QUERIES])
def test_bad_list_query_is_a_4xx_status(hub: Hub, seeded: str, query: str, code: int, reason: str) -> None:
    status, body = hub.request("GET", f"{cms(seeded)}?{query}")
    assert_status(status, body, code, reason)


def test_bad_selector_on_watch_and_delete_collection(hub: Hub, seeded: str) -> None:
    before = snapshot(hub, seeded)
    status, body = hub.request("GET", f"{cms(seeded)}?watch=1&labelSelector=a%20in%20(b", timeout=10)
    assert_status(status, body, 400, "BadRequest")
    status, body = hub.request("DELETE", f"{cms(seeded)}?labelSelector=a%20in%20(b")
    assert_status(status, body, 400, "BadRequest")
    status, body = hub.request("DELETE", f"{cms(seeded)}?fieldSelector=spec.nope%3Dx")
    assert_status(status, body, 400, "BadRequest")
    assert snapshot(hub, seeded) == before


def test_not_found_paths(hub: Hub, namespace: str) -> None:
    status, body = hub.request("GET", f"{cms(namespace)}/missing")
    assert_status(status, body, 404, "NotFound")
    assert body["details"] == {"name": "missing", "kind": "configmaps"}
    status, body = hub.request("GET", f"{ROOT}/api/v1/namespaces/{namespace}/widgets")
    assert_status(status, body, 404, "NotFound")
    status, body = hub.request("GET", f"{ROOT}/apis/nope.example.com/v1/things")
    assert_status(status, body, 404, "NotFound")
    status, body = hub.request("POST", f"{ROOT}/api/v1/namespaces/no-such-namespace/configmaps", CM)
    assert_status(status, body, 404, "NotFound")


def test_missing_credentials_is_401(hub: Hub) -> None:
    for path in (
        f"{ROOT}/api/v1/namespaces",
        f"{ROOT}/api",
        f"{ROOT}/apis/apps/v1/deployments",
        "/clusters/*/api/v1/configmaps",
    ):
        status, body = hub.request("GET", path, token=None)
        assert_status(status, body, 401, "Unauthorized")
    status, body = hub.request("POST", f"{ROOT}/api/v1/namespaces/default/configmaps", CM, token=None)
    assert_status(status, body, 401, "Unauthorized")


def test_wrong_token_is_401(hub: Hub) -> None:
    for token in ("not-the-token", hub.token[:-1], hub.token + "x"):
        status, body = hub.request("GET", f"{ROOT}/api/v1/namespaces", token=token)
        assert_status(status, body, 401, "Unauthorized")
    with hub.watch(f"{ROOT}/api/v1/configmaps?watch=1", token="not-the-token") as stream:
        assert stream.status == 401
        assert status_of(stream.error_body) == ("Status", 401, "Unauthorized")


def test_send_initial_events_watch_is_422(hub: Hub, namespace: str) -> None:
    query = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    with hub.watch(f"{cms(namespace)}?{query}") as stream:
        assert stream.status == 422, f"expected 422, got {stream.status}: {stream.error_body}"
        assert status_of(stream.error_body) == ("Status", 422, "Invalid")
    # On a plain list it is invalid too.
    status, body = hub.request("GET", f"{cms(namespace)}?sendInitialEvents=true")
    assert_status(status, body, 422, "Invalid")


@pytest.mark.parametrize(
    ("path", "kind"),
    [("services", "Service"), ("pods", "Pod"), ("deployments", "Deployment"), ("namespaces", "Namespace")],
)
def test_spec_of_the_wrong_json_type_is_400(hub: Hub, namespace: str, path: str, kind: str) -> None:
    """Defaulting used to run first and fail on `"spec": []` with a 500."""
    group = "apis/apps/v1" if kind == "Deployment" else "api/v1"
    base = f"{ROOT}/{group}/{path}" if kind == "Namespace" else f"{ROOT}/{group}/namespaces/{namespace}/{path}"
    name = f"bad-{uuid.uuid4().hex[:8]}"
    status, body = hub.request("POST", base, {"metadata": {"name": name}, "spec": []})
    assert_status(status, body, 400, "BadRequest")
    assert f".spec of type v1.{kind}Spec" in body["message"], body["message"]
    status, body = hub.request("GET", f"{base}/{name}")
    assert_status(status, body, 404, "NotFound")


def test_scale_with_spec_or_metadata_not_an_object(hub: Hub, namespace: str) -> None:
    deployments = f"{ROOT}/apis/apps/v1/namespaces/{namespace}/deployments"
    pod = {"containers": [{"name": "c", "image": "nginx"}]}
    spec = {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod}}
    status, body = hub.request("POST", deployments, {"metadata": {"name": "web"}, "spec": spec})
    assert status == 201, body
    rv = body["metadata"]["resourceVersion"]
    for part in ("spec", "metadata"):
        scale: dict[str, Any] = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}}
        scale[part] = []
        status, body = hub.request("PUT", f"{deployments}/web/scale", scale)
        assert_status(status, body, 400, "BadRequest")
        assert f"Scale.{part}" in body["message"], body["message"]
        for ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            status, body = hub.request("PATCH", f"{deployments}/web/scale", {part: "x"}, content_type=ctype)
            assert_status(status, body, 422, "Invalid")
            assert body["details"]["causes"][0]["field"] == "patch"
    status, body = hub.request("GET", f"{deployments}/web")
    assert body["metadata"]["resourceVersion"] == rv


def raw_post(hub: Hub, path: str, body: bytes) -> tuple[int, str | None, Any]:
    """(status, Warning header, JSON body): urllib cannot show the headers of every answer."""
    conn = hub.connection()
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hub.token}"}
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Warning"), orjson.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("char", ["\x01", "\n", "\r"], ids=["x01", "LF", "CR"])
def test_unknown_field_with_a_control_character(hub: Hub, seeded: str, char: str) -> None:
    """The field name went into a Warning header the HTTP library refused: no response, yet the object was written."""
    field = f"x{char}y"
    escaped = field.encode("unicode_escape").decode()  # Go's %q spelling, which kube-apiserver uses too
    for query, name in (("", "warn-default"), ("?fieldValidation=Warn", "warn")):
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, field: "1"}
        status, warning, body = raw_post(hub, cms(seeded) + query, orjson.dumps(obj))
        assert status == 201, body
        assert warning == f'299 - "unknown field \\"{escaped.replace(chr(92), chr(92) * 2)}\\""', warning
        status, body = hub.request("GET", f"{cms(seeded)}/{name}")
        assert status == 200 and field not in body, body
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, field: "1"}
    status, _, body = raw_post(hub, cms(seeded) + "?fieldValidation=Strict", orjson.dumps(obj))
    assert_status(status, body, 400, "BadRequest")
    assert f'unknown field "{escaped}"' in body["message"], body["message"]
    status, body = hub.request("GET", f"{cms(seeded)}/strict")
    assert_status(status, body, 404, "NotFound")


FORBIDDEN_NS = 'namespaces "{}" is forbidden: this namespace may not be deleted'


def test_protected_namespaces_cannot_be_deleted(hub: Hub) -> None:
    for name in ("default", "kube-system", "kube-public"):
        for query in ("?dryRun=All", ""):
            status, body = hub.request("DELETE", f"{ROOT}/api/v1/namespaces/{name}{query}")
            assert_status(status, body, 403, "Forbidden")
            assert body["message"] == FORBIDDEN_NS.format(name)
        status, body = hub.request("GET", f"{ROOT}/api/v1/namespaces/{name}")
        assert status == 200 and body["status"]["phase"] == "Active", body
        assert "deletionTimestamp" not in body["metadata"]


def test_delete_collection_of_namespaces_stops_at_a_protected_one(hub: Hub) -> None:
    """As kube-apiserver's DeleteCollection: namespaces before `default` go, then 403, and the rest stay."""
    ws = f"errors-{uuid.uuid4().hex[:6]}"
    status, body = hub.request(
        "POST",
        f"{ROOT}/apis/tenancy.kcp.io/v1alpha1/workspaces",
        {"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": ws}},
    )
    assert status == 201, body
    namespaces = f"/clusters/root:{ws}/api/v1/namespaces"
    for name in ("aaa", "zzz"):
        status, body = hub.request("POST", namespaces, {"metadata": {"name": name}})
        assert status == 201, body
    status, body = hub.request("DELETE", f"{namespaces}/default")
    assert_status(status, body, 403, "Forbidden")
    status, body = hub.request("DELETE", namespaces)
    assert_status(status, body, 403, "Forbidden")
    assert body["message"] == FORBIDDEN_NS.format("default")
    status, body = hub.request("GET", f"{namespaces}/default")
    assert status == 200 and "deletionTimestamp" not in body["metadata"], body
    status, body = hub.request("GET", f"{namespaces}/zzz")
    assert status == 200 and "deletionTimestamp" not in body["metadata"], body
