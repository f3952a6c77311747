"""Deployment -> ReplicaSet -> Pod, following upstream's deployment and replicaset controllers: template-hash
named ReplicaSets with revisions, rolling updates bounded by maxSurge/maxUnavailable, Recreate, history cleanup,
and the status fields and conditions a real cluster reports."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tmc.apimachinery import errors, meta
from tmc.controllers.runtime import Result, requeue
from tmc.sim.base import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    SimController,
    deleting,
    now,
    owner_reference,
    pod_from_template,
    split_key,
)
from tmc.sim.podstatus import is_ready
from tmc.sim.status import (
    HASH_LABEL,
    REVISION,
    availability_recheck,
    deployment_status,
    epoch_of,
    is_active,
    replicaset_status,
    surge_and_unavailable,
    template_hash,
    without_hash_label,
)
from tmc.storage.interface import Event

DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Annotations that describe the Deployment itself and are not copied onto its ReplicaSets (upstream's skip list).
_NOT_COPIED = (
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX_REPLICAS,
)


def _replicas(obj: dict[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def _available(obj: dict[str, Any]) -> int:
    return int((obj.get("status") or {}).get("availableReplicas") or 0)


def _revision(rs: dict[str, Any]) -> int:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0")
    return int(value) if str(value).isdigit() else 0


def _created(obj: dict[str, Any]) -> tuple[float, str]:
    md = obj.get("metadata") or {}
    return epoch_of(md.get("creationTimestamp")), str(md.get("name"))


def deletion_rank(pod: dict[str, Any]) -> tuple[bool, int, bool, int, float]:
    """Pods that sort first are removed first when scaling down: unscheduled, pending, not ready, restarting
    most, newest (upstream's ActivePods ordering)."""
    status = pod.get("status") or {}
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status.get("phase")), 0)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = epoch_of((pod.get("metadata") or {}).get("creationTimestamp"))
    return bool((pod.get("spec") or {}).get("nodeName")), phase, is_ready(pod), -restarts, -created


class ReplicaSetController(SimController):
    name = "sim-replicaset"
    info = REPLICASETS
    workers = 4

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or deleting(entry.obj):
            return None  # the garbage collector removes the pods of a deleted ReplicaSet
        rs = entry.obj
        namespace, _ = split_key(key)
        pods = self.owned(PODS, namespace, rs["metadata"]["uid"])
        active = [p for p in pods if is_active(p)]
        diff = _replicas(rs) - len(active)
        if diff > 0:
            template = (rs.get("spec") or {}).get("template") or {}
            name = rs["metadata"]["name"]
            await self.create_all(
                PODS, namespace, [pod_from_template(rs, template, generate_name=f"{name}-") for _ in range(diff)]
            )
        elif diff < 0:
            await self.delete_all(PODS, sorted(active, key=deletion_rank)[:-diff])
        if diff:
            pods = self.owned(PODS, namespace, rs["metadata"]["uid"])
        t = now()
        await self.write_status(REPLICASETS, rs, replicaset_status(rs, pods, t))
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        wait = availability_recheck([p for p in pods if is_active(p)], min_ready, t) if min_ready else None
        return requeue(wait) if wait is not None else None


class DeploymentController(SimController):
    name = "sim-deployment"
    info = DEPLOYMENTS
    workers = 2

    def keys_for(self, event: Event) -> Iterable[str]:
        if self.own_key(event):
            return (event.key,)
        if event.key.startswith(REPLICASETS.key_prefix(self.cluster)):
            owner = self.owner_key(event.obj, "Deployment")
            return (owner,) if owner else ()
        return ()

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or deleting(entry.obj):
            return None
        d = entry.obj
        namespace, _ = split_key(key)
        rses = self._owned_sets(d, namespace)
        template = (d.get("spec") or {}).get("template") or {}
        new = next((rs for rs in rses if without_hash_label(rs["spec"].get("template") or {}) == template), None)
        olds = sorted((rs for rs in rses if rs is not new), key=_created)
        paused = bool((d.get("spec") or {}).get("paused"))
        max_old = max((_revision(rs) for rs in olds), default=0)
        created = ""
        if new is None and not paused:
            new = await self._create_new(d, olds, max_old + 1)
            if new is None:
                return None
            created = new["metadata"]["name"]
        elif new is not None and _revision(new) <= max_old:
            new = await self._set_revision(new, max_old + 1)  # a rollback: the old template is the newest again
        if new is not None:
            await self._scale_sets(d, new, olds, paused)
        rses = self._owned_sets(d, namespace)
        new = next((rs for rs in rses if new is not None and rs["metadata"]["uid"] == new["metadata"]["uid"]), None)
        await self._cleanup(d, [rs for rs in rses if rs is not new])
        if new is not None and d["metadata"].get("annotations", {}).get(REVISION) != str(_revision(new)):
            body = meta.deep_copy(d)
            body["metadata"].setdefault("annotations", {})[REVISION] = str(_revision(new))
            d = await self.update(DEPLOYMENTS, body)
        status, recheck = deployment_status(d, rses, new, now(), created)
        await self.write_status(DEPLOYMENTS, d, status)
        return requeue(recheck) if recheck is not None else None

    def _owned_sets(self, d: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
        return [rs for rs in self.owned(REPLICASETS, namespace, d["metadata"]["uid"]) if not deleting(rs)]

    def _annotations(self, d: dict[str, Any], revision: int, replicas: int) -> dict[str, str]:
        surge, _ = surge_and_unavailable(d)
        out = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}
        out[REVISION] = str(revision)
        out[DESIRED] = str(replicas)
        out[MAX_REPLICAS] = str(replicas + surge)
        return out

    async def _create_new(self, d: dict[str, Any], olds: list[dict[str, Any]], revision: int) -> dict[str, Any] | None:
        spec = d["spec"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        replicas = self._initial_replicas(d, olds)
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{pod_hash}",
                "namespace": d["metadata"].get("namespace"),
                "labels": dict(template["metadata"]["labels"]),
                "annotations": self._annotations(d, revision, _replicas(d)),
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            return await self.create(REPLICASETS, d["metadata"].get("namespace"), body)
        except errors.StatusError as e:
            if e.code != 409:
                raise
        # The name is taken by a ReplicaSet with another template: count the collision, which changes the hash.
        status = dict(d.get("status") or {})
        status["collisionCount"] = collisions + 1
        await self.write_status(DEPLOYMENTS, d, status)
        return None

    def _initial_replicas(self, d: dict[str, Any], olds: list[dict[str, Any]]) -> int:
        replicas = _replicas(d)
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            busy = any(_replicas(rs) or (rs.get("status") or {}).get("replicas") for rs in olds)
            return 0 if busy else replicas
        surge, _ = surge_and_unavailable(d)
        current = sum(_replicas(rs) for rs in olds)
        return max(0, min(replicas + surge - current, replicas))

    async def _set_revision(self, rs: dict[str, Any], revision: int) -> dict[str, Any]:
        body = meta.deep_copy(rs)
        body["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        return await self.update(REPLICASETS, body)

    async def _scale(self, d: dict[str, Any], rs: dict[str, Any], replicas: int) -> None:
        annotations = self._annotations(d, _revision(rs), _replicas(d))
        current = rs["metadata"].get("annotations") or {}
        if _replicas(rs) == replicas and all(current.get(k) == v for k, v in annotations.items() if k != REVISION):
            return
        body = meta.deep_copy(rs)
        body["spec"]["replicas"] = replicas
        body["metadata"]["annotations"] = {**current, **{k: v for k, v in annotations.items() if k != REVISION}}
        await self.update(REPLICASETS, body)

    async def _scale_sets(
        self, d: dict[str, Any], new: dict[str, Any], olds: list[dict[str, Any]], paused: bool
    ) -> None:
        replicas = _replicas(d)
        active_olds = [rs for rs in olds if _replicas(rs) > 0]
        if not active_olds:
            await self._scale(d, new, replicas)
            return
        if paused:
            return  # a paused rollout stays where it is until resumed
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            for rs in active_olds:
                await self._scale(d, rs, 0)
            return
        for name, count in rolling_decisions(d, new, olds).items():
            target = (
                new if name == new["metadata"]["name"] else next(rs for rs in olds if rs["metadata"]["name"] == name)
            )
            await self._scale(d, target, count)

    async def _cleanup(self, d: dict[str, Any], olds: list[dict[str, Any]]) -> None:
        """Keep at most revisionHistoryLimit scaled-down old ReplicaSets, dropping the oldest revisions."""
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in olds
            if _replicas(rs) == 0 and not (rs.get("status") or {}).get("replicas") and not deleting(rs)
        ]
        idle.sort(key=lambda rs: (_revision(rs), _created(rs)))
        await self.delete_all(REPLICASETS, idle[: max(len(idle) - limit, 0)])


def rolling_decisions(d: dict[str, Any], new: dict[str, Any], olds: list[dict[str, Any]]) -> dict[str, int]:
    """Next replica counts by ReplicaSet name for one rolling-update step (upstream's rolloutRolling): scale
    the new set up within maxSurge; otherwise scale old sets down, unhealthy replicas first, keeping
    replicas - maxUnavailable available."""
    replicas = _replicas(d)
    surge, unavailable = surge_and_unavailable(d)
    new_name = new["metadata"]["name"]
    everything = [*olds, new]
    total = sum(_replicas(rs) for rs in everything)
    new_count = _replicas(new)
    if new_count > replicas:
        return {new_name: replicas}
    if new_count < replicas and total < replicas + surge:
        return {new_name: min(new_count + replicas + surge - total, replicas)}
    min_available = replicas - unavailable
    max_down = total - min_available - (new_count - _available(new))
    if max_down <= 0:
        return {}
    counts = {rs["metadata"]["name"]: _replicas(rs) for rs in olds}
    budget = max_down
    for rs in sorted(olds, key=_created):
        name = rs["metadata"]["name"]
        unhealthy = counts[name] - _available(rs)
        if budget <= 0:
            break
        if counts[name] and unhealthy > 0:
            down = min(budget, unhealthy)
            counts[name] -= down
            budget -= down
    available = sum(_available(rs) for rs in everything)
    if available > min_available:
        left = available - min_available
        for rs in sorted(olds, key=_created):
            name = rs["metadata"]["name"]
            if left <= 0:
                break
            down = min(counts[name], left)
            counts[name] -= down
            left -= down
    return {
        name: count
        for name, count in counts.items()
        if count != _replicas(next(r for r in olds if r["metadata"]["name"] == name))
    }
