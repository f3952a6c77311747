"""Discovery and OpenAPI over HTTP for the API handler and the virtual workspaces: one responder, parameterised by
what a workspace serves. The documents themselves come from `discovery` and `openapi`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo
from tmc.apiserver import discovery, openapi
from tmc.apiserver import request as req
from tmc.apiserver.httputil import JSON, json_response, path_not_found, raw_response
from tmc.registry.resources import ResourceRegistry

_CACHE_LIMIT = 4096


class DiscoveryResponder:
    """Answers a discovery RequestInfo. `served` maps a workspace to the resources it advertises (default: the
    registry's); `aggregated` enables aggregated discovery (v2) and `serve_openapi` the OpenAPI v3 documents, both only
    for the hub itself: a virtual workspace serves legacy discovery, which every client falls back to.

    The documents for whole workspaces (and OpenAPI) are cached per workspace and registry generation, so they are
    rebuilt only when the workspace's set of resources may have changed."""

    def __init__(
        self,
        registry: ResourceRegistry,
        default_workspace: str,
        *,
        served: Callable[[str], list[ResourceInfo]] | None = None,
        aggregated: bool = True,
        serve_openapi: bool = True,
    ) -> None:
        self.registry = registry
        self.default_workspace = default_workspace
        self.served = served or registry.resources
        self.aggregated = aggregated
        self.serve_openapi = serve_openapi
        self._cache: dict[tuple[str, int, str], bytes] = {}

    def _cached(self, workspace: str, what: str, build: Callable[[], bytes]) -> bytes:
        key = (workspace, self.registry.generation(workspace), what)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            hit = build()
            self._cache[key] = hit
        return hit

    def _cached_doc(self, workspace: str, what: str, build: Callable[[list[ResourceInfo]], Any]) -> bytes:
        return self._cached(workspace, what, lambda: orjson.dumps(build(self.served(workspace))))

    def respond(self, request: web.Request, ri: req.RequestInfo) -> web.Response:
        if ri.verb != "get":
            raise errors.method_not_allowed(f"the server does not allow this method on {ri.path}")
        workspace = self.default_workspace if ri.workspace == req.WILDCARD else ri.workspace
        kind = ri.discovery
        if kind == req.VERSION:
            return json_response(discovery.version_info())
        aggregated = False
        if self.aggregated:
            accept = request.headers.get("Accept", "")
            aggregated = "as=APIGroupDiscoveryList" in accept and "v=v2" in accept
        if kind == req.API:
            if aggregated:
                body = self._cached_doc(workspace, "agg-api", discovery.aggregated_core)
                return raw_response(body, discovery.AGGREGATED_CONTENT_TYPE)
            return json_response(discovery.legacy_api_versions())
        if kind == req.APIS:
            if aggregated:
                body = self._cached_doc(workspace, "agg-apis", discovery.aggregated_groups)
                return raw_response(body, discovery.AGGREGATED_CONTENT_TYPE)
            return raw_response(self._cached_doc(workspace, "apis", discovery.api_group_list), JSON)
        doc: dict[str, Any] | None = None
        if kind == req.GROUP:
            doc = discovery.api_group(self.served(workspace), ri.api_group)
        elif kind in (req.API_VERSION, req.GROUP_VERSION):
            doc = discovery.api_resource_list(self.served(workspace), ri.api_group, ri.api_version)
        elif self.serve_openapi and kind == req.OPENAPI:
            return raw_response(self._cached_doc(workspace, "openapi", openapi.index), JSON)
        elif self.serve_openapi and kind == req.OPENAPI_GV:

            def build() -> bytes:
                return openapi.group_version_bytes(self.served(workspace), ri.openapi_path) or b""

            body = self._cached(workspace, "openapi:" + ri.openapi_path, build)
            if body:
                return raw_response(body, JSON)
        if doc is None:
            raise path_not_found(ri.path)
        return json_response(doc)
