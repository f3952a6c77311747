"""An in-process hub for the canary controller's tests: SQLite storage, the registry and ObjectService (admission
included), the mesh CRDs, two SyncTargets, a namespace with a Deployment and its Service, and a stand-in Prometheus
HTTP API (a local aiohttp server answering chosen values per cluster).

What the syncers would do is done by `report()`: every Deployment in the namespace is marked placed on both targets
(the state labels the assignment controller writes) and each target reports its share Ready at the current
generation (the status-diff annotations), unless a cluster is told to hold the canary's pods back. The controller
is reconciled by hand with a clock the test moves, so pauses and analysis intervals take no real time.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web

from tmc.api.canary import ACTION_ANNOTATION, CANARY_DEPLOYMENTS
from tmc.api.workload import SYNC_TARGETS, state_label, status_diff_annotation
from tmc.apimachinery import errors
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.controllers.canary.wiring import canary_controllers
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import CRDS, ResourceRegistry
from tmc.registry.service import NAMESPACES, ObjectService, WriteOptions
from tmc.server.hub import Hub, ServerConfig
from tmc.storage.sqlite import SqliteStore

T = TypeVar("T")

WS, NS = "root", "shop"
CLUSTERS = ("eu-1", "us-1")
KEYS = {sync_target_key(WS, c): c for c in CLUSTERS}
DEPLOYMENTS = next(r for r in BUILTIN_RESOURCES if r.group == "apps" and r.plural == "deployments")
SERVICES = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "services")
EVENTS = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "events")
OPTS = WriteOptions(field_manager="test")


def crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def deployment(image: str, replicas: int = 2, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def canary(routing: dict[str, Any], steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    analysis = {
        "interval": "10s",
        "metrics": [
            {
                "name": "error-rate",
                "successCondition": "result < 0.05",
                "provider": {"prometheus": {"query": 'errors{workload="{{ args.canary }}"}'}},
            }
        ],
    }
    return {
        "apiVersion": "tmc.kcp.io/v1alpha1",
        "kind": "CanaryDeployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"name": "web", "port": 80},
            "trafficRouting": routing,
            "steps": steps,
            "analysis": analysis,
            **spec,
        },
    }


ISTIO = {"istio": {"virtualService": {"name": "web"}}}
GATEWAY = {"gatewayAPI": {"httpRoute": "web"}}
REPLICAS: dict[str, Any] = {"replicas": {}}


@dataclass
class Prometheus:
    """Answers every instant query with one sample per cluster from `values` (cluster -> value); `status` other
    than 200 answers an error."""

    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLUSTERS, 0.01))
    queries: list[str] = field(default_factory=list)
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.queries.append(str(form.get("query", "")))
        if self.status != 200:
            return web.json_response({"status": "error", "errorType": "internal", "error": "boom"}, status=self.status)
        result = [{"metric": {"cluster": c}, "value": [1.8e9, str(v)]} for c, v in self.values.items()]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})


async def report(store: Any, service: ObjectService, held: set[str] | frozenset[str] = frozenset()) -> None:
    """What the assignment controller and the syncers would write on every Deployment of the namespace: placed on
    both targets, each reporting its share Ready at the current generation (the canary `web` held back in the
    clusters named in `held`)."""
    for entry in store.list(DEPLOYMENTS.key_prefix(WS)):
        obj = copy.deepcopy(entry.obj)
        md = obj["metadata"]
        labels, annotations = md.setdefault("labels", {}), md.setdefault("annotations", {})
        replicas = int(obj["spec"].get("replicas", 1))
        for key, cluster in KEYS.items():
            labels[state_label(key)] = "Sync"
            ready = 0 if (cluster in held and md["name"] == "web") else replicas
            status = {
                "observedGeneration": md.get("generation", 1),
                "replicas": replicas,
                "readyReplicas": ready,
                "updatedReplicas": replicas,
            }
            annotations[status_diff_annotation(key)] = orjson.dumps({"status": status}).decode()
        if obj != entry.obj:
            md["resourceVersion"] = str(entry.rev)
            await service.update(DEPLOYMENTS, WS, NS, md["name"], obj, WriteOptions(field_manager="syncer"))


async def setup(service: ObjectService, registry: ResourceRegistry, replicas: int = 2) -> None:
    """The namespace, two SyncTargets, the mesh CRDs, the Deployment `web` and its Service."""
    await service.create(NAMESPACES, WS, None, {"metadata": {"name": NS}}, OPTS)
    for name in CLUSTERS:
        await service.create(SYNC_TARGETS, WS, None, {"metadata": {"name": name}, "spec": {}}, OPTS)
    for group, kind, plural in (
        ("networking.istio.io", "VirtualService", "virtualservices"),
        ("gateway.networking.k8s.io", "HTTPRoute", "httproutes"),
    ):
        await service.create(CRDS, WS, None, crd(group, kind, plural), OPTS)
        registry.invalidate(WS)
    await service.create(DEPLOYMENTS, WS, NS, deployment("web:1", replicas), OPTS)
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS, "annotations": {"sim.tmc.io/request-rate": "50"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    await service.create(SERVICES, WS, NS, svc, OPTS)


@dataclass
class Env:
    store: SqliteStore
    registry: ResourceRegistry
    service: ObjectService
    controller: Any
    prometheus: Prometheus
    now: float = 1.8e9
    held: set[str] = field(default_factory=set)  # clusters whose canary pods never become Ready
    seen_weights: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return CANARY_DEPLOYMENTS.key(WS, NS, "web")

    def get(self, info: ResourceInfo, name: str) -> dict[str, Any] | None:
        entry = self.store.get(info.key(WS, NS, name))
        return None if entry is None else entry.obj

    def status(self) -> dict[str, Any]:
        cd = self.get(CANARY_DEPLOYMENTS, "web")
        assert cd is not None
        return dict(cd.get("status") or {})

    def router(self, info: ResourceInfo | None = None) -> dict[str, Any] | None:
        return self.get(info, "web") if info is not None else None

    def info(self, group: str, plural: str) -> ResourceInfo:
        return self.registry.all_versions(WS, group, plural)[0]

    async def report(self) -> None:
        await report(self.store, self.service, self.held)

    async def step(self, tick: float = 5.0) -> dict[str, Any]:
        """One pass: the clusters report, the controller reconciles, time moves on."""
        await self.report()
        await self.controller.reconcile(self.key)
        self.now += tick
        st = self.status()
        if not self.seen_weights or self.seen_weights[-1] != st.get("weight", 0):
            self.seen_weights.append(int(st.get("weight", 0)))
        return st

    async def until(self, done: Callable[[dict[str, Any]], bool], steps: int = 60, tick: float = 5.0) -> dict[str, Any]:
        st: dict[str, Any] = {}
        for _ in range(steps):
            st = await self.step(tick)
            if done(st):
                return st
        raise AssertionError(f"not reached in {steps} passes; status: {st}")

    async def set_image(self, image: str, annotations: dict[str, str] | None = None) -> None:
        entry = self.store.get(DEPLOYMENTS.key(WS, NS, "web"))
        assert entry is not None
        obj = copy.deepcopy(entry.obj)
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
        obj["spec"]["template"]["metadata"]["annotations"] = annotations or {}
        obj["metadata"]["resourceVersion"] = str(entry.rev)
        await self.service.update(DEPLOYMENTS, WS, NS, "web", obj, OPTS)

    async def patch_canary(self, change: Callable[[dict[str, Any]], None]) -> None:
        entry = self.store.get(self.key)
        assert entry is not None
        obj = copy.deepcopy(entry.obj)
        change(obj)
        obj["metadata"]["resourceVersion"] = str(entry.rev)
        await self.service.update(CANARY_DEPLOYMENTS, WS, NS, "web", obj, OPTS)

    async def act(self, value: str) -> None:
        """What `kubectl tmc rollout promote|abort|retry` write: the action annotation with a fresh token."""
        await self.patch_canary(
            lambda o: o["metadata"].setdefault("annotations", {}).update({ACTION_ANNOTATION: value})
        )

    def events(self) -> list[dict[str, Any]]:
        return [
            e.obj
            for e in self.store.list(EVENTS.key_prefix(WS))
            if e.obj["involvedObject"]["kind"] == "CanaryDeployment"
        ]


@asynccontextmanager
async def hub(tmp_path: Path, cd: dict[str, Any] | None = None, replicas: int = 2) -> AsyncIterator[Env]:
    """The environment with the CanaryDeployment `cd` created (if given) and the stand-in Prometheus serving."""
    prometheus = Prometheus()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", prometheus.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
    await store.start()
    registry = ResourceRegistry(store)
    service = ObjectService(store, registry)
    (controller,) = canary_controllers(store, registry, service, prometheus_url=url)
    env = Env(store, registry, service, controller, prometheus)
    controller.clock = lambda: env.now
    try:
        await setup(service, registry, replicas)
        if cd is not None:
            await service.create(CANARY_DEPLOYMENTS, WS, NS, cd, OPTS)
        yield env
    finally:
        await controller.providers.close()
        await store.close()
        await runner.cleanup()


def measurements(status: dict[str, Any], run: str = "analysis") -> list[dict[str, Any]]:
    return [m for metric in (status.get(run) or {}).get("metrics") or [] for m in metric.get("measurements") or []]


CLI_STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]


class Running:
    """A hub serving from a background thread's event loop, with the clusters' reports written every 50 ms."""

    def __init__(self, tmp_path: Path, seed: bool = True) -> None:
        self.seed = seed
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = Hub(ServerConfig(data_dir=str(tmp_path), secure_port=0))
        self.kubeconfig = str(tmp_path / "admin.kubeconfig")
        self.reporter: asyncio.Task[None] | None = None

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _report(self) -> None:
        while True:
            try:
                await report(self.hub.store, self.hub.service)
            except errors.StatusError as e:
                if e.code != 409:  # the controller wrote the Deployment meanwhile: report again on the next round
                    raise
            await asyncio.sleep(0.05)

    async def start(self) -> None:
        await self.hub.start()
        if self.seed:
            await setup(self.hub.service, self.hub.registry)
            await self.hub.service.create(CANARY_DEPLOYMENTS, WS, NS, canary(ISTIO, CLI_STEPS), OPTS)
            self.reporter = asyncio.create_task(self._report())

    async def stop(self) -> None:
        if self.reporter is not None:
            self.reporter.cancel()
        await self.hub.stop()

    def status(self) -> dict[str, Any]:
        entry = self.hub.store.get(CANARY_DEPLOYMENTS.key(WS, NS, "web"))
        assert entry is not None
        return dict(entry.obj.get("status") or {})

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if done(st):
                return st
            time.sleep(0.05)
        raise AssertionError(f"not reached within {timeout}s: {self.status()}")

    def set_image(self, image: str) -> None:
        async def change() -> None:
            for _ in range(20):  # the reporter and the controller write the Deployment too: read again on a 409
                entry = self.hub.store.get(DEPLOYMENTS.key(WS, NS, "web"))
                assert entry is not None
                obj = {**entry.obj, "metadata": {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}}
                obj["spec"] = {**obj["spec"], "template": {**obj["spec"]["template"]}}
                obj["spec"]["template"]["spec"] = {"containers": [{"name": "web", "image": image}]}
                try:
                    await self.hub.service.update(DEPLOYMENTS, WS, NS, "web", obj, OPTS)
                    return
                except errors.StatusError as e:
                    if e.code != 409:
                        raise
            raise AssertionError("the image edit kept conflicting")

        self.call(change())


@contextmanager
def running_hub(tmp_path: Path, seed: bool = True) -> Iterator[Running]:
    r = Running(tmp_path, seed)
    r.call(r.start())
    try:
        yield r
    finally:
        r.call(r.stop())
        r.loop.call_soon_threadsafe(r.loop.stop)
        r.thread.join(10)
