"""Many targets on one hub object: their syncers' writes are combined, and each watch only sees its own view change."""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any

import aiohttp
import orjson

from tmc.api.workload import state_label, status_diff_annotation, syncer_finalizer
from tmc.apimachinery import errors
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.apiserver.virtual.syncer_writes import HubObject, ViewWrite, WriteCombiner
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService, WriteOptions
from tmc.server.hub import Hub, ServerConfig
from tmc.storage.sqlite import SqliteStore

CONFIGMAPS = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps" and not r.group)
KEYS = [sync_target_key("root", f"t{i}") for i in range(5)]
OBJ = HubObject(CONFIGMAPS, "root", "default", "shared")


async def _service(tmp_path: Any) -> tuple[SqliteStore, ObjectService]:
    store = SqliteStore(os.path.join(str(tmp_path), "tmc.db"), compact_interval=0)
    await store.start()
    service = ObjectService(store, ResourceRegistry(store))
    await service.ensure_namespace("root", "default")
    body = {"metadata": {"name": "shared", "labels": {state_label(k): "Sync" for k in KEYS}}, "data": {"a": "b"}}
    await service.create(CONFIGMAPS, "root", "default", body, WriteOptions())
    return store, service


def _add_finalizer(key: str) -> ViewWrite:
    def make_view(view: dict[str, Any]) -> dict[str, Any]:
        return {**view, "metadata": {**view["metadata"], "finalizers": [syncer_finalizer(key)]}}

    return ViewWrite(key, make_view, "")


def _report(key: str, status: dict[str, Any]) -> ViewWrite:
    return ViewWrite(key, lambda view: {**view, "status": status}, "status")


def test_writes_queued_for_one_object_are_stored_as_one(tmp_path: Any) -> None:
    async def main() -> None:
        store, service = await _service(tmp_path)
        try:
            combiner = WriteCombiner(store, service)
            before = store.get(OBJ.key)
            assert before is not None
            views = await asyncio.gather(*(combiner.write(OBJ, _add_finalizer(k)) for k in KEYS))
            after = store.get(OBJ.key)
            assert after is not None and after.rev == before.rev + 1  # five requests, one write
            assert sorted(after.obj["metadata"]["finalizers"]) == sorted(syncer_finalizer(k) for k in KEYS)
            for key, view in zip(KEYS, views, strict=True):
                assert view["metadata"]["finalizers"] == [syncer_finalizer(key)]  # each sees only its own
            # The same again changes nothing and writes nothing.
            await asyncio.gather(*(combiner.write(OBJ, _add_finalizer(k)) for k in KEYS))
            assert store.get(OBJ.key).rev == after.rev  # type: ignore[union-attr]
        finally:
            await store.close()

    asyncio.run(main())


def test_a_bad_write_fails_alone(tmp_path: Any) -> None:
    async def main() -> None:
        store, service = await _service(tmp_path)
        try:
            combiner = WriteCombiner(store, service)

            def refuse(view: dict[str, Any]) -> dict[str, Any]:
                raise errors.bad_request("the patch does not apply")

            huge = {"replicas": 1, "note": "x" * 300_000}  # more than annotations may hold
            writes = [
                _report(KEYS[0], {"replicas": 1}),
                ViewWrite(KEYS[1], refuse, ""),
                _report(KEYS[2], huge),
                _add_finalizer(KEYS[3]),
            ]
            results = await asyncio.gather(*(combiner.write(OBJ, w) for w in writes), return_exceptions=True)
            assert results[0]["status"] == {"replicas": 1}  # type: ignore[index]
            assert isinstance(results[1], errors.StatusError) and results[1].code == 400
            assert isinstance(results[2], errors.StatusError) and results[2].code == 422
            assert results[3]["metadata"]["finalizers"] == [syncer_finalizer(KEYS[3])]  # type: ignore[index]
            md = store.get(OBJ.key).obj["metadata"]  # type: ignore[union-attr]
            assert orjson.loads(md["annotations"][status_diff_annotation(KEYS[0])]) == {"status": {"replicas": 1}}
            assert status_diff_annotation(KEYS[2]) not in md["annotations"]
            assert md["finalizers"] == [syncer_finalizer(KEYS[3])]
        finally:
            await store.close()

    asyncio.run(main())


def test_a_watch_skips_changes_its_target_cannot_see(tmp_path: Any) -> None:
    async def main() -> None:
        hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0))
        await hub.start()
        ctx = ssl.create_default_context(cafile=os.path.join(str(tmp_path), "pki", "ca.crt"))
        base = f"https://127.0.0.1:{hub.port}"
        headers = {"Authorization": f"Bearer {hub.identity.admin_token}"}
        try:
            async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(ssl=ctx), headers=headers) as s:

                async def call(method: str, path: str, body: Any, ctype: str = "application/json") -> Any:
                    async with s.request(method, path, data=orjson.dumps(body), headers={"Content-Type": ctype}) as r:
                        assert r.status in (200, 201), await r.text()
                        return await r.json()

                prefixes = {}
                for name in ("t0", "t1"):
                    st = await call(
                        "POST", "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets", {"metadata": {"name": name}}
                    )
                    prefixes[name] = f"/services/syncer/root/{name}/{st['metadata']['uid']}"
                labels = {state_label(k): "Sync" for k in KEYS[:2]}
                cm = "/clusters/root/api/v1/namespaces/default/configmaps"
                created = await call("POST", cm, {"metadata": {"name": "shared", "labels": labels}, "data": {"v": "1"}})
                rv = created["metadata"]["resourceVersion"]
                merge = "application/merge-patch+json"
                url = f"{prefixes['t0']}/clusters/*/api/v1/configmaps?watch=1&resourceVersion={rv}"
                async with s.get(url) as r:

                    async def change(value: str) -> None:
                        await call("PATCH", f"{cm}/shared", {"data": {"v": value}}, merge)
                        event = orjson.loads(await asyncio.wait_for(r.content.readline(), 10))
                        assert event["type"] == "MODIFIED" and event["object"]["data"] == {"v": value}, event
                        assert "finalizers" not in event["object"]["metadata"]

                    await change("2")
                    # t1's syncer adds its finalizer and the hub assigns a third target: nothing t0 can see, so the
                    # next event t0 gets is the next change of the object itself.
                    finalizer = {"metadata": {"finalizers": [syncer_finalizer(KEYS[1])]}}
                    await call("PATCH", f"{prefixes['t1']}{cm}/shared", finalizer, merge)
                    third = {"metadata": {"labels": {state_label(KEYS[2]): "Sync"}}}
                    await call("PATCH", f"{cm}/shared", third, merge)
                    await change("3")
        finally:
            await hub.stop()

    asyncio.run(main())
