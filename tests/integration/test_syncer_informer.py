"""The syncer's informer and client against a scripted API server: resume from the last resourceVersion, relist only
on 410, keep the cache while the server is away, notice a stopped server, back off, and come back quickly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from tests.e2e.harness import free_port
from tmc.client import KubeClient, Kubeconfig, Unreachable
from tmc.client import health as health_module
from tmc.client import rest as rest_module
from tmc.client import watch as watch_module
from tmc.syncer.informer import Informer
from tmc.syncer.metrics import RequestCounter

T = TypeVar("T")
PATH = "/api/v1/configmaps"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def cm(name: str, rv: int) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}


class FakeApi:
    """One collection served like a Kubernetes API server; `watch_mode` scripts what a watch does."""

    def __init__(self) -> None:
        self.items = {"a": cm("a", 5), "b": cm("b", 6)}
        self.list_rv = 10
        self.lists = 0
        self.watches: list[str] = []  # the resourceVersion each watch asked for
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.watch_mode = "stream"  # stream | silent
        self.expire_next = 0  # how many of the next watches answer 410 Expired
        self.stalled = False  # a stopped server: nothing answers, /livez included
        self.port = free_port()
        self.runner: web.AppRunner | None = None
        self.closing = False

    async def start(self) -> None:
        self.closing = False
        app = web.Application()
        app.router.add_get(PATH, self._collection)
        app.router.add_get("/livez", self._livez)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.closing = True  # open handlers return, so the shutdown does not wait for them
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _livez(self, request: web.Request) -> web.StreamResponse:
        while self.stalled and not self.closing:
            await asyncio.sleep(0.01)
        return web.Response(text="ok")

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        while self.stalled and not self.closing:
            await asyncio.sleep(0.01)
        if request.query.get("watch") != "1":
            self.lists += 1
            body = {"kind": "ConfigMapList", "metadata": {"resourceVersion": str(self.list_rv)}}
            return web.json_response({**body, "items": list(self.items.values())})
        self.watches.append(request.query.get("resourceVersion", ""))
        response = web.StreamResponse()
        await response.prepare(request)
        if self.expire_next > 0:
            self.expire_next -= 1
            status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return response
        while not self.closing:
            if self.watch_mode == "silent" or self.stalled:
                await asyncio.sleep(0.01)
                continue
            try:
                event = await asyncio.wait_for(self.events.get(), 0.05)
            except TimeoutError:
                continue
            if event is None:
                return response  # the server ends the stream (its watch timeout)
            await response.write(orjson.dumps(event) + b"\n")
        return response


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: str, obj: dict[str, Any], key: str) -> None:
        self.events.append((event, key))


async def until(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def scenario(body: Callable[[FakeApi, Informer, Recorder], Awaitable[None]], cluster: str, **kw: Any) -> None:
    api = FakeApi()
    await api.start()
    config = Kubeconfig(server=f"http://127.0.0.1:{api.port}")
    client = KubeClient(config, timeout=1.0, observe=RequestCounter(cluster, "hub"))
    recorder = Recorder()
    informer = Informer(client, PATH, recorder, name="hub/configmaps", cluster=cluster, **kw)
    task = asyncio.create_task(informer.run())
    try:
        await until(informer.synced.is_set, "the initial list")
        await body(api, informer, recorder)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        await api.stop()


@pytest.fixture(autouse=True)
def fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "BACKOFF_START", 0.05)
    monkeypatch.setattr(watch_module, "SERVER_SILENT", 0.2)
    monkeypatch.setattr(rest_module, "PROBE_TIMEOUT", 0.3)
    monkeypatch.setattr(rest_module, "RECENT_ANSWER", 0.1)


def test_watch_resumes_from_the_last_resource_version_without_listing_again() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        assert recorder.events == [("ADDED", "ns/a"), ("ADDED", "ns/b")]
        await until(lambda: api.watches == ["10"], "a watch from the list's resourceVersion")
        assert informer.connected  # connected as soon as the server accepts the watch, before any event
        api.events.put_nowait({"type": "MODIFIED", "object": cm("a", 11)})
        api.events.put_nowait({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}})
        api.events.put_nowait(None)  # the server closes the stream
        await until(lambda: len(api.watches) == 2, "the watch re-opened")
        assert api.watches == ["10", "12"] and api.lists == 1
        assert recorder.events[-1] == ("MODIFIED", "ns/a")
        labels = {"cluster": "resume", "endpoint": "hub", "resource": "configmaps"}
        assert sample("tmc_syncer_lists_total", **labels, reason="initial") == 1
        assert sample("tmc_syncer_watch_restarts_total", **labels, reason="closed") == 1

    run(scenario(body, "resume"))


def test_only_410_relists_and_missing_objects_are_vanished_not_deleted() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        await until(lambda: api.watches, "a watch")
        del api.items["b"]
        api.list_rv = 20
        api.expire_next = 1
        api.events.put_nowait(None)  # end the current stream; the next watch answers 410
        await until(lambda: api.watches[-1] == "20", "a watch from the relist's resourceVersion")
        assert ("VANISHED", "ns/b") in recorder.events and ("DELETED", "ns/b") not in recorder.events
        labels = {"cluster": "expired", "endpoint": "hub", "resource": "configmaps"}
        assert sample("tmc_syncer_lists_total", **labels, reason="expired") == 1
        assert sample("tmc_syncer_watch_restarts_total", **labels, reason="expired") == 1

    run(scenario(body, "expired"))


def test_410_right_after_a_list_backs_off_instead_of_looping() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        api.expire_next = 1_000_000
        api.events.put_nowait(None)
        started, lists = time.monotonic(), api.lists
        await asyncio.sleep(1.0)  # the behaviour under test is a rate: count lists over a fixed second
        rate = (api.lists - lists) / (time.monotonic() - started)
        assert api.lists - lists >= 1 and rate < 10, rate  # 0.05 s doubling: about 5, a loop would be thousands

    run(scenario(body, "expired-loop"))


def test_a_stopped_server_keeps_the_cache_and_the_watch_resumes_when_it_answers() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        await until(lambda: api.watches, "a watch")
        api.events.put_nowait({"type": "MODIFIED", "object": cm("a", 11)})
        await until(lambda: informer.resource_version == "11", "the event")
        seen = list(recorder.events)
        cache = dict(informer.cache)
        api.stalled = True  # SIGSTOP: connections stay open, nothing answers
        await until(lambda: not informer.connected, "the stopped server noticed", timeout=5)
        assert "does not answer" in informer.last_error
        assert informer.cache == cache and recorder.events == seen  # nothing forgotten, nothing reported
        api.stalled = False
        await until(lambda: informer.connected, "connected again")
        assert api.watches[-1] == "11" and api.lists == 1
        labels = {"cluster": "stall", "endpoint": "hub", "resource": "configmaps"}
        assert sample("tmc_syncer_watch_restarts_total", **labels, reason="unreachable") >= 1
        assert sample("tmc_syncer_requests_total", cluster="stall", endpoint="hub", method="LIST", code="200") == 1

    run(scenario(body, "stall", silence_check=0.3))


def test_a_quiet_watch_on_a_live_server_is_kept() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        await until(lambda: api.watches, "a watch")
        api.watch_mode = "silent"
        await asyncio.sleep(1.0)  # several silence checks: each probe finds the server alive
        assert informer.connected and api.watches == ["10"]

    run(scenario(body, "quiet", silence_check=0.2))


def test_a_server_that_went_away_is_rejoined_from_the_last_resource_version() -> None:
    async def body(api: FakeApi, informer: Informer, recorder: Recorder) -> None:
        await until(lambda: api.watches, "a watch")
        await api.stop()  # connection refused from now on
        await until(lambda: not informer.connected, "disconnected")
        assert len(informer.cache) == 2
        await asyncio.sleep(0.5)  # let the back-off grow past its first steps
        await api.start()
        await until(lambda: informer.connected, "connected again", timeout=10)
        assert api.watches[-1] == "10" and api.lists == 1  # resumed, not listed again

    run(scenario(body, "restart"))


def test_backoff_ends_early_when_the_server_answers_again() -> None:
    async def main() -> None:
        health = health_module.server_health("http://backoff.example:1")
        health.answered()
        mark = time.monotonic()
        waiter = asyncio.create_task(health.wait_answer(mark, timeout=30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        health.answered()  # e.g. the heartbeat got through
        assert await asyncio.wait_for(waiter, 1.0) is True
        assert await health.wait_answer(time.monotonic() + 1, timeout=0.05) is False

    run(main())


def test_an_unreachable_server_raises_unreachable_and_is_counted() -> None:
    async def main() -> None:
        config = Kubeconfig(server=f"http://127.0.0.1:{free_port()}")
        client = KubeClient(config, observe=RequestCounter("gone", "down"))
        with pytest.raises(Unreachable):
            await client.get("/api/v1/namespaces")
        await client.close()
        assert sample("tmc_syncer_requests_total", cluster="gone", endpoint="down", method="GET", code="unreachable")

    run(main())
