"""What the CLI shows about TMC's kinds: SyncTargets, Placements, clusters (a SyncTarget with its health, capacity,
heartbeat and workload count) and workloads (every object placed on SyncTargets), read through `tmc.client`.

Pure functions of the objects plus a few fetchers; `get`, `describe`, `tmcctl cluster` and `tmcctl workload` all
build on them, so a column is defined once.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tmc.cli import contract
from tmc.cli.names import (
    CONDITION_HEALTHY,
    CONDITION_READY,
    DELETION_ANNOTATION_PREFIX,
    REGION_LABEL,
    STATE_LABEL_PREFIX,
    STATUS_DIFF_ANNOTATION_PREFIX,
    SYNC_TARGET_KEY_LABEL,
    ZONE_LABEL,
    human_duration,
    parse_time,
    since,
)
from tmc.cli.output import Column

if TYPE_CHECKING:
    from tmc.cli.kubeconfig_flags import Hub

ST = ("workload.kcp.io", "v1alpha1", "synctargets")
PL = ("scheduling.kcp.io", "v1alpha1", "placements")
WS = ("tenancy.kcp.io", "v1alpha1", "workspaces")
NAMESPACES = ("", "v1", "namespaces")
EVENTS = ("", "v1", "events")

# The types a syncer syncs when its SyncTarget lists none (tmc.syncer's defaults), as (group, version, plural, kind).
DEFAULT_WORKLOAD_TYPES = (
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("apps", "v1", "daemonsets", "DaemonSet"),
    ("batch", "v1", "jobs", "Job"),
    ("batch", "v1", "cronjobs", "CronJob"),
    ("", "v1", "services", "Service"),
    ("networking.k8s.io", "v1", "ingresses", "Ingress"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "serviceaccounts", "ServiceAccount"),
)
KIND_BY_PLURAL = {plural: (group, version, plural, kind) for group, version, plural, kind in DEFAULT_WORKLOAD_TYPES}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = obj.get("metadata") or {}
    return m


def name_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


def age(obj: dict[str, Any]) -> str:
    return since(meta(obj).get("creationTimestamp"), now())


def ago(timestamp: Any) -> str:
    """ "12s" for a timestamp 12 s ago; "never" when unset."""
    return "never" if parse_time(timestamp) is None else since(timestamp, now())


def seconds_since(timestamp: Any) -> float | None:
    t = parse_time(timestamp)
    return None if t is None else max(0.0, (now() - t).total_seconds())


# ------------------------------------------------------------------------------------------------ SyncTargets


def target_key(st: dict[str, Any], workspace: str) -> str:
    """The SyncTarget's key: its key label when the hub set it, else the formula."""
    label = (meta(st).get("labels") or {}).get(SYNC_TARGET_KEY_LABEL)
    if label:
        return str(label)
    from tmc.protocol.keys import sync_target_key

    return sync_target_key(workspace, name_of(st))


def ready(st: dict[str, Any]) -> str:
    c = condition(st, CONDITION_READY)
    return str(c.get("status")) if c else "Unknown"


def health(st: dict[str, Any]) -> str:
    c = condition(st, CONDITION_HEALTHY)
    return str(c.get("reason") or c.get("status")) if c else "Unknown"


def _quantity(value: Any) -> float:
    from tmc.apimachinery.quantity import parse_quantity

    try:
        return float(parse_quantity(str(value)))
    except (ValueError, ArithmeticError):
        return 0.0


def utilisation(st: dict[str, Any], resource: str) -> float | None:
    """allocated / allocatable for one resource (cpu, memory, pods), None when not reported."""
    status = st.get("status") or {}
    allocatable = (status.get("allocatable") or {}).get(resource)
    allocated = (status.get("allocated") or {}).get(resource)
    if allocatable is None:
        return None
    total = _quantity(allocatable)
    return (_quantity(allocated) / total) if total and allocated is not None else 0.0


def percent(value: float | None) -> str:
    return "<none>" if value is None else f"{round(value * 100)}%"


def schedulable(st: dict[str, Any]) -> str:
    spec = st.get("spec") or {}
    if spec.get("evictAfter"):
        return "Draining"
    return "Cordoned" if spec.get("unschedulable") else "Schedulable"


SYNC_TARGET_COLUMNS = (
    Column("NAME", name_of),
    Column("READY", ready),
    Column("REGION", lambda o: (meta(o).get("labels") or {}).get(REGION_LABEL)),
    Column("ZONE", lambda o: (meta(o).get("labels") or {}).get(ZONE_LABEL)),
    Column("HEALTH", health),
    Column("SYNCED", lambda o: ((o.get("status") or {}).get("syncerStatus") or {}).get("syncedResources")),
    Column("SCHEDULING", schedulable, wide=True),
    Column("KEY", lambda o: (meta(o).get("labels") or {}).get(SYNC_TARGET_KEY_LABEL), wide=True),
    Column("AGE", age),
)


def list_sync_targets(hub: Hub, selector: str = "") -> list[dict[str, Any]]:
    items, _ = hub.client.list_all(hub.path(*ST), {"labelSelector": selector} if selector else None)
    return items


def get_sync_target(hub: Hub, name: str) -> dict[str, Any]:
    """The SyncTarget, or a CliError naming the workspace and how to list them."""
    from tmc.cli.errors import CliError
    from tmc.client import NotFound

    try:
        obj: dict[str, Any] = hub.client.get(hub.path(*ST, name=name))
    except NotFound:
        raise CliError(
            f'SyncTarget "{name}" not found in workspace {hub.workspace}', "list them with 'kubectl tmc get clusters'"
        ) from None
    return obj


# ------------------------------------------------------------------------------------------------ Placements


def decisions(pl: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in (pl.get("status") or {}).get("decisions") or () if isinstance(d, dict)]


def decision_target(d: dict[str, Any]) -> str:
    return str((d.get("syncTarget") or {}).get("name") or "")


def _replicas_mode(pl: dict[str, Any]) -> str:
    return str(((pl.get("spec") or {}).get("replicaScheduling") or {}).get("type") or "Duplicated")


PLACEMENT_COLUMNS = (
    Column("NAME", name_of),
    Column("PHASE", lambda o: (o.get("status") or {}).get("phase")),
    Column("STRATEGY", lambda o: (o.get("spec") or {}).get("strategy")),
    Column("TARGETS", lambda o: ",".join(decision_target(d) for d in decisions(o)) or None),
    Column("REPLICAS", _replicas_mode, wide=True),
    Column(
        "LOCATION", lambda o: ((o.get("status") or {}).get("selectedLocation") or {}).get("locationName"), wide=True
    ),
    Column("AGE", age),
)


# ------------------------------------------------------------------------------------------------ workloads


@dataclass(frozen=True)
class WorkloadType:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def workload_types(targets: Iterable[dict[str, Any]]) -> list[WorkloadType]:
    """The namespaced types the SyncTargets' syncers sync (status.syncedResources in state Accepted), or the
    syncer's defaults when none reports any."""
    found: dict[tuple[str, str], WorkloadType] = {}
    for st in targets:
        for entry in (st.get("status") or {}).get("syncedResources") or ():
            if not isinstance(entry, dict) or entry.get("state") != "Accepted" or not entry.get("resource"):
                continue
            group, plural = str(entry.get("group") or ""), str(entry["resource"])
            if plural == "namespaces" or (group, plural) in found:
                continue
            versions = entry.get("versions") or ["v1"]
            default = KIND_BY_PLURAL.get(plural)
            kind = default[3] if default and default[0] == group else plural.rstrip("s").capitalize()
            found[(group, plural)] = WorkloadType(group, str(versions[0]), plural, kind)
    if not found:
        return [WorkloadType(*t) for t in DEFAULT_WORKLOAD_TYPES]
    return sorted(found.values(), key=lambda t: (t.group, t.plural))


def placed_keys(obj: dict[str, Any]) -> dict[str, str]:
    """SyncTarget key -> state label value, for every target the object is placed on."""
    labels = meta(obj).get("labels") or {}
    return {k[len(STATE_LABEL_PREFIX) :]: str(v) for k, v in labels.items() if k.startswith(STATE_LABEL_PREFIX)}


def target_state(obj: dict[str, Any], key: str, label: str, target_name: str = "") -> str:
    """One target's sync state of a placed object, most telling first: Paused, Error, Removing, Synced, Syncing,
    Pending (assigned, waiting), Upsync."""
    annotations = meta(obj).get("annotations") or {}
    if annotations.get(contract.state_annotation(key)) == contract.STATE_PAUSED:
        return "Paused"
    if target_name and contract.is_paused_for(annotations, target_name):
        return "Pausing"
    if annotations.get(contract.error_annotation(key)):
        return "Error"
    if DELETION_ANNOTATION_PREFIX + key in annotations:
        return "Removing"
    if label == "Upsync":
        return "Upsync"
    if label == "":
        return "Pending"
    if annotations.get(contract.last_sync_annotation(key)) or STATUS_DIFF_ANNOTATION_PREFIX + key in annotations:
        return "Synced"
    return "Syncing"


def last_sync(obj: dict[str, Any], key: str) -> str | None:
    value = (meta(obj).get("annotations") or {}).get(contract.last_sync_annotation(key))
    return str(value) if value else None


@dataclass
class Workloads:
    """Every placed object of a workspace, with the SyncTargets' names by key."""

    objects: list[dict[str, Any]]
    names: dict[str, str]  # SyncTarget key -> name
    targets: list[dict[str, Any]]

    def name(self, key: str) -> str:
        return self.names.get(key, key[:10] + "…")

    def on(self, key: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if key in placed_keys(o)]

    def count(self, key: str) -> int:
        return sum(1 for o in self.objects if key in placed_keys(o))

    def targets_text(self, obj: dict[str, Any]) -> str:
        parts = [f"{self.name(k)}:{target_state(obj, k, v, self.name(k))}" for k, v in sorted(placed_keys(obj).items())]
        return ",".join(sorted(parts)) or "<none>"


def list_workloads(
    hub: Hub,
    namespace: str | None,
    selector: str = "",
    targets: list[dict[str, Any]] | None = None,
    types: list[WorkloadType] | None = None,
) -> Workloads:
    """Placed objects (with a state label) in `namespace` (None: all namespaces)."""
    from tmc.client import NotFound

    targets = list_sync_targets(hub) if targets is None else targets
    names = {target_key(st, hub.workspace): name_of(st) for st in targets}
    params = {"labelSelector": selector} if selector else None
    objects: list[dict[str, Any]] = []
    for t in types or workload_types(targets):
        try:
            items, _ = hub.client.list_all(hub.path(t.group, t.version, t.plural, namespace=namespace), params)
        except NotFound:
            continue  # a type the hub does not serve in this workspace
        for item in items:
            if placed_keys(item):
                item.setdefault("apiVersion", t.api_version)
                item.setdefault("kind", t.kind)
                objects.append(item)
    return Workloads(objects, names, targets)


def workload_columns(w: Workloads) -> tuple[Column, ...]:
    return (
        Column("NAMESPACE", lambda o: meta(o).get("namespace")),
        Column("KIND", lambda o: o.get("kind")),
        Column("NAME", name_of),
        Column("TARGETS", w.targets_text),
        Column(
            "LAST-SYNC",
            lambda o: ",".join(
                f"{w.name(k)}:{ago(last_sync(o, k))}" for k in sorted(placed_keys(o)) if last_sync(o, k)
            ),
            wide=True,
        ),
        Column("AGE", age),
    )


def cluster_columns(w: Workloads) -> tuple[Column, ...]:
    def key(o: dict[str, Any]) -> str:
        return target_key(o, "")

    return (
        Column("NAME", name_of),
        Column("READY", ready),
        Column("HEALTH", health),
        Column("SCHEDULING", schedulable),
        Column("CPU", lambda o: percent(utilisation(o, "cpu"))),
        Column("MEMORY", lambda o: percent(utilisation(o, "memory"))),
        Column("HEARTBEAT", lambda o: ago((o.get("status") or {}).get("lastSyncerHeartbeatTime"))),
        Column("WORKLOADS", lambda o: w.count(key(o))),
        Column("REGION", lambda o: (meta(o).get("labels") or {}).get(REGION_LABEL), wide=True),
        Column("CAPACITY", lambda o: _capacity(o), wide=True),
        Column("AGE", age),
    )


def _capacity(st: dict[str, Any]) -> str | None:
    capacity = (st.get("status") or {}).get("capacity") or {}
    return ",".join(f"{k}={capacity[k]}" for k in ("cpu", "memory", "pods") if k in capacity) or None


def events_for(hub: Hub, kind: str, name: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """core/v1 Events whose involvedObject is this object, oldest first."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    if namespace:
        selector += f",involvedObject.namespace={namespace}"
    items, _ = hub.client.list_all(hub.path(*EVENTS), {"fieldSelector": selector})
    return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def duration_text(seconds: float | None) -> str:
    return "never" if seconds is None else human_duration(seconds)


_WORKLOAD_ALIASES = {
    "deploy": "deployments",
    "sts": "statefulsets",
    "ds": "daemonsets",
    "cj": "cronjobs",
    "svc": "services",
    "ing": "ingresses",
    "cm": "configmaps",
    "sa": "serviceaccounts",
}


def workload_type(text: str) -> WorkloadType | None:
    """`deployment`, `deployments`, `deploy`, `deployments.apps` -> the type; None when unknown."""
    word = text.lower().split(".", 1)[0]
    word = _WORKLOAD_ALIASES.get(word, word)
    for plural in (word, word + "s", word + "es"):
        if plural in KIND_BY_PLURAL:
            return WorkloadType(*KIND_BY_PLURAL[plural])
    return None


def parse_workload_ref(ref: str) -> tuple[WorkloadType, str]:
    """`KIND/NAME` -> (type, name); ValueError naming the accepted kinds."""
    kind, slash, name = ref.partition("/")
    found = workload_type(kind) if slash else None
    if not slash or not name or found is None:
        kinds = ", ".join(k for _, _, _, k in DEFAULT_WORKLOAD_TYPES)
        raise ValueError(f"{ref!r} is not KIND/NAME with KIND one of {kinds} (e.g. deployment/web)")
    return found, name


def get_workload(hub: Hub, ref: str, namespace: str) -> tuple[WorkloadType, dict[str, Any]]:
    """The workload `ref` (KIND/NAME) in `namespace`; CliError when it does not exist."""
    import click

    from tmc.cli.errors import CliError
    from tmc.client import NotFound

    try:
        t, name = parse_workload_ref(ref)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    try:
        obj: dict[str, Any] = hub.client.get(hub.path(t.group, t.version, t.plural, name=name, namespace=namespace))
    except NotFound:
        raise CliError(
            f'{t.kind} "{name}" not found in namespace {namespace} of workspace {hub.workspace}',
            "list placed workloads with 'kubectl tmc get wl -A'",
        ) from None
    obj.setdefault("apiVersion", t.api_version)
    obj.setdefault("kind", t.kind)
    return t, obj
