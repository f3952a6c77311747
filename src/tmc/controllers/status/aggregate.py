"""Summing per-target statuses into the hub object's `.status` (pure functions, no I/O).

Each syncer reports its member cluster's status of an object in `diff.syncer.internal.kcp.io/<key>` as
`{"status": {...}}`, with `status.observedGeneration` already translated into the *hub* object's generation space
by the syncer (it records the hub generation it applied on the downstream object, and reports that generation as
observed only once the member cluster's controller has observed the downstream generation it produced; otherwise
it reports one less). That keeps the hub rule simple: the hub's observedGeneration is the lowest any current target
has observed, and stays where it was until every current target has reported one.

Which targets count: those with `state.workload.kcp.io/<key>=Sync` and no per-target deletion annotation. A target
being removed still runs its pods for a few seconds, but counting it would report availability that is about to go
away; its report stays visible in its annotation until the syncer lets go. A target whose SyncTarget is not Ready
does not count either: its last report says what the cluster ran before it went silent, not what it runs now (the
caller passes those keys as `unready`); if no target counts, the counters read zero.

Replicated kinds (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) have their counters summed and conditions
merged by type, True beating False beating Unknown (kcp's deployment-coordinator rule), except a Job's `Complete`
and `SuccessCriteriaMet`, which are True only when every target's job completed (a job placed on two clusters has not
completed while one of them is still running it). Any other kind gets the lone target's status verbatim (kcp's
"promotion"); with several targets, Services and Ingresses get the union of their load-balancer ingress points and
merged conditions, and other kinds keep `.status` unchanged: there is no general way to sum them, and the
per-target detail stays in the annotations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from tmc.api.rollback import HUB_CONDITIONS
from tmc.api.workload import (
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    STATUS_DIFF_ANNOTATION_PREFIX,
    deletion_annotation,
    status_diff_annotation,
)
from tmc.protocol.view import decode_status_diff

SUMMED_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): (
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "terminatingReplicas",
    ),
    ("apps", "ReplicaSet"): ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
    ("apps", "StatefulSet"): ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"),
    ("apps", "DaemonSet"): (
        "currentNumberScheduled",
        "numberMisscheduled",
        "desiredNumberScheduled",
        "numberReady",
        "updatedNumberScheduled",
        "numberAvailable",
        "numberUnavailable",
    ),
    ("batch", "Job"): ("active", "succeeded", "failed", "ready", "terminating"),
}
# Job conditions that hold for the whole only when they hold on every target.
_ALL_TARGETS_CONDITIONS: dict[tuple[str, str], frozenset[str]] = {
    ("batch", "Job"): frozenset({"Complete", "SuccessCriteriaMet"}),
}
_LOAD_BALANCED = frozenset({("", "Service"), ("networking.k8s.io", "Ingress")})
_RANK = {"True": 2, "False": 1, "Unknown": 0}


def current_targets(obj: Mapping[str, Any]) -> list[str]:
    """Keys of the targets that currently hold the object: Sync label, no deletion annotation. Sorted."""
    md = obj.get("metadata") or {}
    annotations = md.get("annotations") or {}
    out = []
    for name, value in (md.get("labels") or {}).items():
        if name.startswith(STATE_LABEL_PREFIX) and value == STATE_SYNC:
            key = name[len(STATE_LABEL_PREFIX) :]
            if deletion_annotation(key) not in annotations:
                out.append(key)
    return sorted(out)


def has_target_metadata(obj: Mapping[str, Any]) -> bool:
    """Whether the object takes part in the protocol at all (a state label or a status report)."""
    md = obj.get("metadata") or {}
    if any(name.startswith(STATE_LABEL_PREFIX) for name in md.get("labels") or ()):
        return True
    return any(name.startswith(STATUS_DIFF_ANNOTATION_PREFIX) for name in md.get("annotations") or ())


def target_reports(obj: Mapping[str, Any], targets: Iterable[str]) -> dict[str, dict[str, Any]]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    out: dict[str, dict[str, Any]] = {}
    for key in targets:
        status = decode_status_diff(annotations.get(status_diff_annotation(key)))
        if status is not None:
            out[key] = status
    return out


def aggregate_status(
    group: str, kind: str, obj: Mapping[str, Any], unready: Collection[str] = ()
) -> dict[str, Any] | None:
    """The `.status` the hub object should have, or None to leave it as it is. `unready`: keys of SyncTargets that
    are not Ready, whose reports are stale."""
    if not has_target_metadata(obj):
        return None  # not managed by TMC
    targets = current_targets(obj)
    if not targets:
        return None  # unassigned: the last summary stays until the object is placed again
    if unready:
        targets = [k for k in targets if k not in unready]
        if not targets and (group, kind) not in SUMMED_FIELDS:
            return None  # nothing current to promote or merge: keep what is there
    reports = target_reports(obj, targets)
    old = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    if (group, kind) in SUMMED_FIELDS:
        return _summed(group, kind, targets, reports, old or {})
    if len(targets) == 1:
        return reports.get(targets[0])
    if (group, kind) in _LOAD_BALANCED and reports:
        return _load_balanced(reports)
    return None


def _summed(
    group: str, kind: str, targets: list[str], reports: dict[str, dict[str, Any]], old: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SUMMED_FIELDS[(group, kind)]:
        values = [int(r[name]) for r in reports.values() if isinstance(r.get(name), int)]
        if values:
            out[name] = sum(values)
    generation = observed_generation(targets, reports, old)
    if generation is not None:
        out["observedGeneration"] = generation
    conditions = merge_conditions(
        (reports[k].get("conditions") for k in sorted(reports)),
        _ALL_TARGETS_CONDITIONS.get((group, kind), frozenset()),
        expected=len(targets),
    )
    # Conditions the hub's own controllers set (RolledBack) are not in any report: keep them.
    conditions += [c for c in old.get("conditions") or () if isinstance(c, dict) and c.get("type") in HUB_CONDITIONS]
    if conditions:
        out["conditions"] = conditions
    if kind == "Job":
        _job_times(out, targets, reports)
    elif kind == "Deployment" and reports:
        collisions = [int(r.get("collisionCount") or 0) for r in reports.values()]
        if any(collisions):
            out["collisionCount"] = max(collisions)
    return out


def observed_generation(
    targets: list[str], reports: Mapping[str, Mapping[str, Any]], old: Mapping[str, Any]
) -> int | None:
    """The lowest hub generation every current target has observed; the previous value while one has not said."""
    observed = [reports[k].get("observedGeneration") for k in targets if k in reports]
    if observed and len(observed) == len(targets) and all(isinstance(g, int) for g in observed):
        return min(int(g) for g in observed if isinstance(g, int))
    previous = old.get("observedGeneration")
    return int(previous) if isinstance(previous, int) else None


def merge_conditions(
    per_target: Iterable[Any], all_required: frozenset[str] = frozenset(), expected: int = 0
) -> list[dict[str, Any]]:
    """Conditions merged by type: True beats False beats Unknown (the first target wins ties, targets being given in
    key order); a type in `all_required` is True only when all `expected` targets say True."""
    best: dict[str, dict[str, Any]] = {}
    true_counts: dict[str, int] = {}
    worst: dict[str, dict[str, Any]] = {}
    for conditions in per_target:
        for cond in conditions or ():
            if not isinstance(cond, dict) or not cond.get("type"):
                continue
            ctype = str(cond["type"])
            rank = _RANK.get(str(cond.get("status")), 0)
            if ctype not in best or rank > _RANK.get(str(best[ctype].get("status")), 0):
                best[ctype] = cond
            if rank == _RANK["True"]:
                true_counts[ctype] = true_counts.get(ctype, 0) + 1
            elif ctype not in worst:
                worst[ctype] = cond
    out = []
    for ctype, cond in best.items():
        if ctype in all_required and true_counts.get(ctype, 0) < expected:
            pending = worst.get(ctype) or {
                "type": ctype,
                "status": "False",
                "reason": "TargetsPending",
                "message": f"{true_counts.get(ctype, 0)} of {expected} sync targets report {ctype}",
            }
            out.append(dict(pending))
        else:
            out.append(dict(cond))
    return out


def _job_times(out: dict[str, Any], targets: list[str], reports: Mapping[str, Mapping[str, Any]]) -> None:
    starts = [str(r["startTime"]) for r in reports.values() if r.get("startTime")]
    if starts:
        out["startTime"] = min(starts)  # RFC 3339 UTC strings sort chronologically
    completions = [
        str(reports[k]["completionTime"]) for k in targets if k in reports and reports[k].get("completionTime")
    ]
    if completions and len(completions) == len(targets):
        out["completionTime"] = max(completions)


def _load_balanced(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    ingress: list[Any] = []
    for key in sorted(reports):
        for point in ((reports[key].get("loadBalancer") or {}).get("ingress")) or ():
            if point not in ingress:
                ingress.append(point)
    out: dict[str, Any] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
    conditions = merge_conditions(reports[k].get("conditions") for k in sorted(reports))
    if conditions:
        out["conditions"] = conditions
    return out
