"""The client layer on its own: the kubeconfig reader, typed errors, the injected request observer, the blocking
facade, the typed helpers and a ListWatcher used without the syncer's informer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from tests.e2e.harness import free_port
from tmc.client import (
    LOCATION,
    SYNC_TARGET,
    WORKSPACE,
    AlreadyExists,
    ApiError,
    BlockingClient,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeClient,
    Kubeconfig,
    ListWatcher,
    NotFound,
    Unauthorized,
    Unreachable,
    error_type,
    load_kubeconfig,
)
from tmc.client.errors import api_error, from_response


def write(path: Path, config: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def kubeconfig(**user: Any) -> dict[str, Any]:
    return {
        "clusters": [
            {"name": "hub", "cluster": {"server": "https://h:6443/clusters/root:team", "certificate-authority": "ca"}},
            {"name": "plain", "cluster": {"server": "http://m:80", "insecure-skip-tls-verify": True}},
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "team", "context": {"cluster": "hub", "user": "u"}},
            {"name": "member", "context": {"cluster": "plain"}},
            {"name": "broken", "context": {"cluster": "nowhere", "user": "u"}},
            {"name": "nobody", "context": {"cluster": "hub", "user": "missing"}},
        ],
        "current-context": "team",
    }


def test_kubeconfig_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "ca").write_bytes(b"CA PEM")
    (tmp_path / "token").write_text("secret\n")
    (tmp_path / "tls.key").write_bytes(b"KEY")
    cert = base64.b64encode(b"CERT").decode()
    path = write(
        tmp_path / "config",
        kubeconfig(tokenFile="token", **{"client-certificate-data": cert, "client-key": "tls.key"}),
    )
    config = load_kubeconfig(path)
    assert (config.server, config.context, config.ca_pem, config.token) == (
        "https://h:6443/clusters/root:team",
        "team",
        b"CA PEM",
        "secret",
    )
    assert (config.cert_pem, config.key_pem, config.insecure) == (b"CERT", b"KEY", False)
    assert (config.base_url, config.path_prefix, config.workspace) == (
        "https://h:6443",
        "/clusters/root:team",
        "root:team",
    )
    member = load_kubeconfig(path, "member")
    assert (member.server, member.insecure, member.token, member.workspace) == ("http://m:80", True, None, None)


def test_kubeconfig_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "ca").write_bytes(b"CA PEM")
    path = write(tmp_path / "config", kubeconfig(token="t"))
    for context, what in (("absent", "context"), ("broken", "cluster"), ("nobody", "user")):
        with pytest.raises(ValueError, match=f"{path}: no {what} named"):
            load_kubeconfig(path, context)
    no_context = write(tmp_path / "empty", {"clusters": [], "users": []})
    with pytest.raises(ValueError, match="no current-context and no contexts"):
        load_kubeconfig(no_context)
    # Without a current context the first context is used.
    first = write(tmp_path / "first", {**kubeconfig(token="t"), "current-context": ""})
    assert load_kubeconfig(first).token == "t"


def test_errors_are_typed_by_status_code() -> None:
    for code, cls in ((401, Unauthorized), (403, Forbidden), (404, NotFound), (409, Conflict), (410, Gone)):
        error = api_error(code, "", "m")
        assert type(error) is cls and isinstance(error, ApiError) and error.code == code
    assert type(api_error(409, "AlreadyExists", "m")) is AlreadyExists
    assert isinstance(api_error(409, "AlreadyExists", "m"), Conflict)
    assert type(api_error(422, "Invalid", "m")) is Invalid
    assert type(api_error(500, "InternalError", "m")) is ApiError
    # The Status body's code decides, as `e.code` always did.
    status = {"kind": "Status", "code": 404, "reason": "NotFound", "message": "gone"}
    error = from_response(500, status)
    assert isinstance(error, NotFound) and (error.reason, error.message, error.body) == ("NotFound", "gone", status)
    assert type(from_response(503, "no JSON")) is ApiError
    assert error_type(Unreachable("x")) == "timeout"
    assert [error_type(api_error(c, "", "")) for c in (404, 409, 401, 429, 504, 500)] == [
        "not_found",
        "conflict",
        "forbidden",
        "rate_limited",
        "server_timeout",
        "unknown",
    ]


def test_typed_paths() -> None:
    assert (
        SYNC_TARGET.path("root", "c1", "status") == "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets/c1/status"
    )
    assert LOCATION.path("root:a") == "/clusters/root:a/apis/scheduling.kcp.io/v1alpha1/locations"
    assert WORKSPACE.path("root", "team") == "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/team"
    assert SYNC_TARGET.new("c1", {}, {"region": "eu"}) == {
        "apiVersion": "workload.kcp.io/v1alpha1",
        "kind": "SyncTarget",
        "metadata": {"name": "c1", "labels": {"region": "eu"}},
        "spec": {},
    }


class Api:
    """A little API server: one collection of Locations, a scripted watch, and a 403 path."""

    def __init__(self) -> None:
        self.port = free_port()
        self.objects: dict[str, dict[str, Any]] = {}
        self.watches: list[str] = []
        self.runner: web.AppRunner | None = None
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        app = web.Application()
        collection = LOCATION.path("root")
        app.router.add_get(collection, self._list)
        app.router.add_post(collection, self._create)
        app.router.add_get(collection + "/{name}", self._get)
        app.router.add_get("/forbidden", self._forbidden)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.runner is not None
        self.stopping.set()  # open watches end, so the shutdown does not wait for them
        await self.runner.cleanup()

    @staticmethod
    def status(code: int, reason: str) -> web.Response:
        body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": reason}
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch"):
            self.watches.append(request.query.get("resourceVersion", ""))
            if len(self.watches) == 1:
                response = web.StreamResponse()
                await response.prepare(request)
                added = {"type": "ADDED", "object": {"metadata": {"name": "b", "resourceVersion": "11"}}}
                expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
                for event in (added, expired):
                    await response.write(orjson.dumps(event) + b"\n")
                return response
            await self.stopping.wait()
        items = list(self.objects.values())
        body = {"kind": "LocationList", "metadata": {"resourceVersion": "10"}, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _create(self, request: web.Request) -> web.Response:
        obj = await request.json()
        name = obj["metadata"]["name"]
        if name in self.objects:
            return self.status(409, "AlreadyExists")
        self.objects[name] = obj
        return web.Response(status=201, body=orjson.dumps(obj), content_type="application/json")

    async def _get(self, request: web.Request) -> web.Response:
        obj = self.objects.get(request.match_info["name"])
        if obj is None:
            return self.status(404, "NotFound")
        return web.Response(body=orjson.dumps(obj), content_type="application/json")

    async def _forbidden(self, request: web.Request) -> web.Response:
        return self.status(403, "Forbidden")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Api]:
    api = Api()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def test_async_client_typed_helpers_and_the_injected_observer() -> None:
    async def main() -> None:
        seen: list[tuple[str, int | None]] = []
        async with serving() as api:
            config = Kubeconfig(server=f"http://127.0.0.1:{api.port}/clusters/root")
            async with KubeClient(config, base_url=config.base_url, observe=lambda v, c: seen.append((v, c))) as hub:
                with pytest.raises(NotFound):
                    await LOCATION.get(hub, "root", "default")
                await LOCATION.create(hub, "root", LOCATION.new("default", {}))
                with pytest.raises(AlreadyExists):
                    await LOCATION.create(hub, "root", LOCATION.new("default", {}))
                assert [o["metadata"]["name"] for o in await LOCATION.list(hub, "root")] == ["default"]
                with pytest.raises(Forbidden):
                    await hub.at(config.base_url).get("/forbidden")  # shares the pool and the observer
        assert seen == [("GET", 404), ("POST", 201), ("POST", 409), ("LIST", 200), ("GET", 403)]
        async with KubeClient(
            Kubeconfig(server=f"http://127.0.0.1:{free_port()}"), observe=lambda v, c: seen.append((v, c))
        ) as down:
            with pytest.raises(Unreachable):
                await down.get("/api")
        assert seen[-1] == ("GET", None)

    asyncio.run(main())


class Recorder(ListWatcher):
    def __init__(self, client: KubeClient) -> None:
        super().__init__(client, LOCATION.path("root"), name="test/locations")
        self.calls: list[tuple[str, Any]] = []

    def listed(self, items: list[dict[str, Any]]) -> None:
        self.calls.append(("listed", (len(items), self.resource_version)))

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self.calls.append((kind, obj["metadata"]["name"]))

    def restarted(self, reason: str) -> None:
        self.calls.append(("restarted", reason))

    def connection_changed(self, connected: bool) -> None:
        self.calls.append(("connected", connected))


def test_list_watcher_resumes_and_lists_again_on_gone() -> None:
    async def main() -> None:
        async with serving() as api:
            api.objects["a"] = LOCATION.new("a", {})
            async with KubeClient(Kubeconfig(server=f"http://127.0.0.1:{api.port}")) as client:
                watcher = Recorder(client)
                task = asyncio.create_task(watcher.run())
                for _ in range(500):
                    if len(api.watches) == 2:
                        break
                    await asyncio.sleep(0.01)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert api.watches == ["10", "10"]  # from the list's resourceVersion, again after the relist
        assert watcher.calls == [
            ("connected", True),
            ("listed", (1, "10")),
            ("ADDED", "b"),
            ("connected", False),
            ("restarted", "expired"),
            ("connected", True),
            ("listed", (1, "10")),
        ]

    asyncio.run(main())


def test_blocking_client_runs_the_same_client() -> None:
    ready = asyncio.Event()
    stop = asyncio.Event()
    ports: list[int] = []

    async def serve() -> None:
        async with serving() as api:
            ports.append(api.port)
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(ready.wait(), loop).result(10)
        config = Kubeconfig(server=f"http://127.0.0.1:{ports[0]}/clusters/root")
        with BlockingClient(config, base_url=config.base_url) as client:
            created = client.run(LOCATION.create(client.client, config.workspace or "", LOCATION.new("x", {})))
            assert created["metadata"]["name"] == "x"
            assert client.get(LOCATION.path("root", "x"))["metadata"]["name"] == "x"
            with pytest.raises(Conflict):
                client.create(LOCATION.path("root"), LOCATION.new("x", {}))
        nowhere = Kubeconfig(server=f"http://127.0.0.1:{free_port()}")
        with BlockingClient(nowhere, timeout=2) as client, pytest.raises(Unreachable):
            client.get("/readyz")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_sync_client_answers_as_the_async_client() -> None:
    from tmc.client import SyncClient

    ready = asyncio.Event()
    stop = asyncio.Event()
    ports: list[int] = []

    async def serve() -> None:
        async with serving() as api:
            ports.append(api.port)
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(ready.wait(), loop).result(10)
        config = Kubeconfig(server=f"http://127.0.0.1:{ports[0]}/clusters/root")
        with SyncClient(config, base_url=config.base_url) as client:
            assert client.create(LOCATION.path("root"), LOCATION.new("x", {}))["metadata"]["name"] == "x"
            assert client.get(LOCATION.path("root", "x"))["metadata"]["name"] == "x"  # the same connection again
            items, rv = client.list_all(LOCATION.path("root"))
            assert [i["metadata"]["name"] for i in items] == ["x"] and rv == "10"
            with pytest.raises(AlreadyExists):
                client.create(LOCATION.path("root"), LOCATION.new("x", {}))
            with pytest.raises(NotFound):
                client.get(LOCATION.path("root", "missing"))
            with pytest.raises(Forbidden):
                client.get("/forbidden")
        nowhere = Kubeconfig(server=f"http://127.0.0.1:{free_port()}")
        with SyncClient(nowhere, timeout=2) as client, pytest.raises(Unreachable):
            client.get("/readyz")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
