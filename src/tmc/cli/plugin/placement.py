"""`kubectl tmc placement create|update|simulate|list|describe|delete` (tmcctl's `placement` is this same group).

`simulate` and `debug placement` ask the hub for a server-side dry run (`?dryRun=All`), which returns the Placement
with the scheduler's decisions and `status.candidates` (the contract in tmc.cli.contract); nothing is stored.
"""

from __future__ import annotations

from typing import Any

import click

from tmc.cli import contract
from tmc.cli import resources as r
from tmc.cli.errors import CliError, guard
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.output import OutputFormat, Printer, output_option, printer_options, render_table
from tmc.cli.placement_spec import new_placement, spec_from_flags, spec_options

DRY_RUN = click.Choice(["none", "client", "server"])


def _dry_run_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    return "none" if value is None else value


dry_run_option = click.option(
    "--dry-run",
    type=DRY_RUN,
    default=None,
    is_flag=False,
    flag_value="client",
    callback=_dry_run_value,
    help="client: print the object only; server: the hub validates (and schedules) without storing.",
)


def _report(obj: dict[str, Any], verb: str, output: OutputFormat, dry_run: str) -> None:
    if output.kind in ("table", "wide"):
        suffix = f" ({dry_run} dry run)" if dry_run != "none" else ""
        click.echo(f"placement.scheduling.kcp.io/{r.name_of(obj)} {verb}{suffix}")
    else:
        Printer(output, name=lambda o: f"placement.scheduling.kcp.io/{r.name_of(o)}").print([obj], single=True)


def simulate_object(hub: Hub, obj: dict[str, Any], exists: bool) -> dict[str, Any]:
    """The hub's dry-run answer for creating (or, when `exists`, replacing) the Placement."""
    params = {"dryRun": "All"}
    if exists:
        path = hub.path(*r.PL, name=r.name_of(obj))
        answer: dict[str, Any] = hub.client.request("PUT", path, obj, params=params)
    else:
        answer = hub.client.request("POST", hub.path(*r.PL), obj, params=params)
    return answer


def candidates(answer: dict[str, Any]) -> list[dict[str, Any]]:
    found = (answer.get("status") or {}).get(contract.CANDIDATES_FIELD)
    if not isinstance(found, list):
        raise CliError(
            "the hub's dry run returned no status.candidates",
            "this hub does not simulate Placements yet (it needs the scheduler's dry-run support)",
        )
    return [c for c in found if isinstance(c, dict)]


def candidate_table(found: list[dict[str, Any]]) -> str:
    rows = []
    for c in sorted(found, key=lambda c: (not c.get("selected"), -(c.get("score") or 0), str(c.get("syncTarget")))):
        target = c.get("syncTarget")
        name = target.get("name") if isinstance(target, dict) else target
        scores = c.get("scores") or {}
        rows.append(
            [
                str(name),
                "yes" if c.get("selected") else "no",
                str(c.get("score", "")),
                ",".join(f"{k}={v}" for k, v in sorted(scores.items())) or "<none>",
                str(c.get("reason") or ""),
            ]
        )
    return render_table(["SYNCTARGET", "SELECTED", "SCORE", "SCORES", "REASON"], rows, no_headers=False, color=False)


def explain(answer: dict[str, Any]) -> str:
    """Decisions plus one line per candidate saying why it was or was not chosen."""
    found = candidates(answer)
    chosen = [c for c in found if c.get("selected")]
    lines = [f"{len(chosen)} of {len(found)} candidate SyncTargets selected.", "", candidate_table(found).rstrip()]
    dropped = [c for c in found if not c.get("selected")]
    if dropped:
        lines += ["", "Why the others were not chosen:"]
        for c in dropped:
            target = c.get("syncTarget")
            name = target.get("name") if isinstance(target, dict) else target
            lines.append(f"  {name}: {c.get('reason') or 'lower score than the chosen ones'}")
    elif not found:
        lines += ["", "No SyncTarget is a candidate: check the Location's instanceSelector and the target selector."]
    return "\n".join(lines) + "\n"


@click.group("placement", context_settings=CONTEXT_SETTINGS)
def placement() -> None:
    """Create, update, simulate, list, describe or delete Placements.

    \b
    Examples:
      kubectl tmc placement create web --namespace-selector app=web --targets 2 --spread topology.kubernetes.io/zone:2
      kubectl tmc placement simulate web
      kubectl tmc placement create gpu --capabilities gpu:true --dry-run=server -o yaml
    """


@placement.command("create")
@click.argument("name")
@spec_options
@dry_run_option
@output_option(("table", "json", "yaml", "name"))
@client_flags(namespaced=False)
def create(name: str, dry_run: str, output: OutputFormat, **flags: Any) -> None:
    """Create a Placement from flags. Without --namespace-selector it places every namespace ({}).

    \b
    Examples:
      kubectl tmc placement create web --namespace-selector app=web --sync-target-selector region=eu --targets 2
      kubectl tmc placement create batch --replicas divided --weights topology.kubernetes.io/region=eu-central-1:3
      kubectl tmc placement create gpu --capabilities gpu:true --strategy Binpack --dry-run=client -o yaml
    """
    spec = spec_from_flags(flags)
    spec.setdefault("namespaceSelector", {})
    obj = new_placement(name, spec)
    if dry_run == "client":
        _report(obj, "created", output, dry_run)
        return
    hub = connect()
    params = {"dryRun": "All"} if dry_run == "server" else None
    from tmc.client import AlreadyExists

    try:
        created = hub.client.request("POST", hub.path(*r.PL), obj, params=params)
    except AlreadyExists:
        raise CliError(
            f'Placement "{name}" already exists in workspace {hub.workspace}', "change it with 'placement update'"
        ) from None
    _report(created, "created", output, dry_run)


@placement.command("update")
@click.argument("name")
@spec_options
@dry_run_option
@output_option(("table", "json", "yaml", "name"))
@client_flags(namespaced=False)
def update(name: str, dry_run: str, output: OutputFormat, **flags: Any) -> None:
    """Change the given fields of a Placement (a merge patch; other fields keep their values).

    \b
    Examples:
      kubectl tmc placement update web --targets 3
      kubectl tmc placement update web --strategy Spread --dry-run=server -o yaml
    """
    spec = spec_from_flags(flags)
    if not spec:
        raise click.UsageError("nothing to update: give at least one of the spec flags")
    hub = connect()
    from tmc.cli.plugin.get import _get_placement

    current = _get_placement(hub, name)
    if dry_run == "client":
        current["spec"] = {**(current.get("spec") or {}), **spec}
        _report(current, "updated", output, dry_run)
        return
    params = {"dryRun": "All"} if dry_run == "server" else None
    from tmc.client import MERGE_PATCH

    patched = hub.client.request(
        "PATCH", hub.path(*r.PL, name=name), {"spec": spec}, content_type=MERGE_PATCH, params=params
    )
    _report(patched, "updated", output, dry_run)


def _read_file(path: str) -> dict[str, Any]:
    import yaml

    def load() -> Any:
        with click.open_file(path) as f:
            return yaml.safe_load(f)

    obj = guard(load, f"cannot read {path}")
    if not isinstance(obj, dict) or obj.get("kind") != "Placement" or not r.name_of(obj):
        raise CliError(f"{path} does not hold a Placement with a name", "give one Placement manifest")
    return obj


@placement.command("simulate")
@click.argument("name", required=False)
@click.option("-f", "--filename", default=None, help="A Placement manifest (- for stdin) to simulate instead.")
@output_option(("table", "json", "yaml"))
@client_flags(namespaced=False)
def simulate(name: str | None, filename: str | None, output: OutputFormat) -> None:
    """Ask the scheduler what it would decide, without storing anything: every candidate with its score.

    \b
    Examples:
      kubectl tmc placement simulate web
      kubectl tmc placement simulate -f placement.yaml -o yaml
    """
    if bool(name) == bool(filename):
        raise click.UsageError("give a Placement NAME or -f FILE")
    hub = connect()
    from tmc.client import NotFound

    if filename:
        obj = _read_file(filename)
        try:
            existing = hub.client.get(hub.path(*r.PL, name=r.name_of(obj)))
            obj.setdefault("metadata", {})["resourceVersion"] = r.meta(existing).get("resourceVersion")
            exists = True
        except NotFound:
            exists = False
    else:
        from tmc.cli.plugin.get import _get_placement

        obj, exists = _get_placement(hub, str(name)), True
    answer = simulate_object(hub, obj, exists)
    if output.kind != "table":
        Printer(output).print([answer], single=True)
        return
    click.echo(explain(answer), nl=False)


@placement.command("list")
@printer_options
@client_flags(namespaced=False)
def list_(output: OutputFormat, no_headers: bool, sort_by: str | None, no_color: bool) -> None:
    """List Placements with their phase, strategy and chosen targets.

    \b
    Example:
      tmcctl placement list -o wide
    """
    hub = connect()
    items, _ = hub.client.list_all(hub.path(*r.PL))
    Printer(output, no_headers, sort_by, no_color, r.PLACEMENT_COLUMNS).print(items)


@placement.command("describe")
@click.argument("name")
@client_flags(namespaced=False)
def describe(name: str) -> None:
    """Decisions, conditions and Events of a Placement (same as `kubectl tmc describe pl NAME`).

    \b
    Example:
      tmcctl placement describe web
    """
    from tmc.cli.plugin.describe import describe_placement
    from tmc.cli.plugin.get import _get_placement

    hub = connect()
    click.echo(describe_placement(hub, _get_placement(hub, name)), nl=False)


@placement.command("delete")
@click.argument("name")
@client_flags(namespaced=False)
def delete(name: str) -> None:
    """Delete a Placement; its namespaces' workloads leave the targets it chose unless another Placement keeps them.

    \b
    Example:
      tmcctl placement delete web
    """
    from tmc.client import NotFound

    hub = connect()
    try:
        hub.client.delete(hub.path(*r.PL, name=name))
    except NotFound:
        raise CliError(
            f'Placement "{name}" not found in workspace {hub.workspace}', "list them with 'placement list'"
        ) from None
    click.echo(f"placement.scheduling.kcp.io/{name} deleted")
