"""`kubectl tmc get synctargets|placements|clusters|workloads`."""

from __future__ import annotations

from typing import Any

import click

from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.output import Column, OutputFormat, Printer, printer_options
from tmc.cli.plugin.kinds import ResourceType, complete_names


def label_selector(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """-l, checked here so a bad selector fails before anything is sent."""
    if not value:
        return ""
    from tmc.apimachinery.errors import StatusError
    from tmc.apimachinery.selectors import parse_label_selector

    try:
        parse_label_selector(value)
    except (ValueError, StatusError) as e:
        raise click.BadParameter(f"{value!r} is not a label selector: {getattr(e, 'message', e)}") from None
    return value


selector_option = click.option(
    "-l", "--selector", default=None, callback=label_selector, help="Label selector, e.g. region=eu,tier!=test."
)


def fetch(
    hub: Hub, kind: str, names: tuple[str, ...], selector: str, all_namespaces: bool
) -> tuple[list[dict[str, Any]], tuple[Column, ...]]:
    """The objects and columns for one resource kind."""
    from tmc.cli import resources as r

    if kind == "synctargets":
        items = [r.get_sync_target(hub, n) for n in names] if names else r.list_sync_targets(hub, selector)
        return items, r.SYNC_TARGET_COLUMNS
    if kind == "placements":
        if names:
            items = [_get_placement(hub, n) for n in names]
        else:
            items, _ = hub.client.list_all(hub.path(*r.PL), {"labelSelector": selector} if selector else None)
        return items, r.PLACEMENT_COLUMNS
    if kind == "clusters":
        targets = r.list_sync_targets(hub, selector)
        workloads = r.list_workloads(hub, None, targets=r.list_sync_targets(hub) if selector else targets)
        if names:
            missing = set(names) - {r.name_of(t) for t in targets}
            if missing:
                raise CliError(
                    f'cluster "{sorted(missing)[0]}" not found in workspace {hub.workspace}',
                    "list them with 'kubectl tmc get clusters'",
                )
            targets = [t for t in targets if r.name_of(t) in names]
        return targets, r.cluster_columns(workloads)
    namespace = None if all_namespaces else hub.namespace
    w = r.list_workloads(hub, namespace, selector)
    items = w.objects
    if names:
        items = [o for o in items if r.name_of(o) in names or f"{o['kind'].lower()}/{r.name_of(o)}" in names]
    columns = r.workload_columns(w)
    if not all_namespaces:
        columns = columns[1:]  # kubectl drops NAMESPACE unless -A
    return items, columns


def _get_placement(hub: Hub, name: str) -> dict[str, Any]:
    from tmc.cli import resources as r
    from tmc.client import NotFound

    try:
        obj: dict[str, Any] = hub.client.get(hub.path(*r.PL, name=name))
    except NotFound:
        raise CliError(
            f'Placement "{name}" not found in workspace {hub.workspace}', "list them with 'kubectl tmc get placements'"
        ) from None
    return obj


def watch(hub: Hub, kind: str, printer: Printer, selector: str, namespace: str | None) -> None:
    """Print the list, then one line per change from real watches (kubectl get -w), until interrupted. Workloads
    are watched per type; an object shows while it is placed, and once more when it stops being placed."""
    import asyncio

    from tmc.cli import resources as r

    if kind == "workloads":
        targets = r.list_sync_targets(hub)
        paths = [hub.path(t.group, t.version, t.plural, namespace=namespace) for t in r.workload_types(targets)]
    else:
        paths = [hub.path(*(r.PL if kind == "placements" else r.ST))]
    params = {"labelSelector": selector} if selector else None
    shown: set[str] = set()
    header = True

    def show(obj: dict[str, Any]) -> None:
        nonlocal header
        uid = str(r.meta(obj).get("uid") or r.name_of(obj))
        if kind == "workloads" and not r.placed_keys(obj) and uid not in shown:
            return  # never placed: not a workload
        shown.add(uid)
        click.echo(printer.row(obj, header), nl=False)
        header = False

    versions: list[str] = []
    first: list[dict[str, Any]] = []
    for path in paths:
        from tmc.client import NotFound

        try:
            items, rv = hub.client.list_all(path, params)
        except NotFound:
            items, rv = [], ""
        first += items
        versions.append(rv)
    for obj in printer.sorted(first):
        show(obj)

    async def follow(path: str, rv: str) -> None:
        query = {"resourceVersion": rv, "timeoutSeconds": "3600", **(params or {})}
        async for event in hub.watcher(len(paths)).client.watch(path, query):
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                show(event.get("object") or {})

    async def follow_all() -> None:
        await asyncio.gather(*(follow(p, rv) for p, rv in zip(paths, versions, strict=True) if rv))

    hub.watcher(len(paths)).run(follow_all())


@click.command("get")
@click.argument("resource", type=ResourceType())
@click.argument("names", nargs=-1, shell_complete=complete_names)
@selector_option
@click.option("-A", "--all-namespaces", is_flag=True, help="Workloads in every namespace.")
@click.option("-w", "--watch", "watch_", is_flag=True, help="After listing, print changes as they happen.")
@printer_options
@client_flags()
def get(
    resource: str,
    names: tuple[str, ...],
    selector: str,
    all_namespaces: bool,
    watch_: bool,
    output: OutputFormat,
    no_headers: bool,
    sort_by: str | None,
    no_color: bool,
) -> None:
    """List SyncTargets (st), Placements (pl), clusters (cl) or placed workloads (wl).

    A cluster is a SyncTarget with its health (its Healthy condition), utilisation from its status, heartbeat age and
    the number of workloads placed on it. A workload is any object placed on SyncTargets (it carries
    state.workload.kcp.io/<key> labels), with each target's sync state.

    \b
    Examples:
      kubectl tmc get st
      kubectl tmc get clusters -o wide
      kubectl tmc get pl -o yaml > placements.yaml && kubectl apply -f placements.yaml
      kubectl tmc get wl -A -l app=web --sort-by .metadata.name
      kubectl tmc get st -o custom-columns=NAME:.metadata.name,HB:.status.lastSyncerHeartbeatTime
      kubectl tmc get st -w
      kubectl tmc get wl -n shop -w
    """
    hub = connect()
    if watch_:
        from tmc.cli import resources as r

        columns: tuple[Column, ...] = r.PLACEMENT_COLUMNS if resource == "placements" else r.SYNC_TARGET_COLUMNS
        if resource == "clusters":
            columns = r.cluster_columns(r.list_workloads(hub, None))
        elif resource == "workloads":
            targets = r.list_sync_targets(hub)
            by_key = {r.target_key(st, hub.workspace): r.name_of(st) for st in targets}
            columns = r.workload_columns(r.Workloads([], by_key, targets))
            columns = columns if all_namespaces else columns[1:]
        printer = Printer(output, no_headers, sort_by, no_color, columns)
        watch(hub, resource, printer, selector, None if all_namespaces else hub.namespace)
        return
    items, columns = fetch(hub, resource, names, selector, all_namespaces)
    printer = Printer(output, no_headers, sort_by, no_color, columns)
    if not items and output.kind in ("table", "wide"):
        where = "in any namespace" if all_namespaces or resource != "workloads" else f"in namespace {hub.namespace}"
        click.echo(f"No {resource} found {where} (workspace {hub.workspace}).", err=True)
        return
    printer.print(items, single=len(names) == 1 and resource != "workloads")
