"""Which resource types a syncer syncs, and where each lives in the REST layout.

`--resource-types` names types as `<resource>.<group>` (core types without a group), as kcp's `--resources` did.
ConfigMaps and Secrets are always added: a synced workload's pod template references them, so they must follow it
(kcp always synced them too). The version of each type, its scope and whether it has a status subresource come from
the member cluster's discovery, which is what the syncer writes to; a type the member cluster does not serve is
skipped with an error in the log rather than stopping the other types.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tmc.client import ApiError, KubeClient
from tmc.syncer import DEFAULT_RESOURCE_TYPES

log = logging.getLogger("tmc.syncer")

ALWAYS_SYNCED = ("configmaps", "secrets")
# Built-in versions, used when discovery does not list a group (and to order groups with several versions).
_KNOWN_VERSIONS = {"": "v1", "apps": "v1", "batch": "v1", "networking.k8s.io": "v1", "policy": "v1"}
# Never synced down: the member cluster's controllers create pods and events; namespaces are handled on their own.
_REFUSED = frozenset({"pods", "events", "endpoints", "namespaces", "nodes"})


@dataclass(frozen=True)
class SyncedResource:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool = True
    has_status: bool = False

    @property
    def id(self) -> str:
        """`deployments.apps`, `configmaps`: the name used in flags, queue keys and metric labels."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def api_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def collection(self, namespace: str | None = None) -> str:
        if namespace is None:
            return f"{self.api_prefix}/{self.resource}"
        return f"{self.api_prefix}/namespaces/{namespace}/{self.resource}"

    def item(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{name}"


NAMESPACES = SyncedResource("", "v1", "namespaces", "Namespace", namespaced=False, has_status=True)


def published(resource: SyncedResource) -> dict[str, Any]:
    """The SyncTarget `status.syncedResources` entry for a type this syncer syncs."""
    return {"group": resource.group, "resource": resource.resource, "versions": [resource.version], "state": "Accepted"}


def parse_resource_types(text: str) -> list[tuple[str, str]]:
    """`deployments.apps,services` -> [("apps", "deployments"), ("", "services")], with ConfigMaps and Secrets."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()] if text else list(DEFAULT_RESOURCE_TYPES)
    out: list[tuple[str, str]] = []
    for name in [*names, *ALWAYS_SYNCED]:
        resource, _, group = name.partition(".")
        if resource in _REFUSED and not group:
            log.warning("resource type is never synced down; ignoring it", extra={"resource": name})
            continue
        if (group, resource) not in out:
            out.append((group, resource))
    return out


async def resolve(client: KubeClient, wanted: list[tuple[str, str]]) -> list[SyncedResource]:
    """Look each (group, resource) up in the member cluster's discovery."""
    out: list[SyncedResource] = []
    documents: dict[str, dict[str, object] | None] = {}
    for group, resource in wanted:
        version = await _preferred_version(client, group, documents)
        if version is None:
            log.error("the member cluster does not serve this group", extra={"group": group, "resource": resource})
            continue
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if path not in documents:
            try:
                documents[path] = await client.get(path)
            except ApiError:
                documents[path] = None
        found = _find(documents[path], resource)
        if found is None:
            log.error("the member cluster does not serve this resource", extra={"group": group, "resource": resource})
            continue
        kind, namespaced, has_status = found
        if not namespaced:
            log.error("only namespaced resources are synced", extra={"group": group, "resource": resource})
            continue
        out.append(SyncedResource(group, version, resource, kind, namespaced, has_status))
    return out


async def _preferred_version(client: KubeClient, group: str, cache: dict[str, dict[str, object] | None]) -> str | None:
    if not group:
        return "v1"
    path = f"/apis/{group}"
    if path not in cache:
        try:
            cache[path] = await client.get(path)
        except ApiError:
            cache[path] = None
    doc = cache[path]
    preferred = doc.get("preferredVersion") if isinstance(doc, dict) else None
    if isinstance(preferred, dict) and preferred.get("version"):
        return str(preferred["version"])
    return _KNOWN_VERSIONS.get(group) if doc is not None else None


def _find(doc: object, resource: str) -> tuple[str, bool, bool] | None:
    if not isinstance(doc, dict):
        return None
    entries = doc.get("resources") or []
    names = {str(r.get("name")) for r in entries if isinstance(r, dict)}
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == resource:
            return str(entry.get("kind")), bool(entry.get("namespaced")), f"{resource}/status" in names
    return None
