"""The hub process: TLS listener, authentication, health and metrics endpoints, controllers and clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import signal
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tmc.apimachinery import errors
from tmc.apimachinery.protobuf import ProtobufCodec
from tmc.apiserver import certs
from tmc.apiserver.handlers import CALLER, MAX_BODY_BYTES, ApiHandler, Caller, status_response
from tmc.apiserver.kubeconfig import write_kubeconfig
from tmc.apiserver.virtual import syncer as syncer_vw
from tmc.controllers.gc import GarbageCollector
from tmc.controllers.namespace import NamespaceController
from tmc.controllers.placement.wiring import scheduling_controllers
from tmc.controllers.runtime import Controller
from tmc.controllers.status import StatusAggregationController
from tmc.controllers.status import metrics as sync_status_metrics
from tmc.controllers.synctarget.syncer_urls import SyncerURLController
from tmc.controllers.workspace import WorkspaceController
from tmc.observability import metrics
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage import open_store
from tmc.storage.interface import Store

log = logging.getLogger("tmc.server")
_HEALTH_PATHS = ("/livez", "/readyz", "/healthz")
ROOT_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class ServerConfig:
    data_dir: str = ".tmc"
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    storage: str = "sqlite"
    default_cluster: str = "root"
    bookmark_interval: float = 60.0
    shutdown_timeout: float = 10.0
    extra_hosts: list[str] = field(default_factory=list)
    # Seconds without a syncer heartbeat before a SyncTarget turns Ready=False (kcp's flag; kcp defaulted to 1m).
    sync_target_heartbeat_threshold: float = 30.0
    # False for a simulated member cluster: a plain Kubernetes API server runs only the namespace and garbage
    # collectors, not the hub's workspace, status aggregation and scheduling controllers.
    hub_controllers: bool = True


class Hub:
    """One API server process: `start()` serves, `stop()` drains and closes storage."""

    def __init__(self, config: ServerConfig, middlewares: Sequence[Middleware] = ()) -> None:
        self.config = config
        # Run before the hub's own (health, authentication); `tmc sim-cluster` puts its outage switch here.
        self.extra_middlewares = tuple(middlewares)
        self.stopping = asyncio.Event()
        self.ready = False
        self.port = config.secure_port
        self.store: Store | None = None
        self.controllers: list[Controller] = []
        self._runner: web.AppRunner | None = None

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(self.config.data_dir, "admin.kubeconfig")

    async def start(self) -> None:
        cfg = self.config
        os.makedirs(cfg.data_dir, exist_ok=True)
        hosts = sorted({"localhost", "127.0.0.1", "::1", cfg.bind_address, *cfg.extra_hosts} - {"0.0.0.0", "::"})
        self.identity = certs.ensure_identity(cfg.data_dir, hosts)
        self._token = self.identity.admin_token
        self.store = store = open_store(cfg.storage, cfg.data_dir)
        await store.start()
        self.registry = ResourceRegistry(store)
        self.service = ObjectService(store, self.registry)
        if cfg.hub_controllers:  # a simulated member has no SyncTargets to report on
            sync_status_metrics.COLLECTOR.attach(store, self.registry)
        for name in ROOT_NAMESPACES:
            await self.service.ensure_namespace(cfg.default_cluster, name)
        self.api = ApiHandler(
            store,
            self.registry,
            self.service,
            self.stopping,
            default_cluster=cfg.default_cluster,
            bookmark_interval=cfg.bookmark_interval,
        )
        self.api.virtual[syncer_vw.PREFIX] = syncer_vw.SyncerVirtualWorkspace(
            store, self.registry, self.service, self.stopping, bookmark_interval=cfg.bookmark_interval
        ).handle
        self.controllers = [
            NamespaceController(store, self.registry, self.service),
            GarbageCollector(store, self.registry, self.service),
        ]
        if cfg.hub_controllers:
            self.controllers += [
                WorkspaceController(store, self.service),
                StatusAggregationController(store, self.registry, self.service),
                SyncerURLController(store, self.service),
                *scheduling_controllers(
                    store, self.registry, self.service, heartbeat_threshold=cfg.sync_target_heartbeat_threshold
                ),
            ]
        for controller in self.controllers:
            await controller.start()
        # Load the protobuf descriptors off the event loop so the first protobuf request does not wait for them.
        self._warmup = asyncio.get_running_loop().run_in_executor(None, lambda: ProtobufCodec.shared().available)
        app = web.Application(
            client_max_size=MAX_BODY_BYTES + 1, middlewares=[*self.extra_middlewares, self._middleware]
        )
        app.router.add_route("*", "/{tail:.*}", self.api.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=cfg.shutdown_timeout)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, cfg.bind_address, cfg.secure_port, ssl_context=certs.ssl_context(self.identity), backlog=1024
        )
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if cfg.secure_port == 0 and sockets:
            self.port = int(sockets[0].getsockname()[1])
        write_kubeconfig(
            self.kubeconfig_path,
            server=f"https://127.0.0.1:{self.port}/clusters/{cfg.default_cluster}",
            ca_pem=self.identity.ca_cert_pem,
            context=cfg.default_cluster,
            user="admin",
            token=self._token,
        )
        self.service.external_url = f"https://127.0.0.1:{self.port}"
        # Everything loaded so far lives as long as the process: keep it out of the cyclic collector's full passes,
        # which otherwise walk every stored object and stall the event loop for tens of milliseconds.
        gc.collect()
        gc.freeze()
        # Every request allocates thousands of short-lived dicts; at the default threshold (700) the young
        # collections, and the full ones they escalate to, ran so often that a simulated cluster holding 1,000
        # Deployments spent about a tenth of its CPU collecting. Stored objects are trees without cycles, freed by
        # reference counting, so collecting less often costs little memory.
        gc.set_threshold(20_000, 20, 20)
        self.ready = True
        log.info("serving", extra={"address": cfg.bind_address, "port": self.port, "kubeconfig": self.kubeconfig_path})

    async def stop(self) -> None:
        """Stop accepting, end watches, let in-flight requests finish, then close storage."""
        self.ready = False
        self.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for controller in self.controllers:
            await controller.stop()
        if self.store is not None:
            sync_status_metrics.COLLECTOR.detach(self.store)
            await self.store.close()
            self.store = None
        log.info("stopped")

    def _authenticate(self, request: web.Request) -> Caller | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer ") :].strip()
            if hmac.compare_digest(token.encode(), self._token.encode()):
                return Caller("admin", ("system:masters", "system:authenticated"))
            return None
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if isinstance(ssl_object, ssl.SSLObject):
            found = certs.client_identity_from_peercert(ssl_object.getpeercert())
            if found is not None:
                user, groups = found
                return Caller(user, (*groups, "system:authenticated"))
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(_HEALTH_PATHS):
            healthy = self.ready or not path.startswith("/readyz")
            return web.Response(status=200 if healthy else 503, text="ok" if healthy else "shutting down")
        caller = self._authenticate(request)
        if caller is None:
            return status_response(errors.unauthorized())
        request[CALLER] = caller
        if path == "/metrics":
            body, content_type = metrics.render_metrics()
            return web.Response(body=body, headers={"Content-Type": content_type})
        mutating = request.method in ("POST", "PUT", "PATCH", "DELETE")
        gauge = metrics.inflight_gauge(mutating)
        gauge.inc()
        try:
            return await handler(request)
        finally:
            gauge.dec()


async def serve(config: ServerConfig, on_ready: Callable[[Hub], None] | None = None) -> None:
    """Run a hub until SIGTERM or SIGINT."""
    hub = Hub(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    if on_ready is not None:
        on_ready(hub)
    try:
        await stop.wait()
    finally:
        await hub.stop()
