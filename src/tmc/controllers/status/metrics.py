"""`tmc_workload_sync_status`: per SyncTarget, how many assigned objects are in which sync state, as the hub sees it.

A custom collector computes the gauge at scrape time from the store, so it always matches what the store holds,
needs no watch of its own, and a SyncTarget's series vanish with the SyncTarget. A scrape is one scan of the store;
what each assigned object says about its targets is cached by storage key and revision, so only the objects written
since the previous scrape are looked at again (reading availability parses the status report). The scan reads the
store's in-memory state, so collect() runs on the hub's event loop, as the /metrics handler does.

The states are exclusive (they sum to the objects assigned to the target), checked in this order:

- `deleting`: unassignment (the `deletion.internal.workload.kcp.io/<key>` annotation) or deletion on the hub is under
  way; the syncer has not yet removed the downstream copy and let go.
- `pending`: the hub has no evidence yet that the object is on the target: the target's syncer has not added its
  finalizer, or, for a workload of a kind with a status subresource, it has not reported a status yet. Other kinds
  need no report: a member cluster may never give them a status (a ClusterIP Service on a simulated cluster, a
  custom resource nobody reconciles there), and the syncer reports only non-empty ones.
- `available`: workloads only (objects with a pod template or replica count): the target reports it available
  (`available_on`) and the SyncTarget is Ready. A NotReady target's last report is stale, as in status aggregation.
- `synced`: everything else: taken on by the syncer; for workloads, reported but not (yet) available.

Only namespaced objects with the `state.workload.kcp.io/<key>=Sync` label count: namespaces carry state labels too,
but syncers create downstream namespaces on demand and never hold a finalizer on them. Objects labelled for a key of
no existing SyncTarget are left out. A (target, resource) pair has series while at least one object of that resource
is assigned to the target, with every state present (zeros included); `available` only for workload resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from tmc.api.workload import (
    CONDITION_READY,
    DELETION_ANNOTATION_PREFIX,
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    STATUS_DIFF_ANNOTATION_PREFIX,
    SYNC_TARGETS,
    SYNCER_FINALIZER_PREFIX,
)
from tmc.apimachinery.conditions import is_true
from tmc.observability import catalogue, exposition
from tmc.observability.exposition import label_value
from tmc.protocol.keys import sync_target_key
from tmc.protocol.workloads import NOT_SYNCED, available_on, is_workload
from tmc.registry.resources import ResourceRegistry
from tmc.storage.interface import Entry, Store

NAME = "tmc_workload_sync_status"
LABELS = ("workspace", "sync_target", "resource", "state")
MEANING = (
    "Objects assigned to a SyncTarget by sync state (pending, synced, available, deleting), from what the hub "
    "knows; workspace and sync_target name the SyncTarget, resource is the plural."
)
catalogue.describe(
    NAME,
    "gauge",
    MEANING,
    LABELS,
    owners=(catalogue.HUB,),
    promql='sum by (sync_target) (tmc_workload_sync_status{state="pending"})',
)
STATES = ("pending", "synced", "available", "deleting")
_PENDING, _SYNCED, _AVAILABLE, _DELETING = range(4)

# What an object says about one target, before the target's readiness and the kind's status subresource decide.
_NO_FINALIZER, _NO_REPORT, _TAKEN, _REPORTS_AVAILABLE, _IN_DELETION = range(5)
_RAW_STATES = _IN_DELETION + 1

_TARGET_PREFIX = SYNC_TARGETS.key_prefix(None)
_PREFIX_LEN = len(STATE_LABEL_PREFIX)
# The key ranges of kinds never placed, which a count skips: with a WorkloadRevision per workload change they can
# be half of the store. (Keys never hold U+10FFFF, so prefix + it is after every key under the prefix.)
_SKIPPED = tuple(sorted(f"/registry/{group or 'core'}/{plural}/" for group, plural in NOT_SYNCED))
_AFTER = "\U0010ffff"


class _Facts(NamedTuple):
    """What one assigned object counts for, kept until the object is written again. (A NamedTuple: a frozen
    dataclass takes longer to build than the rest of the classification, and a cold scrape builds one per assigned
    object.)"""

    resource: tuple[str, str, str]  # (workspace, group, plural) of the object
    workload: bool
    targets: tuple[tuple[str, int], ...]  # (target key, raw state)


def _placeable(store: Store) -> Iterator[Entry]:
    """Every stored object but those of the kinds never placed, in key order."""
    start = ""
    for skipped in _SKIPPED:
        for entry in store.list("/registry/", start_after=start):
            if entry.key >= skipped:
                break
            yield entry
        start = skipped + _AFTER
    yield from store.list("/registry/", start_after=start)


def object_facts(entry: Entry) -> _Facts | None:
    """The raw per-target states of a stored object, or None when no target has it in Sync state (or it is not a
    namespaced object)."""
    md = entry.obj.get("metadata")
    if not isinstance(md, dict):
        return None
    labels = md.get("labels")
    if not labels:
        return None
    keys = [
        name[_PREFIX_LEN:]
        for name, value in labels.items()
        if value == STATE_SYNC and name.startswith(STATE_LABEL_PREFIX)
    ]
    if not keys:
        return None
    parts = entry.key.split("/")
    if len(parts) != 7:  # "", "registry", group, resource, cluster, namespace, name
        return None
    annotations = md.get("annotations") or {}
    finalizers = md.get("finalizers") or ()
    deleted = bool(md.get("deletionTimestamp"))
    workload = is_workload(entry.obj)
    targets = []
    for key in keys:
        if deleted or DELETION_ANNOTATION_PREFIX + key in annotations:
            raw = _IN_DELETION
        elif SYNCER_FINALIZER_PREFIX + key not in finalizers:
            raw = _NO_FINALIZER
        elif not workload:
            raw = _TAKEN
        elif not annotations.get(STATUS_DIFF_ANNOTATION_PREFIX + key):
            raw = _NO_REPORT
        elif available_on(entry.obj, key):
            raw = _REPORTS_AVAILABLE
        else:
            raw = _TAKEN
        targets.append((key, raw))
    group = "" if parts[2] == "core" else parts[2]
    return _Facts((parts[4], group, parts[3]), workload, tuple(targets))


def _state(raw: int, ready: bool, has_status: bool) -> int:
    if raw == _IN_DELETION:
        return _DELETING
    if raw == _NO_FINALIZER or (raw == _NO_REPORT and has_status):
        return _PENDING
    if raw == _REPORTS_AVAILABLE and ready:
        return _AVAILABLE
    return _SYNCED


@dataclass(slots=True)
class _Series:
    by_state: list[int] = field(default_factory=lambda: [0] * len(STATES))
    workload: bool = False  # a workload resource: it gets an `available` series


Counts = dict[tuple[str, str, str], _Series]  # keyed by (workspace, sync_target, resource)


RawKey = tuple[str, tuple[str, str, str], bool]  # (target key, (workspace, group, plural), workload)


@dataclass(eq=False)
class _Source:
    """The per-target counts of one store's objects by raw state, kept across scrapes: a scrape reclassifies only
    the objects written since the previous one (from the store's history), and applies the targets' readiness to
    the counts, not to each object. Without that history (a first scrape, or one after more writes than the store
    retains) it walks every object."""

    store: Store
    registry: ResourceRegistry
    cache: dict[str, _Facts] = field(default_factory=dict)  # assigned objects only
    raw: dict[RawKey, list[int]] = field(default_factory=dict)
    rev: int = -1  # the revision the counts are at; -1: never counted

    def has_status(self, cluster: str, group: str, plural: str) -> bool:
        return any("status" in r.subresources for r in self.registry.all_versions(cluster, group, plural))

    def count(self, out: Counts) -> None:
        targets: dict[str, tuple[str, str, bool]] = {}  # key -> (workspace, name, Ready)
        for entry in self.store.list(_TARGET_PREFIX):
            workspace, name = entry.key.split("/")[4:6]
            ready = is_true((entry.obj.get("status") or {}).get("conditions"), CONDITION_READY)
            targets[sync_target_key(workspace, name)] = (workspace, name, ready)
        self._refresh()
        statuses: dict[tuple[str, str, str], bool] = {}
        for (key, resource, workload), by_raw in self.raw.items():
            target = targets.get(key)
            if target is None or not any(by_raw):
                continue  # its SyncTarget is gone (the assignment controller removes the label), or nothing left
            has_status = statuses.get(resource)
            if has_status is None:
                has_status = statuses[resource] = self.has_status(*resource)
            workspace, name, ready = target
            series = out.get((workspace, name, resource[2]))
            if series is None:
                series = out[(workspace, name, resource[2])] = _Series()
            for raw, n in enumerate(by_raw):
                series.by_state[_state(raw, ready, has_status)] += n
            series.workload = series.workload or workload

    def _refresh(self) -> None:
        rev = self.store.current_rev
        changed = self.store.changed_keys(self.rev, "/registry/") if self.rev >= 0 else None
        if changed is None:
            self.cache, self.raw = {}, {}
            for entry in _placeable(self.store):
                self._add(entry.key, object_facts(entry))
        else:
            for key in dict.fromkeys(changed):  # each changed key once
                if key.startswith(_SKIPPED):
                    continue
                old = self.cache.pop(key, None)
                if old is not None:
                    self._tally(old, -1)
                now = self.store.get(key)
                if now is not None:
                    self._add(key, object_facts(now))
        self.rev = rev

    def _add(self, key: str, facts: _Facts | None) -> None:
        if facts is not None:
            self.cache[key] = facts
            self._tally(facts, 1)

    def _tally(self, facts: _Facts, sign: int) -> None:
        for key, raw in facts.targets:
            by_raw = self.raw.get((key, facts.resource, facts.workload))
            if by_raw is None:
                by_raw = self.raw[(key, facts.resource, facts.workload)] = [0] * _RAW_STATES
            by_raw[raw] += sign


class WorkloadSyncStatusCollector:
    """Computes `tmc_workload_sync_status` over the attached stores on every collect (one store per hub process;
    several hubs in one test process are summed, so the exposition never repeats a series)."""

    def __init__(self) -> None:
        self._sources: list[_Source] = []

    def attach(self, store: Store, registry: ResourceRegistry) -> None:
        self._sources.append(_Source(store, registry))

    def detach(self, store: Store) -> None:
        self._sources = [s for s in self._sources if s.store is not store]

    def samples(self) -> Iterator[str]:
        counts: Counts = {}
        for source in list(self._sources):
            source.count(counts)
        for (workspace, target, resource), series in sorted(counts.items()):
            head = (
                f'{NAME}{{workspace="{label_value(workspace)}",sync_target="{label_value(target)}",'
                f'resource="{label_value(resource)}",state="'
            )
            for state, value in enumerate(series.by_state):
                if state == _AVAILABLE and not series.workload:
                    continue
                yield f'{head}{STATES[state]}"}} {float(value)}\n'


# One per process, exposed on import like the module-level metrics; hubs attach their store to it.
COLLECTOR = WorkloadSyncStatusCollector()
exposition.register(NAME, COLLECTOR.samples)
