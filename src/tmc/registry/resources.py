"""Which resources a workspace serves: the built-ins, TMC's own kinds, and the CRDs created in that workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tmc.api.canary import CANARY_DEPLOYMENTS
from tmc.api.rollback import ROLLBACK_POLICIES, WORKLOAD_REVISIONS
from tmc.api.scheduling import LOCATIONS, PLACEMENTS
from tmc.api.tenancy import WORKSPACES
from tmc.api.workload import SYNC_TARGETS
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.apimachinery.schemas import Schema
from tmc.registry.reviews import REVIEW_RESOURCES
from tmc.storage.interface import Store

CRDS = next(r for r in BUILTIN_RESOURCES if r.plural == "customresourcedefinitions")
STATIC_RESOURCES: tuple[ResourceInfo, ...] = (
    *BUILTIN_RESOURCES,
    WORKSPACES,
    SYNC_TARGETS,
    LOCATIONS,
    PLACEMENTS,
    CANARY_DEPLOYMENTS,
    WORKLOAD_REVISIONS,
    ROLLBACK_POLICIES,
    *REVIEW_RESOURCES,
)

# Kubernetes' version priority: GA > beta > alpha, higher numbers first, then anything else alphabetically.
_VERSION_RANK = {"": 0, "beta": 1, "alpha": 2}


def version_priority(version: str) -> tuple[int, int, int, str]:
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    return (_VERSION_RANK[m.group(2) or ""], -int(m.group(1)), -int(m.group(3) or 0), version)


def crd_resources(crd: dict[str, Any]) -> list[ResourceInfo]:
    """One ResourceInfo per served version of a CRD, in preference order."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = str(spec.get("group", ""))
    kind = str(names.get("kind", ""))
    storage = next((v["name"] for v in spec.get("versions") or [] if v.get("storage")), "")
    out: list[ResourceInfo] = []
    for ver in spec.get("versions") or []:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        sub_names = tuple(s for s in ("status", "scale") if s in subs)
        scale = subs.get("scale") or {}
        raw_schema = (ver.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
        reversed_group = ".".join(reversed(group.split(".")))
        out.append(
            ResourceInfo(
                group=group,
                version=str(ver.get("name")),
                kind=kind,
                plural=str(names.get("plural", "")),
                singular=str(names.get("singular") or kind.lower()),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=sub_names,
                schema=Schema(raw_schema, {}),
                definition_name=f"{reversed_group}.{ver.get('name')}.{kind}",
                crd=True,
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                scale_paths={k: str(v) for k, v in scale.items()},
                storage_version=storage,
            )
        )
    out.sort(key=lambda r: version_priority(r.version))
    return out


@dataclass
class _ClusterResources:
    by_gvr: dict[tuple[str, str, str], ResourceInfo] = field(default_factory=dict)
    ordered: list[ResourceInfo] = field(default_factory=list)


class ResourceRegistry:
    """Resolves (group, version, resource) per workspace. CRD-defined resources are rebuilt from the store
    after every CRD write in that workspace (`invalidate`), so a CR can be created right after its CRD's 201."""

    def __init__(self, store: Store, static: tuple[ResourceInfo, ...] = STATIC_RESOURCES) -> None:
        self._store = store
        self._static = static
        self._static_by_gvr = {(r.group, r.version, r.plural): r for r in static}
        self._crds: dict[str, _ClusterResources] = {}
        self._generation: dict[str, int] = {}

    def invalidate(self, cluster: str) -> None:
        self._crds.pop(cluster, None)
        self._generation[cluster] = self._generation.get(cluster, 0) + 1

    def generation(self, cluster: str) -> int:
        """Changes whenever the workspace's set of resources may have changed (for discovery/OpenAPI caches)."""
        return self._generation.get(cluster, 0)

    def _custom(self, cluster: str) -> _ClusterResources:
        cached = self._crds.get(cluster)
        if cached is None:
            cached = _ClusterResources()
            for entry in self._store.list(CRDS.key_prefix(cluster)):
                crd = entry.obj
                if not _established(crd):
                    continue
                for info in crd_resources(crd):
                    gvr = (info.group, info.version, info.plural)
                    if gvr not in self._static_by_gvr:
                        cached.by_gvr[gvr] = info
                        cached.ordered.append(info)
            self._crds[cluster] = cached
        return cached

    def lookup(self, cluster: str, group: str, version: str, plural: str) -> ResourceInfo | None:
        gvr = (group, version, plural)
        return self._static_by_gvr.get(gvr) or self._custom(cluster).by_gvr.get(gvr)

    def resources(self, cluster: str) -> list[ResourceInfo]:
        return [*self._static, *self._custom(cluster).ordered]

    def all_versions(self, cluster: str, group: str, plural: str) -> list[ResourceInfo]:
        return [r for r in self.resources(cluster) if r.group == group and r.plural == plural]

    def static(self) -> tuple[ResourceInfo, ...]:
        return self._static


def _established(crd: dict[str, Any]) -> bool:
    md = crd.get("metadata") or {}
    return not md.get("deletionTimestamp")
