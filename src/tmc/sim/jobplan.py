"""What the Job controller does next, as a pure function of the Job and its pods: status, pods to create
(with their completion index when Indexed) and pods to delete."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tmc.sim.podstatus import is_ready
from tmc.sim.status import epoch_of, get_condition, is_active, job_condition, rfc3339

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETED = "Reached expected number of succeeded pods"


@dataclass
class JobPlan:
    status: dict[str, Any]
    create: list[int | None] = field(default_factory=list)  # one entry per pod; the index, None when NonIndexed
    delete: list[str] = field(default_factory=list)
    recheck: float | None = None  # seconds until activeDeadlineSeconds runs out


def pod_index(pod: Mapping[str, Any]) -> int | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION)
    return int(value) if value is not None and str(value).isdigit() else None


def format_indexes(indexes: Iterable[int]) -> str:
    """Upstream's completedIndexes form: sorted, runs collapsed, e.g. "0-2,5"."""
    out: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, (text or "").split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def _finished(conditions: Iterable[Mapping[str, Any]]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def _excess(active: Sequence[Mapping[str, Any]], count: int) -> list[str]:
    """Which active pods to remove first: not yet ready, then the newest (upstream's ranking, simplified)."""
    ranked = sorted(
        active,
        key=lambda p: (is_ready(p), str((p.get("metadata") or {}).get("creationTimestamp", ""))),
        reverse=False,
    )
    return [_name(p) for p in ranked[: max(count, 0)]]


def plan_job(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: float) -> JobPlan:
    spec = job.get("spec") or {}
    old: Mapping[str, Any] = job.get("status") or {}
    conditions = [dict(c) for c in old.get("conditions") or []]
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism", 1))
    active = [p for p in pods if is_active(p)]
    succeeded_pods = [p for p in pods if _phase(p) == "Succeeded"]
    done_indexes = parse_indexes(str(old.get("completedIndexes") or ""))
    done_indexes.update(i for p in succeeded_pods if (i := pod_index(p)) is not None)
    # Counts never go down, even when finished pods are deleted (upstream tracks them with finalizers).
    succeeded = len(done_indexes) if indexed else max(int(old.get("succeeded") or 0), len(succeeded_pods))
    failed = max(int(old.get("failed") or 0), sum(1 for p in pods if _phase(p) == "Failed"))
    status: dict[str, Any] = {
        "active": len(active),
        "ready": sum(1 for p in active if is_ready(p)),
        "succeeded": succeeded,
        "failed": failed,
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    for key in ("startTime", "completionTime"):
        if old.get(key):
            status[key] = old[key]
    if indexed and done_indexes:
        status["completedIndexes"] = format_indexes(done_indexes)
    plan = JobPlan(status)
    if _finished(conditions):
        plan.delete = [_name(p) for p in active]
        status.update(active=0, ready=0)
        return _finish(plan, conditions)
    if spec.get("suspend"):
        plan.delete = [_name(p) for p in active]
        status.update(active=0, ready=0)
        status.pop("startTime", None)
        conditions = _set(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now)
        return _finish(plan, conditions)
    if (
        get_condition(conditions, "Suspended")
        and (get_condition(conditions, "Suspended") or {}).get("status") == "True"
    ):
        conditions = _set(conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
    status.setdefault("startTime", rfc3339(now))
    failure = _failure(spec, status, failed, now)
    if failure is not None:
        reason, message = failure
        conditions = _set(conditions, "FailureTarget", "True", reason, message, now)
        conditions = _set(conditions, "Failed", "True", reason, message, now)
        plan.delete = [_name(p) for p in active]
        status.update(active=0, ready=0)
        return _finish(plan, conditions)
    complete = succeeded >= completions if completions is not None else succeeded > 0 and not active
    if complete:
        conditions = _set(conditions, "SuccessCriteriaMet", "True", "CompletionsReached", COMPLETED, now)
        conditions = _set(conditions, "Complete", "True", "CompletionsReached", COMPLETED, now)
        status["completionTime"] = rfc3339(now)
        plan.delete = [_name(p) for p in active]
        status.update(active=0, ready=0)
        return _finish(plan, conditions)
    want = parallelism if completions is None else min(parallelism, int(completions) - succeeded)
    if completions is None and succeeded:
        want = len(active)  # a work-queue Job: once one pod succeeded, no new pods start and the rest finish
    if len(active) > want:
        plan.delete = _excess(active, len(active) - want)
    elif indexed:
        running = {i for p in active if (i := pod_index(p)) is not None}
        pending = [i for i in range(int(completions or 0)) if i not in done_indexes and i not in running]
        plan.create = list(pending[: want - len(active)])
    else:
        plan.create = [None] * (want - len(active))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        plan.recheck = max(0.05, epoch_of(status["startTime"]) + int(deadline) - now)
    return _finish(plan, conditions)


def _failure(spec: Mapping[str, Any], status: Mapping[str, Any], failed: int, now: float) -> tuple[str, str] | None:
    if failed > int(spec.get("backoffLimit", 6)):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and epoch_of(status.get("startTime")) + int(deadline) <= now:
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


def _set(
    conditions: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str, now: float
) -> list[dict[str, Any]]:
    current = get_condition(conditions, ctype)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        return conditions
    cond = job_condition(ctype, reason, message, now)
    cond["status"] = status
    if current is None:
        return [*conditions, cond]
    return [cond if c.get("type") == ctype else c for c in conditions]


def _finish(plan: JobPlan, conditions: list[dict[str, Any]]) -> JobPlan:
    status = plan.status
    for key in ("active", "succeeded", "failed"):
        if not status.get(key):
            status.pop(key, None)
    if conditions:
        status["conditions"] = conditions
    return plan
