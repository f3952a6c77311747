"""Typed helpers for the TMC kinds clients handle most: SyncTargets, Placements, Locations and Workspaces.

Each is a `ClusterKind`: path builders under `/clusters/<workspace>` and get/list/create/patch/delete calls on a
`KubeClient` whose base URL is the hub's origin (`Kubeconfig.base_url`), so one client reaches every workspace.
Objects stay dicts, as everywhere in the client layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tmc.api import scheduling, tenancy, workload
from tmc.apimachinery.resources import ResourceInfo
from tmc.client.rest import MERGE_PATCH, KubeClient


@dataclass(frozen=True)
class ClusterKind:
    """A cluster-scoped kind served in every workspace."""

    group: str
    version: str
    kind: str
    plural: str

    @classmethod
    def of(cls, info: ResourceInfo) -> ClusterKind:
        return cls(info.group, info.version, info.kind, info.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def path(self, workspace: str, name: str | None = None, subresource: str = "") -> str:
        """The collection path in `workspace`, or one object's (and its subresource's) path."""
        base = f"/clusters/{workspace}/apis/{self.group}/{self.version}/{self.plural}"
        if not name:
            return base
        return f"{base}/{name}/{subresource}" if subresource else f"{base}/{name}"

    def new(self, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
        """A fresh object of this kind."""
        metadata: dict[str, Any] = {"name": name}
        if labels is not None:
            metadata["labels"] = dict(labels)
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, "spec": spec}

    async def get(self, client: KubeClient, workspace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = await client.get(self.path(workspace, name))
        return obj

    async def list(self, client: KubeClient, workspace: str, label_selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        items, _ = await client.list_all(self.path(workspace), params)
        return items

    async def create(self, client: KubeClient, workspace: str, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = await client.create(self.path(workspace), obj)
        return created

    async def patch(
        self,
        client: KubeClient,
        workspace: str,
        name: str,
        patch: Any,
        content_type: str = MERGE_PATCH,
        subresource: str = "",
    ) -> dict[str, Any]:
        patched: dict[str, Any] = await client.patch(self.path(workspace, name, subresource), patch, content_type)
        return patched

    async def delete(self, client: KubeClient, workspace: str, name: str) -> Any:
        return await client.delete(self.path(workspace, name))


SYNC_TARGET = ClusterKind.of(workload.SYNC_TARGETS)
PLACEMENT = ClusterKind.of(scheduling.PLACEMENTS)
LOCATION = ClusterKind.of(scheduling.LOCATIONS)
WORKSPACE = ClusterKind.of(tenancy.WORKSPACES)


def sync_target_path(workspace: str, name: str | None = None) -> str:
    return SYNC_TARGET.path(workspace, name)
