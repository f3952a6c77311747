"""Per-cluster state of a rollout, read from the placement protocol on the hub objects: which SyncTargets the
target is placed on (`state.workload.kcp.io/<key>=Sync`), each one's replica share (the spec-diff annotation, else
spec.replicas) and what its syncer reported (`diff.syncer.internal.kcp.io/<key>`), for the canary (the target) and
the stable copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tmc.api.canary import FIRST_WAVE, REST_WAVE
from tmc.api.workload import (
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    deletion_annotation,
    spec_diff_annotation,
    status_diff_annotation,
)
from tmc.controllers.canary.machine import wave_weights
from tmc.controllers.canary.plan import Plan
from tmc.controllers.canary.routing import REVISION_ANNOTATION
from tmc.protocol.view import decode_status_diff


@dataclass(frozen=True)
class Share:
    desired: int
    ready: int


@dataclass
class ClusterView:
    names: list[str] = field(default_factory=list)  # the clusters the canary runs in
    canary_ready: bool = False
    stable_ready: bool = False
    clusters: list[dict[str, Any]] = field(default_factory=list)


def placed(obj: dict[str, Any] | None) -> list[str]:
    """Keys of the SyncTargets the object is placed on and not leaving."""
    if obj is None:
        return []
    md = obj.get("metadata") or {}
    annotations = md.get("annotations") or {}
    return sorted(
        label.removeprefix(STATE_LABEL_PREFIX)
        for label, value in (md.get("labels") or {}).items()
        if label.startswith(STATE_LABEL_PREFIX)
        and value == STATE_SYNC
        and deletion_annotation(label.removeprefix(STATE_LABEL_PREFIX)) not in annotations
    )


def share(obj: dict[str, Any] | None, key: str) -> Share | None:
    """The object's desired and Ready replicas on one target; Ready counts only a report of the current generation
    (an older one describes pods of an older spec). None when it is not placed there."""
    if obj is None or key not in placed(obj):
        return None
    md = obj.get("metadata") or {}
    annotations = md.get("annotations") or {}
    desired = int((obj.get("spec") or {}).get("replicas", 1) or 0)
    diff = annotations.get(spec_diff_annotation(key))
    if diff:
        try:
            for op in orjson.loads(diff):
                if op.get("path") == "/replicas":
                    desired = int(op.get("value") or 0)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            pass
    report = decode_status_diff(annotations.get(status_diff_annotation(key))) or {}
    current = int(report.get("observedGeneration") or 0) >= int(md.get("generation") or 1)
    ready = min(int(report.get("readyReplicas") or 0), int(report.get("updatedReplicas") or 0)) if current else 0
    return Share(desired, ready)


def _all_ready(obj: dict[str, Any] | None, keys: list[str]) -> bool:
    if obj is None or not keys:
        return False
    for key in keys:
        s = share(obj, key)
        if s is None or s.ready < s.desired:
            return False
    return True


def cluster_view(
    plan: Plan,
    target: dict[str, Any],
    stable: dict[str, Any] | None,
    names: dict[str, str],
    status: dict[str, Any],
    first: set[str] | None = None,
) -> ClusterView:
    """What the rollout looks like in every cluster, given the status the controller holds; `first`: the keys of
    the first wave's clusters (None without spec.clusters)."""
    keys = placed(target) or placed(stable)
    view = ClusterView(names=[names.get(k, k) for k in keys])
    written = status.get("canaryReplicas")
    spec_replicas = (target.get("spec") or {}).get("replicas")
    # Only the size the controller last wrote counts: until then the target's pods are not the canary's size yet.
    view.canary_ready = (written is None or spec_replicas == written) and (
        spec_replicas == 0 or _all_ready(target, placed(target))
    )
    want = status.get("promotingRevision") or status.get("stableRevision")
    stable_rev = ((stable or {}).get("metadata") or {}).get("annotations", {}).get(REVISION_ANNOTATION)
    view.stable_ready = (
        stable is not None
        and stable_rev == want
        and (stable.get("spec") or {}).get("replicas") == status.get("replicas")
        and _all_ready(stable, placed(stable))
    )
    first_weight, rest_weight = wave_weights(status)
    for key in keys:
        c, s = share(target, key), share(stable, key)
        entry: dict[str, Any] = {
            "cluster": names.get(key, key),
            "canaryReplicas": c.desired if c else 0,
            "canaryReady": c.ready if c else 0,
            "stableReplicas": s.desired if s else 0,
            "stableReady": s.ready if s else 0,
        }
        if first is not None:
            entry["wave"] = FIRST_WAVE if key in first else REST_WAVE
        if plan.mesh:
            entry["weight"] = first_weight if first is not None and key in first else rest_weight
        else:  # the canary's share of the Ready pods behind the Service
            total = entry["canaryReady"] + entry["stableReady"]
            entry["weight"] = round(100 * entry["canaryReady"] / total) if total else 0
        view.clusters.append(entry)
    return view
