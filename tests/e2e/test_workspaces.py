"""Workspaces (kcp logical clusters): isolation, deletion and the `/clusters/*` wildcard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Workspace
from tests.e2e.harness import Hub, Kubectl, python_client, wait_until


def configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data}


def test_workspace_contents_are_not_listed_or_fetchable_in_another(make_workspace: Callable[[str], Workspace]) -> None:
    a, b = make_workspace("iso-a"), make_workspace("iso-b")
    a.kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-in-a"}})
    a.kubectl.apply(configmap("shared-name", {"from": "a"}))
    b.kubectl.apply(configmap("shared-name", {"from": "b"}))
    a.kubectl.apply(configmap("a-only", {"from": "a"}))

    assert a.kubectl.json("get", "cm", "shared-name", "-n", "default")["data"] == {"from": "a"}
    assert b.kubectl.json("get", "cm", "shared-name", "-n", "default")["data"] == {"from": "b"}
    missing = b.kubectl.run("get", "cm", "a-only", "-n", "default", check=False)
    assert missing.returncode == 1 and "NotFound" in missing.stderr
    assert b.kubectl.run("get", "ns", "only-in-a", check=False).returncode == 1
    b_names = b.kubectl.run("get", "cm", "-A", "-o", "name").stdout.split()
    assert "configmap/a-only" not in b_names
    assert b_names.count("configmap/shared-name") == 1
    assert "only-in-a" not in b.kubectl.run("get", "ns", "-o", "name").stdout

    # The root workspace sees none of it either.
    root = Kubectl(a.kubectl.kubeconfig, a.kubectl.cache_dir + "-root")
    assert root.run("get", "cm", "a-only", "-n", "default", check=False).returncode == 1

    # Deleting in one workspace leaves the same name in the other alone.
    a.kubectl.run("delete", "cm", "shared-name", "-n", "default")
    assert b.kubectl.json("get", "cm", "shared-name", "-n", "default")["data"] == {"from": "b"}


def test_workspace_watch_does_not_see_other_workspace(hub: Hub, make_workspace: Callable[[str], Workspace]) -> None:
    a, b = make_workspace("watch-a"), make_workspace("watch-b")
    core_a = client.CoreV1Api(python_client(hub.kubeconfig, server=a.url))
    core_b = client.CoreV1Api(python_client(hub.kubeconfig, server=b.url))
    rv = core_b.list_namespaced_config_map("default").metadata.resource_version
    with hub.watch(f"/clusters/root:{b.name}/api/v1/configmaps?watch=1&resourceVersion={rv}") as stream:
        assert stream.status == 200, stream.error_body
        core_a.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-a"), data={"x": "1"})
        )
        core_b.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-b"), data={"x": "1"})
        )
        first = stream.next(timeout=10)
        assert first is not None
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "from-b"), stream.seen
    # And a fetch of A's object through B's URL is a 404.
    try:
        core_b.read_namespaced_config_map("from-a", "default")
        raise AssertionError("workspace B served workspace A's ConfigMap")
    except ApiException as e:
        assert e.status == 404


def test_deleting_workspace_removes_its_contents(hub: Hub, make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("doomed")
    ws.kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "stuff"}})
    ws.kubectl.apply({**configmap("inside", {"k": "v"}), "metadata": {"name": "inside", "namespace": "stuff"}})

    def in_wildcard() -> list[str]:
        status, body = hub.request("GET", "/clusters/*/api/v1/configmaps")
        assert status == 200, body
        return [
            i["metadata"]["name"]
            for i in body["items"]
            if i["metadata"].get("annotations", {}).get("kcp.io/cluster") in (ws.cluster, f"root:{ws.name}")
        ]

    assert in_wildcard() == ["inside"]
    root = Kubectl(ws.kubectl.kubeconfig, ws.kubectl.cache_dir + "-root")
    root.run("delete", "workspace", ws.name, "--wait=false")
    wait_until(lambda: root.run("get", "workspace", ws.name, check=False).returncode == 1, what="workspace deleted")
    wait_until(lambda: in_wildcard() == [], what="contents gone from the wildcard list")
    status, _ = hub.request("GET", f"/clusters/root:{ws.name}/api/v1/namespaces/stuff/configmaps/inside")
    assert status in (403, 404), status

    # A new workspace with the same name starts empty.
    root.apply({"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": ws.name}})
    wait_until(
        lambda: root.json("get", "workspace", ws.name).get("status", {}).get("phase") == "Ready",
        what="recreated workspace Ready",
    )
    wait_until(lambda: ws.kubectl.run("get", "ns", "default", check=False).returncode == 0, what="served again")
    assert ws.kubectl.run("get", "ns", "stuff", check=False).returncode == 1
    assert ws.kubectl.run("get", "cm", "-A", "-o", "name").stdout.split().count("configmap/inside") == 0
    root.run("delete", "workspace", ws.name, "--wait=false")


def test_wildcard_list_spans_workspaces_with_cluster_annotation(
    hub: Hub, make_workspace: Callable[[str], Workspace]
) -> None:
    a, b = make_workspace("wild-a"), make_workspace("wild-b")
    a.kubectl.apply(configmap("wild-one", {"k": "a"}))
    b.kubectl.apply(configmap("wild-two", {"k": "b"}))
    status, body = hub.request("GET", "/clusters/*/api/v1/configmaps")
    assert status == 200, body
    assert body["kind"] == "ConfigMapList"
    found = {
        i["metadata"]["name"]: i["metadata"].get("annotations", {}).get("kcp.io/cluster")
        for i in body["items"]
        if i["metadata"]["name"] in ("wild-one", "wild-two")
    }
    assert set(found) == {"wild-one", "wild-two"}, found
    assert found["wild-one"] in (a.cluster, f"root:{a.name}"), found
    assert found["wild-two"] in (b.cluster, f"root:{b.name}"), found
    assert found["wild-one"] != found["wild-two"]
    # Every item of a wildcard list says where it lives.
    assert all("kcp.io/cluster" in i["metadata"].get("annotations", {}) for i in body["items"])
