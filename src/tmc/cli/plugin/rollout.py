"""`kubectl tmc rollout`: CanaryDeployments, as `kubectl argo rollouts` shows and drives Rollouts.

get [-w] (a tree: step, weights, per-cluster state, analysis measurements), list, promote [--full], abort, pause,
resume, retry, status (waits; exit 0 only when the target's revision is promoted). Like Argo's plugin, the commands
only write the object: promote, abort and retry set the `canary.tmc.kcp.io/action` annotation with a fresh token
(the controller acts on each token once), pause and resume set `spec.paused`. `history` and `undo` of any
placed workload come from tmc.cli.plugin.revisions.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from tmc.api.canary import ACTION_ANNOTATION, CANARY_DEPLOYMENTS, FAILED, ROLLED_BACK, SUCCEEDED
from tmc.cli import resources as r
from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.lazy import LazyGroup
from tmc.cli.output import Column, OutputFormat, Printer, printer_options
from tmc.cli.params import Duration
from tmc.cli.plugin import rollout_view
from tmc.cli.plugin.revisions import ROLLOUT_COMMANDS

ACTIVE = ("Progressing", "Analyzing", "Paused")
KIND = "canarydeployment.tmc.kcp.io"


def _path(hub: Hub, name: str | None = None, namespace: str | None = None) -> str:
    info = CANARY_DEPLOYMENTS
    return hub.path(info.group, info.version, info.plural, name=name, namespace=namespace or hub.namespace)


def _get(hub: Hub, name: str) -> dict[str, Any]:
    from tmc.client import ApiError

    try:
        obj: dict[str, Any] = hub.client.get(_path(hub, name))
    except ApiError as e:
        if e.code == 404:
            raise CliError(
                f'canarydeployment "{name}" not found in namespace {hub.namespace}',
                "list them: kubectl tmc rollout list",
            ) from None
        raise
    return obj


def _patch(hub: Hub, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    from tmc.client import MERGE_PATCH

    out: dict[str, Any] = hub.client.patch(_path(hub, name), patch, MERGE_PATCH)
    return out


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


def _act(hub: Hub, name: str, action: str) -> None:
    token = f"{action}@{time.time_ns()}"
    _patch(hub, name, {"metadata": {"annotations": {ACTION_ANNOTATION: token}}})


@click.group("rollout", cls=LazyGroup, lazy=ROLLOUT_COMMANDS)
def rollout() -> None:
    """Canary rollouts across clusters: watch, promote, abort, pause, resume, retry; and the revision history and
    undo of any placed workload.

    \b
    Examples:
      kubectl tmc rollout get web -n shop -w
      kubectl tmc rollout promote web -n shop
      kubectl tmc rollout abort web -n shop
      kubectl tmc rollout status web -n shop --timeout 5m
      kubectl tmc rollout history deployment/web -n shop
      kubectl tmc rollout undo deployment/web -n shop --to-revision 2
    """


@rollout.command("get")
@click.argument("name")
@click.option("-w", "--watch", is_flag=True, help="Redraw as the rollout changes (Ctrl-C stops).")
@click.option("--timeout", type=Duration(), default=None, help="With -w, stop after this long.")
@client_flags()
def get(name: str, watch: bool, timeout: float | None) -> None:
    """The rollout as a tree: status, step, weights, every cluster, the analysis measurements.

    \b
    Examples:
      kubectl tmc rollout get web -n shop
      kubectl tmc rollout get web -n shop -w
    """
    hub = connect()
    obj = _get(hub, name)
    shown = rollout_view.render(obj)
    click.echo(shown, nl=False)
    if not watch:
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    clear = sys.stdout.isatty()
    while deadline is None or time.monotonic() < deadline:
        time.sleep(1.0)
        text = rollout_view.render(_get(hub, name))
        if text != shown:
            if clear:
                click.clear()
            else:
                click.echo("---")
            click.echo(text, nl=False)
            shown = text


@rollout.command("list")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@printer_options
@client_flags()
def list_(all_namespaces: bool, output: OutputFormat, no_headers: bool, sort_by: str | None, no_color: bool) -> None:
    """One line per CanaryDeployment: phase, step, weight, revisions, clusters.

    \b
    Examples:
      kubectl tmc rollout list -n shop
      kubectl tmc rollout list -A -o wide
    """
    hub = connect()
    info = CANARY_DEPLOYMENTS
    path = hub.path(info.group, info.version, info.plural, namespace=None if all_namespaces else hub.namespace)
    items, _ = hub.client.list_all(path)
    if output.structured or output.kind in ("name", "jsonpath", "custom-columns"):
        Printer(output, no_headers, sort_by, no_color).print(items)
        return
    if not items:
        where = "any namespace" if all_namespaces else f"namespace {hub.namespace}"
        click.echo(f"No canary deployments found in {where}.", err=True)
        return
    columns = [
        Column("NAMESPACE", lambda x: r.meta(x["object"]).get("namespace")),
        Column("NAME", lambda x: r.name_of(x["object"])),
        Column("PHASE", lambda x: x["phase"]),
        Column("STEP", lambda x: x["step"]),
        Column("WEIGHT", lambda x: x["weight"]),
        Column("STABLE", lambda x: x["stable"]),
        Column("CANARY", lambda x: x["canary"]),
        Column("CLUSTERS", lambda x: x["clusters"], wide=True),
        Column("AGE", lambda x: r.age(x["object"])),
    ]
    if not all_namespaces:
        columns = columns[1:]
    Printer(output, no_headers, None, no_color, columns).print([rollout_view.summary(o) for o in items])


@rollout.command("promote")
@click.argument("name")
@click.option("--full", is_flag=True, help="Skip the remaining steps, pauses and analysis; promote now.")
@client_flags()
def promote(name: str, full: bool) -> None:
    """Go past the current pause or step, or a manual gate between waves (with --full: promote the canary now).

    \b
    Examples:
      kubectl tmc rollout promote web -n shop
      kubectl tmc rollout promote web -n shop --full
    """
    hub = connect()
    obj = _get(hub, name)
    if _phase(obj) not in ACTIVE:
        raise CliError(f"{name} has no canary in progress (phase {_phase(obj)})", "edit its Deployment to start one")
    _act(hub, name, "promote-full" if full else "promote")
    click.echo(f"{KIND}/{name} {'fully ' if full else ''}promoted")


@rollout.command("abort")
@click.argument("name")
@client_flags()
def abort(name: str) -> None:
    """Send all traffic back to the stable version in every cluster and scale the canary down.

    \b
    Examples:
      kubectl tmc rollout abort web -n shop
    """
    hub = connect()
    obj = _get(hub, name)
    if _phase(obj) not in ACTIVE:
        raise CliError(f"{name} has no canary in progress (phase {_phase(obj)})", "nothing to abort")
    _act(hub, name, "abort")
    click.echo(f"{KIND}/{name} aborted")


@rollout.command("retry")
@click.argument("name")
@client_flags()
def retry(name: str) -> None:
    """Start the rolled-back canary again from its first step.

    \b
    Examples:
      kubectl tmc rollout retry web -n shop
    """
    hub = connect()
    obj = _get(hub, name)
    if _phase(obj) not in (FAILED, ROLLED_BACK):
        raise CliError(f"{name} was not rolled back (phase {_phase(obj)})", "retry applies to an aborted canary")
    _act(hub, name, "retry")
    click.echo(f"{KIND}/{name} retried")


@rollout.command("pause")
@click.argument("name")
@client_flags()
def pause(name: str) -> None:
    """Hold the rollout at its current step (spec.paused=true).

    \b
    Examples:
      kubectl tmc rollout pause web -n shop
    """
    hub = connect()
    _get(hub, name)
    _patch(hub, name, {"spec": {"paused": True}})
    click.echo(f"{KIND}/{name} paused")


@rollout.command("resume")
@click.argument("name")
@client_flags()
def resume(name: str) -> None:
    """Continue a rollout held by `pause` (spec.paused=false).

    \b
    Examples:
      kubectl tmc rollout resume web -n shop
    """
    hub = connect()
    _get(hub, name)
    _patch(hub, name, {"spec": {"paused": False}})
    click.echo(f"{KIND}/{name} resumed")


def verdict(obj: dict[str, Any], target: dict[str, Any] | None) -> str | None:
    """`status`'s answer once it has one: "ok" (the target's revision is the stable one), "failed" (it was rolled
    back), None while the rollout is under way (or the controller has not seen the latest edit yet)."""
    from tmc.controllers.canary.plan import revision

    if target is None:
        return None
    st = obj.get("status") or {}
    current = revision((target.get("spec") or {}).get("template"))
    if st.get("phase") == SUCCEEDED and st.get("stableRevision") == current and not st.get("canaryRevision"):
        return "ok"
    if st.get("phase") in (FAILED, ROLLED_BACK) and st.get("canaryRevision") == current:
        return "failed"
    return None


@rollout.command("status")
@click.argument("name")
@click.option("--timeout", type=Duration(), default="10m", show_default=True, help="Give up after this long.")
@client_flags()
def status(name: str, timeout: float) -> None:
    """Wait for the rollout to finish: exit 0 when the Deployment's revision is promoted, 1 when it was rolled back
    or the timeout passed.

    \b
    Examples:
      kubectl tmc rollout status web -n shop --timeout 5m
    """
    from tmc.client import ApiError

    hub = connect()
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        obj = _get(hub, name)
        ref = (obj.get("spec") or {}).get("targetRef") or {}
        try:
            target = hub.client.get(hub.path("apps", "v1", "deployments", ref.get("name"), hub.namespace))
        except ApiError as e:
            if e.code != 404:
                raise
            target = None
        st = obj.get("status") or {}
        line = f"{st.get('phase', 'Pending')}: {st.get('message', '')}"
        if line != last:
            click.echo(line)
            last = line
        answer = verdict(obj, target)
        if answer == "ok":
            return
        if answer == "failed":
            raise CliError(f"{name}: rolled back", st.get("message", ""))
        if time.monotonic() >= deadline:
            raise CliError(f"{name}: not finished within {timeout:g}s", f"phase {st.get('phase', 'Pending')}")
        time.sleep(1.0)
