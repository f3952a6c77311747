"""The syncer virtual workspace served by an in-process hub: routing, selection, watch transitions and writes."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from tmc.apimachinery.meta import now_rfc3339
from tmc.protocol.keys import sync_target_key
from tmc.server.hub import Hub, ServerConfig

KEY = sync_target_key("root", "c1")
LABEL = f"state.workload.kcp.io/{KEY}"
FINALIZER = f"workload.kcp.io/syncer-{KEY}"


class Api:
    def __init__(self, hub: Hub, session: aiohttp.ClientSession) -> None:
        self.base = f"https://127.0.0.1:{hub.port}"
        self.session = session
        self.headers = {"Authorization": f"Bearer {hub.identity.admin_token}"}

    async def call(self, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        headers = {**self.headers, "Content-Type": ctype}
        async with self.session.request(method, self.base + path, data=data, headers=headers) as r:
            return r.status, orjson.loads(await r.read())


def run_with_hub(tmp_path: Any, test: Callable[[Hub, Api], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0, bookmark_interval=0.2))
        await hub.start()
        ctx = ssl.create_default_context(cafile=os.path.join(str(tmp_path), "pki", "ca.crt"))
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
                await asyncio.wait_for(test(hub, Api(hub, session)), 30)
        finally:
            await hub.stop()

    asyncio.run(main())


async def setup(api: Api) -> str:
    """A SyncTarget c1 and namespace `shop` with an assigned and an unassigned ConfigMap; returns the VW prefix."""
    status, st = await api.call(
        "POST", "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets", {"metadata": {"name": "c1"}}
    )
    assert status == 201, st
    # Its syncer's heartbeat makes it Ready: status aggregation only counts reports from Ready targets.
    beat = {"status": {"lastSyncerHeartbeatTime": now_rfc3339()}}
    path = "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets/c1/status"
    assert (await api.call("PATCH", path, beat, "application/merge-patch+json"))[0] == 200
    await api.call(
        "POST", "/clusters/root/api/v1/namespaces", {"metadata": {"name": "shop", "labels": {LABEL: "Sync"}}}
    )
    for name, labels in (
        ("mine", {LABEL: "Sync", "tier": "a"}),
        ("other", {}),
        ("mine-b", {LABEL: "Sync", "tier": "b"}),
    ):
        body = {"metadata": {"name": name, "labels": labels}, "data": {"k": name}}
        assert (await api.call("POST", "/clusters/root/api/v1/namespaces/shop/configmaps", body))[0] == 201
    return f"/services/syncer/root/c1/{st['metadata']['uid']}"


def test_routing_and_refusals(tmp_path: Any) -> None:
    async def test(hub: Hub, api: Api) -> None:
        vw = await setup(api)
        assert (await api.call("GET", "/services/syncer/root/nope/x/clusters/*/api/v1/configmaps"))[0] == 404
        status, body = await api.call("GET", "/services/syncer/root/c1/wrong-uid/clusters/*/api/v1/configmaps")
        assert status == 403, body
        status, body = await api.call("POST", f"{vw}/clusters/root/api/v1/namespaces/shop/configmaps", {"metadata": {}})
        assert status == 405, body
        assert (await api.call("DELETE", f"{vw}/clusters/root/api/v1/namespaces/shop/configmaps/mine"))[0] == 405
        assert (await api.call("GET", f"{vw}/clusters/*/api/v1/namespaces/shop/configmaps/mine"))[0] == 405
        assert (await api.call("GET", f"{vw}/clusters/root/api/v1/namespaces/shop/configmaps/other"))[0] == 404
        assert (await api.call("GET", f"{vw}/clusters/*/api/v1/pods"))[0] == 404
        status, doc = await api.call("GET", f"{vw}/clusters/root/apis/apps/v1")
        assert status == 200 and {r["name"] for r in doc["resources"]} >= {"deployments", "deployments/status"}

    run_with_hub(tmp_path, test)


def test_list_selects_assigned_objects(tmp_path: Any) -> None:
    async def test(hub: Hub, api: Api) -> None:
        vw = await setup(api)
        status, body = await api.call("GET", f"{vw}/clusters/*/api/v1/configmaps")
        assert status == 200, body
        items = {i["metadata"]["name"]: i for i in body["items"]}
        assert set(items) == {"mine", "mine-b"}
        assert items["mine"]["metadata"]["annotations"]["kcp.io/cluster"] == "root"
        status, body = await api.call("GET", f"{vw}/clusters/*/api/v1/configmaps?labelSelector=tier%3Db")
        assert [i["metadata"]["name"] for i in body["items"]] == ["mine-b"]
        status, body = await api.call("GET", f"{vw}/clusters/*/api/v1/namespaces")
        assert [i["metadata"]["name"] for i in body["items"]] == ["shop"]

    run_with_hub(tmp_path, test)


def test_watch_sees_unassignment_as_deleted_and_resumes(tmp_path: Any) -> None:
    async def test(hub: Hub, api: Api) -> None:
        vw = await setup(api)
        _, listed = await api.call("GET", f"{vw}/clusters/*/api/v1/configmaps")
        rv = listed["metadata"]["resourceVersion"]
        cm = "/clusters/root/api/v1/namespaces/shop/configmaps"
        # Changes made before the watch starts are replayed from the resourceVersion.
        await api.call("PATCH", f"{cm}/mine", {"metadata": {"labels": {LABEL: None}}}, "application/merge-patch+json")
        await api.call(
            "PATCH", f"{cm}/other", {"metadata": {"labels": {LABEL: "Sync"}}}, "application/merge-patch+json"
        )
        url = f"{api.base}{vw}/clusters/*/api/v1/configmaps?watch=1&resourceVersion={rv}"
        seen: list[tuple[str, str]] = []
        async with api.session.get(url, headers=api.headers) as r:
            async for line in r.content:
                event = orjson.loads(line)
                seen.append((event["type"], event["object"]["metadata"]["name"]))
                if len(seen) == 2:
                    break
        assert seen == [("DELETED", "mine"), ("ADDED", "other")]

    run_with_hub(tmp_path, test)


def test_writes_follow_the_protocol(tmp_path: Any) -> None:
    async def test(hub: Hub, api: Api) -> None:
        vw = await setup(api)
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {LABEL: "Sync"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        }
        hub_path = "/clusters/root/apis/apps/v1/namespaces/shop/deployments/web"
        assert (await api.call("POST", "/clusters/root/apis/apps/v1/namespaces/shop/deployments", body))[0] == 201
        path = f"{vw}{hub_path}"
        status, view = await api.call("GET", path)
        assert status == 200 and "status" not in view
        # A stale resourceVersion is a conflict.
        stale = {**view, "metadata": {**view["metadata"], "resourceVersion": "1", "finalizers": [FINALIZER]}}
        assert (await api.call("PUT", path, stale))[0] == 409
        status, view = await api.call(
            "PATCH", path, {"metadata": {"finalizers": [FINALIZER]}}, "application/merge-patch+json"
        )
        assert status == 200 and view["metadata"]["finalizers"] == [FINALIZER]
        # Status goes to this target's annotation; the aggregation controller sums it into .status.
        report = [
            {"op": "add", "path": "/status", "value": {"replicas": 3, "readyReplicas": 3, "observedGeneration": 1}}
        ]
        status, view = await api.call("PATCH", f"{path}/status", report, "application/json-patch+json")
        assert status == 200 and view["status"]["readyReplicas"] == 3, view
        for _ in range(100):
            _, obj = await api.call("GET", hub_path)
            if (obj.get("status") or {}).get("readyReplicas") == 3:
                break
            await asyncio.sleep(0.05)
        assert obj["status"] == {"replicas": 3, "readyReplicas": 3, "observedGeneration": 1}
        # Delete upstream: the view shows the deletion; dropping the finalizer releases and deletes the object.
        assert (await api.call("DELETE", hub_path))[0] == 200
        status, view = await api.call("GET", path)
        assert view["metadata"]["deletionTimestamp"]
        status, view = await api.call("PATCH", path, {"metadata": {"finalizers": []}}, "application/merge-patch+json")
        assert status == 200, view
        assert (await api.call("GET", hub_path))[0] == 404

    run_with_hub(tmp_path, test)


@pytest.mark.parametrize("verb", ["PUT", "PATCH"])
def test_unassigned_objects_cannot_be_written(tmp_path: Any, verb: str) -> None:
    async def test(hub: Hub, api: Api) -> None:
        vw = await setup(api)
        path = f"{vw}/clusters/root/api/v1/namespaces/shop/configmaps/other"
        ctype = "application/merge-patch+json" if verb == "PATCH" else "application/json"
        assert (await api.call(verb, path, {"metadata": {"name": "other"}}, ctype))[0] == 404

    run_with_hub(tmp_path, test)
