"""Downstream namespaces: one `kcp-<hash>` per (workspace, upstream namespace), found by locator first.

Each carries the `kcp.io/namespace-locator` annotation (how objects map back upstream), the
`internal.workload.kcp.io/cluster=<key>` label (what the syncer's downstream informers select) and the
`kcp.io/tenant-id` label. Existing namespaces are indexed by locator, so a namespace created under another name (by an
older syncer) is reused; the computed name is used only when no namespace carries the locator, and a namespace of
that name with a different locator is a collision the syncer refuses to write into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tmc.api.workload import DOWNSTREAM_CLUSTER_LABEL, NAMESPACE_LOCATOR_ANNOTATION, TENANT_ID_LABEL
from tmc.client import Conflict, KubeClient
from tmc.protocol.keys import downstream_namespace, locator_json, namespace_locator, tenant_id


@dataclass(frozen=True)
class TargetIdentity:
    workspace: str
    name: str
    uid: str
    key: str


class NamespaceCollision(Exception):
    """The computed downstream namespace exists and belongs to another upstream namespace or target."""


class Namespaces:
    def __init__(self, client: KubeClient, target: TargetIdentity) -> None:
        self.client = client
        self.target = target
        self._by_locator: dict[str, str] = {}  # locator JSON -> downstream namespace
        self._upstream: dict[str, tuple[str, str]] = {}  # downstream namespace -> (workspace, namespace)
        self._uids: dict[str, str] = {}  # downstream namespace -> uid
        # (workspace, namespace) -> (locator JSON, computed name): hashing a locator costs more than the rest of a
        # no-op reconcile, and it never changes.
        self._computed: dict[tuple[str, str], tuple[str, str]] = {}

    def locator(self, cluster: str, namespace: str) -> dict[str, Any]:
        t = self.target
        return namespace_locator(t.workspace, t.name, t.uid, cluster, namespace)

    def observe(self, event: str, obj: dict[str, Any]) -> None:
        """Keep the locator index in step with the downstream namespace informer."""
        md = obj.get("metadata") or {}
        name = str(md.get("name"))
        if event in ("DELETED", "VANISHED"):
            self._forget(name)
            return
        parsed = self._parse(obj)
        if parsed is None:
            self._forget(name)
            return
        self._by_locator[locator_json(parsed)] = name
        self._upstream[name] = (str(parsed.get("cluster", "")), str(parsed.get("namespace", "")))
        self._uids[name] = str(md.get("uid", ""))

    def _forget(self, name: str) -> None:
        self._upstream.pop(name, None)
        self._uids.pop(name, None)
        for locator, ns in list(self._by_locator.items()):
            if ns == name:
                del self._by_locator[locator]

    def _parse(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The namespace's locator when it points at this SyncTarget (same workspace, name and UID), else None."""
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(NAMESPACE_LOCATOR_ANNOTATION)
        try:
            locator = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(locator, dict):
            return None
        st = locator.get("syncTarget") or {}
        t = self.target
        if (st.get("cluster"), st.get("name"), st.get("uid")) != (t.workspace, t.name, t.uid):
            return None
        return locator

    def upstream_of(self, downstream: str) -> tuple[str, str] | None:
        return self._upstream.get(downstream)

    def uid_of(self, downstream: str) -> str:
        return self._uids.get(downstream, "")

    def _identity(self, cluster: str, namespace: str) -> tuple[str, str]:
        found = self._computed.get((cluster, namespace))
        if found is None:
            locator = self.locator(cluster, namespace)
            found = self._computed[(cluster, namespace)] = (locator_json(locator), downstream_namespace(locator))
        return found

    def lookup(self, cluster: str, namespace: str) -> str:
        """The downstream namespace for an upstream one, whether or not it exists yet."""
        text, computed = self._identity(cluster, namespace)
        return self._by_locator.get(text) or computed

    def exists(self, downstream: str) -> bool:
        return downstream in self._upstream

    async def ensure(self, cluster: str, namespace: str) -> str:
        """Create the downstream namespace if it is not there; returns its name."""
        text, name = self._identity(cluster, namespace)
        known = self._by_locator.get(text)
        if known is not None:
            return known
        locator = self.locator(cluster, namespace)
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {DOWNSTREAM_CLUSTER_LABEL: self.target.key, TENANT_ID_LABEL: tenant_id(locator)},
                "annotations": {NAMESPACE_LOCATOR_ANNOTATION: text},
            },
        }
        try:
            created = await self.client.create("/api/v1/namespaces", body)
        except Conflict:
            created = await self.client.get(f"/api/v1/namespaces/{name}")
            if self._parse(created) is None or locator_json(self._parse(created) or {}) != text:
                raise NamespaceCollision(
                    f"downstream namespace {name} exists with another locator; refusing to sync "
                    f"{cluster}/{namespace} into it"
                ) from None
            if (created.get("metadata") or {}).get("deletionTimestamp"):
                raise Conflict(409, "Conflict", f"downstream namespace {name} is being deleted; retrying") from None
        self.observe("ADDED", created)
        return name
