"""The placement scheduler: Placement -> Locations -> eligible SyncTargets -> `status.decisions`.

Where targets come from:
- `spec.locationWorkspace` names the workspace holding the Locations and SyncTargets. When it is empty, kcp used the
  Placement's own workspace; TMC does too when that workspace holds any Location or SyncTarget, and otherwise uses
  `root`, where `tmc up` and `tmc workload sync` register member clusters. So a Placement in `root:team-a` works
  without naming the compute workspace, and one in a workspace with its own compute keeps kcp's meaning.
- `spec.locationSelectors` (kcp semantics: ORed, `[]` matches nothing, `[{}]` all) selects Locations whose
  `spec.resource` equals `spec.locationResource`; candidates are the union of their instances. Unlike kcp, which
  picked one Location at random, every matching Location contributes; `selectedLocation` names the first by name.
- Without `locationSelectors` but with `syncTargetSelector`, the Placement selects SyncTargets of that workspace
  directly. With neither, nothing is selected (Pending, LocationNoMatch).

The decision itself is `algorithm.schedule` (pure). This controller gathers its inputs (targets indexed per
workspace from the watch, the Placement's previous decisions for stickiness, the namespaces it places for Affinity,
other Placements' choices for load), writes the status and conditions with kcp's reasons, records Events when the
decision changes, and requeues itself at the next `evictAfter` of a candidate (kcp did not, so draining only took
effect on some later event).

kcp's single-target `internal.workload.kcp.io/synctarget` annotation is not written: it was the channel between two
of kcp's own controllers, which `status.decisions` replaces here, and an extra write per decision would cost a third
of the scheduling throughput for nothing that reads it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmc.api import scheduling
from tmc.api.scheduling import LOCATIONS, PLACEMENTS
from tmc.api.workload import (
    BLOCKED_NAMESPACES,
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    SYNC_TARGETS,
)
from tmc.apimachinery.conditions import SEVERITY_ERROR, SEVERITY_WARNING, condition, find, set_condition
from tmc.apimachinery.resources import BUILTIN_RESOURCES, cluster_of_key
from tmc.apimachinery.selectors import EVERYTHING, label_selector_from_object
from tmc.controllers.placement import metrics
from tmc.controllers.placement.algorithm import TargetSet, schedule, with_replicas
from tmc.controllers.placement.events import NORMAL, WARNING, EventRecorder
from tmc.controllers.placement.model import Decision, Policy, ScheduleResult, Target
from tmc.controllers.runtime import MultiPrefixController, Result, requeue
from tmc.protocol.keys import sync_target_key
from tmc.protocol.workloads import replicas_of
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import NAMESPACES, ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-placement-controller"  # the field manager its writes are recorded under

log = logging.getLogger("tmc.controllers.placement")

DEFAULT_LOCATION_WORKSPACE = "root"
SCALABLE = tuple(r for r in BUILTIN_RESOURCES if r.group == "apps" and "scale" in r.subresources)
_PLACEMENT_PREFIX = PLACEMENTS.key_prefix(None)
_LOCATION_PREFIX = LOCATIONS.key_prefix(None)
_TARGET_PREFIX = SYNC_TARGETS.key_prefix(None)
_NAMESPACE_PREFIX = NAMESPACES.key_prefix(None)


def target_fingerprint(t: Target) -> tuple[Any, ...]:
    """What scheduling reads from a SyncTarget. Capacity enters only as whole percent and weight units, so
    heartbeats and small allocation changes do not reschedule every Placement."""
    return (
        tuple(sorted(t.labels.items())),
        t.ready,
        t.unschedulable,
        t.evict_after,
        t.taints,
        t.capabilities,
        round(t.utilization() * 100),
        t.available_units(),
    )


@dataclass
class _Source:
    """Where a Placement's candidates come from, or why there are none."""

    within: frozenset[int] | None = None
    location: dict[str, str] | None = None
    error: str = ""


@dataclass
class Decided:
    """One scheduling decision and the inputs it was made from."""

    policy: Policy
    source_ws: str  # the workspace the candidates come from
    source: _Source
    targets: TargetSet
    previous: list[Decision]
    holding: set[str]
    load: Mapping[str, int]
    now: float
    bound: bool  # the Placement selects at least one namespace
    result: ScheduleResult | None = None
    decisions: list[Decision] = field(default_factory=list)


class PlacementController(MultiPrefixController):
    name = "placement-scheduler"
    prefixes = (
        _PLACEMENT_PREFIX,
        _LOCATION_PREFIX,
        _TARGET_PREFIX,
        _NAMESPACE_PREFIX,
        *(r.key_prefix(None) for r in SCALABLE),
    )
    # Reconciles of different Placements overlap their durable writes, which the store commits in groups; the
    # decision itself never awaits, so concurrent reconciles still see each other's choices (load) at once.
    workers = 32

    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        service: ObjectService,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service
        self.clock = clock
        self.events = EventRecorder(service, "tmc-scheduler")
        self._targets: dict[str, dict[str, Target]] = {}  # workspace -> name -> Target
        self._target_sets: dict[str, TargetSet] = {}  # built lazily, dropped when a target's fingerprint changes
        self._decided: dict[str, tuple[str, ...]] = {}  # placement key -> keys in its status
        self._load: Counter[str] = Counter()
        self._source_ws: dict[str, str] = {}  # placement key -> the workspace its targets came from
        self._holders: dict[str, set[str]] = {}  # target key -> placement keys that chose it
        # Placements with fewer targets than they want (all eligible, or a count not reached, or none at all).
        self._unsatisfied: set[str] = set()

    # ------------------------------------------------------------------ indexes

    def initial_keys(self) -> Iterable[str]:
        for entry in self.store.list(_TARGET_PREFIX):
            self._index_target(entry.key, entry.obj)
        keys = []
        for entry in self.store.list(_PLACEMENT_PREFIX):
            self._index_placement(entry.key, entry.obj)
            keys.append(entry.key)
        return keys

    def _index_target(self, key: str, obj: dict[str, Any] | None) -> bool:
        """Update the target index; True when the change matters to scheduling."""
        ws = cluster_of_key(key)
        name = key.rsplit("/", 1)[1]
        targets = self._targets.setdefault(ws, {})
        old = targets.get(name)
        if obj is None:
            if old is None:
                return False
            del targets[name]
            self._target_sets.pop(ws, None)
            return True
        new = Target.from_object(obj, ws, old.key if old else sync_target_key(ws, name))
        targets[name] = new
        if old is None or target_fingerprint(old) != target_fingerprint(new):
            self._target_sets.pop(ws, None)
            return True
        return False

    def _index_placement(self, key: str, obj: dict[str, Any] | None) -> None:
        if obj is None:
            self._set_decided(key, None)
            return
        decisions = (obj.get("status") or {}).get("decisions") or ()
        self._set_decided(key, tuple(str(d["key"]) for d in decisions if isinstance(d, dict) and d.get("key")))

    def _set_decided(self, key: str, keys: tuple[str, ...] | None) -> None:
        for k in self._decided.pop(key, ()):
            self._load[k] -= 1
            if self._load[k] <= 0:
                del self._load[k]
            holders = self._holders.get(k)
            if holders is not None:
                holders.discard(key)
                if not holders:
                    del self._holders[k]
        if keys is not None:
            self._decided[key] = keys
            self._load.update(keys)
            for k in keys:
                self._holders.setdefault(k, set()).add(key)

    def observe(self, event: Event) -> None:
        if event.key.startswith(_PLACEMENT_PREFIX):
            self._index_placement(event.key, None if event.type == "DELETED" else event.obj)

    def keys_for(self, event: Event) -> Iterable[str]:
        key = event.key
        if key.startswith(_PLACEMENT_PREFIX):
            if event.type == "DELETED":
                self._forget(key)
                return ()
            # Our own status writes come back as events too; only a spec change (or a new object) needs work.
            if event.prev is not None and (event.prev.get("spec") == event.obj.get("spec")):
                return ()
            return (key,)
        if key.startswith(_TARGET_PREFIX):
            if not self._index_target(key, None if event.type == "DELETED" else event.obj):
                return ()
            if event.type != "MODIFIED":
                return self._placements_using(cluster_of_key(key))  # may also change a default location workspace
            # Decisions are sticky, so a changed target matters only to the Placements that chose it and to those
            # that want more targets than they have; the others keep their choice whatever this target became.
            ws = cluster_of_key(key)
            target_key = self._targets[ws][key.rsplit("/", 1)[1]].key
            affected = set(self._holders.get(target_key, ()))
            affected.update(k for k in self._unsatisfied if self._source_ws.get(k) == ws)
            return sorted(affected)
        if key.startswith(_LOCATION_PREFIX):
            if event.type == "MODIFIED" and event.prev is not None and not _location_changed(event.prev, event.obj):
                return ()
            return self._placements_using(cluster_of_key(key))
        if key.startswith(_NAMESPACE_PREFIX):
            if event.type == "MODIFIED" and event.prev is not None and _labels(event.prev) == _labels(event.obj):
                return ()
            return self._placements_in(cluster_of_key(key))
        # A scalable workload: its replica count feeds status.decisions[].replicas.
        prev = event.prev
        same = prev is not None and _labels(prev) == _labels(event.obj) and replicas_of(prev) == replicas_of(event.obj)
        if event.type == "MODIFIED" and same:
            return ()
        return self._placements_in(cluster_of_key(key))

    def _placements_in(self, ws: str) -> list[str]:
        return [entry.key for entry in self.store.list(PLACEMENTS.key_prefix(ws))]

    def _placements_using(self, ws: str) -> list[str]:
        """Placements whose candidates may come from workspace `ws`, including those that might switch to it."""
        keys = {k for k, source in self._source_ws.items() if source == ws}
        keys.update(self._placements_in(ws))  # their default location workspace may now become `ws`
        keys.update(k for k in self._decided if k not in self._source_ws)
        return sorted(keys)

    def _forget(self, key: str) -> None:
        self._source_ws.pop(key, None)
        self._unsatisfied.discard(key)
        ws, name = cluster_of_key(key), key.rsplit("/", 1)[1]
        try:
            metrics.PLACEMENT_SELECTED_TARGETS.remove(name, ws)
        except KeyError:
            pass

    def target_set(self, ws: str) -> TargetSet:
        cached = self._target_sets.get(ws)
        if cached is None:
            cached = self._target_sets[ws] = TargetSet(self._targets.get(ws, {}).values())
        return cached

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        if entry is None:
            self._forget(key)
            return None
        obj = entry.obj
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return None
        ws = cluster_of_key(key)
        name = str(md["name"])
        started = time.perf_counter()
        d = self.decide(ws, key, obj)
        self._source_ws[key] = d.source_ws
        policy, source, result, decisions, targets = d.policy, d.source, d.result, d.decisions, d.targets
        previous, now, status = d.previous, d.now, obj.get("status") or {}
        if result is not None:
            # Count the choice at once, so Placements scheduled before this status write lands see its load.
            self._set_decided(key, tuple(dec.key for dec in decisions))
        wanted = policy.number_of_targets
        if result is None or wanted is None or len(decisions) < wanted:
            self._unsatisfied.add(key)
        else:
            self._unsatisfied.discard(key)
        candidates = metrics.candidates_bucket(len(targets))
        metrics.PLACEMENT_DECISION_SECONDS.labels(policy.strategy, candidates).observe(time.perf_counter() - started)
        outcome = "error" if result is None else ("success" if result.scheduled else "no_targets")
        metrics.PLACEMENT_DECISIONS.labels(policy.strategy, outcome, ws).inc()
        metrics.PLACEMENT_SELECTED_TARGETS.labels(name, ws).set(len(decisions))

        new_status = self.status_for(status, d)
        if new_status != status:
            # ObjectService copies what it stores, so a shallow copy of the shared object is enough.
            body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(entry.rev)}, "status": new_status}
            # A 409 (someone wrote in between) decides again after the runtime's conflict delay.
            await self.service.update(
                PLACEMENTS, ws, None, name, body, WriteOptions(field_manager=FIELD_MANAGER), "status"
            )
            await self._record(ws, obj, policy, previous, decisions, source, result, status, now)
        if result is not None and result.next_check is not None:
            return requeue(result.next_check - now + 0.05)
        return None

    def decide(self, ws: str, key: str, obj: Mapping[str, Any], why: dict[int, str] | None = None) -> Decided:
        """What the scheduler decides for Placement `obj` now, with no side effect: the reconcile writes it, a
        server-side dry run (simulate.py) shows it. `why` collects the filter that excluded each target."""
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        source_ws = self.location_workspace(ws, spec)
        policy = Policy.from_spec(spec, f"{ws}/{obj['metadata']['name']}")
        targets = self.target_set(source_ws)
        source = self._source(source_ws, spec, targets)
        namespaces = self._selected_namespaces(ws, spec)
        previous = [d for raw in status.get("decisions") or () if (d := Decision.from_status(raw)) is not None]
        holding = _holding(namespaces)
        own = Counter(self._decided.get(key, ()))
        load = {k: n - own[k] for k, n in self._load.items()} if own else self._load
        decided = Decided(policy, source_ws, source, targets, previous, holding, load, self.clock(), bool(namespaces))
        if not source.error:
            decided.result = schedule(
                policy,
                targets,
                now=decided.now,
                within=source.within,
                current=[d.key for d in previous],
                holding=holding,
                load=load,
                why=why,
            )
            totals = self._replica_totals(ws, spec, namespaces)
            decided.decisions = with_replicas(policy, decided.result.decisions, totals)
        return decided

    def status_for(self, status: dict[str, Any], d: Decided) -> dict[str, Any]:
        """The status a Placement gets for decision `d` (what the reconcile writes, what a simulation shows)."""
        return self._status(status, d.source, d.result, d.decisions, d.bound, d.policy)

    def location_workspace(self, ws: str, spec: Mapping[str, Any]) -> str:
        explicit = spec.get("locationWorkspace")
        if explicit:
            return str(explicit)
        if self.store.count(LOCATIONS.key_prefix(ws)) or self._targets.get(ws):
            return ws
        return DEFAULT_LOCATION_WORKSPACE

    def _source(self, ws: str, spec: Mapping[str, Any], targets: TargetSet) -> _Source:
        selectors = spec.get("locationSelectors")
        if selectors is None:
            if spec.get("syncTargetSelector") is not None:
                return _Source()  # direct selection: every target of the workspace, narrowed by the selector
            return _Source(error="No valid location is found: neither locationSelectors nor syncTargetSelector is set")
        wanted = _gvr(spec.get("locationResource"))
        parsed = [label_selector_from_object(s) for s in selectors if isinstance(s, dict)]
        matched = []
        for entry in self.store.list(LOCATIONS.key_prefix(ws)):
            loc = entry.obj
            if _gvr((loc.get("spec") or {}).get("resource")) != wanted:
                continue
            labels = loc["metadata"].get("labels") or {}
            if any(sel.matches(labels) for sel in parsed):
                matched.append(loc)
        if not matched:
            return _Source(error=f"No valid location is found in workspace {ws}")
        matched.sort(key=lambda loc: str(loc["metadata"]["name"]))
        within: set[int] = set()
        for loc in matched:
            within |= targets.select(label_selector_from_object((loc.get("spec") or {}).get("instanceSelector")))
        return _Source(frozenset(within), {"path": ws, "locationName": str(matched[0]["metadata"]["name"])})

    def _selected_namespaces(self, ws: str, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        selector = label_selector_from_object(spec.get("namespaceSelector"))
        out = []
        for entry in self.store.list(NAMESPACES.key_prefix(ws)):
            md = entry.obj["metadata"]
            if md.get("name") in BLOCKED_NAMESPACES or md.get("deletionTimestamp"):
                continue
            if selector.matches(md.get("labels") or {}):
                out.append(entry.obj)
        return out

    def _replica_totals(self, ws: str, spec: Mapping[str, Any], namespaces: list[dict[str, Any]]) -> list[int]:
        raw = spec.get("workloadSelector")
        selector = label_selector_from_object(raw) if raw is not None else EVERYTHING
        totals = []
        for ns in namespaces:
            for info in SCALABLE:
                for entry in self.store.list(info.key_prefix(ws, str(ns["metadata"]["name"]))):
                    replicas = replicas_of(entry.obj)
                    if replicas is not None and selector.matches(entry.obj["metadata"].get("labels") or {}):
                        totals.append(replicas)
        return totals

    def _status(
        self,
        status: dict[str, Any],
        source: _Source,
        result: ScheduleResult | None,
        decisions: list[Decision],
        bound: bool,
        policy: Policy,
    ) -> dict[str, Any]:
        out = dict(status)
        conditions = status.get("conditions")
        if source.error or result is None:
            out["phase"] = "Pending"
            out.pop("selectedLocation", None)
            ready = condition(
                scheduling.CONDITION_READY, False, scheduling.REASON_LOCATION_NO_MATCH, source.error, SEVERITY_ERROR
            )
            scheduled = condition(
                scheduling.CONDITION_SCHEDULED,
                False,
                scheduling.REASON_SCHEDULE_LOCATION_NOT_FOUND,
                "No selected location is scheduled",
                SEVERITY_WARNING,
            )
        else:
            out["phase"] = "Bound" if bound else "Unbound"
            if source.location is not None:
                out["selectedLocation"] = source.location
            else:
                out.pop("selectedLocation", None)
            ready = condition(scheduling.CONDITION_READY, True)
            if result.scheduled:
                scheduled = condition(
                    scheduling.CONDITION_SCHEDULED, True, message=f"{result.explain()}; strategy {policy.strategy}"
                )
            else:
                scheduled = condition(
                    scheduling.CONDITION_SCHEDULED,
                    False,
                    scheduling.REASON_NO_VALID_TARGET,
                    result.explain(),
                    SEVERITY_WARNING,
                )
        out["decisions"] = [d.to_status() for d in decisions]
        out["conditions"] = set_condition(set_condition(conditions, ready), scheduled)
        return out

    async def _record(
        self,
        ws: str,
        obj: dict[str, Any],
        policy: Policy,
        previous: list[Decision],
        decisions: list[Decision],
        source: _Source,
        result: ScheduleResult | None,
        old_status: Mapping[str, Any],
        now: float,
    ) -> None:
        """Events for changes of the decision: where the workloads go, and why a target was dropped."""
        old_keys, new_keys = {d.key for d in previous}, {d.key for d in decisions}
        old_scheduled = find(old_status.get("conditions"), scheduling.CONDITION_SCHEDULED) or {}
        if result is None:
            if old_scheduled.get("reason") != scheduling.REASON_SCHEDULE_LOCATION_NOT_FOUND:
                await self.events.record(ws, obj, WARNING, scheduling.REASON_LOCATION_NO_MATCH, source.error)
            return
        if not result.scheduled:
            if old_keys or old_scheduled.get("status") != "False":
                await self.events.record(ws, obj, WARNING, "FailedScheduling", result.explain())
            return
        if old_keys == new_keys:
            return
        placed = ", ".join(f"{d.name} ({d.replicas} replicas)" if policy.divided else d.name for d in decisions)
        parts = [f"Placed on {placed} by strategy {policy.strategy}"]
        added = [d.name for d in decisions if d.key not in old_keys]
        if added and old_keys:
            parts.append(f"added {', '.join(added)}")
        dropped = [d for d in previous if d.key not in new_keys]
        if dropped:
            targets = self.target_set(self._source_ws.get(_placement_key(ws, obj), ws))
            reasons = ", ".join(f"{d.name} ({why_dropped(targets, d.key, policy, now)})" for d in dropped)
            parts.append(f"dropped {reasons}: its copies stay until the new targets report the workloads available")
        await self.events.record(ws, obj, NORMAL, "Scheduled", "; ".join(parts))


def why_dropped(targets: TargetSet, key: str, policy: Policy, now: float) -> str:
    """A short reason a previously chosen target left the decision."""
    i = targets.index_of_key.get(key)
    if i is None:
        return "SyncTarget deleted"
    t = targets.targets[i]
    if not t.ready:
        return "not Ready"
    if t.unschedulable:
        return "cordoned"
    if t.evict_after is not None and t.evict_after <= now:
        return "evicting"
    for taint in t.taints:
        if taint.effect == "NoExecute" and not policy.tolerates(taint):
            return f"taint {taint}"
    if not policy.target_selector.matches(t.labels):
        return "no longer selected"
    return "no longer among the best candidates"


def _placement_key(ws: str, obj: Mapping[str, Any]) -> str:
    return PLACEMENTS.key(ws, None, str(obj["metadata"]["name"]))


def _holding(namespaces: Iterable[Mapping[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for ns in namespaces:
        for label, value in (ns["metadata"].get("labels") or {}).items():
            if label.startswith(STATE_LABEL_PREFIX) and value == STATE_SYNC:
                keys.add(label[len(STATE_LABEL_PREFIX) :])
    return keys


def _gvr(value: Any) -> tuple[str, str, str]:
    gvr = value if isinstance(value, dict) else {}
    return (str(gvr.get("group") or ""), str(gvr.get("version") or ""), str(gvr.get("resource") or ""))


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """The labels selectors see, without the per-target state labels the assignment controller writes (its own
    writes must not re-trigger scheduling)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {k: v for k, v in labels.items() if not k.startswith(STATE_LABEL_PREFIX)}


def _location_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return _labels(old) != _labels(new) or old.get("spec") != new.get("spec")
