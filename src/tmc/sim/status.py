"""Status of the workload kinds computed as upstream's controllers compute it, as pure functions.

Zero counts are left out where the Kubernetes types mark them `omitempty`, so the objects read exactly like a
real cluster's (a client must treat a missing `availableReplicas` as 0, as it must against a real cluster).
"""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from tmc.apimachinery.meta import parse_rfc3339
from tmc.sim.podstatus import is_available, is_ready, ready_since

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
# kube's SafeEncodeString alphabet: no vowels, no digits that read like letters.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(stamp: Any) -> float:
    return parse_rfc3339(str(stamp)).timestamp() if stamp else 0.0


def _omit_zero(status: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if not status.get(key):
            status.pop(key, None)
    return status


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """Upstream's ComputeHash shape: FNV-32a of the template (and collision count), decimal digits mapped
    onto the safe alphabet, so names look like `web-7c5ddbdf54`."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return "".join(_SAFE[int(d) % len(_SAFE)] for d in f"{fnv32a(data):010d}")


def without_hash_label(template: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value or 0)


def surge_and_unavailable(deploy: Mapping[str, Any]) -> tuple[int, int]:
    """maxSurge (rounded up) and maxUnavailable (rounded down); both 0 would deadlock, so unavailable becomes 1."""
    spec = deploy.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


# ---------------------------------------------------------------- conditions


def get_condition(conditions: Iterable[Mapping[str, Any]], ctype: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == ctype), None)


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream's SetDeploymentCondition: same status and reason is a no-op; a changed condition moves to the
    end, keeping lastTransitionTime when only the reason changed."""
    current = get_condition(conditions, str(new["type"]))
    if current is not None and current.get("status") == new["status"] and current.get("reason") == new.get("reason"):
        return conditions
    if current is not None and current.get("status") == new["status"]:
        new = {**new, "lastTransitionTime": current.get("lastTransitionTime", new["lastTransitionTime"])}
    return [*(c for c in conditions if c.get("type") != new["type"]), new]


def deployment_condition(ctype: str, status: str, reason: str, message: str, now: float) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def job_condition(ctype: str, reason: str, message: str, now: float) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": ctype,
        "status": "True",
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


# ---------------------------------------------------------------- ReplicaSet


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted (upstream FilterActivePods)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def availability_recheck(pods: Iterable[Mapping[str, Any]], min_ready: int, now: float) -> float | None:
    """Seconds until the next Ready pod becomes available under minReadySeconds (None: nothing pending)."""
    waits = [
        since + min_ready - now
        for pod in pods
        if (since := ready_since(pod)) is not None and not is_available(pod, min_ready, now)
    ]
    return max(0.05, min(waits)) if waits else None


def replicaset_status(rs: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: float) -> dict[str, Any]:
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    active = [p for p in pods if is_active(p)]

    def fully_labeled(pod: Mapping[str, Any]) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in template_labels.items())

    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active if fully_labeled(p)),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "observedGeneration": (rs.get("metadata") or {}).get("generation", 1),
    }
    conditions = (rs.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return _omit_zero(status, "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


# ---------------------------------------------------------------- Deployment


def _count(rses: Iterable[Mapping[str, Any]], part: str, key: str) -> int:
    return sum(int((rs.get(part) or {}).get(key) or 0) for rs in rses)


def deployment_complete(replicas: int, status: Mapping[str, Any], generation: int) -> bool:
    return (
        status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("observedGeneration", 0) >= generation
    )


def deployment_progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return (
        new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
        or new_old < old_old
        or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
        or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
    )


def deployment_status(
    deploy: Mapping[str, Any],
    rses: Sequence[Mapping[str, Any]],
    new_rs: Mapping[str, Any] | None,
    now: float,
    created: str = "",
) -> tuple[dict[str, Any], float | None]:
    """The Deployment's next status and, when the progress deadline is running, seconds until it expires.

    `created` names a ReplicaSet this sync created (Progressing=True NewReplicaSetCreated)."""
    spec = deploy.get("spec") or {}
    md = deploy.get("metadata") or {}
    replicas = int(spec.get("replicas", 1))
    generation = int(md.get("generation", 1))
    old: Mapping[str, Any] = deploy.get("status") or {}
    _, max_unavailable = surge_and_unavailable(deploy)
    available = _count(rses, "status", "availableReplicas")
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": _count(rses, "status", "replicas"),
        "updatedReplicas": _count([new_rs] if new_rs else [], "status", "replicas"),
        "readyReplicas": _count(rses, "status", "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(_count(rses, "spec", "replicas") - available, 0),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    conditions = [dict(c) for c in old.get("conditions") or []]
    new_name = str(((new_rs or {}).get("metadata") or {}).get("name", ""))
    if created:
        msg = f'Created new replica set "{created}"'
        conditions = set_condition(
            conditions, deployment_condition("Progressing", "True", "NewReplicaSetCreated", msg, now)
        )
    if available >= replicas - max_unavailable:
        cond = deployment_condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now
        )
    else:
        cond = deployment_condition(
            "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now
        )
    conditions = set_condition(conditions, cond)
    recheck: float | None = None
    deadline = spec.get("progressDeadlineSeconds")
    current = get_condition(conditions, "Progressing")
    if deadline is None:
        conditions = [c for c in conditions if c.get("type") != "Progressing"]
    elif spec.get("paused"):
        cond = deployment_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now)
        conditions = set_condition(conditions, cond)
    elif current is not None and current.get("reason") == "DeploymentPaused":
        cond = deployment_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now)
        conditions = set_condition(conditions, cond)
        recheck = float(deadline)
    else:
        done = (
            status["replicas"] == status["updatedReplicas"]
            and current is not None
            and current.get("reason") == "NewReplicaSetAvailable"
        )
        if not done:
            conditions, recheck = _progressing(deploy, status, conditions, new_name, int(deadline), generation, now)
    status["conditions"] = conditions
    return _omit_zero(
        status, "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"
    ), recheck


def _progressing(
    deploy: Mapping[str, Any],
    status: dict[str, Any],
    conditions: list[dict[str, Any]],
    new_name: str,
    deadline: int,
    generation: int,
    now: float,
) -> tuple[list[dict[str, Any]], float | None]:
    replicas = int((deploy.get("spec") or {}).get("replicas", 1))
    old: Mapping[str, Any] = deploy.get("status") or {}
    current = get_condition(conditions, "Progressing")
    if deployment_complete(replicas, status, generation):
        msg = f'ReplicaSet "{new_name}" has successfully progressed.'
        cond = deployment_condition("Progressing", "True", "NewReplicaSetAvailable", msg, now)
        return set_condition(conditions, cond), None
    if deployment_progressing(old, status):
        msg = f'ReplicaSet "{new_name}" is progressing.'
        cond = deployment_condition("Progressing", "True", "ReplicaSetUpdated", msg, now)
        if current is not None and current.get("status") == "True":
            cond["lastTransitionTime"] = current.get("lastTransitionTime", cond["lastTransitionTime"])
        # Same reason but fresh lastUpdateTime: progress restarts the deadline, so replace rather than set.
        return [*(c for c in conditions if c.get("type") != "Progressing"), cond], float(deadline)
    if current is None or current.get("reason") == "ProgressDeadlineExceeded":
        return conditions, None
    remaining = epoch_of(current.get("lastUpdateTime")) + deadline - now
    if remaining < 0:
        msg = f'ReplicaSet "{new_name}" has timed out progressing.'
        cond = deployment_condition("Progressing", "False", "ProgressDeadlineExceeded", msg, now)
        return set_condition(conditions, cond), None
    return conditions, remaining + 1


# ---------------------------------------------------------------- StatefulSet and DaemonSet


def statefulset_status(
    sts: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], current_revision: str, update_revision: str, now: float
) -> dict[str, Any]:
    spec = sts.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    active = [p for p in pods if is_active(p)]

    def revision(pod: Mapping[str, Any]) -> str:
        return str(((pod.get("metadata") or {}).get("labels") or {}).get("controller-revision-hash", ""))

    replicas = len(active)
    ready = sum(1 for p in active if is_ready(p))
    updated = sum(1 for p in active if revision(p) == update_revision)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if not current_revision or (rolling and updated == replicas == ready == int(spec.get("replicas", 1))):
        current_revision = update_revision  # the rollout finished: the update revision becomes current
    status: dict[str, Any] = {
        "observedGeneration": (sts.get("metadata") or {}).get("generation", 1),
        "replicas": replicas,
        "readyReplicas": ready,
        "currentReplicas": sum(1 for p in active if revision(p) == current_revision),
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": int((sts.get("status") or {}).get("collisionCount") or 0),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
    }
    return _omit_zero(status, "readyReplicas", "currentReplicas", "updatedReplicas")


def daemonset_status(
    ds: Mapping[str, Any],
    desired: int,
    pods_on_eligible: Mapping[str, Sequence[Mapping[str, Any]]],
    misscheduled: int,
    update_hash: str,
    now: float,
) -> dict[str, Any]:
    """`pods_on_eligible` maps every node that should run the daemon to its daemon pods there."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    current = ready = available = updated = 0
    for pods in pods_on_eligible.values():
        active = [p for p in pods if is_active(p)]
        if not active:
            continue
        pod = active[0]
        current += 1
        ready += is_ready(pod)
        available += is_available(pod, min_ready, now)
        labels = (pod.get("metadata") or {}).get("labels") or {}
        updated += labels.get("controller-revision-hash") == update_hash
    status: dict[str, Any] = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": (ds.get("metadata") or {}).get("generation", 1),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": max(desired - available, 0),
    }
    return _omit_zero(status, "updatedNumberScheduled", "numberAvailable", "numberUnavailable")
