"""Discovery documents: `/version`, legacy `/api`, `/apis`, `/apis/<g>`, `/api(s)/.../<v>` and aggregated discovery v2.

Everything here is a pure function of the workspace's served resources; the HTTP layer serialises the results and
caches them until the workspace's set of resources changes. Clients pick the document format from the response
Content-Type, so the aggregated documents must be sent with AGGREGATED_CONTENT_TYPE and the rest with JSON_CONTENT_TYPE.
"""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any

from tmc.apimachinery.resources import ResourceInfo

# client-go only parses a body as aggregated discovery when the Content-Type says so (parameter order is free).
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
JSON_CONTENT_TYPE = "application/json"
AGGREGATED_API_VERSION = "apidiscovery.k8s.io/v2"

KUBE_MAJOR = "1"
KUBE_MINOR = "32"
KUBE_PATCH = "0"

# Upstream APIService GroupPriorityMinimum for the built-in groups: discovery lists groups by descending priority
# (then by name), and kubectl's RESTMapper prefers earlier groups when a short name is ambiguous.
# CRD-defined groups get 1000 upstream, which also covers kcp's own groups here.
_GROUP_PRIORITY: dict[str, int] = {
    "": 18000,
    "apiregistration.k8s.io": 18000,
    "apps": 17800,
    "events.k8s.io": 17750,
    "authentication.k8s.io": 17700,
    "authorization.k8s.io": 17600,
    "autoscaling": 17500,
    "batch": 17400,
    "certificates.k8s.io": 17300,
    "networking.k8s.io": 17200,
    "policy": 17100,
    "rbac.authorization.k8s.io": 17000,
    "storage.k8s.io": 16800,
    "admissionregistration.k8s.io": 16700,
    "apiextensions.k8s.io": 16700,
    "scheduling.k8s.io": 16600,
    "coordination.k8s.io": 16500,
    "node.k8s.io": 16300,
    "discovery.k8s.io": 16200,
    "flowcontrol.apiserver.k8s.io": 16100,
}
_CUSTOM_GROUP_PRIORITY = 1000

_KUBE_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_STABILITY_RANK = {None: 0, "beta": 1, "alpha": 2}

# Verbs of the subresources this server serves, as upstream advertises them.
_SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "finalize": ("update",),
}
SCALE_GVK = ("autoscaling", "v1", "Scale")


def version_sort_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA > beta > alpha > anything else; higher numbers first, others by name."""
    m = _KUBE_VERSION.fullmatch(version)
    if m is None:
        return (3, 0, 0, version)
    return (_STABILITY_RANK[m.group(2)], -int(m.group(1)), -int(m.group(3) or 0), "")


def _group_sort_key(group: str) -> tuple[int, str]:
    return (-_GROUP_PRIORITY.get(group, _CUSTOM_GROUP_PRIORITY), group)


def group_versions(resources: Iterable[ResourceInfo]) -> list[tuple[str, list[str]]]:
    """Served (group, [versions]) with groups and versions in preference order; the core group comes first."""
    found: dict[str, set[str]] = {}
    for r in resources:
        found.setdefault(r.group, set()).add(r.version)
    return [(g, sorted(found[g], key=version_sort_key)) for g in sorted(found, key=_group_sort_key)]


def _gv_string(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _in_gv(resources: Iterable[ResourceInfo], group: str, version: str) -> list[ResourceInfo]:
    return sorted((r for r in resources if r.group == group and r.version == version), key=lambda r: r.plural)


def storage_version_hash(info: ResourceInfo) -> str:
    """Upstream's opaque hash of the storage GVK: base64 of the first 8 bytes of sha256("group/version/kind")."""
    version = info.storage_version or info.version
    digest = hashlib.sha256(f"{info.group}/{version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def subresource_kind(info: ResourceInfo, subresource: str) -> tuple[str, str, str]:
    """(group, version, kind) a subresource request and response carry."""
    if subresource == "scale":
        return SCALE_GVK
    return (info.group, info.version, info.kind)


def subresource_verbs(subresource: str) -> tuple[str, ...]:
    return _SUBRESOURCE_VERBS.get(subresource, ("get",))


# ------------------------------------------------------------------------------------------------ /version


def _package_version() -> str:
    try:
        raw = metadata.version("tmc")
    except metadata.PackageNotFoundError:
        raw = "0.0.0"
    # The suffix goes into semver build metadata, which allows only [0-9A-Za-z-.].
    return re.sub(r"[^0-9A-Za-z.-]", "-", raw)


def _go_platform() -> str:
    system = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386", "i686": "386"}
    return f"{system}/{arch.get(machine, machine or 'unknown')}"


def version_info(*, git_commit: str = "", build_date: str = "1970-01-01T00:00:00Z") -> dict[str, str]:
    """`/version`: every field is a string; major/minor are plain integers (the conformance test parses them)."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.{KUBE_PATCH}+tmc-{_package_version()}",
        "gitCommit": git_commit,
        "gitTreeState": "clean" if git_commit else "",
        "buildDate": build_date,
        # Clients only display these two; say what actually runs instead of imitating a Go toolchain.
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": _go_platform(),
    }


# ------------------------------------------------------------------------------------------------ legacy discovery


def legacy_api_versions(server_address: str = "") -> dict[str, Any]:
    """`/api` (APIVersions). The Python client requires serverAddressByClientCIDRs to be a list."""
    cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}] if server_address else []
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}


def _group_entry(group: str, versions: Sequence[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": _gv_string(group, v), "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """`/apis` (APIGroupList): every named group with its versions in preference order."""
    groups = [_group_entry(g, vs) for g, vs in group_versions(resources) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(resources: Iterable[ResourceInfo], group: str) -> dict[str, Any] | None:
    """`/apis/<group>` (APIGroup), or None when the workspace serves nothing in that group."""
    for g, versions in group_versions(resources):
        if g == group and g:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, versions)}
    return None


def _api_resources(info: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    main["storageVersionHash"] = storage_version_hash(info)
    out = [main]
    for sub in info.subresources:
        group, version, kind = subresource_kind(info, sub)
        entry: dict[str, Any] = {"name": f"{info.plural}/{sub}", "singularName": "", "namespaced": info.namespaced}
        if (group, version) != (info.group, info.version):
            entry["group"], entry["version"] = group, version
        entry["kind"] = kind
        entry["verbs"] = list(subresource_verbs(sub))
        out.append(entry)
    return out


def api_resource_list(resources: Iterable[ResourceInfo], group: str, version: str) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/<g>/<v>` (APIResourceList, subresources as `plural/sub` entries), None if not served."""
    infos = _in_gv(resources, group, version)
    if not infos:
        return None
    entries = [e for info in infos for e in _api_resources(info)]
    entries.sort(key=lambda e: str(e["name"]))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _gv_string(group, version),
        "resources": entries,
    }


# ------------------------------------------------------------------------------------------------ aggregated (v2)


def _aggregated_resource(info: ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": sorted(info.verbs),
    }
    if info.short_names:
        out["shortNames"] = list(info.short_names)
    if info.categories:
        out["categories"] = list(info.categories)
    subs = []
    for sub in sorted(info.subresources):
        group, version, kind = subresource_kind(info, sub)
        subs.append(
            {
                "subresource": sub,
                # Mandatory: client-go drops subresources (and resources) without a responseKind.
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": list(subresource_verbs(sub)),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


def _aggregated_group(resources: Sequence[ResourceInfo], group: str, versions: Sequence[str]) -> dict[str, Any]:
    items = [
        {
            "version": v,
            "resources": [_aggregated_resource(r) for r in _in_gv(resources, group, v)],
            "freshness": "Current",
        }
        for v in versions
    ]
    return {"metadata": {"name": group} if group else {}, "versions": items}


def _aggregated_list(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "APIGroupDiscoveryList", "apiVersion": AGGREGATED_API_VERSION, "metadata": {}, "items": groups}


def aggregated_core(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """Aggregated `/api`: the core group only (send with AGGREGATED_CONTENT_TYPE)."""
    infos = list(resources)
    groups = [_aggregated_group(infos, g, vs) for g, vs in group_versions(infos) if not g]
    return _aggregated_list(groups)


def aggregated_groups(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """Aggregated `/apis`: every named group, versions in preference order (send with AGGREGATED_CONTENT_TYPE)."""
    infos = list(resources)
    groups = [_aggregated_group(infos, g, vs) for g, vs in group_versions(infos) if g]
    return _aggregated_list(groups)
