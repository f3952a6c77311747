"""What the hub and a simulated member share: data dir and PKI, storage, the object layer, the API server, the
controller manager, the admin kubeconfig and the process's garbage-collector tuning. Each root adds its own
controllers, virtual workspaces and start-up steps through the hooks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp.typedefs import Middleware

from tmc.apimachinery.protobuf import ProtobufCodec
from tmc.apiserver import certs
from tmc.apiserver.authn import TokenAuthenticator, X509Authenticator
from tmc.apiserver.kubeconfig import write_kubeconfig
from tmc.apiserver.server import ApiServer, ListenConfig
from tmc.controllers.manager import ControllerManager
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.runtime import heap
from tmc.storage import open_store
from tmc.storage.interface import Store

log = logging.getLogger("tmc.server")
P = TypeVar("P", bound="ServerProcess")
ROOT_NAMESPACES = ("default", "kube-system", "kube-public")


class ServerProcess:
    """`start()` assembles and serves; `stop()` stops the listener, then the controllers, then closes storage."""

    def __init__(
        self,
        data_dir: str,
        listen: ListenConfig,
        storage: str = "sqlite",
        extra_hosts: Sequence[str] = (),
        middlewares: Sequence[Middleware] = (),
    ) -> None:
        self.data_dir = data_dir
        self.listen = listen
        self.storage = storage
        self.extra_hosts = tuple(extra_hosts)
        self.middlewares = tuple(middlewares)
        self.store: Store | None = None
        self.manager = ControllerManager([])
        self.api_server: ApiServer | None = None

    # ------------------------------------------------------------ hooks for the roots

    def build_controllers(self) -> list[Controller]:
        """This process's controllers, built once storage and the object layer exist."""
        return []

    async def prepare(self) -> None:
        """Objects that must exist before anything is served (after the root namespaces)."""

    def mount(self, api_server: ApiServer) -> None:
        """Virtual workspaces and middleware-free additions to the API server, before it listens."""

    def release(self) -> None:
        """Undo what `prepare` attached to the store, just before it closes."""

    # ------------------------------------------------------------ lifecycle

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(self.data_dir, "admin.kubeconfig")

    @property
    def port(self) -> int:
        return self.api_server.port if self.api_server is not None else self.listen.secure_port

    @property
    def controllers(self) -> list[Controller]:
        return self.manager.controllers

    async def start(self) -> None:
        cfg = self.listen
        os.makedirs(self.data_dir, exist_ok=True)
        hosts = sorted({"localhost", "127.0.0.1", "::1", cfg.bind_address, *self.extra_hosts} - {"0.0.0.0", "::"})
        self.identity = certs.ensure_identity(self.data_dir, hosts)
        self.store = store = open_store(self.storage, self.data_dir)
        await store.start()
        self.registry = ResourceRegistry(store)
        self.service = ObjectService(store, self.registry)
        for name in ROOT_NAMESPACES:
            await self.service.ensure_namespace(cfg.default_cluster, name)
        await self.prepare()
        authenticators = (TokenAuthenticator(self.identity.admin_token), X509Authenticator())
        self.api_server = ApiServer(
            cfg,
            store,
            self.registry,
            self.service,
            self.identity,
            authenticators,
            middlewares=self.middlewares,
            readiness=self.manager.checks,
        )
        self.mount(self.api_server)
        for controller in self.build_controllers():
            self.manager.add(controller)
        await self.manager.start()
        # Load the protobuf descriptors off the event loop so the first protobuf request does not wait for them.
        self._warmup = asyncio.get_running_loop().run_in_executor(None, lambda: ProtobufCodec.shared().available)
        await self.api_server.start()
        write_kubeconfig(
            self.kubeconfig_path,
            server=f"https://127.0.0.1:{self.port}/clusters/{cfg.default_cluster}",
            ca_pem=self.identity.ca_cert_pem,
            context=cfg.default_cluster,
            user="admin",
            token=self.identity.admin_token,
        )
        self.service.external_url = f"https://127.0.0.1:{self.port}"
        heap.settle()  # everything loaded so far lives as long as the process

    @property
    def ready(self) -> bool:
        return self.api_server is not None and self.api_server.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        assert self.api_server is not None
        self.api_server.ready = value

    async def stop(self) -> None:
        """Stop accepting, end watches, let in-flight requests finish, stop the controllers, then close storage."""
        if self.api_server is not None:
            await self.api_server.stop()
        await self.manager.stop()
        if self.store is not None:
            self.release()
            await self.store.close()
            self.store = None
        log.info("stopped")


async def serve_until_signalled(process: P, on_ready: Callable[[P], None] | None = None) -> None:
    """Start `process`, tell `on_ready`, and stop it cleanly on SIGTERM or SIGINT (or when starting fails)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await process.start()
        if on_ready is not None:
            on_ready(process)
        await stop.wait()
    finally:
        await process.stop()
