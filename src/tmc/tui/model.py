"""What the dashboard knows: the objects its watches delivered, the hub's health and sampled metric series.

Pure state, no I/O: feed.py writes to it from watch events and samplers, views.py reads it. Every collection has a
revision counter that moves on each change, so a view rebuilds its rows only when its objects changed, and a burst
of watch events costs one rebuild at the next screen refresh instead of one per event.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tmc.cli import resources as r
from tmc.cli.names import human_duration, parse_time

Clock = Callable[[], datetime.datetime]

# Kinds the dashboard watches besides the workload types.
SYNC_TARGETS = "synctargets"
PLACEMENTS = "placements"
EVENTS = "events"
WORKLOADS = "workloads"

EVENT_HISTORY = 2000  # newest Events kept for the Events screen
SERIES_POINTS = 60  # samples per sparkline (5 minutes at the default 5 s interval)


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, namespace, name): how the dashboard names one object."""
    m = r.meta(obj)
    return str(obj.get("kind") or ""), str(m.get("namespace") or ""), str(m.get("name") or "")


@dataclass
class Collection:
    """The current objects of one watched kind, by (kind, namespace, name)."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    revision: int = 0
    listed: bool = False
    # The keys of the objects each watch event changed, in order, for views that update sums incrementally rather
    # than walk every object; `epoch` moves when that is not possible (a relist, or the journal grew too long).
    journal: list[tuple[str, str, str]] = field(default_factory=list)
    epoch: int = 0
    keys_version: int = 0  # moves when an object comes or goes (not when one changes)
    # sort key (None: the object key itself) -> (keys_version, the keys in that order)
    _sorted: dict[Any, tuple[int, list[tuple[str, str, str]]]] = field(default_factory=dict)

    def sorted_keys(self, by: Callable[[tuple[str, str, str]], Any] | None = None) -> list[tuple[str, str, str]]:
        """The objects' keys in order (of `by`, a module-level function, else of the key), sorted again only after
        an object came or went (not when one changed)."""
        cached = self._sorted.get(by)
        if cached is None or cached[0] != self.keys_version:
            cached = self._sorted[by] = (self.keys_version, sorted(self.objects, key=by))
        return cached[1]

    def replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        """A (re)list of `kind`: its objects become exactly `items`."""
        for key in [k for k in self.objects if k[0] == kind]:
            del self.objects[key]
        for item in items:
            self.objects[object_key(item)] = item
        self.keys_version += 1
        self.listed = True
        self.revision += 1
        self._restart_journal()

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        key = object_key(obj)
        if event == "DELETED":
            if self.objects.pop(key, None) is not None:
                self.keys_version += 1
        else:
            if key not in self.objects:
                self.keys_version += 1
            self.objects[key] = obj
        self.revision += 1
        self.journal.append(key)
        if len(self.journal) > 4 * len(self.objects) + 1000:
            self._restart_journal()

    def _restart_journal(self) -> None:
        self.journal = []
        self.epoch += 1


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Health:
    """The hub's /readyz?verbose and the health monitor's component states (tmc_component_health)."""

    reachable: bool | None = None  # None: not asked yet
    ready: bool = False
    checks: list[Check] = field(default_factory=list)
    components: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass
class Series:
    """A metric sampled over time, newest last; None where a sample could not be taken."""

    name: str
    unit: str
    points: deque[float | None] = field(default_factory=lambda: deque(maxlen=SERIES_POINTS))

    def add(self, value: float | None) -> None:
        self.points.append(value)

    @property
    def last(self) -> float | None:
        return self.points[-1] if self.points else None


@dataclass
class Model:
    workspace: str
    clock: Clock = r.now
    server: str = ""
    targets: Collection = field(default_factory=Collection)
    placements: Collection = field(default_factory=Collection)
    workloads: Collection = field(default_factory=Collection)
    events: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    events_revision: int = 0
    health: Health = field(default_factory=Health)
    latency: Series = field(default_factory=lambda: Series("propagation latency", "ms"))
    errors: Series = field(default_factory=lambda: Series("sync errors", "/s"))
    alerts: list[dict[str, Any]] | None = None  # None: no Prometheus to ask
    metrics_source: str = "none"
    # Watch connection per kind; the banner shows while any is down.
    connected: dict[str, bool] = field(default_factory=dict)
    last_error: str = ""
    # views.states_of's cache: object key -> (object, names_revision, {target key: state}).
    state_cache: dict[tuple[str, str, str], tuple[dict[str, Any], int, dict[str, str]]] = field(default_factory=dict)
    placed_cache: Any = None  # views.placed's running sums
    # views.workload_rows' cache: object key -> (names_revision, row)
    workload_row_cache: dict[tuple[str, str, str], tuple[int, Any]] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)
    _names_at: int = -1
    _names_epoch: int = -1
    _names_position: int = 0
    # SyncTarget object key -> (the object it was computed from, its target key)
    _keys: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = field(default_factory=dict)
    names_revision: int = 0

    def collection(self, kind: str) -> Collection:
        return {SYNC_TARGETS: self.targets, PLACEMENTS: self.placements}.get(kind, self.workloads)

    # ---------------------------------------------------------------- events

    def add_event(self, event: str, obj: dict[str, Any]) -> None:
        uid = str(r.meta(obj).get("uid") or object_key(obj))
        if event == "DELETED":
            self.events.pop(uid, None)
        else:
            self.events.pop(uid, None)
            self.events[uid] = obj  # newest (last changed) last
            while len(self.events) > EVENT_HISTORY:
                self.events.popitem(last=False)
        self.events_revision += 1

    def replace_events(self, items: list[dict[str, Any]]) -> None:
        self.events.clear()
        for item in sorted(items, key=event_time)[-EVENT_HISTORY:]:
            self.events[str(r.meta(item).get("uid") or object_key(item))] = item
        self.events_revision += 1

    def events_for(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        out = []
        for e in self.events.values():
            o = e.get("involvedObject") or {}
            if o.get("kind") == kind and o.get("name") == name and str(o.get("namespace") or "") == namespace:
                out.append(e)
        return sorted(out, key=event_time)

    # ---------------------------------------------------------------- derived facts

    @property
    def unreachable(self) -> bool:
        """The hub is not answering: a watch lost its connection, or the health check got no answer."""
        down = any(not up for up in self.connected.values())
        return down or self.health.reachable is False

    def target_names(self) -> dict[str, str]:
        """SyncTarget key -> name (`names_revision` moves when it differs). Kept up to date from the SyncTargets'
        journal: a burst of SyncTarget events costs a key per event, not a walk of every SyncTarget per redraw."""
        targets = self.targets
        if self._names_at == targets.revision:
            return self._names
        if self._names_epoch != targets.epoch:
            self._keys = {ref: (st, r.target_key(st, self.workspace)) for ref, st in targets.objects.items()}
            names = {key: r.name_of(st) for st, key in self._keys.values()}
        else:
            names = dict(self._names)
            for ref in dict.fromkeys(targets.journal[self._names_position :]):
                old = self._keys.pop(ref, None)
                if old is not None:
                    names.pop(old[1], None)
                st = targets.objects.get(ref)
                if st is not None:
                    key = r.target_key(st, self.workspace)
                    self._keys[ref] = (st, key)
                    names[key] = r.name_of(st)
        self._names_at, self._names_epoch, self._names_position = targets.revision, targets.epoch, len(targets.journal)
        if names != self._names:
            self._names = names
            self.names_revision += 1
        return self._names

    def key_of(self, st: dict[str, Any]) -> str:
        """A SyncTarget's key, computed once per version of the object (a watch event brings a new dict)."""
        ref = object_key(st)
        cached = self._keys.get(ref)  # written by target_names only, so that it knows each object's last key
        if cached is not None and cached[0] is st:
            return cached[1]
        return r.target_key(st, self.workspace)

    def age(self, timestamp: Any) -> str:
        """kubectl's age of `timestamp` by the model's clock (a fixed one in the snapshot tests)."""
        t = parse_time(timestamp)
        return "never" if t is None else human_duration(max(0.0, (self.clock() - t).total_seconds()))

    def seconds_since(self, timestamp: Any) -> float | None:
        t = parse_time(timestamp)
        return None if t is None else max(0.0, (self.clock() - t).total_seconds())


def event_time(e: dict[str, Any]) -> str:
    return str(e.get("lastTimestamp") or e.get("eventTime") or r.meta(e).get("creationTimestamp") or "")
