"""The HTTP server: TLS listener, the request pipeline's outer steps (health, authentication, metrics endpoint,
in-flight gauges) in front of the API handler and the virtual workspaces, which compute the RequestInfo and go on
(docs/request-pipeline.md lists every step). It knows nothing of controllers: a composition root (`tmc.server.hub`,
`tmc.server.member`) builds it with the store, registry and object service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tmc.apimachinery import errors
from tmc.apiserver import bodies, certs
from tmc.apiserver.authn import CALLER, Authenticator, authenticate
from tmc.apiserver.connections import ConnectionLimits, GuardedSite
from tmc.apiserver.handlers import ApiHandler
from tmc.apiserver.httputil import MAX_BODY_BYTES, status_response
from tmc.observability import health, metrics
from tmc.observability.health import Check
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.health import storage_check, store_checks
from tmc.storage.interface import Store

log = logging.getLogger("tmc.server")
_HEALTH_PATHS = ("/livez", "/readyz", "/healthz")
_NOT_FOUND = "404 page not found\n"  # Go's http.NotFound, for an unknown /readyz/<check>
VirtualWorkspace = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ListenConfig:
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    default_cluster: str = "root"
    bookmark_interval: float = 60.0
    shutdown_timeout: float = 10.0
    request_header_timeout: float = 30.0
    idle_timeout: float = 90.0
    max_connections: int = 10_000
    # kube-apiserver's --max-requests-inflight and --max-mutating-requests-inflight defaults; 0 = no limit.
    max_requests_inflight: int = 400
    max_mutating_requests_inflight: int = 200

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            header_timeout=self.request_header_timeout,
            idle_timeout=self.idle_timeout,
            max_connections=self.max_connections,
        )


class ApiServer:
    """Serves the Kubernetes API over TLS: `start()` binds (and learns the port when asked for port 0), `stop()` stops
    accepting, ends watches and lets in-flight requests finish."""

    def __init__(
        self,
        config: ListenConfig,
        store: Store,
        registry: ResourceRegistry,
        service: ObjectService,
        identity: certs.ServingIdentity,
        authenticators: Sequence[Authenticator],
        *,
        middlewares: Sequence[Middleware] = (),
        readiness: Callable[[], Iterable[Check]] = tuple,
    ) -> None:
        self.config = config
        self.identity = identity
        self.authenticators = tuple(authenticators)
        # Run before the server's own (health, authentication); `tmc sim-cluster` puts its outage switch here.
        self.extra_middlewares = tuple(middlewares)
        self.readiness = readiness
        self.store = store
        self.stopping = asyncio.Event()
        self.ready = False
        self.port = config.secure_port
        self.api = ApiHandler(
            store,
            registry,
            service,
            self.stopping,
            default_cluster=config.default_cluster,
            bookmark_interval=config.bookmark_interval,
        )
        self._runner: web.AppRunner | None = None
        self._site: GuardedSite | None = None
        self._inflight = {False: 0, True: 0}  # by mutating
        self._inflight_limit = {False: config.max_requests_inflight, True: config.max_mutating_requests_inflight}

    def add_virtual_workspace(self, prefix: str, handler: VirtualWorkspace) -> None:
        """Requests under `prefix` (e.g. "/services/syncer/") go to `handler`, which routes and authorizes itself."""
        self.api.virtual[prefix] = handler

    async def start(self) -> None:
        cfg = self.config
        app = web.Application(
            client_max_size=MAX_BODY_BYTES + 1, middlewares=[*self.extra_middlewares, self._middleware]
        )
        app.router.add_route("*", "/{tail:.*}", self.api.handle)
        limits = cfg.connection_limits()
        self._runner = web.AppRunner(app, shutdown_timeout=cfg.shutdown_timeout, **limits.handler_args())
        await self._runner.setup()
        self._site = site = GuardedSite(
            self._runner, cfg.bind_address, cfg.secure_port, limits=limits, ssl_context=certs.ssl_context(self.identity)
        )
        await site.start()
        self.port = site.port

    @property
    def open_connections(self) -> int:
        return self._site.open_connections if self._site is not None else 0

    async def stop(self) -> None:
        self.ready = False
        self.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        bodies.shutdown_workers()

    def liveness_checks(self) -> list[Check]:
        """`/livez` and `/healthz`: the process serves and its store takes writes (kube-apiserver lists etcd here)."""
        return [Check("ping", True), storage_check(self.store)]

    def readiness_checks(self) -> list[Check]:
        """`/readyz`: liveness, the watch cache, the composition root's checks (one per controller), startup done
        and not shutting down."""
        starting = not self.ready and not self.stopping.is_set()
        return [
            Check("ping", True),
            *store_checks(self.store),
            *self.readiness(),
            Check("startup", not starting, "still starting" if starting else ""),
            Check("shutdown", not self.stopping.is_set(), "shutting down" if self.stopping.is_set() else ""),
        ]

    def _health(self, request: web.Request) -> web.Response:
        endpoint, _, check = request.path.strip("/").partition("/")
        if endpoint not in ("livez", "readyz", "healthz"):  # /livezfoo
            return web.Response(status=404, text=_NOT_FOUND, headers=health.HEADERS)
        checks = self.readiness_checks() if endpoint == "readyz" else self.liveness_checks()
        if check:
            answer = health.render_one(checks, check)
            status, body = answer if answer is not None else (404, _NOT_FOUND)
        else:
            query = {key: request.query.getall(key) for key in request.query}
            status, body = health.render(endpoint, checks, query)
        if status != 200:
            # The reasons the response withholds (kube-apiserver logs them at V(2)).
            log.debug(f"{endpoint} check failed", extra={"path": request.path_qs, "failed": health.failures(checks)})
        return web.Response(status=status, text=body, headers=health.HEADERS)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(_HEALTH_PATHS):
            return self._health(request)
        try:
            request[CALLER] = authenticate(self.authenticators, request)
        except errors.StatusError as e:
            return status_response(e)
        if path == "/metrics":
            body, content_type = metrics.render_metrics(names=request.query.getall("name[]", []))
            return web.Response(body=body, headers={"Content-Type": content_type})
        mutating = request.method in ("POST", "PUT", "PATCH", "DELETE")
        if _long_running(request):
            return await handler(request)
        limit = self._inflight_limit[mutating]
        if limit and self._inflight[mutating] >= limit:
            return _too_many_requests()
        self._inflight[mutating] += 1
        gauge = metrics.inflight_gauge(mutating)
        gauge.inc()
        try:
            return await handler(request)
        finally:
            gauge.dec()
            self._inflight[mutating] -= 1


def _long_running(request: web.Request) -> bool:
    """Watches, which kube-apiserver's in-flight limits leave out as long-running requests."""
    return request.query.get("watch", "") in ("1", "true", "True") or "/watch/" in request.path


def _too_many_requests() -> web.Response:
    err = errors.StatusError(
        429, "TooManyRequests", "Too many requests, please try again later.", {"retryAfterSeconds": 1}
    )
    response = status_response(err)
    response.headers["Retry-After"] = "1"
    return response
