"""Parse request paths: `/clusters/<workspace>/api|apis/...` (and the plain Kubernetes layout for `root`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

WILDCARD = "*"
_WORKSPACE_PATH = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ResourcePath:
    cluster: str  # workspace path, or "*" for the cross-workspace wildcard
    group: str
    version: str
    namespace: str | None
    resource: str
    name: str | None
    subresource: str


@dataclass(frozen=True)
class DiscoveryPath:
    cluster: str
    kind: str  # "api", "apis", "api-version", "group", "group-version", "version", "openapi", "openapi-gv"
    group: str = ""
    version: str = ""
    openapi_path: str = ""


def valid_workspace_path(path: str) -> bool:
    return path == WILDCARD or bool(_WORKSPACE_PATH.match(path))


def split_cluster(path: str, default_cluster: str) -> tuple[str, str] | None:
    """('/clusters/root:a/api/v1/...') -> ('root:a', '/api/v1/...'); plain paths belong to default_cluster."""
    if path.startswith("/clusters/"):
        rest = path[len("/clusters/") :]
        cluster, slash, tail = rest.partition("/")
        return cluster, "/" + tail if slash else "/"
    return default_cluster, path


def parse(path: str, default_cluster: str = "root") -> ResourcePath | DiscoveryPath | None:
    split = split_cluster(path, default_cluster)
    if split is None:
        return None
    cluster, rest = split
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return None
    head = parts[0]
    if head == "version" and len(parts) == 1:
        return DiscoveryPath(cluster, "version")
    if head == "openapi" and len(parts) >= 2 and parts[1] == "v3":
        if len(parts) == 2:
            return DiscoveryPath(cluster, "openapi")
        return DiscoveryPath(cluster, "openapi-gv", openapi_path="/".join(parts[2:]))
    if head == "api":
        if len(parts) == 1:
            return DiscoveryPath(cluster, "api")
        if len(parts) == 2:
            return DiscoveryPath(cluster, "api-version", "", parts[1])
        return _resource(cluster, "", parts[1], parts[2:])
    if head == "apis":
        if len(parts) == 1:
            return DiscoveryPath(cluster, "apis")
        if len(parts) == 2:
            return DiscoveryPath(cluster, "group", parts[1])
        if len(parts) == 3:
            return DiscoveryPath(cluster, "group-version", parts[1], parts[2])
        return _resource(cluster, parts[1], parts[2], parts[3:])
    return None


def _resource(cluster: str, group: str, version: str, parts: list[str]) -> ResourcePath | None:
    namespace: str | None = None
    # /namespaces/<ns>/<resource>... addresses namespaced objects; /namespaces/<ns>[/<sub>] is a Namespace.
    namespace_subresource = not group and len(parts) == 3 and parts[2] in ("status", "finalize")
    if parts[0] == "namespaces" and len(parts) >= 3 and not namespace_subresource:
        namespace, parts = parts[1], parts[2:]
    if len(parts) > 3:
        return None
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else None
    sub = parts[2] if len(parts) > 2 else ""
    return ResourcePath(cluster, group, version, namespace, resource, name, sub)
