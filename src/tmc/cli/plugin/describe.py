"""`kubectl tmc describe st|pl|cl|wl NAME`: conditions, decisions, per-target sync state and lag, recent Events."""

from __future__ import annotations

import json
from typing import Any

import click

from tmc.cli import contract
from tmc.cli import resources as r
from tmc.cli.describe_text import Describer
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.names import STATUS_DIFF_ANNOTATION_PREFIX, STATUS_PROMOTED
from tmc.cli.plugin.kinds import ResourceType, complete_names


def describe_sync_target(hub: Hub, st: dict[str, Any], workloads: r.Workloads | None, cluster: bool) -> str:
    d = Describer()
    status, spec = st.get("status") or {}, st.get("spec") or {}
    key = r.target_key(st, hub.workspace)
    d.field("Name", r.name_of(st))
    d.field("Workspace", hub.workspace)
    d.field("Key", key)
    labels = r.meta(st).get("labels") or {}
    d.field("Labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
    d.field("Ready", r.ready(st))
    d.field("Health", r.health(st))
    d.field("Scheduling", r.schedulable(st))
    if spec.get("evictAfter"):
        d.field("Evict after", spec["evictAfter"])
    d.field("Capabilities", ",".join(f"{c.get('type')}" for c in spec.get("capabilities") or ()) or "<none>")
    d.field(
        "Taints",
        ",".join(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}" for t in spec.get("taints") or ())
        or "<none>",
    )
    d.field("Last heartbeat", f"{r.ago(status.get('lastSyncerHeartbeatTime'))} ago")
    syncer = status.get("syncerStatus") or {}
    d.field(
        "Syncer objects",
        f"{syncer.get('syncedResources', 0)} synced, {syncer.get('pendingResources', 0)} pending, "
        f"{syncer.get('failedResources', 0)} failed",
    )
    if cluster:
        d.section("Resources")
        rows = []
        for res in ("cpu", "memory", "pods"):
            rows.append(
                (
                    res,
                    (status.get("capacity") or {}).get(res),
                    (status.get("allocatable") or {}).get(res),
                    (status.get("allocated") or {}).get(res),
                    r.percent(r.utilisation(st, res)),
                )
            )
        d.table(("RESOURCE", "CAPACITY", "ALLOCATABLE", "ALLOCATED", "USED"), rows)
    d.conditions(st)
    if workloads is not None:
        placed = workloads.on(key)
        d.section(f"Workloads ({len(placed)})")
        d.table(
            ("NAMESPACE", "KIND", "NAME", "STATE", "LAST SYNC"),
            [
                (
                    r.meta(o).get("namespace"),
                    o.get("kind"),
                    r.name_of(o),
                    r.target_state(o, key, r.placed_keys(o)[key], r.name_of(st)),
                    r.ago(r.last_sync(o, key)),
                )
                for o in placed[:50]
            ],
        )
    d.events(r.events_for(hub, "SyncTarget", r.name_of(st)))
    return str(d)


def describe_placement(hub: Hub, pl: dict[str, Any]) -> str:
    d = Describer()
    spec, status = pl.get("spec") or {}, pl.get("status") or {}
    from tmc.apimachinery.printers import selector_string

    d.field("Name", r.name_of(pl))
    d.field("Workspace", hub.workspace)
    d.field("Phase", status.get("phase"))
    d.field("Location", (status.get("selectedLocation") or {}).get("locationName"))
    ns_selector = spec.get("namespaceSelector")
    d.field(
        "Namespace selector",
        "<none: no namespace>" if ns_selector is None else (selector_string(ns_selector) or "<all namespaces>"),
    )
    d.field(
        "Target selector",
        selector_string(spec.get("syncTargetSelector")) if spec.get("syncTargetSelector") else "<all>",
    )
    d.field("Strategy", spec.get("strategy") or "<default>")
    d.field("Number of targets", spec.get("numberOfTargets") or "all eligible")
    d.field("Replicas", (spec.get("replicaScheduling") or {}).get("type") or "Duplicated")
    caps = spec.get("capabilityRequirements") or ()
    d.field(
        "Capabilities",
        ",".join(f"{c.get('type')}{'' if c.get('required', True) else '(preferred)'}" for c in caps) or "<none>",
    )
    spread = spec.get("spreadConstraints") or ()
    d.field("Spread", ",".join(f"{s.get('topologyKey')}>={s.get('minGroups', 1)}" for s in spread) or "<none>")
    d.section("Decisions")
    d.table(
        ("TARGET", "KEY", "SCORE", "WEIGHT", "REPLICAS"),
        [
            (r.decision_target(x), x.get("key"), x.get("score"), x.get("weight"), x.get("replicas"))
            for x in r.decisions(pl)
        ],
        empty="<none: no target chosen>",
    )
    d.conditions(pl)
    d.events(r.events_for(hub, "Placement", r.name_of(pl)))
    return str(d)


def _observed(obj: dict[str, Any], key: str) -> int | None:
    raw = (r.meta(obj).get("annotations") or {}).get(STATUS_DIFF_ANNOTATION_PREFIX + key)
    try:
        report = json.loads(raw) if raw else None
    except ValueError:
        return None
    status = report.get("status") if isinstance(report, dict) else None
    if status == STATUS_PROMOTED:
        status = obj.get("status")
    value = status.get("observedGeneration") if isinstance(status, dict) else None
    return int(value) if isinstance(value, int) else None


def lag(obj: dict[str, Any], key: str) -> str:
    """How far a target is behind: generations not yet observed there, with the age of its last write."""
    generation = r.meta(obj).get("generation")
    observed = _observed(obj, key)
    since = r.last_sync(obj, key)
    tail = f" (last sync {r.ago(since)} ago)" if since else ""
    if not isinstance(generation, int) or observed is None:
        return "unknown" + tail
    behind = generation - observed
    return ("in sync" if behind <= 0 else f"{behind} generation{'s' if behind > 1 else ''} behind") + tail


def describe_workload(hub: Hub, obj: dict[str, Any], names: dict[str, str]) -> str:
    d = Describer()
    m = r.meta(obj)
    annotations = m.get("annotations") or {}
    d.field("Name", r.name_of(obj))
    d.field("Namespace", m.get("namespace"))
    d.field("Kind", f"{obj.get('kind')} ({obj.get('apiVersion')})")
    d.field("Workspace", hub.workspace)
    d.field("Generation", m.get("generation"))
    d.field("Paused", annotations.get(contract.PAUSED_ANNOTATION) or "no")
    d.section("Targets")
    rows = []
    for key, label in sorted(r.placed_keys(obj).items()):
        name = names.get(key, key)
        rows.append(
            (
                name,
                label or '""',
                r.target_state(obj, key, label, name),
                lag(obj, key),
                annotations.get(contract.error_annotation(key)) or "",
            )
        )
    d.table(("TARGET", "LABEL", "STATE", "LAG", "ERROR"), rows, empty="<none: not placed>")
    d.conditions(obj)
    d.events(r.events_for(hub, str(obj.get("kind")), r.name_of(obj), m.get("namespace")))
    return str(d)


@click.command("describe")
@click.argument("resource", type=ResourceType())
@click.argument("name", shell_complete=complete_names)
@client_flags()
def describe(resource: str, name: str) -> None:
    """Show one SyncTarget (st), Placement (pl), cluster (cl) or workload (wl) in detail.

    A workload is named KIND/NAME in the namespace of -n (default: the context's).

    \b
    Examples:
      kubectl tmc describe cl cluster-1
      kubectl tmc describe pl web
      kubectl tmc describe wl deployment/web -n shop
    """
    hub = connect()
    if resource in ("synctargets", "clusters"):
        st = r.get_sync_target(hub, name)
        workloads = r.list_workloads(hub, None) if resource == "clusters" else None
        click.echo(describe_sync_target(hub, st, workloads, cluster=resource == "clusters"), nl=False)
    elif resource == "placements":
        from tmc.cli.plugin.get import _get_placement

        click.echo(describe_placement(hub, _get_placement(hub, name)), nl=False)
    else:
        _, obj = r.get_workload(hub, name, hub.namespace)
        targets = r.list_sync_targets(hub)
        names = {r.target_key(st, hub.workspace): r.name_of(st) for st in targets}
        click.echo(describe_workload(hub, obj, names), nl=False)
