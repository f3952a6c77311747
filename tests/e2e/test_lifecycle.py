"""Object lifecycle (namespaces, garbage collection, finalizers, dry run, generateName), watches and the process."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.e2e.harness import Hub, Kubectl, free_port, wait_until

ROOT = "/clusters/root"


def cms(ns: str) -> str:
    return f"{ROOT}/api/v1/namespaces/{ns}/configmaps"


def create_cm(hub: Hub, ns: str, name: str, **metadata: Any) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}, "data": {"k": "v"}}
    status, obj = hub.request("POST", cms(ns), body)
    assert status == 201, obj
    return dict(obj)


def get(hub: Hub, path: str) -> dict[str, Any] | None:
    status, obj = hub.request("GET", path)
    if status == 404:
        return None
    assert status == 200, obj
    return dict(obj)


def merge_patch(hub: Hub, path: str, patch: dict[str, Any]) -> dict[str, Any]:
    status, obj = hub.request("PATCH", path, patch, content_type="application/merge-patch+json")
    assert status == 200, obj
    return dict(obj)


def test_namespace_deletion_deletes_its_contents(hub: Hub, kubectl: Kubectl, namespace: str) -> None:
    create_cm(hub, namespace, "plain")
    create_cm(hub, namespace, "held", finalizers=["e2e.tmc.io/hold"])
    status, body = hub.request("DELETE", f"{ROOT}/api/v1/namespaces/{namespace}")
    assert status in (200, 202), body
    ns_path = f"{ROOT}/api/v1/namespaces/{namespace}"
    # The held ConfigMap keeps the namespace Terminating.
    ns = wait_until(
        lambda: (n := get(hub, ns_path)) and n["status"].get("phase") == "Terminating" and n, what="Terminating"
    )
    assert ns["metadata"].get("deletionTimestamp")
    wait_until(lambda: get(hub, f"{cms(namespace)}/plain") is None, what="namespace content deleted")
    held = get(hub, f"{cms(namespace)}/held")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert kubectl.json("get", "ns", namespace)["status"]["phase"] == "Terminating"

    # New content is refused in a terminating namespace.
    status, body = hub.request(
        "POST", cms(namespace), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}
    )
    assert status == 403 and body["reason"] == "Forbidden", body

    merge_patch(hub, f"{cms(namespace)}/held", {"metadata": {"finalizers": None}})
    wait_until(lambda: get(hub, ns_path) is None, what="namespace to disappear")
    assert kubectl.run("get", "ns", namespace, check=False).returncode == 1


def test_owner_reference_garbage_collection(hub: Hub, namespace: str) -> None:
    owner = create_cm(hub, namespace, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    create_cm(hub, namespace, "dependent", ownerReferences=[ref])
    create_cm(hub, namespace, "bystander")
    status, body = hub.request("DELETE", f"{cms(namespace)}/owner")
    assert status == 200, body
    wait_until(lambda: get(hub, f"{cms(namespace)}/dependent") is None, what="dependent to be garbage collected")
    assert get(hub, f"{cms(namespace)}/bystander") is not None

    # Foreground: the owner waits (finalizer foregroundDeletion) until the dependent is gone.
    owner = create_cm(hub, namespace, "fg-owner")
    ref = {**ref, "name": "fg-owner", "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
    create_cm(hub, namespace, "fg-dependent", ownerReferences=[ref])
    status, body = hub.request(
        "DELETE", f"{cms(namespace)}/fg-owner", {"kind": "DeleteOptions", "propagationPolicy": "Foreground"}
    )
    assert status in (200, 202), body
    wait_until(lambda: get(hub, f"{cms(namespace)}/fg-dependent") is None, what="foreground dependent deleted")
    wait_until(lambda: get(hub, f"{cms(namespace)}/fg-owner") is None, what="foreground owner deleted")


def test_orphan_propagation_keeps_dependent_without_owner_reference(hub: Hub, namespace: str) -> None:
    owner = create_cm(hub, namespace, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "keeper",
        "uid": create_cm(hub, namespace, "keeper")["metadata"]["uid"],
    }
    create_cm(hub, namespace, "dependent", ownerReferences=[ref, other])
    status, body = hub.request(
        "DELETE", f"{cms(namespace)}/owner", {"kind": "DeleteOptions", "propagationPolicy": "Orphan"}
    )
    assert status in (200, 202), body
    wait_until(lambda: get(hub, f"{cms(namespace)}/owner") is None, what="owner deleted")
    dependent = wait_until(
        lambda: (
            (d := get(hub, f"{cms(namespace)}/dependent"))
            and [r["name"] for r in d["metadata"].get("ownerReferences", [])] == ["keeper"]
            and d
        ),
        what="dependent orphaned (its reference to the owner removed)",
    )
    assert dependent["data"] == {"k": "v"}
    # Nothing removes it later either: the GC has had its chance by the time the owner is gone.
    assert get(hub, f"{cms(namespace)}/dependent") is not None


def test_finalizers_hold_object_until_removed(hub: Hub, namespace: str) -> None:
    path = f"{cms(namespace)}/held"
    create_cm(hub, namespace, "held", finalizers=["e2e.tmc.io/a", "e2e.tmc.io/b"])
    status, body = hub.request("DELETE", path)
    assert status in (200, 202), body
    assert body.get("kind") == "ConfigMap" and body["metadata"].get("deletionTimestamp"), body
    held = get(hub, path)
    assert held is not None and held["metadata"]["deletionTimestamp"] == body["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["e2e.tmc.io/a", "e2e.tmc.io/b"]
    # Deleting again changes nothing; updates other than finalizer removal still work.
    status, again = hub.request("DELETE", path)
    assert status in (200, 202) and again["metadata"]["deletionTimestamp"] == body["metadata"]["deletionTimestamp"]
    # A finalizer cannot be added once the object is being deleted.
    status, refused = hub.request(
        "PATCH",
        path,
        {"metadata": {"finalizers": ["e2e.tmc.io/a", "e2e.tmc.io/b", "e2e.tmc.io/c"]}},
        content_type="application/merge-patch+json",
    )
    assert status == 422 and refused["reason"] == "Invalid", refused

    merge_patch(hub, path, {"metadata": {"finalizers": ["e2e.tmc.io/b"]}})
    assert get(hub, path) is not None
    merge_patch(hub, path, {"metadata": {"finalizers": []}})
    wait_until(lambda: get(hub, path) is None, what="object gone after the last finalizer")


def test_dry_run_all_creates_nothing(hub: Hub, kubectl: Kubectl, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"k": "v"}}
    status, obj = hub.request("POST", cms(namespace) + "?dryRun=All", body)
    assert status == 201, obj
    assert obj["metadata"]["name"] == "dry" and obj["data"] == {"k": "v"}
    assert get(hub, f"{cms(namespace)}/dry") is None
    status, listed = hub.request("GET", cms(namespace))
    assert listed["items"] == []

    created = create_cm(hub, namespace, "real")
    rv = created["metadata"]["resourceVersion"]
    for method, payload, ctype in (
        ("PATCH", {"data": {"k": "dry"}}, "application/merge-patch+json"),
        ("PUT", {**created, "data": {"k": "dry"}}, "application/json"),
        ("DELETE", None, "application/json"),
    ):
        status, out = hub.request(method, f"{cms(namespace)}/real?dryRun=All", payload, content_type=ctype)
        assert status in (200, 202), (method, out)
        live = get(hub, f"{cms(namespace)}/real")
        assert live is not None and live["data"] == {"k": "v"} and live["metadata"]["resourceVersion"] == rv, method

    out = kubectl.run("-n", namespace, "apply", "--dry-run=server", "-f", "-", input=(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubectl-dry}\ndata: {a: b}\n"
    ))  # fmt: skip
    assert "configmap/kubectl-dry created (server dry run)" in out.stdout
    assert get(hub, f"{cms(namespace)}/kubectl-dry") is None


def test_generate_name(hub: Hub, namespace: str) -> None:
    names = set()
    for _ in range(3):
        status, obj = hub.request(
            "POST", cms(namespace), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
        )
        assert status == 201, obj
        name = obj["metadata"]["name"]
        assert name.startswith("gen-") and len(name) == len("gen-") + 5, name
        assert set(name[4:]) <= set("bcdfghjklmnpqrstvwxz2456789"), name
        assert obj["metadata"]["generateName"] == "gen-"
        names.add(name)
    assert len(names) == 3
    assert {i["metadata"]["name"] for i in hub.request("GET", cms(namespace))[1]["items"]} == names


def test_watch_with_label_selector_sees_deleted_when_label_removed(hub: Hub, namespace: str) -> None:
    create_cm(hub, namespace, "tagged", labels={"team": "blue"})
    with hub.watch(f"{cms(namespace)}?watch=1&labelSelector=team%3Dblue") as stream:
        assert stream.status == 200, stream.error_body
        added = stream.next()
        assert added is not None and added["type"] == "ADDED" and added["object"]["metadata"]["name"] == "tagged"
        changed = merge_patch(hub, f"{cms(namespace)}/tagged", {"metadata": {"labels": {"team": None}}})
        event = stream.next()
        assert event is not None and event["type"] == "DELETED", stream.seen
        assert event["object"]["metadata"]["name"] == "tagged"
        assert event["object"]["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
        # Matching again is an ADDED.
        merge_patch(hub, f"{cms(namespace)}/tagged", {"metadata": {"labels": {"team": "blue"}}})
        event = stream.next()
        assert event is not None and event["type"] == "ADDED", stream.seen
        # A change to a non-matching object is not seen at all.
        create_cm(hub, namespace, "other", labels={"team": "red"})
        merge_patch(hub, f"{cms(namespace)}/tagged", {"data": {"k": "v2"}})
        event = stream.next()
        assert event is not None and (event["type"], event["object"]["data"]) == ("MODIFIED", {"k": "v2"}), stream.seen


def test_watch_bookmarks(hub: Hub, namespace: str) -> None:
    created = create_cm(hub, namespace, "marked")
    rv = created["metadata"]["resourceVersion"]
    with hub.watch(f"{cms(namespace)}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}") as stream:
        assert stream.status == 200, stream.error_body
        bookmark = stream.wait_for(lambda e: e["type"] == "BOOKMARK", timeout=5)
        assert bookmark["object"]["kind"] == "ConfigMap" and bookmark["object"]["apiVersion"] == "v1"
        assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(rv)
        assert not [e for e in stream.seen if e["type"] != "BOOKMARK"], stream.seen
    # Without allowWatchBookmarks there are none.
    with hub.watch(f"{cms(namespace)}?watch=1&resourceVersion={rv}&timeoutSeconds=1") as stream:
        events = []
        while (event := stream.next(timeout=10)) is not None:
            events.append(event)
        assert events == []


def test_health_endpoints_need_no_credentials(hub: Hub) -> None:
    for path in ("/livez", "/readyz", "/healthz"):
        status, body = hub.request("GET", path, token=None, accept="text/plain")
        assert status == 200, (path, body)
        assert body == "ok", (path, body)


def test_metrics_with_admin_token(hub: Hub) -> None:
    hub.request("GET", f"{ROOT}/api/v1/namespaces")
    status, body = hub.request("GET", "/metrics", accept="text/plain")
    assert status == 200, body
    assert isinstance(body, str) and "apiserver_request_total" in body
    assert any(line.startswith("apiserver_request_total{") for line in body.splitlines()), body[:2000]
    status, body = hub.request("GET", "/metrics", token=None, accept="text/plain")
    assert status == 401


def test_sigterm_exits_zero(tmp_path: Path) -> None:
    server = Hub(data_dir=str(tmp_path / "term"), port=free_port())
    server.start()
    with server.watch("/clusters/root/api/v1/configmaps?watch=1") as stream:  # an open watch must not block exit
        assert stream.status == 200
        assert server.stop(signal.SIGTERM, timeout=20) == 0
