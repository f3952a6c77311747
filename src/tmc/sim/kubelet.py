"""The scheduler and the kubelets of the simulated nodes.

The scheduler binds pending pods to nodes with room for their requests, or marks them Unschedulable. The kubelet
walks a bound pod through ContainerCreating -> Running/Ready (after the ready delay) -> Succeeded for pods that
run to completion, and applies the fault annotations. Every time-based step is a scheduled wake-up of the pod's
key (`queue.add_after`); deadlines are kept in memory, so after a restart they simply start over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from tmc.apimachinery import meta
from tmc.apimachinery.meta import now_rfc3339
from tmc.controllers.runtime import Result, requeue
from tmc.sim.base import NODES, PODS, RETRY_SECONDS, SimController, deleting
from tmc.sim.podstatus import (
    CRASH_LOOP,
    NEVER_READY,
    crash_loop_status,
    creating_status,
    fault_flag,
    is_ready,
    running_status,
    runs_to_completion,
    terminated_status,
    unschedulable_status,
)
from tmc.sim.scheduling import PodIndex, choose_node, is_terminal, node_state
from tmc.storage.interface import Event

SCHEDULE = "schedule"  # the scheduler's one key: a pass over every pending pod
DEFAULT_SCHEDULER = "default-scheduler"
GATED = "Scheduling is blocked due to non-empty scheduling gates"
_MAX_BACKOFF = 300.0
_EARLY = 0.005  # timers may fire a hair early; treat that as on time rather than re-arming


def crash_backoff(ready_delay: float, restarts: int) -> float:
    """Seconds before restart number `restarts + 1`: doubling from the ready delay, capped at 32x (and 5 min),
    the kubelet's 10s..5m back-off scaled to the simulation's pace."""
    return min(max(ready_delay, 0.2) * 2 ** min(restarts, 5), _MAX_BACKOFF)


def _condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


class SchedulerController(SimController):
    name = "sim-scheduler"
    info = PODS
    workers = 1  # one pass at a time, so two passes never hand the same free capacity to two pods

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pods = PodIndex()

    def initial_keys(self) -> Iterable[str]:
        # Called at start (and after falling behind the store's history) at the revision the watch resumes from.
        self._pods.reset()
        for entry in self.store.list(PODS.key_prefix(self.cluster)):
            self._pods.put(entry.key, entry.rev, entry.obj)
        return (SCHEDULE,)

    def observe(self, event: Event) -> None:
        if not event.key.startswith(PODS.key_prefix(self.cluster)):
            return
        if event.type == "DELETED":
            self._pods.remove(event.key, event.rev)
        else:
            self._pods.put(event.key, event.rev, event.obj)

    def keys_for(self, event: Event) -> Iterable[str]:
        if event.key.startswith(NODES.key_prefix(self.cluster)):
            return (SCHEDULE,)
        if not event.key.startswith(PODS.key_prefix(self.cluster)):
            return ()
        spec = event.obj.get("spec") or {}
        if event.type == "DELETED":
            return (SCHEDULE,) if spec.get("nodeName") else ()  # capacity freed
        if not spec.get("nodeName"):
            return (SCHEDULE,) if (event.prev is None or (event.prev.get("spec") or {}) != spec) else ()
        if is_terminal(event.obj) and not (event.prev is not None and is_terminal(event.prev)):
            return (SCHEDULE,)  # a finished pod's requests no longer count
        return ()

    async def reconcile(self, key: str) -> Result | None:
        nodes = [node_state(e.obj) for e in self.store.list(NODES.key_prefix(self.cluster))]
        by_name = self._pods.account(nodes)
        orphans = self._pods.orphans(by_name)
        pending = sorted(
            (pod for pod in self._pods.unbound() if self._wants_scheduling(pod)),
            key=lambda p: (str(p["metadata"].get("creationTimestamp", "")), str(p["metadata"]["name"])),
        )
        writes = []
        stamp = now_rfc3339()
        for pod in pending:
            if (pod.get("spec") or {}).get("schedulingGates"):
                writes.append(self._unschedulable(pod, GATED, stamp, "SchedulingGated"))
                continue
            node, message = choose_node(pod, by_name)
            if node is None:
                writes.append(self._unschedulable(pod, message, stamp, "Unschedulable"))
            else:
                writes.append(self._bind(pod, node.name))
        # The pod GC's job: pods bound to a node that no longer exists are deleted (their owners replace them).
        writes.extend(self.delete(PODS, p) for p in orphans if not deleting(p))
        results = await asyncio.gather(*writes, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not _lost_race(result):
                raise result
        if any(isinstance(result, BaseException) for result in results):
            return requeue(RETRY_SECONDS)  # a pod changed under the pass: run another
        return None

    def _wants_scheduling(self, pod: dict[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and spec.get("schedulerName", DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
            and not is_terminal(pod)
            and not deleting(pod)
        )

    async def _bind(self, pod: dict[str, Any], node: str) -> None:
        body = meta.deep_copy(pod)
        body["spec"]["nodeName"] = node
        written = await self.update(PODS, body)
        # Counted now, not when its event arrives: a pass in between must not hand the same room to another pod.
        md = written["metadata"]
        self._pods.put(PODS.key(self.cluster, md.get("namespace"), md["name"]), int(md["resourceVersion"]), written)

    async def _unschedulable(self, pod: dict[str, Any], message: str, stamp: str, reason: str) -> None:
        current = _condition(pod, "PodScheduled")
        if current and (current.get("status"), current.get("reason"), current.get("message")) == (
            "False",
            reason,
            message,
        ):
            return
        await self.write_status(PODS, pod, unschedulable_status(pod, message, stamp, reason))


def _lost_race(error: BaseException) -> bool:
    """A pod changed or went away between the pass's read and its write."""
    return getattr(error, "code", None) in (404, 409)


class KubeletController(SimController):
    name = "sim-kubelet"
    info = PODS
    workers = 4

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # key -> (pod uid, loop time of the pod's next transition); uid guards against a same-named replacement.
        self._due: dict[str, tuple[str, float]] = {}

    def keys_for(self, event: Event) -> Iterable[str]:
        if not self.own_key(event) or event.type == "DELETED":
            return ()
        return (event.key,) if (event.obj.get("spec") or {}).get("nodeName") else ()

    def observe(self, event: Event) -> None:
        if event.type == "DELETED":
            self._due.pop(event.key, None)

    def _wait(self, key: str, uid: str, delay: float) -> None:
        self._due[key] = (uid, asyncio.get_running_loop().time() + delay)
        self.queue.add_after(key, delay)

    def _pending_wait(self, key: str, uid: str) -> bool:
        """True while the pod's current step is not due yet (its wake-up is already scheduled)."""
        due = self._due.get(key)
        if due is None or due[0] != uid:
            return False
        return asyncio.get_running_loop().time() < due[1] - _EARLY

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or is_terminal(entry.obj) or deleting(entry.obj):
            self._due.pop(key, None)
            return None
        pod = entry.obj
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node:
            return None
        uid = str(pod["metadata"]["uid"])
        status = pod.get("status") or {}
        delay = self.settings.ready_delay
        stamp = now_rfc3339()
        if not status.get("startTime"):
            await self.write_status(PODS, pod, creating_status(pod, node, stamp))
            self._wait(key, uid, delay)
            return None
        due = self._due.get(key)
        pending = status.get("phase") == "Pending"
        if (pending or self._steady(pod) is None) and (due is None or due[0] != uid):
            # A timed step seen for the first time (after a restart, or a fault annotation just added): wait anew.
            self._wait(key, uid, delay if pending else self._next_delay(pod))
            return None
        if self._pending_wait(key, uid):
            return None
        if pending:
            await self._start(key, uid, pod, node, stamp)
            return None
        await self._advance(key, uid, pod, node, stamp)
        return None

    def _fault(self, pod: dict[str, Any], name: str) -> bool:
        return fault_flag(pod, name, self.settings.name)

    def _steady(self, pod: dict[str, Any]) -> bool | None:
        """The readiness a Running pod should show with no timer involved; None when time drives it."""
        if self._fault(pod, CRASH_LOOP):
            return None
        if self._fault(pod, NEVER_READY):
            return False
        return None if runs_to_completion(pod) else True

    def _next_delay(self, pod: dict[str, Any]) -> float:
        if self._fault(pod, CRASH_LOOP):
            return crash_backoff(self.settings.ready_delay, _restarts(pod))
        return self.settings.ready_delay

    async def _start(self, key: str, uid: str, pod: dict[str, Any], node: str, stamp: str) -> None:
        delay = self.settings.ready_delay
        if self._fault(pod, CRASH_LOOP):
            if (pod.get("spec") or {}).get("restartPolicy") == "Never":
                await self.write_status(PODS, pod, terminated_status(pod, node, stamp, succeeded=False))
                return
            backoff = crash_backoff(delay, 1)
            await self.write_status(PODS, pod, crash_loop_status(pod, node, stamp, 1, backoff))
            self._wait(key, uid, backoff)
            return
        ready = not self._fault(pod, NEVER_READY)
        await self.write_status(PODS, pod, running_status(pod, node, stamp, ready))
        if ready and runs_to_completion(pod):
            self._wait(key, uid, delay)
        else:
            self._due.pop(key, None)

    async def _advance(self, key: str, uid: str, pod: dict[str, Any], node: str, stamp: str) -> None:
        """A Running pod: next crash, completion, or a readiness change after its annotations were edited."""
        if self._fault(pod, CRASH_LOOP):
            restarts = _restarts(pod) + 1
            backoff = crash_backoff(self.settings.ready_delay, restarts)
            await self.write_status(PODS, pod, crash_loop_status(pod, node, stamp, restarts, backoff))
            self._wait(key, uid, backoff)
            return
        steady = self._steady(pod)
        if steady is None:
            if is_ready(pod):
                await self.write_status(PODS, pod, terminated_status(pod, node, stamp, succeeded=True))
                self._due.pop(key, None)
            else:
                await self.write_status(PODS, pod, running_status(pod, node, stamp, True))
                self._wait(key, uid, self.settings.ready_delay)
            return
        if is_ready(pod) != steady or _waiting(pod):
            await self.write_status(PODS, pod, running_status(pod, node, stamp, steady))
        self._due.pop(key, None)


def _restarts(pod: dict[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(c.get("restartCount") or 0) for c in statuses), default=0)


def _waiting(pod: dict[str, Any]) -> bool:
    return any("waiting" in (c.get("state") or {}) for c in (pod.get("status") or {}).get("containerStatuses") or [])
