"""A simulated member cluster (`tmc sim-cluster`): the hub's API server on the plain Kubernetes URL layout, with
only the controllers a plain Kubernetes API server has (namespace deletion, garbage collection) plus the simulated
cluster's own (scheduler, kubelet, Deployment/ReplicaSet/StatefulSet/DaemonSet/Job, request traffic), its nodes, the
mesh routing CRDs, the outage switch and `<data-dir>/<name>.kubeconfig`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from tmc.apiserver.kubeconfig import write_kubeconfig
from tmc.apiserver.server import ListenConfig
from tmc.controllers.core.wiring import core_controllers
from tmc.controllers.runtime import Controller
from tmc.server.process import ServerProcess, serve_until_signalled
from tmc.sim.apps import DeploymentController, ReplicaSetController
from tmc.sim.base import SimSettings
from tmc.sim.kubelet import KubeletController, SchedulerController
from tmc.sim.meshcrds import ensure_mesh_crds
from tmc.sim.nodes import ensure_nodes
from tmc.sim.outage import OutageSwitch
from tmc.sim.trafficgen import TrafficController
from tmc.sim.workloads import DaemonSetController, JobController, StatefulSetController

log = logging.getLogger("tmc.sim")
EXTRA_NAMESPACES = ("kube-node-lease",)


@dataclass
class SimConfig:
    name: str
    data_dir: str
    secure_port: int = 0
    nodes: int = 3
    node_cpu: str = "8"
    node_memory: str = "32Gi"
    ready_delay: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)
    bind_address: str = "127.0.0.1"


class SimCluster(ServerProcess):
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.outage = OutageSwitch(self.outage_path)
        # Each cluster keeps its database and PKI in its own directory, so several can share one data dir.
        super().__init__(
            os.path.join(config.data_dir, config.name),
            ListenConfig(bind_address=config.bind_address, secure_port=config.secure_port),
            middlewares=[self.outage.middleware],
        )
        self.nodes: list[str] = []

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(self.config.data_dir, f"{self.config.name}.kubeconfig")

    @property
    def outage_path(self) -> str:
        return os.path.join(self.config.data_dir, f"{self.config.name}.outage")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def prepare(self) -> None:
        cfg = self.config
        cluster = self.listen.default_cluster
        for namespace in EXTRA_NAMESPACES:
            await self.service.ensure_namespace(cluster, namespace)
        await ensure_mesh_crds(self.service, cluster)  # served from start, as on a member with Istio installed
        self.nodes = await ensure_nodes(
            self.service, cluster, cfg.name, cfg.nodes, cfg.node_cpu, cfg.node_memory, cfg.labels
        )

    def build_controllers(self) -> list[Controller]:
        store, registry, service = self.store, self.registry, self.service
        assert store is not None
        settings = SimSettings(
            name=self.config.name, cluster=self.listen.default_cluster, ready_delay=self.config.ready_delay
        )
        return [
            *core_controllers(store, registry, service),
            SchedulerController(store, service, settings),
            KubeletController(store, service, settings),
            ReplicaSetController(store, service, settings),
            DeploymentController(store, service, settings),
            StatefulSetController(store, service, settings),
            DaemonSetController(store, service, settings),
            JobController(store, service, settings),
            TrafficController(store, service, settings),
        ]

    async def start(self) -> None:
        await super().start()
        self.outage.start()
        cfg = self.config
        write_kubeconfig(
            self.kubeconfig_path,
            server=self.url,  # the plain layout: no /clusters/ prefix, like any Kubernetes API server
            ca_pem=self.identity.ca_cert_pem,
            context=cfg.name,
            user=f"{cfg.name}-admin",
            token=self.identity.admin_token,
        )
        # /readyz says ready only once nodes and controllers are in place, not when the listener is.
        self.ready = True
        log.info(
            "sim-cluster ready",
            extra={"cluster": cfg.name, "url": self.url, "nodes": len(self.nodes), "kubeconfig": self.kubeconfig_path},
        )

    async def stop(self) -> None:
        await self.outage.stop()
        await super().stop()


async def run(config: SimConfig, on_ready: Callable[[SimCluster], None] | None = None) -> None:
    """Run a simulated cluster until SIGTERM or SIGINT."""
    await serve_until_signalled(SimCluster(config), on_ready)
