"""The facts of a request, computed once from its method and path: kube-apiserver's RequestInfo.

Paths are `/clusters/<workspace>/api|apis/...` (kcp's layout; plain Kubernetes paths belong to the default
workspace), after a virtual workspace has taken off its own prefix. The API handler and the virtual workspaces compute
a `RequestInfo` once, leave it on the request under `REQUEST_INFO`, and everything after (resolution, the verb
handlers, metrics; authorization, audit and tracing next) reads it instead of looking at the path again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from tmc.apimachinery import errors
from tmc.apiserver.httputil import path_not_found

WILDCARD = "*"
_WORKSPACE_PATH = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_WATCH_TRUE = ("1", "true", "True")
# The subresources of a Namespace object: /api/v1/namespaces/<name>/<sub> addresses the Namespace, not a resource.
_NAMESPACE_SUBRESOURCES = ("status", "finalize")

# Discovery kinds (`RequestInfo.discovery`) of the non-resource paths this server answers.
VERSION = "version"  # /version
API = "api"  # /api
APIS = "apis"  # /apis
API_VERSION = "api-version"  # /api/<v>
GROUP = "group"  # /apis/<g>
GROUP_VERSION = "group-version"  # /apis/<g>/<v>
OPENAPI = "openapi"  # /openapi/v3
OPENAPI_GV = "openapi-gv"  # /openapi/v3/<path>


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request addresses and does.

    Resource requests have a Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection);
    other requests have the lower-cased HTTP method and a `discovery` kind. As in this server's paths (unlike
    upstream's RequestInfo), `namespace` is None for a Namespace object itself and for cluster-scoped resources.
    `unsupported` is the 405 message when the method does not fit the path (POST on a named object, PUT or PATCH
    without a name, an unknown method); the API handler raises it once it has resolved the resource, so an unknown
    resource still answers 404 first.
    """

    path: str  # the whole request path, virtual workspace prefix included
    verb: str
    workspace: str  # the logical cluster path, or "*" for the cross-workspace wildcard
    is_resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    discovery: str = ""
    openapi_path: str = ""  # for OPENAPI_GV: the group-version path after /openapi/v3/
    unsupported: str = ""

    @property
    def wildcard(self) -> bool:
        return self.workspace == WILDCARD

    @property
    def scope(self) -> str:
        """The metrics scope label: a named object, a namespace's collection, or a cluster-wide collection."""
        return "resource" if self.name else ("namespace" if self.namespace else "cluster")


# Where the API handler or a virtual workspace leaves the request's RequestInfo.
REQUEST_INFO = web.RequestKey("request_info", RequestInfo)


def valid_workspace_path(path: str) -> bool:
    return path == WILDCARD or bool(_WORKSPACE_PATH.match(path))


def request_info(
    method: str, path: str, query: Mapping[str, str], default_workspace: str, *, api_path: str | None = None
) -> RequestInfo:
    """The RequestInfo of `method path?query`; `api_path` is what is left of `path` after a virtual workspace's
    prefix (None: all of it). 404 for a path this server does not serve, 400 for an invalid workspace path."""
    rest = path if api_path is None else api_path
    if rest.startswith("/clusters/"):
        workspace, slash, tail = rest[len("/clusters/") :].partition("/")
        rest = "/" + tail if slash else "/"
    else:
        workspace = default_workspace
    parts = [p for p in rest.split("/") if p]
    info = _parse(method, path, workspace, parts, query) if parts else None
    if info is None:
        raise path_not_found(path)
    if not valid_workspace_path(workspace):
        raise errors.bad_request(f"invalid workspace path {workspace!r}")
    return info


class RequestInfoFactory:
    """Computes the RequestInfo of requests for one default workspace and leaves it on the request.

    Clients repeat the same few paths, so a RequestInfo (immutable) is shared by the requests with the same method,
    path and watch flag: a repeated request costs a dict lookup instead of a parse and a regex match."""

    def __init__(self, default_workspace: str, *, cache_size: int = 4096) -> None:
        self.default_workspace = default_workspace
        self.cache_size = cache_size
        self._cache: dict[tuple[str, str, str | None, bool], RequestInfo] = {}

    def compute(self, method: str, path: str, query: Mapping[str, str], *, api_path: str | None = None) -> RequestInfo:
        key = (method, path, api_path, query.get("watch", "") in _WATCH_TRUE)
        info = self._cache.get(key)
        if info is None:
            info = request_info(method, path, query, self.default_workspace, api_path=api_path)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[key] = info
        return info

    def attach(self, request: web.Request, *, api_path: str | None = None) -> RequestInfo:
        """The request's RequestInfo, also left on the request (`REQUEST_INFO`) for the steps after."""
        info = self.compute(request.method, request.path, request.query, api_path=api_path)
        request[REQUEST_INFO] = info
        return info


def _parse(method: str, path: str, workspace: str, parts: list[str], query: Mapping[str, str]) -> RequestInfo | None:
    head, n = parts[0], len(parts)
    if head == "api":
        if n == 1:
            return _discovery(method, path, workspace, API)
        if n == 2:
            return _discovery(method, path, workspace, API_VERSION, "", parts[1])
        return _resource(method, path, workspace, "", parts[1], parts[2:], query)
    if head == "apis":
        if n == 1:
            return _discovery(method, path, workspace, APIS)
        if n == 2:
            return _discovery(method, path, workspace, GROUP, parts[1])
        if n == 3:
            return _discovery(method, path, workspace, GROUP_VERSION, parts[1], parts[2])
        return _resource(method, path, workspace, parts[1], parts[2], parts[3:], query)
    if head == "version" and n == 1:
        return _discovery(method, path, workspace, VERSION)
    if head == "openapi" and n >= 2 and parts[1] == "v3":
        if n == 2:
            return _discovery(method, path, workspace, OPENAPI)
        return RequestInfo(path, method.lower(), workspace, discovery=OPENAPI_GV, openapi_path="/".join(parts[2:]))
    return None


def _discovery(method: str, path: str, workspace: str, kind: str, group: str = "", version: str = "") -> RequestInfo:
    return RequestInfo(path, method.lower(), workspace, api_group=group, api_version=version, discovery=kind)


def _resource(
    method: str, path: str, workspace: str, group: str, version: str, parts: list[str], query: Mapping[str, str]
) -> RequestInfo | None:
    namespace: str | None = None
    namespace_subresource = not group and len(parts) == 3 and parts[2] in _NAMESPACE_SUBRESOURCES
    if parts[0] == "namespaces" and len(parts) >= 3 and not namespace_subresource:
        namespace, parts = parts[1], parts[2:]
    n = len(parts)
    if n > 3:
        return None
    resource = parts[0]
    name = parts[1] if n > 1 else None
    unsupported = ""
    if method == "GET":
        # The query is only looked at for collections: a GET of a named object is a get, watch=true or not.
        verb = "get" if name else ("watch" if query.get("watch", "") in _WATCH_TRUE else "list")
    elif method == "POST":
        verb = "create"
        if name:
            unsupported = f"POST is not supported on a named {resource}"
    elif method == "PUT" or method == "PATCH":
        verb = "update" if method == "PUT" else "patch"
        if not name:
            unsupported = f"{method} needs an object name"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = method.lower()
        unsupported = f"the server does not allow the method {method}"
    return RequestInfo(
        path,
        verb,
        workspace,
        True,
        group,
        version,
        resource,
        parts[2] if n > 2 else "",
        namespace,
        name,
        unsupported=unsupported,
    )
