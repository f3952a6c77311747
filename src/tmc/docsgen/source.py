"""Where the OpenAPI v3 documents come from: built offline by the hub's own builder from TMC's API types, or fetched
from a running hub's `/openapi/v3` (any group it serves, CRDs included)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tmc.apimachinery.resources import ResourceInfo
from tmc.apiserver.discovery import KUBE_MINOR
from tmc.apiserver.openapi import group_version_document, group_version_path
from tmc.registry.resources import STATIC_RESOURCES

if TYPE_CHECKING:
    from tmc.client import SyncClient

GroupVersionKey = tuple[str, str]


def is_tmc_group(group: str) -> bool:
    """TMC's own API groups: kcp's (workload, scheduling, tenancy) and tmc.kcp.io, and any later `*.kcp.io`."""
    return group.endswith(".kcp.io")


def tmc_group_versions(resources: Iterable[ResourceInfo] | None = None) -> list[GroupVersionKey]:
    """Every group-version of TMC's own kinds the hub serves, sorted: new kinds need no change here."""
    found = {(r.group, r.version) for r in (resources if resources is not None else STATIC_RESOURCES) if not r.crd}
    return sorted(gv for gv in found if is_tmc_group(gv[0]))


def offline_documents() -> dict[GroupVersionKey, Mapping[str, Any]]:
    """The documents a hub serves for TMC's group-versions, from the same builder (`tmc.apiserver.openapi`)."""
    resources = STATIC_RESOURCES
    out: dict[GroupVersionKey, Mapping[str, Any]] = {}
    for group, version in tmc_group_versions(resources):
        document = group_version_document(resources, group_version_path(group, version))
        if document is not None:
            out[(group, version)] = document
    return out


def builtin_group_versions() -> set[GroupVersionKey]:
    """The Kubernetes group-versions every hub serves (not TMC's kinds, not CRDs)."""
    return {(r.group, r.version) for r in STATIC_RESOURCES if not is_tmc_group(r.group)}


def parse_index_key(key: str) -> GroupVersionKey | None:
    """`api/v1` -> ("", "v1"); `apis/apps/v1` -> ("apps", "v1"); anything else None."""
    parts = key.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def server_documents(
    client: SyncClient, workspace: str, groups: Iterable[str] = ()
) -> dict[GroupVersionKey, Mapping[str, Any]]:
    """The documents a running hub serves in `workspace`: those of `groups` ("core" for the core group) when given,
    else every group-version except Kubernetes' built-in ones (so TMC's kinds and the workspace's CRDs)."""
    wanted = {"" if g == "core" else g for g in groups}
    builtin = builtin_group_versions()
    prefix = f"/clusters/{workspace}"
    index = client.get(prefix + "/openapi/v3")
    out: dict[GroupVersionKey, Mapping[str, Any]] = {}
    for key, entry in sorted(((index or {}).get("paths") or {}).items()):
        gv = parse_index_key(key)
        if gv is None or not isinstance(entry, Mapping):
            continue
        if (gv[0] not in wanted) if wanted else (gv in builtin):
            continue
        url = str(entry.get("serverRelativeURL") or f"/openapi/v3/{key}")
        document = client.get(prefix + url)
        if isinstance(document, Mapping):
            out[gv] = document
    return out


def kube_minor(document: Mapping[str, Any]) -> str:
    """The Kubernetes minor version a document's server speaks (its `info.version`), for upstream links."""
    match = re.match(r"v1\.(\d+)", str((document.get("info") or {}).get("version") or ""))
    return match.group(1) if match else KUBE_MINOR
