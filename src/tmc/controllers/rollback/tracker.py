"""The fleet outcome of a workload's newest revision: per SyncTarget, Progressing until the cluster's report shows
the revision's generation observed with every replica updated and available (Available, with the seconds it took),
or Failed once the progress deadline (the RollbackPolicy's, else the workload's progressDeadlineSeconds, else 600 s)
passes without that. A revision available on every cluster is `healthy` for good: the target of automatic rollback.
"""

from __future__ import annotations

from typing import Any

import orjson

from tmc.api.rollback import AVAILABLE, DEFAULT_PROGRESS_DEADLINE, FAILED, PROGRESSING
from tmc.api.workload import spec_diff_annotation, status_diff_annotation
from tmc.controllers.rollback import metrics
from tmc.controllers.rollback.context import Shared, WorkloadKey, now, parse_stamp, stamp
from tmc.controllers.rollback.recorder import write_status
from tmc.controllers.rollback.snapshot import cluster_report
from tmc.controllers.status.aggregate import current_targets
from tmc.protocol.workloads import replicas_of

# Seconds between status writes of a revision that stays Progressing: its per-cluster progress is for people to
# read, and each write is a hub write per workload change (docs/performance.md, "Rollback").
STATUS_INTERVAL = 5.0


def deadline_of(obj: dict[str, Any], policy: dict[str, Any] | None) -> float:
    for source in ((policy or {}).get("spec") or {}, obj.get("spec") or {}):
        value = source.get("progressDeadlineSeconds")
        if isinstance(value, int) and value > 0:
            return float(value)
    return float(DEFAULT_PROGRESS_DEADLINE)


def _share(obj: dict[str, Any], key: str) -> int | None:
    """Replicas this target should run: its spec-diff override when replicas are divided, else spec.replicas."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(spec_diff_annotation(key))
    if raw:
        try:
            for op in orjson.loads(raw):
                if isinstance(op, dict) and op.get("path") == "/replicas" and isinstance(op.get("value"), int):
                    return int(op["value"])
        except orjson.JSONDecodeError:
            pass
    return replicas_of(obj)


def fleet_status(
    shared: Shared, obj: dict[str, Any], rev: dict[str, Any], generation: int, deadline: float, t: float
) -> dict[str, Any]:
    """The revision's status as the workload's reports show it at time `t`."""
    old = rev.get("status") or {}
    started = parse_stamp(old.get("startedAt")) or t
    previous = {c.get("name"): c for c in old.get("clusters") or () if isinstance(c, dict)}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    kind = str(obj.get("kind", ""))
    clusters = []
    for key in current_targets(obj):
        name = shared.target_names.get(key, key)
        before = previous.get(name) or {}
        report = cluster_report(kind, annotations.get(status_diff_annotation(key)), _share(obj, key))
        if report is not None and report.generation >= generation and report.available:
            state = AVAILABLE
        elif before.get("state") == AVAILABLE:
            state = AVAILABLE  # once available, the revision's outcome there is settled
        elif t - started > deadline:
            state = FAILED
        else:
            state = PROGRESSING
        entry: dict[str, Any] = {"name": name, "state": state}
        entry["since"] = before["since"] if before.get("state") == state and before.get("since") else stamp(t)
        if state == AVAILABLE:
            entry["seconds"] = before.get("seconds", round(max(0.0, t - started), 3))
        clusters.append(entry)
    clusters.sort(key=lambda c: str(c["name"]))
    states = {c["state"] for c in clusters}
    status = {**old, "clusters": clusters}
    status.setdefault("startedAt", stamp(started))
    if old.get("phase") in (AVAILABLE, FAILED, PROGRESSING) or "phase" not in old:
        if clusters and states == {AVAILABLE}:
            status["phase"] = AVAILABLE
            status["healthy"] = True
            status.setdefault("completedAt", stamp(t))
            status["message"] = f"available on {len(clusters)} cluster(s)"
        elif FAILED in states and PROGRESSING not in states:
            status["phase"] = FAILED
            failed = [c["name"] for c in clusters if c["state"] == FAILED]
            status["message"] = f"not available within {deadline:g}s on: {', '.join(failed)}"
        else:
            status["phase"] = PROGRESSING
    return status


async def track(
    shared: Shared, wk: WorkloadKey, obj: dict[str, Any], rev: dict[str, Any], policy: dict[str, Any] | None
) -> tuple[dict[str, Any], float | None]:
    """Update the newest revision's fleet status; returns it and when to look again (or None).

    While the phase stays Progressing the status is written at most every STATUS_INTERVAL seconds, the first time
    STATUS_INTERVAL after the revision was recorded (what is seen in between is kept in memory, with its times), so a
    rollout to many clusters costs a few writes, not one per cluster; a change of phase is written at once."""
    t = now()
    deadline = deadline_of(obj, policy)
    generation = int((obj.get("metadata") or {}).get("generation") or 1)
    uid = str((rev.get("metadata") or {}).get("uid", ""))
    cached = shared.progress.get(uid)
    seen = rev if cached is None else {**rev, "status": cached[1]}
    status = fleet_status(shared, obj, seen, generation, deadline, t)
    became_healthy = status.get("healthy") and not (seen.get("status") or {}).get("healthy")
    progressing = status.get("phase") == PROGRESSING
    started = parse_stamp(status.get("startedAt")) or t
    until_deadline = max(0.05, started + deadline - t + 0.05)
    stored_phase = (rev.get("status") or {}).get("phase")
    unwritten = stored_phase in (PROGRESSING, None)  # None: a new revision whose status is not written yet
    if progressing and unwritten and cached is not None and t - cached[0] < STATUS_INTERVAL:
        shared.progress[uid] = (cached[0], status)
        return {**rev, "status": status}, min(until_deadline, cached[0] + STATUS_INTERVAL - t + 0.01)
    rev = await write_status(shared, wk, rev, status)
    if progressing:
        shared.progress[uid] = (t, status)
    else:
        shared.progress.pop(uid, None)
    key = f"/registry/{wk.group or 'core'}/{wk.plural}/{wk.cluster}/{wk.namespace}/{wk.name}"
    pending = shared.pending.get(key)
    if became_healthy and pending is not None and pending.fingerprint == (rev.get("spec") or {}).get("fingerprint"):
        metrics.ROLLBACK_SECONDS.observe(t - pending.started)
        shared.pending.pop(key, None)
    return rev, until_deadline if progressing else None
