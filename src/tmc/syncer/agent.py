"""`tmc syncer`: wires the clients, informers, workers, heartbeat and the metrics and health endpoints together."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tmc.client import ApiError, KubeClient, Unreachable, load_kubeconfig
from tmc.observability import health
from tmc.observability.health import Check
from tmc.protocol.keys import sync_target_key
from tmc.runtime import heap
from tmc.syncer import metrics
from tmc.syncer.engine import Engine
from tmc.syncer.heartbeat import Heartbeat, ensure_sync_target, syncer_vw_url
from tmc.syncer.informer import Informer
from tmc.syncer.namespaces import TargetIdentity
from tmc.syncer.resources import NAMESPACES, parse_resource_types, published, resolve

log = logging.getLogger("tmc.syncer")

STARTUP_RETRY_MAX = 30.0
# The syncer's User-Agent product: the field manager its hub writes are recorded under.
SYNCER_AGENT = "tmc-syncer"
# How long the heartbeat's probe (and a page of its Node and Pod lists) may take before the member counts as silent.
HEARTBEAT_PROBE_TIMEOUT = 5.0


@dataclass
class SyncerConfig:
    sync_target_name: str
    kubeconfig: str
    downstream_kubeconfig: str
    workspace: str = "root"
    metrics_port: int = 8080
    health_port: int = 8081
    bind_address: str = "127.0.0.1"
    concurrency: int = 16
    resync_period: float = 600.0
    heartbeat_period: float = 10.0
    namespaces: frozenset[str] = frozenset()
    resource_types: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class Syncer:
    def __init__(self, config: SyncerConfig) -> None:
        self.config = config
        hub_config = load_kubeconfig(config.kubeconfig)
        # The hub kubeconfig names a workspace URL (`.../clusters/root`); the syncer addresses workspaces itself.
        name = config.sync_target_name
        hub_requests = metrics.RequestCounter(name, "hub")
        down_requests = metrics.RequestCounter(name, "downstream")
        self.hub = KubeClient(hub_config, base_url=hub_config.base_url, observe=hub_requests, user_agent=SYNCER_AGENT)
        down_config = load_kubeconfig(config.downstream_kubeconfig)
        self.member_cluster = down_config.cluster or down_config.context
        self.down = KubeClient(
            down_config, connections=max(16, config.concurrency * 2), observe=down_requests, user_agent=SYNCER_AGENT
        )
        # The heartbeat has its own connections on both sides, so it is never queued behind sync traffic: a late
        # heartbeat would make a busy but healthy target look dead. Downstream: the Node and Pod watches hold one
        # each, the probe needs a third.
        probe_timeout = max(HEARTBEAT_PROBE_TIMEOUT, config.heartbeat_period)
        self.heartbeat_hub = KubeClient(
            hub_config, base_url=hub_config.base_url, connections=2, observe=hub_requests, user_agent=SYNCER_AGENT
        )
        self.heartbeat_down = KubeClient(
            down_config, connections=4, timeout=probe_timeout, observe=down_requests, user_agent=SYNCER_AGENT
        )
        self.engine: Engine | None = None
        self.heartbeat: Heartbeat | None = None
        self.informers: list[Informer] = []
        # The heartbeat's Node and Pod informers: counted in tmc_syncer_connections, not in readiness (a member
        # that refuses to list pods is still synced to; the heartbeat just reports no `allocated`).
        self.member_informers: list[Informer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[web.AppRunner] = []
        self.started = time.monotonic()
        name = config.sync_target_name
        for status in ("connected", "disconnected"):
            metrics.CONNECTIONS.labels(name, status).set(0)
        metrics.HEARTBEAT_AGE.labels(name).set(-1)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self._serve_endpoints()
        cfg = self.config
        target = await self._retry(
            "read the SyncTarget", lambda: ensure_sync_target(self.hub, cfg.workspace, cfg.sync_target_name, cfg.labels)
        )
        uid = str(target["metadata"]["uid"])
        identity = TargetIdentity(
            cfg.workspace, cfg.sync_target_name, uid, sync_target_key(cfg.workspace, cfg.sync_target_name)
        )
        vw = self.hub.at(syncer_vw_url(self.hub.base_url, target, cfg.workspace))
        wanted = parse_resource_types(cfg.resource_types)
        resources = await self._retry("discover the member cluster's resources", lambda: resolve(self.down, wanted))
        log.info(
            "syncing",
            extra={
                "sync_target": cfg.sync_target_name,
                "workspace": cfg.workspace,
                "key": identity.key,
                "uid": uid,
                "virtual_workspace": vw.base_url,
                "resources": [r.id for r in resources],
            },
        )
        self.engine = engine = Engine(identity, vw, self.hub, self.down, resources, namespaces_filter=cfg.namespaces)
        engine.observe_target(target)  # a paused SyncTarget is paused before the first write
        self.informers = engine.informers(self._on_connection)
        for informer in self.informers:
            self._spawn(informer.run(), informer.name)
        for i in range(cfg.concurrency):
            self._spawn(engine.work(), f"worker-{i}")
        self.heartbeat = Heartbeat(
            self.heartbeat_hub,
            self.heartbeat_down,
            cfg.workspace,
            cfg.sync_target_name,
            uid,
            cfg.heartbeat_period,
            engine.counts,
            self.syncer_ready,
            on_connection=self._on_connection,
            # With --namespaces this syncer leaves other namespaces' objects alone: it must add its own finalizers.
            synced_resources=None if cfg.namespaces else [published(r) for r in resources],
            on_target=engine.observe_target,
        )
        self.member_informers = self.heartbeat.resources.informers
        for informer in self.member_informers:
            self._spawn(informer.run(), f"heartbeat-{informer.name}")
        self._spawn(self.heartbeat.run(), "heartbeat")
        self._spawn(self._mark_ready(), "ready")
        self._spawn(self._resync(), "resync")

    async def _retry(self, what: str, call: Any) -> Any:
        """Start-up calls wait for the hub or the member cluster to come up, backing off to 30 s."""
        delay = 1.0
        while True:
            try:
                return await call()
            except (ApiError, Unreachable) as e:
                log.warning(f"could not {what}; retrying", extra={"error": str(e), "retry_in": delay})
            await asyncio.sleep(delay)
            delay = min(STARTUP_RETRY_MAX, delay * 2)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task crashed", extra={"task": task.get_name()}, exc_info=task.exception())

    async def _mark_ready(self) -> None:
        assert self.engine is not None
        engine = self.engine
        # Workers start once namespaces are listed on both sides; each other type waits for its own two lists (a
        # type the hub does not serve yet must not hold the others back).
        await asyncio.gather(engine.up[NAMESPACES.id].synced.wait(), engine.downstream[NAMESPACES.id].synced.wait())
        engine.ready.set()
        await asyncio.gather(*(i.synced.wait() for i in self.informers))
        heap.settle()  # the caches just filled live as long as the process
        log.info("caches synced", extra={"seconds": round(time.monotonic() - self.started, 3)})

    async def _resync(self) -> None:
        assert self.engine is not None
        while True:
            await asyncio.sleep(self.config.resync_period)
            self.engine.resync()

    def _on_connection(self, informer: Informer, connected: bool) -> None:
        informers = [*self.informers, *self.member_informers]
        up = sum(1 for i in informers if i.connected)
        name = self.config.sync_target_name
        metrics.CONNECTIONS.labels(name, "connected").set(up)
        metrics.CONNECTIONS.labels(name, "disconnected").set(len(informers) - up)
        if connected:
            log.debug("watch connected", extra={"informer": informer.name})
        else:
            log.warning("watch disconnected", extra={"informer": informer.name, "error": informer.last_error})

    def readiness(self, hub_watches: bool = True) -> tuple[bool, str]:
        """Ready, or the first failing readiness check's reason."""
        failed = next((c for c in self.readiness_checks(hub_watches) if not c.ok), None)
        return (True, "syncing") if failed is None else (False, failed.message)

    def readiness_checks(self, hub_watches: bool = True) -> list[Check]:
        """`/readyz`'s checks, in the order a starting syncer passes them."""
        if self.engine is None:
            return [Check("ping", True), Check("hub-connection", False, "connecting to the hub")]
        waiting = [i.name for i in self.informers if not i.synced.is_set()]
        skipped = set() if hub_watches else self._hub_side()
        down = [i.name for i in self.informers if not i.connected and i not in skipped]
        problem = self.heartbeat.downstream_problem() if self.heartbeat is not None else None
        return [
            Check("ping", True),
            Check("hub-connection", True),
            Check("informer-sync", not waiting, "waiting for the initial lists of " + ", ".join(waiting)),
            Check("watches", not down, "not connected: " + ", ".join(down)),
            Check("member-cluster", problem is None, problem or ""),
        ]

    def syncer_ready(self) -> tuple[bool, str]:
        """What the heartbeat reports as SyncerReady: readiness without the hub watches. The hub only hears it when
        the syncer reaches the hub, and the watches follow within a second; counting them would turn the target
        NotReady after every hub restart or pause, and the scheduler would move workloads off a healthy cluster."""
        return self.readiness(hub_watches=False)

    def _hub_side(self) -> set[Informer]:
        return set(self.engine.up.values()) if self.engine is not None else set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in self._runners:
            await runner.cleanup()
        for client in (self.hub, self.down, self.heartbeat_hub, self.heartbeat_down):
            await client.close()

    # ---------------------------------------------------------------- endpoints

    async def _serve_endpoints(self) -> None:
        cfg = self.config
        routes: dict[int, list[tuple[str, Any]]] = {}
        if cfg.metrics_port:
            routes.setdefault(cfg.metrics_port, []).append(("/metrics", self._metrics))
        if cfg.health_port:
            for endpoint in ("livez", "readyz", "healthz"):
                pair = [(f"/{endpoint}", self._health), (f"/{endpoint}/{{check:.+}}", self._health)]
                routes.setdefault(cfg.health_port, []).extend(pair)
        for port, handlers in routes.items():
            app = web.Application()
            for path, handler in handlers:
                app.router.add_get(path, handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, cfg.bind_address, port).start()
            self._runners.append(runner)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.heartbeat is not None:
            metrics.HEARTBEAT_AGE.labels(self.config.sync_target_name).set(self.heartbeat.age())
        if self.engine is not None:
            synced, pending, failed = self.engine.counts()
            for state, value in (("synced", synced), ("pending", pending), ("failed", failed)):
                metrics.OBJECTS.labels(self.config.sync_target_name, state).set(value)
            self.engine.observe_state()
        ready, _ = self.readiness()
        metrics.TARGET_HEALTH.labels(self.config.sync_target_name, self.member_cluster).set(1 if ready else 0)
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health(self, request: web.Request) -> web.Response:
        """kube-apiserver's health endpoints: `/livez` and `/healthz` check that the process serves, `/readyz` that
        the syncer syncs (observability/health.py renders them)."""
        endpoint = request.path.strip("/").split("/")[0]
        checks = self.readiness_checks() if endpoint == "readyz" else [Check("ping", True)]
        name = request.match_info.get("check")
        if name:
            answer = health.render_one(checks, name)
            status, body = answer if answer is not None else (404, "404 page not found\n")
        else:
            status, body = health.render(endpoint, checks, {k: request.query.getall(k) for k in request.query})
        return web.Response(status=status, text=body, headers=health.HEADERS)


async def run(config: SyncerConfig) -> None:
    """Run a syncer until SIGTERM or SIGINT."""
    syncer = Syncer(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(syncer.start())
    try:
        await stop.wait()
    finally:
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await syncer.stop()
        log.info("stopped")
