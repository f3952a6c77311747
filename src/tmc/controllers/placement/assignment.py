"""Assignment: turns Placement decisions into per-target labels on namespaces and the objects in them.

One reconcile per namespace (the queue key is the namespace's storage key), because what an object carries
depends on its neighbours:
- a namespace selected by a Placement's namespaceSelector gets `state.workload.kcp.io/<key>=Sync` for each decided
  key and the `scheduling.kcp.io/placement` annotation;
- each object in it that the Placement's workloadSelector matches (all, when absent) gets the same labels, and, when
  replicas are divided, a `experimental.spec-diff.workload.kcp.io/<key>` replica override per target;
- ConfigMaps, Secrets and ServiceAccounts a labelled workload's pod template references follow it to its targets;
- an object assigned to a target whose syncer lists the object's type in `status.syncedResources` gets that
  syncer's finalizer in the same write, so the syncer need not write it before creating the downstream copy.

What the syncers write to placed objects (their finalizers, status reports) does not re-plan the namespace unless
a move there waits for those reports.

Moving (a target left the decision while the workload is still placed): a workload keeps its old key until every
target it now has reports it available (`diff.syncer.internal.kcp.io/<key>` status), and keeps it forever if it has
no target at all, so the last running copy is never removed. A target that left because it is not Ready also keeps
its copies until it has been not Ready for `not_ready_grace` (the heartbeat threshold by default): a missed
heartbeat or two under load must not delete and re-create the workloads of a healthy cluster. Other objects keep a
key while a workload of their namespace does (the old pods still need their ConfigMaps and Services), and the
namespace keeps a key while any of its objects does. Unassignment the user asked for (Placement deleted, namespace
or object no longer selected) is immediate, following kcp's deletion-annotation protocol (see plan.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from tmc.api.scheduling import PLACEMENTS
from tmc.api.workload import (
    BLOCKED_NAMESPACES,
    CONDITION_READY,
    DEFAULT_HEARTBEAT_THRESHOLD,
    PLACEMENT_ANNOTATION,
    STATUS_DIFF_ANNOTATION_PREFIX,
    SYNC_TARGETS,
    state_label,
    syncable,
    synced_types,
)
from tmc.apimachinery import errors, meta
from tmc.apimachinery.conditions import find
from tmc.apimachinery.meta import parse_time
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.apimachinery.selectors import EVERYTHING, LabelSelector, label_selector_from_object
from tmc.controllers.placement import metrics
from tmc.controllers.placement.algorithm import divide, divide_for
from tmc.controllers.placement.events import NORMAL, EventRecorder
from tmc.controllers.placement.model import Decision, Policy
from tmc.controllers.placement.plan import Plan, plan_namespace, plan_object, state_keys
from tmc.controllers.runtime import CONFLICT_RETRY, Controller, Result, requeue
from tmc.observability import tracing
from tmc.protocol.keys import sync_target_key
from tmc.protocol.workloads import NOT_SYNCED, available_on, is_workload, references, replicas_of, share_on
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import MERGE_PATCH, NAMESPACES, ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-scheduler"  # the field manager its writes are recorded under

log = logging.getLogger("tmc.controllers.assignment")

# kcp's grace between a namespace's deletion annotation and the removal of its label.
NAMESPACE_REMOVAL_GRACE = 5.0
# Writes in flight at once per namespace reconcile.
_PARALLEL_WRITES = 32
_DEPENDENCY_PLURALS = frozenset({"configmaps", "secrets", "serviceaccounts"})
_PLACEMENT_PREFIX = PLACEMENTS.key_prefix(None)
_TARGET_PREFIX = SYNC_TARGETS.key_prefix(None)
_NAMESPACE_PREFIX = NAMESPACES.key_prefix(None)


@dataclass
class _Selecting:
    """A Placement that selects the namespace being reconciled."""

    name: str
    policy: Policy
    decisions: list[Decision]
    workloads: LabelSelector
    valid: bool  # kcp's "valid placement": not Pending and Ready not False


@dataclass
class _Item:
    info: ResourceInfo
    obj: dict[str, Any]
    rev: int
    desired: set[str]
    placements: list[_Selecting]
    in_scope: bool = False
    key: str = ""


class AssignmentController(Controller):
    name = "placement-assignment"
    prefix = "/registry/"
    workers = 4

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        service: ObjectService,
        *,
        not_ready_grace: float = DEFAULT_HEARTBEAT_THRESHOLD,
    ) -> None:
        super().__init__(store)
        self.not_ready_grace = not_ready_grace
        self.registry = registry
        self.service = service
        self.events = EventRecorder(service, "tmc-scheduler")
        self._target_names: dict[str, str] = {}  # key -> SyncTarget name, for messages and existence
        self._synced_types: dict[str, frozenset[tuple[str, str]]] = {}  # key -> what its syncer syncs
        self._not_ready_since: dict[str, float] = {}  # key -> when its Ready condition last turned False/Unknown
        self._held: set[str] = set()  # namespaces with a workload waiting for its new targets
        self._announced: dict[str, tuple[Any, ...]] = {}  # workload uid -> what its last Event said
        # workload key -> when its latest unplaced change reached us (tmc_placement_latency_seconds)
        self._changed_at: dict[str, float] = {}

    # ------------------------------------------------------------------ events -> namespaces

    def initial_keys(self) -> Iterable[str]:
        for entry in self.store.list(_TARGET_PREFIX):
            self._index_target(entry.obj, cluster_of_key(entry.key), present=True)
        return [entry.key for entry in self.store.list(_NAMESPACE_PREFIX)]

    def _index_target(self, obj: dict[str, Any], ws: str, *, present: bool) -> str:
        name = str(obj["metadata"]["name"])
        key = sync_target_key(ws, name)
        if present:
            self._target_names[key] = name
            self._synced_types[key] = synced_types(obj)
            ready = find((obj.get("status") or {}).get("conditions"), CONDITION_READY)
            since = parse_time(ready.get("lastTransitionTime")) if ready and ready.get("status") != "True" else None
            if since is None:
                self._not_ready_since.pop(key, None)
            else:
                # The stamp has whole seconds: the transition was within the second after it, and not after now.
                self._not_ready_since[key] = min(time.time(), since + 1.0)
        else:
            self._target_names.pop(key, None)
            self._synced_types.pop(key, None)
            self._not_ready_since.pop(key, None)
        return key

    def _grace_left(self, key: str, now: float) -> float:
        """Seconds a not-Ready target keeps its copies; 0 when it is Ready or its grace has passed."""
        since = self._not_ready_since.get(key)
        return 0.0 if since is None else max(0.0, since + self.not_ready_grace - now)

    def keys_for(self, event: Event) -> Iterable[str]:
        key = event.key
        parts = key.split("/")
        if key.startswith(_TARGET_PREFIX):
            if event.type == "MODIFIED":
                self._index_target(event.obj, cluster_of_key(key), present=True)
                return ()
            target_key = self._index_target(event.obj, cluster_of_key(key), present=event.type == "ADDED")
            # A deleted target's labels and finalizers must be cleaned up wherever they are.
            label = state_label(target_key)
            return [e.key for e in self.store.list(_NAMESPACE_PREFIX) if label in (_md(e.obj).get("labels") or {})]
        if key.startswith(_PLACEMENT_PREFIX):
            if event.type == "MODIFIED" and _placement_input(event.prev or {}) == _placement_input(event.obj):
                return ()  # its annotations, or the decisions' scores or replica sums
            return [e.key for e in self.store.list(NAMESPACES.key_prefix(cluster_of_key(key)))]
        if key.startswith(_NAMESPACE_PREFIX):
            if event.type == "DELETED":
                self._held.discard(key)
                return ()
            if event.type == "MODIFIED" and not _metadata_changed(event.prev or {}, event.obj):
                return ()
            return (key,)
        if len(parts) != 7 or (("" if parts[2] == "core" else parts[2]), parts[3]) in NOT_SYNCED:
            return ()  # cluster-scoped objects are not assigned (kcp leaves them to coordinators)
        ns_key = NAMESPACES.key(parts[4], None, parts[5])
        if event.type == "DELETED":
            self._announced.pop(str(_md(event.obj).get("uid", "")), None)
            self._changed_at.pop(key, None)
        elif (
            event.type == "MODIFIED"
            and event.prev is not None
            and ns_key not in self._held
            and not _assignment_input_changed(event.prev, event.obj)
        ):
            # Syncers' finalizers and status reports, and status: they matter only while a move waits for
            # availability. Without this, every syncer write re-planned the whole namespace.
            return ()
        if is_workload(event.obj):
            self._changed_at.setdefault(key, time.monotonic())
        return (ns_key,)

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        if entry is None:
            return None
        ns = entry.obj
        ws, ns_name = cluster_of_key(key), str(_md(ns)["name"])
        if ns_name in BLOCKED_NAMESPACES or _md(ns).get("deletionTimestamp"):
            return None
        selecting = self._selecting(ws, _md(ns).get("labels") or {})
        annotations = _md(ns).get("annotations") or {}
        if not selecting and PLACEMENT_ANNOTATION not in annotations:
            # Never placed by a Placement: labels set by hand (or by another coordinator) are not ours to change.
            self._held.discard(key)
            return None
        items = self._items(ws, ns_name, selecting)
        looked = time.monotonic()
        for item in items:
            if is_workload(item.obj):
                # Listed before its event arrived: the change reached the scheduler now.
                self._changed_at.setdefault(item.key, looked)
        now_text = meta.now_rfc3339()
        known = self._target_names.keys()
        held_any = False
        now = time.time()
        graced = {k: left for k in self._not_ready_since if (left := self._grace_left(k, now)) > 0}

        # Workloads first: whether they keep an old key decides whether their neighbours may drop it.
        plans: list[tuple[_Item, Plan]] = []
        workload_live: set[str] = set()
        for item in items:
            if not is_workload(item.obj):
                continue
            shares = _shares(item)
            if shares is not None:
                shares, surging = grow_before_shrink(item.obj, shares, state_keys(item.obj))
                held_any = held_any or surging  # wake on the growing targets' status reports
            plan = plan_object(
                item.obj,
                item.desired,
                hold=_workload_hold(item, shares, graced),
                known_targets=known,
                now=now_text,
                shares=shares,
                finalize=self._finalized_keys(item),
            )
            plans.append((item, plan))
            workload_live |= plan.live
            held_any = held_any or bool(plan.held)
        for item in items:
            if is_workload(item.obj):
                continue
            plan = plan_object(
                item.obj,
                item.desired,
                hold=_neighbour_hold(item, workload_live, graced),
                known_targets=known,
                now=now_text,
                finalize=self._finalized_keys(item),
            )
            plans.append((item, plan))
        live = set().union(*(p.live for _, p in plans)) if plans else set()

        ns_desired = {d.key for p in selecting for d in p.decisions}
        ns_plan, wait = plan_namespace(
            ns,
            ns_desired,
            live=live,
            known_targets=known,
            now=now,
            now_text=now_text,
            grace=NAMESPACE_REMOVAL_GRACE,
        )
        placed = any(p.valid for p in selecting)
        # The annotation also marks the namespace as ours, so it stays until an unassignment has finished.
        remaining = set(state_keys(ns)) - set(ns_plan.removed)
        if placed and PLACEMENT_ANNOTATION not in annotations:
            ns_plan.annotations[PLACEMENT_ANNOTATION] = ""
        elif not placed and not remaining and PLACEMENT_ANNOTATION in annotations:
            ns_plan.annotations[PLACEMENT_ANNOTATION] = None

        # The namespace is labelled before its objects so a syncer never sees an object of an unassigned namespace.
        if not await self._apply(NAMESPACES, ws, None, ns_name, entry.rev, ns_plan, key):
            return None
        # Objects are independent of each other: their writes go to the store together and commit in groups.
        changed = [(item, plan) for item, plan in plans if not plan.empty]
        for start in range(0, len(changed), _PARALLEL_WRITES):
            batch = changed[start : start + _PARALLEL_WRITES]
            applied = await asyncio.gather(*(self._apply_item(ws, ns_name, item, plan, key) for item, plan in batch))
            await asyncio.gather(
                *(
                    self._announce(ws, item, plan, graced)
                    for (item, plan), ok in zip(batch, applied, strict=True)
                    if ok and is_workload(item.obj)
                )
            )
            for (item, plan), ok in zip(batch, applied, strict=True):
                if ok and plan.added:
                    self._placed(ws, item, plan.added)
        for item, _ in plans:
            # A change that needed no placement write (one placed above is gone already); a change that arrived
            # while this reconcile ran is left for the next one.
            if self._changed_at.get(item.key, looked) <= looked:
                self._changed_at.pop(item.key, None)
        # A copy kept without any write (its target left the decision and rests) is announced too.
        await asyncio.gather(
            *(self._announce(ws, item, plan, graced) for item, plan in plans if plan.empty and plan.held)
        )
        if held_any:
            self._held.add(key)
        else:
            self._held.discard(key)
        held_keys = {k for _, p in plans for k in p.held}
        waits = [w for w in (wait, *(graced[k] + 0.05 for k in held_keys if k in graced)) if w is not None]
        return requeue(min(waits)) if waits else None

    def _placed(self, ws: str, item: _Item, added: list[str]) -> None:
        started = self._changed_at.pop(item.key, None)
        deciding = [p for p in item.placements if any(d.key in added for d in p.decisions)]
        if started is not None and deciding:
            strategy = deciding[0].policy.strategy
            metrics.PLACEMENT_LATENCY.labels(ws, strategy).observe(time.monotonic() - started)

    def _finalized_keys(self, item: _Item) -> list[str]:
        """The desired keys whose syncer finalizer the hub adds with the label: those whose syncer syncs the type."""
        if not syncable(item.info.plural, item.obj):
            return []
        kind = (item.info.group, item.info.plural)
        return [k for k in item.desired if kind in self._synced_types.get(k, ())]

    def _selecting(self, ws: str, ns_labels: dict[str, str]) -> list[_Selecting]:
        out = []
        for entry in self.store.list(PLACEMENTS.key_prefix(ws)):
            obj = entry.obj
            md, spec, status = _md(obj), obj.get("spec") or {}, obj.get("status") or {}
            if md.get("deletionTimestamp"):
                continue
            if not label_selector_from_object(spec.get("namespaceSelector")).matches(ns_labels):
                continue
            raw = spec.get("workloadSelector")
            ready = find(status.get("conditions"), "Ready") or {}
            decisions = [d for r in status.get("decisions") or () if (d := Decision.from_status(r)) is not None]
            out.append(
                _Selecting(
                    name=str(md["name"]),
                    policy=Policy.from_spec(spec, f"{ws}/{md['name']}"),
                    decisions=decisions,
                    workloads=label_selector_from_object(raw) if raw is not None else EVERYTHING,
                    valid=status.get("phase") not in (None, "Pending") and ready.get("status") != "False",
                )
            )
        return sorted(out, key=lambda p: p.name)

    def _items(self, ws: str, ns: str, selecting: list[_Selecting]) -> list[_Item]:
        """Every synced object of the namespace with the keys it should carry."""
        items: list[_Item] = []
        seen: set[str] = set()
        for info in self.registry.resources(ws):
            prefix = info.key_prefix(ws, ns)
            if not info.namespaced or (info.group, info.plural) in NOT_SYNCED or prefix in seen:
                continue
            seen.add(prefix)  # several served versions share one storage prefix
            for entry in self.store.list(prefix):
                labels = _md(entry.obj).get("labels") or {}
                chosen = [p for p in selecting if p.workloads.matches(labels)]
                desired = {d.key for p in chosen for d in p.decisions}
                items.append(_Item(info, entry.obj, entry.rev, desired, chosen, bool(chosen), entry.key))
        # Dependencies follow the workloads that reference them, whatever the workloadSelector says.
        by_ref = {(it.info.plural, str(_md(it.obj)["name"])): it for it in items if it.info.group == ""}
        for it in items:
            if not it.desired or not is_workload(it.obj):
                continue
            for ref in references(it.obj):
                dep = by_ref.get(ref)
                if dep is not None and ref[0] in _DEPENDENCY_PLURALS:
                    dep.desired |= it.desired
                    dep.in_scope = True
        return items

    async def _apply(
        self, info: ResourceInfo, ws: str, ns: str | None, name: str, rev: int, plan: Plan, ns_key: str
    ) -> bool:
        if plan.empty:
            return True
        body = orjson.dumps(plan.patch(str(rev)))
        try:
            await self.service.patch(info, ws, ns, name, MERGE_PATCH, body, WriteOptions(field_manager=FIELD_MANAGER))
        except errors.StatusError as e:
            if e.code == 404:
                return False
            if e.code == 409:
                # One write of a batch raced another writer: the rest of the batch goes on, and the namespace is
                # recomputed from the new state once that write has landed.
                self.queue.add_after(ns_key, CONFLICT_RETRY)
                return False
            raise
        return True

    async def _apply_item(self, ws: str, ns: str, item: _Item, plan: Plan, ns_key: str) -> bool:
        """Write an object's plan; a workload's is its placement decision, a span in the trace of the write that
        changed the workload, so the syncers' spans (children of this one, through the label write) join it."""
        name = str(_md(item.obj)["name"])
        if not tracing.enabled or not is_workload(item.obj):
            return await self._apply(item.info, ws, ns, name, item.rev, plan, ns_key)
        parent = tracing.object_traceparent(item.obj)
        attributes = {
            "workload.name": name,
            "workload.namespace": ns,
            "workload.type": item.info.plural,
            "tmc.workspace": ws,
            "placement.strategy": ",".join(sorted({p.policy.strategy for p in item.placements})) or "none",
            "placement.clusters.count": len(plan.live),
            "placement.reason": _reason(item, plan),
            "placement.names": [p.name for p in item.placements],
        }
        with tracing.span("placement decision", parent=parent, attributes=attributes, carry=parent is not None):
            return await self._apply(item.info, ws, ns, name, item.rev, plan, ns_key)

    async def _announce(self, ws: str, item: _Item, plan: Plan, graced: Collection[str]) -> None:
        """An Event on the workload when where it runs changes, saying which Placement decided it and why."""
        md = _md(item.obj)
        gone = plan.removing + plan.removed
        carried = sorted((set(state_keys(item.obj)) | set(plan.added)) - set(gone))
        resting = sorted(k for k in plan.held if k in graced)
        signature = (tuple(carried), tuple(sorted(plan.held)), tuple(resting), tuple(sorted(gone)))
        uid = str(md.get("uid", ""))
        if not (plan.added or plan.held or gone) or self._announced.get(uid) == signature:
            return
        self._announced[uid] = signature
        names = self._target_names

        def listed(keys: Iterable[str]) -> list[str]:
            return sorted(names.get(k, k) for k in keys)

        shares = {names.get(k, k): n for k, n in (_shares(item) or {}).items()}
        placements = ", ".join(p.name for p in item.placements)
        # Where it is meant to run; a held copy is named in its own clause.
        where = ", ".join(
            f"{n} ({shares[n]} replicas)" if n in shares else n for n in listed(set(carried) - set(plan.held))
        )
        parts = [f"Runs on {where or 'no target'}" + (f" by Placement {placements}" if placements else "")]
        if plan.added and len(carried) > len(plan.added):
            parts.append(f"added {', '.join(listed(plan.added))}")
        if resting:
            parts.append(
                f"keeping the copy on {', '.join(listed(resting))} while it is not Ready, for up to "
                f"{self.not_ready_grace:g}s"
            )
        if len(resting) < len(plan.held):
            waiting = listed(item.desired)
            verb = "reports" if len(waiting) <= 1 else "report"
            moving = [k for k in plan.held if k not in graced]
            parts.append(
                f"keeping the copy on {', '.join(listed(moving))} until {', '.join(waiting) or 'a new target'} "
                f"{verb} the workload available"
            )
        if gone:
            why = "its new targets report it available" if item.in_scope else "no Placement selects it any more"
            parts.append(f"removing it from {', '.join(listed(gone))}: {why}")
        await self.events.record(ws, item.obj, NORMAL, _reason(item, plan), "; ".join(parts))


def _reason(item: _Item, plan: Plan) -> str:
    """The Event reason of a workload's decision: Scheduled, Rescheduling (a copy held), Rescheduled, Unscheduled."""
    if plan.held:
        return "Rescheduling"
    if plan.removing or plan.removed:
        return "Rescheduled" if item.in_scope else "Unscheduled"
    return "Scheduled"


def _workload_hold(item: _Item, shares: dict[str, int] | None, graced: Collection[str]) -> Callable[[str], bool]:
    """Hold an old key while the workload is still placed and not every target it has now reports it available
    with the share it is getting now (with no target at all, that is forever: the last copy stays), or while the
    key's target is within its not-Ready grace."""
    if not item.in_scope:
        return lambda key: False
    moved: list[bool] = []  # computed on first use: only a workload with an undesired key asks

    def hold(key: str) -> bool:
        if key in graced:
            return True
        if not moved:
            moved.append(
                bool(item.desired)
                and all(available_on(item.obj, k, shares.get(k) if shares else None) for k in item.desired)
            )
        return not moved[0]

    return hold


def _neighbour_hold(item: _Item, workload_live: set[str], graced: Collection[str]) -> Callable[[str], bool]:
    """A non-workload object stays on a target while a workload of its namespace does, or while the target is
    within its not-Ready grace."""
    return lambda key: item.in_scope and (key in workload_live or key in graced)


def grow_before_shrink(
    obj: dict[str, Any], shares: dict[str, int], carried: Iterable[str]
) -> tuple[dict[str, int], bool]:
    """`shares`, except that a target the workload is on keeps its current, larger share until every other target
    reports the workload available with its new share: re-dividing replicas, when a target joins or weights change,
    never lowers what is available (a surge, like a rolling update's). Also says whether some share is kept."""
    on = set(carried)
    current = {k: share_on(obj, k) for k in shares}
    shrinking = {k for k, n in shares.items() if k in on and (c := current[k]) is not None and n < c}
    if not shrinking or all(available_on(obj, k, n) for k, n in shares.items() if k not in shrinking):
        return shares, False
    return {k: (current[k] or n) if k in shrinking else n for k, n in shares.items()}, True


def _shares(item: _Item) -> dict[str, int] | None:
    """Per-key replicas when some Placement selecting the workload divides them, else None. With several such
    Placements the workload is divided over all their targets, each weighted as its first Placement (by name)
    decided."""
    replicas = replicas_of(item.obj)
    if replicas is None or not any(p.policy.divided for p in item.placements):
        return None
    if len(item.placements) == 1:
        p = item.placements[0]
        return {d.key: n for d, n in zip(p.decisions, divide_for(p.policy, p.decisions, replicas), strict=True)}
    merged: dict[str, Decision] = {}
    for p in item.placements:
        for d in p.decisions:
            merged.setdefault(d.key, d)
    ordered = sorted(merged.values(), key=lambda d: (d.workspace, d.name))
    return {d.key: n for d, n in zip(ordered, divide(replicas, [d.weight for d in ordered]), strict=True)}


def _md(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    return md if isinstance(md, dict) else {}


def _placement_input(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What assignment reads of a Placement (see _selecting): its spec, phase, Ready, and the decided targets with
    their weights. Not the scores, nor `replicas` (the sum over its workloads, which every new workload changes)."""
    status = obj.get("status") or {}
    ready = (find(status.get("conditions"), CONDITION_READY) or {}).get("status")
    decisions = [(d.key, d.weight) for r in status.get("decisions") or () if (d := Decision.from_status(r))]
    return obj.get("spec"), status.get("phase"), ready, decisions, _md(obj).get("deletionTimestamp")


def _assignment_input_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a change to a namespaced object can change its plan while no move is pending: its labels, spec,
    deletion, or annotations other than the syncers' status reports."""
    a, b = _md(old), _md(new)
    if a.get("labels") != b.get("labels") or a.get("deletionTimestamp") != b.get("deletionTimestamp"):
        return True
    if old.get("spec") != new.get("spec"):
        return True
    return _without_reports(a.get("annotations")) != _without_reports(b.get("annotations"))


def _without_reports(annotations: Any) -> dict[str, Any]:
    if not isinstance(annotations, dict):
        return {}
    return {k: v for k, v in annotations.items() if not k.startswith(STATUS_DIFF_ANNOTATION_PREFIX)}


def _metadata_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    a, b = _md(old), _md(new)
    return any(a.get(f) != b.get(f) for f in ("labels", "annotations", "finalizers", "deletionTimestamp"))
