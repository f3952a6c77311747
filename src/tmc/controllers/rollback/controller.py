"""The rollback controller: records a WorkloadRevision for every change of a placed workload (recorder.py), follows
its newest revision across the fleet (tracker.py), answers `kubectl tmc rollout undo` requests (restore.py) and
applies RollbackPolicies (policy.py).

One queue key per workload. Changes to a ConfigMap or Secret queue the workloads that reference it; a workload is
recorded once its template and content have been quiet for `DEBOUNCE`, so an apply that writes a ConfigMap and the
Deployment that reads it makes one revision, not two; an undo request is acted on at once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tmc.api.rollback import (
    FAILED,
    PROGRESSING,
    REASON_USER,
    ROLLBACK_POLICIES,
    SNAPSHOT_NAMESPACE,
    UNDO_ANNOTATION,
    UNDO_RESULT_ANNOTATION,
    WORKLOAD_REVISIONS,
    parse_undo,
)
from tmc.api.workload import STATE_LABEL_PREFIX, STATE_SYNC, STATUS_DIFF_ANNOTATION_PREFIX, SYNC_TARGETS
from tmc.apimachinery import errors
from tmc.apimachinery.resources import cluster_of_key
from tmc.controllers.placement.events import EventRecorder
from tmc.controllers.rollback import metrics
from tmc.controllers.rollback.authors import author_of, stamp_author
from tmc.controllers.rollback.context import SECRETS, Shared, WorkloadKey
from tmc.controllers.rollback.policy import PolicyEngine
from tmc.controllers.rollback.recorder import record
from tmc.controllers.rollback.restore import Request, UndoError, WaitForCanary, annotate, undo
from tmc.controllers.rollback.snapshot import referenced, template_of, tracked
from tmc.controllers.rollback.tracker import track
from tmc.controllers.runtime import Controller, Result, requeue
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Event, Store

log = logging.getLogger("tmc.controllers.rollback")
DEBOUNCE = 0.5
_TARGETS = SYNC_TARGETS.key_prefix(None)
_REVISIONS = WORKLOAD_REVISIONS.key_prefix(None)
_POLICIES = ROLLBACK_POLICIES.key_prefix(None)
_SNAPSHOT_PREFIX = "snapshot|"
_EARLY = 0.01  # a look due within this of another counts as the same look


def _only_reports(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a write changed only status and the syncers' per-cluster reports (not spec, labels, or requests)."""
    a, b = old.get("metadata") or {}, new.get("metadata") or {}
    if old.get("spec") != new.get("spec") or a.get("labels") != b.get("labels"):
        return False
    before, after = a.get("annotations") or {}, b.get("annotations") or {}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    return all(k.startswith(STATUS_DIFF_ANNOTATION_PREFIX) for k in changed)


def placed(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return any(k.startswith(STATE_LABEL_PREFIX) and v == STATE_SYNC for k, v in labels.items())


class RollbackController(Controller):
    name = "rollback"
    prefix = "/registry/"
    workers = 2

    def __init__(
        self, store: Store, registry: ResourceRegistry, service: ObjectService, *, prometheus_url: str = ""
    ) -> None:
        super().__init__(store)
        self.shared = Shared(store, registry, service, EventRecorder(service, "tmc-rollback"))
        self.policies = PolicyEngine(self.shared, prometheus_url)
        # (cluster, namespace, plural, name) of a ConfigMap or Secret -> keys of the workloads referencing it.
        self._refs: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
        self._refs_of: dict[str, set[tuple[str, str, str, str]]] = {}
        self.debounce = DEBOUNCE  # seconds of quiet before a change is recorded (tests shorten it)
        self._changed_at: dict[str, float] = {}  # workload key -> when its template or content last changed
        # Workloads whose newest revision's outcome is settled (available everywhere, or replaced): the syncers'
        # status reports on them change nothing here and are not reconciled.
        self._settled: set[str] = set()
        self._due: dict[str, float] = {}  # workload key -> when its next scheduled look is due (one timer each)
        service.stamp_hooks.append(stamp_author)

    async def stop(self) -> None:
        await super().stop()
        await self.policies.close()

    # ---------------------------------------------------------------- events

    def _index(self, key: str, obj: dict[str, Any] | None, wk: WorkloadKey) -> None:
        for ref in self._refs_of.pop(key, set()):
            self._refs[ref].discard(key)
        if obj is None:
            return
        cms, secrets = referenced(obj)
        refs = {(wk.cluster, wk.namespace, "configmaps", n) for n in cms}
        refs |= {(wk.cluster, wk.namespace, "secrets", n) for n in secrets}
        self._refs_of[key] = refs
        for ref in refs:
            self._refs[ref].add(key)

    def _is_workload(self, wk: WorkloadKey, obj: dict[str, Any]) -> bool:
        return wk.group not in ("", "tmc.kcp.io", "workload.kcp.io") and tracked(wk.group, wk.plural, obj)

    def keys_for(self, event: Event) -> Iterable[str]:
        key = event.key
        if key.startswith(_TARGETS):
            name = key.rsplit("/", 1)[1]
            target = sync_target_key(cluster_of_key(key), name)
            if event.type == "DELETED":
                self.shared.target_names.pop(target, None)
            else:
                self.shared.target_names[target] = name
            return ()
        wk = WorkloadKey.parse(key)
        if wk is None:
            return ()
        if key.startswith(_REVISIONS):
            snapshot = (event.obj.get("spec") or {}).get("snapshotSecret")
            return (f"{_SNAPSHOT_PREFIX}{wk.cluster}|{snapshot}",) if event.type == "DELETED" and snapshot else ()
        if key.startswith(_POLICIES):
            ref = (event.obj.get("spec") or {}).get("targetRef") or {}
            for candidate in self.shared.registry.resources(wk.cluster):
                if candidate.kind == ref.get("kind") and candidate.namespaced:
                    self._later(candidate.key(wk.cluster, wk.namespace, str(ref.get("name", ""))))
            return ()
        if wk.group == "" and wk.plural in ("configmaps", "secrets"):
            prev = event.prev or {}
            changed = event.type != "MODIFIED" or any(prev.get(f) != event.obj.get(f) for f in ("data", "binaryData"))
            for workload in self._refs.get((wk.cluster, wk.namespace, wk.plural, wk.name), ()):
                if changed:
                    self._changed_at[workload] = time.monotonic()
                self._later(workload)
            return ()
        if not self._is_workload(wk, event.obj):
            return ()
        if event.type == "DELETED":
            self._settled.discard(key)
            self._due.pop(key, None)
        elif key in self._settled and event.prev is not None and _only_reports(event.prev, event.obj):
            return ()
        self._settled.discard(key)
        self._index(key, None if event.type == "DELETED" else event.obj, wk)
        if event.type != "DELETED" and placed(event.obj):
            annotations = (event.obj.get("metadata") or {}).get("annotations") or {}
            if UNDO_ANNOTATION in annotations:
                return (key,)  # a user waits for this one
            if event.prev is None or template_of(event.prev) != template_of(event.obj):
                self._changed_at[key] = time.monotonic()
            self._later(key)
        return ()

    def _later(self, key: str) -> None:
        """Look at `key` after the debounce, unless a look is already due by then.

        The work queue keeps one timer per call, so without this every syncer status report on a workload whose
        revision is still Progressing (10 members report 2 to 3 times each while their pods start) scheduled its
        own reconcile 0.5 s later (a fingerprint, a scan of the namespace's revisions, the fleet status), running on
        the hub's loop while the members' later reports and the hub's status writes for that workload are handled.
        A report is still read within the debounce: the look due then reads the workload as it is by that time."""
        t = time.monotonic()
        due = t + self.debounce
        pending = self._due.get(key)
        if pending is not None and t <= pending <= due + _EARLY:  # (one in the past may be stale: schedule anew)
            return
        self._due[key] = due
        self.queue.add_after(key, self.debounce)

    def initial_keys(self) -> Iterable[str]:
        counts: dict[str, int] = defaultdict(int)
        for entry in self.store.list(_TARGETS):
            self.shared.target_names[sync_target_key(cluster_of_key(entry.key), entry.key.rsplit("/", 1)[1])] = (
                entry.key.rsplit("/", 1)[1]
            )
        for entry in self.store.list(_REVISIONS):
            counts[str((entry.obj.get("spec") or {}).get("workloadRef", {}).get("kind", ""))] += 1
        for kind, n in counts.items():
            metrics.REVISIONS.labels(kind).set(n)
        keys = []
        for entry in self.store.list(self.prefix):
            wk = WorkloadKey.parse(entry.key)
            if wk is not None and wk.group not in ("", "tmc.kcp.io") and self._is_workload(wk, entry.obj):
                self._index(entry.key, entry.obj, wk)
                if placed(entry.obj):
                    keys.append(entry.key)
        return keys

    # ---------------------------------------------------------------- reconcile

    async def reconcile(self, key: str) -> Result | None:
        t = time.monotonic()
        if self._due.get(key, 0.0) <= t + _EARLY:
            self._due.pop(key, None)  # this is the look that was scheduled
        result = await self._reconcile(key)
        if result is not None and result.requeue_after is not None:
            # The runtime schedules this look; later events within it need no timer of their own.
            due = time.monotonic() + result.requeue_after
            self._due[key] = min(due, self._due.get(key, due))
        return result

    async def _reconcile(self, key: str) -> Result | None:
        if key.startswith(_SNAPSHOT_PREFIX):
            _, cluster, name = key.split("|", 2)
            with errors.ignore_not_found():
                await self.shared.service.delete(SECRETS, cluster, SNAPSHOT_NAMESPACE, name, {}, False)
            return None
        entry = self.store.get(key)
        wk = WorkloadKey.parse(key)
        if entry is None or wk is None or not placed(entry.obj):
            return None
        info = self.shared.info(wk)
        if info is None:
            return None
        obj = entry.obj
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        quiet = time.monotonic() - self._changed_at.get(key, 0.0)
        if quiet < self.debounce and UNDO_ANNOTATION not in annotations:
            return requeue(self.debounce - quiet)  # changes are still coming in: record them as one revision
        self._changed_at.pop(key, None)
        kind = str(obj.get("kind") or info.kind)
        latest = await record(self.shared, wk, kind, obj)
        if latest is None:
            return requeue(self.debounce)
        if UNDO_ANNOTATION in annotations:
            answered = await self._undo_request(key, wk, info, obj, annotations)
            if not answered:
                return requeue(0.2)
            return requeue(self.debounce)  # record the revision the undo made
        policy = self.shared.policy_for(wk, kind)
        latest, again = await track(self.shared, wk, obj, latest, policy)
        if (latest.get("status") or {}).get("phase") not in (PROGRESSING, FAILED):
            self._settled.add(key)
        if policy is not None:
            later = await self.policies.evaluate(wk, info, obj, latest, policy)
            if later is not None:
                again = later if again is None else min(again, later)
        return None if again is None else requeue(again)

    async def _undo_request(
        self, key: str, wk: WorkloadKey, info: Any, obj: dict[str, Any], annotations: dict[str, str]
    ) -> bool:
        """Act on `rollback.tmc.kcp.io/undo`; False while a canary is being aborted first."""
        raw = str(annotations[UNDO_ANNOTATION])
        parsed = parse_undo(raw)
        token = parsed[1] if parsed else raw
        if str(annotations.get(UNDO_RESULT_ANNOTATION, "")).startswith(f"{token} "):
            return True  # answered already; the request annotation is left over from a failed write
        if parsed is None:
            await self._answer(wk, info, token, f"error malformed request {raw!r}: want <revision|previous>@<token>")
            return True
        author = author_of(obj)  # stamped by the write that asked for the undo
        request = Request(parsed[0], author["user"] if author else "", REASON_USER, token=token)
        try:
            await undo(self.shared, wk, info, obj, request)
        except WaitForCanary:
            return False
        except UndoError as e:
            await self._answer(wk, info, token, f"error {e}")
        except errors.StatusError as e:
            if e.code != 409:
                raise
            await self._answer(wk, info, token, f"error {e.message}; nothing was changed")
        return True

    async def _answer(self, wk: WorkloadKey, info: Any, token: str, result: str) -> None:
        await annotate(self.shared, info, wk, {UNDO_ANNOTATION: None, UNDO_RESULT_ANNOTATION: f"{token} {result}"})
