"""`kubectl tmc sync status|force|pause|resume`: per-target sync state, and the sync-control contract
(tmc.cli.contract) — annotations the syncer acts on and acknowledges."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from tmc.cli import contract
from tmc.cli import resources as r
from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect, flags
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.output import Column, OutputFormat, Printer, printer_options
from tmc.cli.params import Duration
from tmc.cli.plugin.kinds import complete_clusters
from tmc.cli.progress import Progress


def workload_ref(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """KIND/NAME, checked before anything is sent."""
    if value is not None:
        try:
            r.parse_workload_ref(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None
    return value


cluster_option = click.option(
    "--cluster", "cluster", default=None, shell_complete=complete_clusters, help="Only this SyncTarget."
)


def _key_of(hub: Hub, cluster: str) -> str:
    return r.target_key(r.get_sync_target(hub, cluster), hub.workspace)


def _annotate(hub: Hub, path: str, changes: dict[str, str | None]) -> dict[str, Any]:
    from tmc.client import MERGE_PATCH

    patched: dict[str, Any] = hub.client.patch(path, {"metadata": {"annotations": changes}}, MERGE_PATCH)
    return patched


@click.group("sync", context_settings=CONTEXT_SETTINGS)
def sync() -> None:
    """Sync state per target; force a re-sync; pause or resume syncing.

    \b
    Examples:
      kubectl tmc sync status -A
      kubectl tmc sync force deployment/web -n shop --cluster cluster-1
      kubectl tmc sync pause deployment/web -n shop
      kubectl tmc sync pause --cluster cluster-2
    """


@sync.command("status")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@cluster_option
@printer_options
@client_flags()
def status(
    all_namespaces: bool,
    cluster: str | None,
    output: OutputFormat,
    no_headers: bool,
    sort_by: str | None,
    no_color: bool,
) -> None:
    """One line per placed workload and target: state, lag, last sync, error.

    \b
    Examples:
      kubectl tmc sync status -n shop
      kubectl tmc sync status -A --cluster cluster-1
    """
    from tmc.cli.plugin.describe import lag

    hub = connect()
    w = r.list_workloads(hub, None if all_namespaces else hub.namespace)
    only = _key_of(hub, cluster) if cluster else None
    rows: list[dict[str, Any]] = []
    for obj in w.objects:
        for key, label in sorted(r.placed_keys(obj).items(), key=lambda kv: w.name(kv[0])):
            if only and key != only:
                continue
            rows.append({"object": obj, "key": key, "label": label})
    annotations = lambda x: r.meta(x["object"]).get("annotations") or {}  # noqa: E731
    columns = [
        Column("NAMESPACE", lambda x: r.meta(x["object"]).get("namespace")),
        Column("KIND", lambda x: x["object"].get("kind")),
        Column("NAME", lambda x: r.name_of(x["object"])),
        Column("CLUSTER", lambda x: w.name(x["key"])),
        Column("STATE", lambda x: r.target_state(x["object"], x["key"], x["label"], w.name(x["key"]))),
        Column("LAG", lambda x: lag(x["object"], x["key"])),
        Column("ERROR", lambda x: annotations(x).get(contract.error_annotation(x["key"])), wide=True),
    ]
    if not all_namespaces:
        columns = columns[1:]
    if output.structured or output.kind in ("name", "jsonpath", "custom-columns"):
        Printer(output, no_headers, sort_by, no_color).print([x["object"] for x in rows])
        return
    if not rows:
        click.echo("No placed workloads found.", err=True)
        return
    Printer(output, no_headers, None, no_color, columns).print(rows)


def request_force(hub: Hub, ref: str, namespace: str, cluster: str | None) -> tuple[str, list[str], str]:
    """Ask the syncers of `ref` (all its targets, or only `cluster`) to write it again: (object path, target keys,
    token each syncer echoes when done). The CLI waits for the echoes; the dashboard sees them arrive by its watch."""
    t, obj = r.get_workload(hub, ref, namespace)
    placed = r.placed_keys(obj)
    keys = [_key_of(hub, cluster)] if cluster else sorted(placed)
    if cluster and keys[0] not in placed:
        raise CliError(f"{ref} is not placed on {cluster}", f"see 'kubectl tmc describe wl {ref} -n {namespace}'")
    if not keys:
        raise CliError(f"{ref} is not placed on any SyncTarget", "check its Placement with 'kubectl tmc get pl'")
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = hub.path(t.group, t.version, t.plural, name=r.name_of(obj), namespace=namespace)
    _annotate(hub, path, {contract.force_annotation(k): token for k in keys})
    return path, keys, token


@sync.command("force")
@click.argument("ref", metavar="KIND/NAME", callback=workload_ref)
@cluster_option
@click.option(
    "--wait", type=click.BOOL, default=True, is_flag=False, flag_value=True, help="Wait for the syncer (true)."
)
@click.option("--timeout", type=Duration(), default="60s", show_default=True, help="How long --wait waits.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@client_flags()
def force(ref: str, cluster: str | None, wait: bool, timeout: float, quiet: bool) -> None:
    """Make the syncer(s) write the workload again now; waits for each target's acknowledgement.

    \b
    Examples:
      kubectl tmc sync force deployment/web -n shop
      kubectl tmc sync force deployment/web -n shop --cluster cluster-1 --wait=false
    """
    hub = connect()
    path, keys, token = request_force(hub, ref, hub.namespace, cluster)
    if not wait:
        if not quiet:
            click.echo(f"{ref}: re-sync requested on {len(keys)} target(s) (token {token})")
        return
    pending = set(keys)
    deadline = time.monotonic() + timeout

    def acknowledged(current: dict[str, Any]) -> None:
        annotations = r.meta(current).get("annotations") or {}
        for k in list(pending):
            if annotations.get(contract.forced_annotation(k)) == token:
                pending.discard(k)

    with Progress(f"waiting for {len(keys)} syncer(s) to re-sync {ref}", total=len(keys), quiet=quiet) as progress:
        acknowledged(hub.client.get(path))
        while pending and time.monotonic() < deadline:
            _watch_object(hub, path, deadline, acknowledged, lambda: not pending)
            progress.update(f"{len(keys) - len(pending)} acknowledged", completed=len(keys) - len(pending))
    if pending:
        names = ", ".join(
            sorted(r.name_of(st) for st in r.list_sync_targets(hub) if r.target_key(st, hub.workspace) in pending)
        )
        raise CliError(
            f"no acknowledgement from {names or 'the syncer'} within {timeout:g}s",
            f"check the syncer with 'kubectl tmc debug syncer {names.split(',')[0] if names else 'CLUSTER'}'",
        )
    if not quiet:
        click.echo(f"{ref}: re-synced on {len(keys)} target(s)")


def _watch_object(hub: Hub, path: str, deadline: float, seen: Any, done: Any) -> None:
    """Watch one object (a real watch, fieldSelector on its name) until `done()` or the deadline."""
    import asyncio

    collection, _, name = path.rpartition("/")
    current = hub.client.get(path)
    seen(current)
    if done():
        return  # what it waits for came before the watch could start: no event will say so again
    params = {
        "fieldSelector": f"metadata.name={name}",
        "resourceVersion": str(r.meta(current).get("resourceVersion") or ""),
        "timeoutSeconds": str(max(1, int(deadline - time.monotonic()))),
    }

    async def follow() -> None:
        async for event in hub.watcher().client.watch(collection, params):
            if event.get("type") in ("ADDED", "MODIFIED"):
                seen(event.get("object") or {})
                if done():
                    return

    remaining = deadline - time.monotonic()
    if remaining > 0:
        try:
            hub.watcher().run(asyncio.wait_for(follow(), remaining))
        except TimeoutError:
            pass


def _pause_target(
    hub: Hub, ref: str | None, namespace: str, explicit_ns: str | None, cluster: str | None
) -> tuple[str, str, str | None]:
    """(what, path, current annotation value) of the object a pause/resume acts on."""
    if ref:
        t, obj = r.get_workload(hub, ref, namespace)
        path = hub.path(t.group, t.version, t.plural, name=r.name_of(obj), namespace=namespace)
        return f"{ref} in {namespace}", path, (r.meta(obj).get("annotations") or {}).get(contract.PAUSED_ANNOTATION)
    if explicit_ns:
        from tmc.client import NotFound

        path = hub.path(*r.NAMESPACES, name=explicit_ns)
        try:
            obj = hub.client.get(path)
        except NotFound:
            raise CliError(f'namespace "{explicit_ns}" not found in workspace {hub.workspace}', "check -n") from None
        return f"namespace {explicit_ns}", path, (r.meta(obj).get("annotations") or {}).get(contract.PAUSED_ANNOTATION)
    if cluster:
        st = r.get_sync_target(hub, cluster)
        path = hub.path(*r.ST, name=cluster)
        return f"cluster {cluster}", path, (r.meta(st).get("annotations") or {}).get(contract.PAUSED_ANNOTATION)
    raise click.UsageError("give KIND/NAME, --namespace N or --cluster C")


def pause_or_resume(
    hub: Hub, ref: str | None, namespace: str, explicit_ns: str | None, cluster: str | None, pause: bool
) -> str:
    """Pause or resume a workload (`ref` in `namespace`), a namespace (`explicit_ns`) or a cluster; with a workload or
    namespace, `cluster` narrows it to that target. What happened, as one line (the CLI and the dashboard say it)."""
    what, path, current = _pause_target(hub, ref, namespace, explicit_ns, cluster)
    on_object = bool(ref) or bool(explicit_ns)
    targets = frozenset({cluster}) if cluster and on_object else frozenset()
    if pause:
        value: str | None = contract.pause_value(current, targets)
    else:
        if current is not None and targets and contract.paused_targets(current) == frozenset():
            raise CliError(
                f"{what} is paused on every target", "resume it everywhere (without --cluster) and pause the others"
            )
        value = contract.resume_value(current, targets)
    _annotate(hub, path, {contract.PAUSED_ANNOTATION: value})
    scope = f"on {cluster}" if targets else "on every target"
    if pause:
        return f"{what}: sync paused {scope} ({contract.PAUSED_ANNOTATION}={value})"
    return f"{what}: sync resumed {scope}" + (f" (still paused on {value})" if value else "")


def _pause_or_resume(ref: str | None, cluster: str | None, pause: bool) -> None:
    hub = connect()
    click.echo(pause_or_resume(hub, ref, hub.namespace, flags().namespace, cluster, pause))


@sync.command("pause")
@click.argument("ref", metavar="[KIND/NAME]", required=False, callback=workload_ref)
@cluster_option
@client_flags()
def pause(ref: str | None, cluster: str | None) -> None:
    """Hold the syncer's writes for a workload, a namespace (-n without KIND/NAME) or a whole cluster.

    With KIND/NAME or -n, --cluster pauses only that target; --cluster alone pauses the cluster.

    \b
    Examples:
      kubectl tmc sync pause deployment/web -n shop
      kubectl tmc sync pause deployment/web -n shop --cluster cluster-1
      kubectl tmc sync pause -n shop
      kubectl tmc sync pause --cluster cluster-2
    """
    _pause_or_resume(ref, cluster, pause=True)


@sync.command("resume")
@click.argument("ref", metavar="[KIND/NAME]", required=False, callback=workload_ref)
@cluster_option
@client_flags()
def resume(ref: str | None, cluster: str | None) -> None:
    """Undo `sync pause` (all targets, or only --cluster's).

    \b
    Examples:
      kubectl tmc sync resume deployment/web -n shop
      kubectl tmc sync resume --cluster cluster-2
    """
    _pause_or_resume(ref, cluster, pause=False)
