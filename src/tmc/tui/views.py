"""The model turned into what each screen shows: table columns, rows, counts and detail text. Pure functions of the
model (and its clock), so the snapshot tests and the benchmark exercise exactly what the screens draw.

Column meanings follow the CLI's (tmc.cli.resources): readiness, health, scheduling state, utilisation and the
per-target sync state are computed by the same functions `kubectl tmc get` uses.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from rich.markup import escape

from tmc.cli import contract
from tmc.cli import resources as r
from tmc.cli.names import REGION_LABEL, STATUS_DIFF_ANNOTATION_PREFIX, STATUS_PROMOTED, ZONE_LABEL
from tmc.tui.model import Model, event_time, object_key
from tmc.tui.table import Column

SPEC_DIFF_ANNOTATION_PREFIX = "experimental.spec-diff.workload.kcp.io/"
TRACEPARENT_ANNOTATION = "tracing.k8s.io/traceparent"
STATES = ("pending", "synced", "available", "failed", "paused", "removing", "upsync")


# ------------------------------------------------------------------------------------------------ helpers


def bar(fraction: float | None, width: int = 5) -> str:
    """`███░░ 52%`: a utilisation bar; `-` when not reported."""
    if fraction is None:
        return "-"
    full = max(0, min(width, round(fraction * width)))
    return "█" * full + "░" * (width - full) + f" {round(fraction * 100):>3}%"


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return r.meta(obj).get("labels") or {}


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return r.meta(obj).get("annotations") or {}


def _status_report(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    raw = annotations_of(obj).get(STATUS_DIFF_ANNOTATION_PREFIX + key)
    if not raw:
        return None
    try:
        report = json.loads(raw)
    except ValueError:
        return None
    status = report.get("status") if isinstance(report, dict) else None
    if status == STATUS_PROMOTED:
        status = obj.get("status")
    return status if isinstance(status, dict) else None


def _available(status: dict[str, Any] | None) -> bool:
    if not status:
        return False
    for c in status.get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == "Available":
            return c.get("status") == "True"
    if "replicas" in status:
        return int(status.get("availableReplicas") or 0) >= int(status.get("replicas") or 0)
    return False


def target_state(obj: dict[str, Any], key: str, label: str, name: str) -> str:
    """One target's state of a placed object, in the dashboard's words: pending, synced, available, failed,
    paused, removing or upsync (from the CLI's reading of the state label and sync.tmc.kcp.io annotations, plus the
    target's status report for available)."""
    state = r.target_state(obj, key, label, name)
    if state in ("Paused", "Pausing"):
        return "paused"
    if state == "Error":
        return "failed"
    if state == "Removing":
        return "removing"
    if state == "Upsync":
        return "upsync"
    if state == "Synced":
        return "available" if _available(_status_report(obj, key)) else "synced"
    return "pending"


def traceparent_id(obj: dict[str, Any]) -> str | None:
    """The trace id of the object's last traced change (`tracing.k8s.io/traceparent`, docs/observability.md)."""
    value = annotations_of(obj).get(TRACEPARENT_ANNOTATION) or ""
    parts = value.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


# ------------------------------------------------------------------------------------------------ clusters


@dataclass
class Placed:
    """Per SyncTarget key: how many placed objects, and their states."""

    counts: Counter[str]
    states: dict[str, Counter[str]]
    objects: int = 0  # placed objects (on at least one target)


def states_of(model: Model, obj: dict[str, Any], key: tuple[str, str, str] | None = None) -> dict[str, str]:
    """SyncTarget key -> state of a placed object, computed once per version of the object (a watch event brings a
    new dict), so a redraw of 10,000 workloads is a dictionary walk."""
    names = model.target_names()
    key = key or object_key(obj)
    cached = model.state_cache.get(key)
    if cached is not None and cached[0] is obj and cached[1] == model.names_revision:
        return cached[2]
    states = {k: target_state(obj, k, label, names.get(k, "")) for k, label in r.placed_keys(obj).items()}
    model.state_cache[key] = (obj, model.names_revision, states)
    return states


@dataclass
class _PlacedSums:
    """views.placed's running sums over the workloads journal (model.Collection)."""

    epoch: int
    position: int
    names_revision: int
    counted: dict[tuple[str, str, str], dict[str, str]]  # object key -> the states it adds to `placed`
    placed: Placed

    def add(self, states: dict[str, str], sign: int) -> None:
        for target, state in states.items():
            self.placed.counts[target] += sign
            per_target = self.placed.states.get(target)
            if per_target is None:
                per_target = self.placed.states[target] = Counter()
            per_target[state] += sign
            if sign < 0:
                if not self.placed.counts[target]:
                    del self.placed.counts[target], self.placed.states[target]
                elif not per_target[state]:
                    del per_target[state]


def placed(model: Model) -> Placed:
    """Counts per SyncTarget key. Kept as running sums: each watch event since the last call moves only its own
    object's contribution (a burst of events does not walk 10,000 workloads a redraw); everything is counted again
    after a relist or when the targets' names changed."""
    model.target_names()
    workloads = model.workloads
    sums: _PlacedSums | None = model.placed_cache
    if sums is None or sums.epoch != workloads.epoch or sums.names_revision != model.names_revision:
        if len(model.state_cache) > 2 * len(workloads.objects) + 100:  # deleted objects' entries
            model.state_cache = {k: v for k, v in model.state_cache.items() if k in workloads.objects}
        sums = _PlacedSums(workloads.epoch, len(workloads.journal), model.names_revision, {}, Placed(Counter(), {}))
        for key, obj in workloads.objects.items():
            sums.counted[key] = states_of(model, obj, key)
            sums.add(sums.counted[key], 1)
        sums.placed.objects = sum(1 for states in sums.counted.values() if states)
        model.placed_cache = sums
        return sums.placed
    for key in dict.fromkeys(workloads.journal[sums.position :]):
        previous = sums.counted.pop(key, None)
        if previous:
            sums.add(previous, -1)
            sums.placed.objects -= 1
        current = workloads.objects.get(key)
        if current is not None:
            sums.counted[key] = states_of(model, current, key)
            if sums.counted[key]:
                sums.add(sums.counted[key], 1)
                sums.placed.objects += 1
        else:
            model.state_cache.pop(key, None)
    sums.position = len(workloads.journal)
    return sums.placed


def scheduling(st: dict[str, Any]) -> str:
    state = r.schedulable(st)
    taints = (st.get("spec") or {}).get("taints") or ()
    return f"{state} +{len(taints)}t" if taints else state


@dataclass
class PlacedNow:
    """The latest `placed()`, read by the Clusters columns when a line is drawn (the columns are made once)."""

    placed: Placed


def cluster_columns(model: Model, now: PlacedNow) -> list[Column]:
    def heartbeat(st: dict[str, Any]) -> str:
        return model.age((st.get("status") or {}).get("lastSyncerHeartbeatTime"))

    # A watch event brings a new dict, so texts of `pure` columns are computed once per version of a SyncTarget
    # (parsing quantities for the bars on every repaint was a good part of a burst's redraws).
    return [
        Column("NAME", 16, r.name_of, pure=True),
        Column("READY", 8, lambda st: "Ready" if r.ready(st) == "True" else "NotReady", colour=True, pure=True),
        Column("HEALTH", 10, r.health, colour=True, pure=True),
        Column("BEAT", 5, heartbeat),
        Column("CPU", 10, lambda st: bar(r.utilisation(st, "cpu")), pure=True),
        Column("MEMORY", 10, lambda st: bar(r.utilisation(st, "memory")), pure=True),
        Column("WL", 5, lambda st: str(now.placed.counts.get(model.key_of(st), 0))),
        Column("SCHEDULING", 14, scheduling, colour=True, pure=True),
        Column("REGION", 14, lambda st: labels(st).get(REGION_LABEL, ""), pure=True),
        Column("ZONE", 15, lambda st: labels(st).get(ZONE_LABEL, ""), pure=True),
        Column("CAPACITY", 28, capacity, pure=True),
    ]


def capacity(st: dict[str, Any]) -> str:
    """`cpu=16 memory=64Gi pods=110`: what the syncer reported the member cluster has."""
    found = (st.get("status") or {}).get("capacity") or (st.get("status") or {}).get("allocatable") or {}
    return " ".join(f"{k}={found[k]}" for k in ("cpu", "memory", "pods") if k in found) or "-"


def cluster_rows(model: Model) -> list[dict[str, Any]]:
    """SyncTargets by name. The order is sorted again only when the set of names changed (a watch event that
    modifies a SyncTarget keeps it), so a burst of 1,000 events costs a walk, not a sort, per redraw."""
    return [model.targets.objects[k] for k in model.targets.sorted_keys()]


def cluster_tags(st: dict[str, Any]) -> dict[str, frozenset[str]]:
    return {
        "region": frozenset({labels(st).get(REGION_LABEL, "")}),
        "zone": frozenset({labels(st).get(ZONE_LABEL, "")}),
        "ready": frozenset({r.ready(st)}),
        "health": frozenset({r.health(st)}),
    }


def cluster_detail(model: Model, st: dict[str, Any], p: Placed) -> str:
    """Conditions, syncer health and resources of one cluster (its workloads are a table below it)."""
    status = st.get("status") or {}
    syncer = status.get("syncerStatus") or {}
    key = r.target_key(st, model.workspace)
    lines = [
        f"[b]{r.name_of(st)}[/b]  key {key}  {scheduling(st)}",
        f"region {labels(st).get(REGION_LABEL, '-')}  zone {labels(st).get(ZONE_LABEL, '-')}  "
        f"heartbeat {model.age(status.get('lastSyncerHeartbeatTime'))} ago",
        f"syncer: synced {syncer.get('syncedResources', '-')}  pending {syncer.get('pendingResources', '-')}  "
        f"failed {syncer.get('failedResources', '-')}   placed here: {p.counts.get(key, 0)} "
        + " ".join(f"{s}={n}" for s, n in sorted(p.states.get(key, Counter()).items())),
        "capacity "
        + capacity(st)
        + "   cpu "
        + bar(r.utilisation(st, "cpu"))
        + "   memory "
        + bar(r.utilisation(st, "memory"))
        + "   pods "
        + bar(r.utilisation(st, "pods")),
    ]
    taints = (st.get("spec") or {}).get("taints") or ()
    if taints:
        lines.append("taints: " + ", ".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in taints))
    lines.append("")
    lines.append("[b]CONDITION          STATUS   REASON               AGE    MESSAGE[/b]")
    for c in status.get("conditions") or ():
        lines.append(
            f"{str(c.get('type', ''))[:18]:<18} {c.get('status', '')!s:<8} {str(c.get('reason', ''))[:20]:<20} "
            f"{model.age(c.get('lastTransitionTime')):<6} {escape(str(c.get('message', ''))[:80])}"
        )
    return "\n".join(lines)


def cluster_workload_rows(model: Model, st: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    key = model.key_of(st)
    rows = []
    for ref in model.workloads.sorted_keys():
        obj = model.workloads.objects[ref]
        state = states_of(model, obj, ref).get(key)  # cached per object version
        if state is not None:
            rows.append((obj, state))
    return rows


CLUSTER_WORKLOAD_COLUMNS = [
    Column("NAMESPACE", 16, lambda x: str(r.meta(x[0]).get("namespace") or "")),
    Column("KIND", 11, lambda x: str(x[0].get("kind") or "")),
    Column("NAME", 24, lambda x: r.name_of(x[0])),
    Column("STATE", 10, lambda x: x[1], colour=True),
]


# ------------------------------------------------------------------------------------------------ placements


@dataclass(frozen=True)
class DecisionRow:
    placement: dict[str, Any]
    decision: dict[str, Any] | None


def placement_rows(model: Model) -> list[DecisionRow]:
    rows: list[DecisionRow] = []
    for pl in sorted(model.placements.objects.values(), key=r.name_of):
        ds = r.decisions(pl)
        rows.extend([DecisionRow(pl, d) for d in ds] or [DecisionRow(pl, None)])
    return rows


def _decision_field(field: str) -> Any:
    return lambda x: "" if x.decision is None else str(x.decision.get(field, ""))


PLACEMENT_COLUMNS = [
    Column("PLACEMENT", 18, lambda x: r.name_of(x.placement)),
    Column("PHASE", 8, lambda x: str((x.placement.get("status") or {}).get("phase") or "Pending"), colour=True),
    Column("STRATEGY", 10, lambda x: str((x.placement.get("spec") or {}).get("strategy") or "Spread")),
    Column("TARGET", 16, lambda x: "<none>" if x.decision is None else r.decision_target(x.decision)),
    Column("SCORE", 6, _decision_field("score")),
    Column("WEIGHT", 6, _decision_field("weight")),
    Column("REPLICAS", 8, _decision_field("replicas")),
]


def placement_key(x: DecisionRow) -> tuple[str, str]:
    return r.name_of(x.placement), "" if x.decision is None else r.decision_target(x.decision)


def candidates_text(answer: dict[str, Any] | None, error: str = "") -> str:
    """The scheduler's view of every candidate (a dry run's status.candidates): who was chosen and why the others
    were left out."""
    if error:
        return f"[red]{escape(error)}[/red]"
    if answer is None:
        return "Enter on a Placement asks the hub why each SyncTarget was chosen or left out (a dry run)."
    rows = [c for c in (answer.get("status") or {}).get(contract.CANDIDATES_FIELD) or () if isinstance(c, dict)]
    if not rows:
        return "the hub's dry run returned no candidates"
    lines = [f"[b]why, for Placement {r.name_of(answer)}:[/b]"]
    for c in rows:
        mark = "[green]✔[/green]" if c.get("selected") else "[red]✘[/red]"
        target = (c.get("syncTarget") or {}).get("name", "")
        lines.append(f"{mark} {target:<16} {c.get('score', 0):>4}  {escape(str(c.get('reason', '')))}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ workloads


@dataclass(frozen=True)
class WorkloadRow:
    obj: dict[str, Any]
    states: dict[str, str]  # SyncTarget name -> state


def _by_namespace(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """An object key (kind, namespace, name) as namespace, kind, name."""
    return key[1], key[0], key[2]


def workload_rows(model: Model) -> list[WorkloadRow]:
    """Placed objects by namespace, kind and name. A row is made once per version of its object (and of the
    targets' names), the order sorted again only when objects came or went: a burst of workload events costs a
    walk of the rows per redraw, not a sort and 10,000 new rows."""
    names = model.target_names()
    workloads = model.workloads
    cache = model.workload_row_cache
    if len(cache) > 2 * len(workloads.objects) + 100:  # deleted objects' rows
        cache = model.workload_row_cache = {k: v for k, v in cache.items() if k in workloads.objects}
    rows = []
    for key in workloads.sorted_keys(_by_namespace):
        obj = workloads.objects[key]
        cached = cache.get(key)
        if cached is None or cached[0] != model.names_revision or cached[1].obj is not obj:
            states = {names.get(k, k[:8]): state for k, state in states_of(model, obj, key).items()}
            cached = cache[key] = (model.names_revision, WorkloadRow(obj, states))
        if cached[1].states:
            rows.append(cached[1])
    return rows


def workload_columns(model: Model) -> list[Column]:
    # Rows are made once per object version (workload_rows), so every column is a function of the row alone.
    columns = [
        Column("NAMESPACE", 14, lambda w: str(r.meta(w.obj).get("namespace") or ""), pure=True),
        Column("KIND", 10, lambda w: str(w.obj.get("kind") or ""), pure=True),
        Column("NAME", 20, lambda w: r.name_of(w.obj), pure=True),
    ]
    for name in sorted(r.name_of(st) for st in model.targets.objects.values()):
        columns.append(Column(name, max(9, len(name)), _state_on(name), colour=True, pure=True))
    return columns


def _state_on(target: str) -> Callable[[WorkloadRow], str]:
    def get(w: WorkloadRow) -> str:
        return w.states.get(target, "·")  # · : not placed there

    return get


def workload_tags(w: WorkloadRow) -> dict[str, frozenset[str]]:
    return {
        "ns": frozenset({str(r.meta(w.obj).get("namespace") or "")}),
        "namespace": frozenset({str(r.meta(w.obj).get("namespace") or "")}),
        "kind": frozenset({str(w.obj.get("kind") or "")}),
        "state": frozenset(w.states.values()),
        "cluster": frozenset(w.states),
    }


def workload_search(w: WorkloadRow) -> str:
    m = r.meta(w.obj)
    return f"{m.get('namespace', '')} {w.obj.get('kind', '')} {m.get('name', '')}".lower()


# ------------------------------------------------------------------------------------------------ events


def _involved(e: dict[str, Any]) -> str:
    o = e.get("involvedObject") or {}
    return f"{o.get('kind', '')}/{o.get('name', '')}"


def event_rows(model: Model) -> list[dict[str, Any]]:
    return sorted(model.events.values(), key=event_time, reverse=True)


def event_columns(model: Model) -> list[Column]:
    return [
        Column("LAST", 5, lambda e: model.age(event_time(e))),
        Column("TYPE", 7, lambda e: str(e.get("type") or ""), colour=True),
        Column("REASON", 18, lambda e: str(e.get("reason") or "")),
        Column("OBJECT", 28, _involved),
        Column("NAMESPACE", 12, lambda e: str((e.get("involvedObject") or {}).get("namespace") or "")),
        Column("MESSAGE", 80, lambda e: str(e.get("message") or "").replace("\n", " ")),
    ]


def event_tags(e: dict[str, Any]) -> dict[str, frozenset[str]]:
    return {
        "type": frozenset({str(e.get("type") or "")}),
        "reason": frozenset({str(e.get("reason") or "")}),
        "object": frozenset({_involved(e)}),
        "ns": frozenset({str((e.get("involvedObject") or {}).get("namespace") or "")}),
    }


# ------------------------------------------------------------------------------------------------ overview


def overview_text(model: Model, p: Placed) -> str:
    h = model.health
    targets = list(model.targets.objects.values())
    ready = sum(1 for st in targets if r.ready(st) == "True")
    sick = [st for st in targets if (r.condition(st, "Healthy") or {}).get("status") != "True"]
    overall = h.components.get("overall")
    if overall is None:
        if h.reachable is None:
            overall = "unknown"
        elif not h.reachable or not h.ready or (targets and len(sick) == len(targets)):
            overall = "unhealthy"
        else:
            overall = "degraded" if sick else "healthy"
    colour = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}.get(overall, "yellow")
    hub = "no answer" if h.reachable is False else ("ready" if h.ready else "NOT ready")
    lines = [
        f"[b]Health[/b] [{colour}]{overall}[/{colour}]   hub {hub} {escape(model.server)}   workspace {model.workspace}"
    ]
    for check in h.checks:
        if not check.ok:
            lines.append(f"  [red]✘ {check.name}[/red] {escape(check.detail)}")
    for st in sorted(sick, key=r.name_of)[:5]:
        c = r.condition(st, "Healthy") or {}
        lines.append(
            f"  [red]✘ cluster {r.name_of(st)}[/red] {c.get('reason', 'Unknown')}: {escape(str(c.get('message', '')))}"
        )
    if len(sick) > 5:
        lines.append(f"  … and {len(sick) - 5} more unhealthy clusters")
    states: Counter[str] = Counter()
    for per_target in p.states.values():
        states.update(per_target)
    placements = list(model.placements.objects.values())
    bound = sum(1 for pl in placements if (pl.get("status") or {}).get("phase") == "Bound")
    lines += [
        "",
        f"[b]Clusters[/b]   {ready} Ready   {len(targets) - ready} NotReady   "
        f"{sum(1 for st in targets if r.schedulable(st) != 'Schedulable')} cordoned",
        f"[b]Placements[/b] {len(placements)} ({bound} Bound)",
        f"[b]Workloads[/b]  {p.objects} placed: "
        + ("  ".join(f"{s} {states[s]}" for s in STATES if states.get(s)) or "none"),
    ]
    if model.alerts is not None:
        lines.append("")
        firing = [a for a in model.alerts if a.get("state") == "firing"]
        lines.append(f"[b]Alerts[/b] {len(firing)} firing")
        for a in firing[:5]:
            lab = a.get("labels") or {}
            lines.append(
                f"  [red]{lab.get('alertname', '?')}[/red] {lab.get('severity', '')} "
                f"{(a.get('annotations') or {}).get('summary', '')}"
            )
    return "\n".join(lines)


def series_text(model: Model) -> tuple[str, str]:
    lat, err = model.latency.last, model.errors.last
    return (
        f"propagation latency ({model.metrics_source}): " + ("-" if lat is None else f"{lat:.0f} ms"),
        f"sync errors ({model.metrics_source}): " + ("-" if err is None else f"{err:.2f}/s"),
    )


# ------------------------------------------------------------------------------------------------ debug


def debug_text(model: Model, obj: dict[str, Any] | None, trace_url: str) -> str:
    """An object's hub spec, per-target spec differences and status reports, Events and last trace id."""
    if obj is None:
        return "Select a row on Clusters, Placements or Workloads and press d to debug it here."
    kind, namespace, name = object_key(obj)
    m = r.meta(obj)
    lines = [
        f"[b]{kind} {namespace + '/' if namespace else ''}{name}[/b]  generation {m.get('generation', '-')}  "
        f"resourceVersion {m.get('resourceVersion', '-')}"
    ]
    trace = traceparent_id(obj)
    if trace:
        lines.append(f"last change traced: trace id {trace}   open {trace_url.rstrip('/')}/trace/{trace}")
    else:
        lines.append("last change traced: no (the change carried no sampled traceparent)")
    lines += ["", "[b]hub spec[/b]", escape(_yaml(obj.get("spec") or {}))]
    names = model.target_names()
    keys = r.placed_keys(obj)
    if keys:
        lines.append("[b]per target[/b]")
    for key, label in sorted(keys.items(), key=lambda kv: names.get(kv[0], kv[0])):
        target = names.get(key, key)
        a = annotations_of(obj)
        lines.append(
            f"  [b]{target}[/b]: {target_state(obj, key, label, target)}"
            + (
                f"  last sync {model.age(a[contract.last_sync_annotation(key)])} ago"
                if a.get(contract.last_sync_annotation(key))
                else ""
            )
            + (f"  error: {escape(a[contract.error_annotation(key)])}" if a.get(contract.error_annotation(key)) else "")
        )
        diff = a.get(SPEC_DIFF_ANNOTATION_PREFIX + key)
        lines.append("    spec difference: " + (escape(diff) if diff else "none (the hub spec as is)"))
        report = _status_report(obj, key)
        lines.append(
            "    status report: " + (escape(json.dumps(report, sort_keys=True)[:300]) if report else "none yet")
        )
    events = model.events_for(kind, namespace, name)
    lines += ["", f"[b]events[/b] ({len(events)})"]
    for e in events[-10:]:
        lines.append(
            f"  {model.age(event_time(e)):>5} {e.get('type', '')} {e.get('reason', '')}: "
            + escape(str(e.get("message", "")))
        )
    return "\n".join(lines)


def _yaml(value: Any) -> str:
    text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip()
    lines = text.splitlines()
    if len(lines) > 30:
        lines = [*lines[:30], f"… {len(lines) - 30} more lines"]
    return "\n".join("  " + line for line in lines)
