"""What a revision is made of, and how a revision fares on one cluster (pure functions over objects, no I/O).

A revision is the workload's pod template (its whole spec for a custom resource) plus the content of the ConfigMaps
and Secrets that template references. Replica counts are not part of it, as in Kubernetes: scaling is not a new
revision and an undo does not scale. Two states with the same fingerprint are the same revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tmc.api.rollback import OPT_IN_ANNOTATION
from tmc.protocol.view import decode_status_diff
from tmc.protocol.workloads import references

# (group, plural) -> kind of the built-in kinds that always get revisions.
BUILTIN_KINDS: dict[tuple[str, str], str] = {
    ("apps", "deployments"): "Deployment",
    ("apps", "statefulsets"): "StatefulSet",
    ("apps", "daemonsets"): "DaemonSet",
}
PLURAL_OF_KIND = {kind: plural for (_, plural), kind in BUILTIN_KINDS.items()}


def tracked(group: str, plural: str, obj: Mapping[str, Any]) -> bool:
    """Deployments, StatefulSets and DaemonSets always; other kinds when annotated `rollback.tmc.kcp.io/revisions`."""
    if (group, plural) in BUILTIN_KINDS:
        return True
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(OPT_IN_ANNOTATION) == "true"


def template_of(obj: Mapping[str, Any]) -> Any:
    """The part of the spec a revision restores: spec.template for built-ins, the whole spec otherwise."""
    spec = obj.get("spec") or {}
    if str(obj.get("apiVersion", "")).startswith("apps/"):
        return spec.get("template") or {}
    return {k: v for k, v in spec.items() if k != "replicas"}


def referenced(obj: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(ConfigMap names, Secret names) the pod template references, sorted."""
    refs = references(obj)
    return sorted(n for p, n in refs if p == "configmaps"), sorted(n for p, n in refs if p == "secrets")


def secret_digest(secret: Mapping[str, Any] | None) -> str:
    if secret is None:
        return ""
    body = {"type": secret.get("type", ""), "data": secret.get("data") or {}}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def configmap_entry(name: str, cm: Mapping[str, Any] | None) -> dict[str, Any]:
    if cm is None:
        return {"name": name, "present": False}
    entry: dict[str, Any] = {"name": name, "present": True, "data": cm.get("data") or {}}
    if cm.get("binaryData"):
        entry["binaryData"] = cm["binaryData"]
    return entry


def secret_entry(name: str, secret: Mapping[str, Any] | None) -> dict[str, Any]:
    if secret is None:
        return {"name": name, "present": False}
    return {
        "name": name,
        "present": True,
        "sha256": secret_digest(secret),
        "keys": sorted((secret.get("data") or {}).keys()),
    }


def fingerprint(template: Any, configmaps: list[dict[str, Any]], secrets: list[dict[str, Any]]) -> str:
    """SHA-256 over the template, ConfigMap content and Secret digests: equal fingerprints, same revision."""
    body = {"template": template, "configMaps": configmaps, "secrets": [(s["name"], s.get("sha256")) for s in secrets]}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class ClusterReport:
    """One member cluster's report of the workload, as its syncer wrote it to the hub."""

    generation: int  # the hub generation it has observed (-1 when unknown)
    available: bool  # all replicas run the observed generation and are available
    message: str = ""


def cluster_report(kind: str, raw: Any, share: int | None) -> ClusterReport | None:
    """Read a `diff.syncer.internal.kcp.io/<key>` annotation; `share` is the replicas this cluster should run
    (None: take the report's own count). None when there is no report yet."""
    status = decode_status_diff(raw)
    if status is None:
        return None
    observed = status.get("observedGeneration")
    generation = int(observed) if isinstance(observed, int) else -1

    def n(name: str) -> int:
        value = status.get(name)
        return int(value) if isinstance(value, int) else 0

    if kind == "DaemonSet":
        desired = n("desiredNumberScheduled")
        ok = n("updatedNumberScheduled") == desired and n("numberAvailable") >= desired
        return ClusterReport(generation, ok, f"{n('numberAvailable')}/{desired} available")
    want = n("replicas") if share is None else share
    total = n("replicas")
    ok = n("updatedReplicas") >= want and n("availableReplicas") >= want and total <= want
    if kind == "StatefulSet":
        ok = ok and status.get("currentRevision", "") == status.get("updateRevision", "")
    if kind not in ("Deployment", "StatefulSet"):  # an opted-in custom resource: trust its Available condition
        ok = any(
            isinstance(c, dict) and c.get("type") in ("Available", "Ready") and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
    return ClusterReport(generation, ok, f"{n('updatedReplicas')} updated, {n('availableReplicas')}/{want} available")
