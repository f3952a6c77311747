"""The hub process (`tmc server`): the API server with workspaces, the syncer virtual workspace, and every hub
controller (namespace and garbage collection, workspaces, status aggregation, SyncTarget URLs, heartbeat, Locations,
the placement scheduler and the assignment controller)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp.typedefs import Middleware

from tmc.api.workload import DEFAULT_HEARTBEAT_THRESHOLD
from tmc.apiserver.server import ApiServer, ListenConfig
from tmc.apiserver.virtual import syncer as syncer_vw
from tmc.controllers.canary.wiring import canary_controllers
from tmc.controllers.core.wiring import core_controllers
from tmc.controllers.health.monitor import MONITOR
from tmc.controllers.runtime import Controller
from tmc.controllers.status import StatusAggregationController
from tmc.controllers.status import metrics as sync_status_metrics
from tmc.controllers.synctarget.syncer_urls import SyncerURLController
from tmc.controllers.tenancy.workspace import WorkspaceController
from tmc.controllers.wiring import scheduling_controllers
from tmc.server.process import ServerProcess, serve_until_signalled

log = logging.getLogger("tmc.server")


@dataclass
class ServerConfig(ListenConfig):
    """The hub's flags: where and how it listens (ListenConfig, with its limits), plus storage and scheduling."""

    data_dir: str = ".tmc"
    storage: str = "sqlite"
    extra_hosts: list[str] = field(default_factory=list)
    # Seconds without a syncer heartbeat before a SyncTarget turns Ready=False (kcp's flag; kcp defaulted to 1m).
    sync_target_heartbeat_threshold: float = DEFAULT_HEARTBEAT_THRESHOLD
    # Where the canary analysis queries Prometheus when a metric names no address ("" = it must name one).
    prometheus_url: str = ""


class Hub(ServerProcess):
    """One hub: `start()` serves, `stop()` drains and closes storage."""

    def __init__(self, config: ServerConfig, middlewares: Sequence[Middleware] = ()) -> None:
        super().__init__(config.data_dir, config, config.storage, config.extra_hosts, middlewares)
        self.config = config

    async def prepare(self) -> None:
        assert self.store is not None
        sync_status_metrics.COLLECTOR.attach(self.store, self.registry)
        MONITOR.attach(self.store, self.manager.checks, self.config.sync_target_heartbeat_threshold)

    def build_controllers(self) -> list[Controller]:
        store, registry, service = self.store, self.registry, self.service
        assert store is not None
        return [
            *core_controllers(store, registry, service),
            WorkspaceController(store, service),
            StatusAggregationController(store, registry, service),
            SyncerURLController(store, service),
            *scheduling_controllers(
                store,
                registry,
                service,
                heartbeat_threshold=self.config.sync_target_heartbeat_threshold,
                prometheus_url=self.config.prometheus_url,
            ),
            *canary_controllers(store, registry, service, prometheus_url=self.config.prometheus_url),
        ]

    def mount(self, api_server: ApiServer) -> None:
        assert self.store is not None
        vw = syncer_vw.SyncerVirtualWorkspace(
            self.store,
            self.registry,
            self.service,
            api_server.stopping,
            bookmark_interval=self.config.bookmark_interval,
        )
        api_server.add_virtual_workspace(syncer_vw.PREFIX, vw.handle)

    def release(self) -> None:
        assert self.store is not None
        sync_status_metrics.COLLECTOR.detach(self.store)
        MONITOR.detach(self.store)

    async def start(self) -> None:
        await super().start()
        self.ready = True
        log.info(
            "serving",
            extra={"address": self.listen.bind_address, "port": self.port, "kubeconfig": self.kubeconfig_path},
        )


async def serve(config: ServerConfig, on_ready: Callable[[Hub], None] | None = None) -> None:
    """Run a hub until SIGTERM or SIGINT."""
    await serve_until_signalled(Hub(config), on_ready)
