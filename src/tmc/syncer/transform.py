"""What the syncer writes downstream for an upstream object, and what it reports back up (pure functions).

Down: the object the syncer virtual workspace served (spec diff already applied, status and other targets'
bookkeeping already removed) minus everything that belongs to the hub: identity and bookkeeping metadata, owner
references (their UIDs mean nothing downstream), finalizers, the workspace and trace annotations and the state
labels, plus the `internal.workload.kcp.io/cluster` label that marks the copy as this target's, and the hub
generation the copy was made from (so status can say which hub generation the member cluster has observed).

Up: only `.status`, with `observedGeneration` translated into hub generations: the hub generation applied if the
member cluster's controller has observed the downstream generation, one less otherwise.
"""

from __future__ import annotations

from typing import Any

from tmc.api.workload import (
    CLUSTER_ANNOTATION,
    DELETION_ANNOTATION_PREFIX,
    DOWNSTREAM_CLUSTER_LABEL,
    SOFT_FINALIZERS_ANNOTATION_PREFIX,
    SPEC_DIFF_ANNOTATION_PREFIX,
    STATE_LABEL_PREFIX,
    STATUS_DIFF_ANNOTATION_PREFIX,
    SYNC_CONTROL_PREFIX,
)
from tmc.observability.tracing import TRACEPARENT_ANNOTATION
from tmc.protocol.workloads import references

# On downstream objects: the hub `metadata.generation` the copy was made from.
UPSTREAM_GENERATION_ANNOTATION = "internal.workload.kcp.io/upstream-generation"
# kubectl's record of the *hub* apply; meaningless (and large) downstream. The trace context of the hub write
# belongs to the hub's trace; the member cluster's objects never carry it.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_HUB_ONLY_ANNOTATIONS = (CLUSTER_ANNOTATION, _LAST_APPLIED, TRACEPARENT_ANNOTATION)
_HUB_ANNOTATION_PREFIXES = (
    DELETION_ANNOTATION_PREFIX,
    SOFT_FINALIZERS_ANNOTATION_PREFIX,
    SPEC_DIFF_ANNOTATION_PREFIX,
    STATUS_DIFF_ANNOTATION_PREFIX,
    # Pause and force requests and the syncer's own reports (docs/syncer.md): they steer the syncer, not the workload.
    SYNC_CONTROL_PREFIX,
)
# The member cluster publishes its own CA bundle under this name in every namespace; the hub's copy must not
# overwrite it (https://github.com/kcp-dev/kcp/issues/1787), so it travels under kcp's name for it.
_RENAMED = {("configmaps", "kube-root-ca.crt"): "kcp-root-ca.crt"}
_RENAMED_BACK = {(resource, down): up for (resource, up), down in _RENAMED.items()}


def downstream_name(resource: str, name: str) -> str:
    return _RENAMED.get((resource, name), name)


def upstream_name(resource: str, name: str) -> str:
    return _RENAMED_BACK.get((resource, name), name)


def downstream_object(view: dict[str, Any], resource: str, key: str, namespace: str) -> dict[str, Any]:
    """The object to write into downstream `namespace` for an upstream view."""
    src = view.get("metadata") or {}
    md: dict[str, Any] = {"name": downstream_name(resource, str(src.get("name"))), "namespace": namespace}
    labels = {k: v for k, v in (src.get("labels") or {}).items() if not k.startswith(STATE_LABEL_PREFIX)}
    labels[DOWNSTREAM_CLUSTER_LABEL] = key
    md["labels"] = labels
    annotations = {
        k: v
        for k, v in (src.get("annotations") or {}).items()
        if k not in _HUB_ONLY_ANNOTATIONS and not k.startswith(_HUB_ANNOTATION_PREFIXES)
    }
    if isinstance(src.get("generation"), int):
        annotations[UPSTREAM_GENERATION_ANNOTATION] = str(src["generation"])
    if annotations:
        md["annotations"] = annotations
    out: dict[str, Any] = {k: v for k, v in view.items() if k not in ("metadata", "status")}
    out["metadata"] = md
    return out


def merge_patch(previous: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that makes the downstream object match `desired` in every field the syncer manages:
    all of `desired`, plus a null for each map key the previous apply set that `desired` no longer has. Fields other
    writers added downstream (defaults, controller annotations) are left alone; lists are replaced whole."""
    if previous is None:
        return desired
    out: dict[str, Any] = {}
    for name, value in desired.items():
        old = previous.get(name)
        out[name] = merge_patch(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    for name in previous:
        if name not in desired:
            out[name] = None
    return out


def upstream_status(downstream: dict[str, Any]) -> dict[str, Any] | None:
    """The status to report for a downstream object, observedGeneration in hub generations; None when it has none."""
    status = downstream.get("status")
    if not isinstance(status, dict) or not status:
        return None
    md = downstream.get("metadata") or {}
    observed = status.get("observedGeneration")
    hub_generation = (md.get("annotations") or {}).get(UPSTREAM_GENERATION_ANNOTATION)
    if isinstance(observed, int) and hub_generation and str(hub_generation).isdigit():
        applied = int(hub_generation)
        caught_up = observed >= int(md.get("generation") or 0)
        status = {**status, "observedGeneration": applied if caught_up else applied - 1}
    return status


def referenced_config(obj: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) a workload's pod template refers to, in its own namespace."""
    refs = references(obj)
    return {n for p, n in refs if p == "configmaps"}, {n for p, n in refs if p == "secrets"}
