"""`kubectl tmc rollout history|undo`: a placed workload's revisions (WorkloadRevisions on the hub) and going back
to one. The undo itself runs on the hub (the rollback controller, which also rolls back automatically); this
command asks for it with the `rollback.tmc.kcp.io/undo` annotation and waits for the answer. `--dry-run` plans the
undo here with the controller's own planning code and changes nothing.

The `rollout` group (tmc.cli.plugin.rollout, with the canary commands) takes these two in through ROLLOUT_COMMANDS.
"""

from __future__ import annotations

import difflib
import os
import time
from typing import Any

import click

from tmc.cli import resources as r
from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.output import Column, OutputFormat, Printer, printer_options
from tmc.cli.params import Duration

ROLLOUT_COMMANDS = {
    "history": (
        "tmc.cli.plugin.revisions:history",
        "Revisions: who, when, why, where each became available.",
    ),
    "undo": ("tmc.cli.plugin.revisions:undo", "Go back to an earlier revision everywhere (spec, ConfigMaps, Secrets)."),
}
REVISIONS = ("tmc.kcp.io", "v1alpha1", "workloadrevisions")
CANARIES = ("tmc.kcp.io", "v1alpha1", "canarydeployments")
CONFIGMAPS = ("", "v1", "configmaps")
SECRETS = ("", "v1", "secrets")


def _revisions(hub: Hub, kind: str, name: str) -> list[dict[str, Any]]:
    from tmc.api.rollback import WORKLOAD_KIND_LABEL, WORKLOAD_NAME_LABEL
    from tmc.controllers.rollback.plan import revision_number

    selector = f"{WORKLOAD_KIND_LABEL}={kind.lower()},{WORKLOAD_NAME_LABEL}={name[:63]}"
    items, _ = hub.client.list_all(hub.path(*REVISIONS, namespace=hub.namespace), {"labelSelector": selector})
    return sorted(items, key=revision_number)


def _workload(hub: Hub, ref: str) -> tuple[r.WorkloadType, dict[str, Any]]:
    """KIND/NAME: a built-in workload kind, else a kind the hub serves (a custom resource opted in to revisions)."""
    from tmc.client import NotFound

    word, slash, name = ref.partition("/")
    t = _custom_type(hub, word) if slash and name and r.workload_type(word) is None else None
    if t is None:
        return r.get_workload(hub, ref, hub.namespace)
    try:
        obj: dict[str, Any] = hub.client.get(hub.path(t.group, t.version, t.plural, name=name, namespace=hub.namespace))
    except NotFound:
        raise CliError(
            f'{t.kind} "{name}" not found in namespace {hub.namespace} of workspace {hub.workspace}'
        ) from None
    obj.setdefault("apiVersion", t.api_version)
    obj.setdefault("kind", t.kind)
    return t, obj


def _custom_type(hub: Hub, word: str) -> r.WorkloadType | None:
    """The namespaced resource whose kind, plural, singular or short name is `word` (optionally `.group`), found
    through the hub's discovery as kubectl finds it; only API groups with a dot (custom resources') are searched."""
    wanted, _, group = word.lower().partition(".")
    groups = hub.client.get(f"/clusters/{hub.workspace}/apis").get("groups") or ()
    for g in groups:
        if "." not in g["name"] or (group and g["name"] != group):
            continue
        version = str((g.get("preferredVersion") or {}).get("version") or g["versions"][0]["version"])
        for res in hub.client.get(f"/clusters/{hub.workspace}/apis/{g['name']}/{version}").get("resources") or ():
            if "/" in res["name"] or not res.get("namespaced"):
                continue
            names = {res["name"], res.get("singularName") or "", str(res.get("kind", "")).lower()}
            if wanted in names | set(res.get("shortNames") or ()):
                return r.WorkloadType(g["name"], version, res["name"], str(res["kind"]))
    return None


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _author(rev: dict[str, Any]) -> str:
    author = _spec(rev).get("author") or {}
    user, manager = author.get("user") or "", author.get("fieldManager") or ""
    if user and manager:
        return f"{user} ({manager})"
    return user or manager or "<unknown>"


def _clusters(rev: dict[str, Any]) -> str:
    parts = []
    for c in (rev.get("status") or {}).get("clusters") or ():
        state = str(c.get("state", ""))
        text = f"{c.get('name')}={state}"
        if state == "Available" and isinstance(c.get("seconds"), int | float):
            text += f"({c['seconds']:.1f}s)"
        parts.append(text)
    return " ".join(parts) or "<none>"


def _cause(rev: dict[str, Any]) -> str:
    return str(_spec(rev).get("changeCause") or "<none>")


@click.command("history", context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="KIND/NAME")
@click.option("--revision", type=click.IntRange(min=1), default=None, help="Show one revision and its diff.")
@printer_options
@client_flags()
def history(
    ref: str, revision: int | None, output: OutputFormat, no_headers: bool, sort_by: str | None, no_color: bool
) -> None:
    """One row per revision: number, change cause, author, time, phase and the outcome in each cluster.

    \b
    Examples:
      kubectl tmc rollout history deployment/web -n shop
      kubectl tmc rollout history deployment/web -n shop --revision 2
      kubectl tmc rollout history deployment/web -n shop -o yaml
      kubectl tmc rollout history crontab/nightly -n jobs    # a custom resource that opted in
    """
    hub = connect()
    t, obj = _workload(hub, ref)
    revisions = _revisions(hub, t.kind, r.name_of(obj))
    if revision is not None:
        _show_revision(hub, obj, revisions, revision)
        return
    if output.structured or output.kind in ("name", "jsonpath", "custom-columns"):
        Printer(output, no_headers, sort_by, no_color).print(revisions)
        return
    if not revisions:
        click.echo(f"No rollout history found for {t.kind.lower()}/{r.name_of(obj)}.", err=True)
        return
    columns = (
        Column("REVISION", lambda x: _spec(x).get("revision")),
        Column("CHANGE-CAUSE", _cause),
        Column("AUTHOR", _author),
        Column("TIME", lambda x: (x.get("metadata") or {}).get("creationTimestamp")),
        Column("PHASE", lambda x: (x.get("status") or {}).get("phase", "Progressing")),
        Column("CLUSTERS", _clusters),
    )
    click.echo(f"{t.kind.lower()}.{t.group}/{r.name_of(obj)}" if t.group else f"{t.kind.lower()}/{r.name_of(obj)}")
    Printer(output, no_headers, sort_by, no_color, columns).print(revisions)


def _yaml(value: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=True, default_flow_style=False))


def _show_revision(hub: Hub, obj: dict[str, Any], revisions: list[dict[str, Any]], number: int) -> None:
    from tmc.controllers.rollback.plan import revision_number
    from tmc.controllers.rollback.snapshot import template_of

    rev = next((x for x in revisions if revision_number(x) == number), None)
    if rev is None:
        known = ", ".join(str(revision_number(x)) for x in revisions) or "none"
        raise CliError(f"revision {number} not found (revisions: {known})")
    spec = _spec(rev)
    click.echo(f"revision {number}: {_cause(rev)}, by {_author(rev)} at {rev['metadata'].get('creationTimestamp')}")
    click.echo(f"phase: {(rev.get('status') or {}).get('phase', 'Progressing')}; clusters: {_clusters(rev)}")
    click.echo("template:")
    click.echo(_indent(_yaml(spec.get("template") or {})))
    for cm in spec.get("configMaps") or ():
        state = "" if cm.get("present") else " (absent)"
        click.echo(f"configmap/{cm.get('name')}{state}:")
        if cm.get("present"):
            click.echo(_indent(_yaml(cm.get("data") or {})))
    for secret in spec.get("secrets") or ():
        keys = ", ".join(secret.get("keys") or ()) or "-"
        click.echo(f"secret/{secret.get('name')}: keys {keys} (values not shown)")
    current = _yaml(template_of(obj)).splitlines(keepends=True)
    then = _yaml(spec.get("template") or {}).splitlines(keepends=True)
    diff = list(difflib.unified_diff(current, then, "current", f"revision {number}"))
    for cm in spec.get("configMaps") or ():
        live = _get(hub, CONFIGMAPS, str(cm.get("name")))
        now = _yaml((live or {}).get("data") or {}).splitlines(keepends=True) if live else []
        old = _yaml(cm.get("data") or {}).splitlines(keepends=True) if cm.get("present") else []
        name = f"configmap/{cm.get('name')}"
        diff += difflib.unified_diff(now, old, f"{name} current", f"{name} revision {number}")
    click.echo("diff against the current state:" if diff else "no difference from the current state")
    click.echo("".join(diff).rstrip("\n"))


def _indent(text: str) -> str:
    return "".join("  " + line for line in text.rstrip("\n").splitlines(keepends=True))


def _get(hub: Hub, gvr: tuple[str, str, str], name: str) -> dict[str, Any] | None:
    from tmc.client import NotFound

    try:
        found: dict[str, Any] = hub.client.get(hub.path(*gvr, name=name, namespace=hub.namespace))
        return found
    except NotFound:
        return None


@click.command("undo", context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="KIND/NAME")
@click.option("--to-revision", type=click.IntRange(min=1), default=None, help="The revision (default: the previous).")
@click.option("--dry-run", is_flag=True, help="Print what the undo would change; change nothing.")
@click.option("--timeout", type=Duration(), default="60s", show_default=True, help="How long to wait for the hub.")
@client_flags()
def undo(ref: str, to_revision: int | None, dry_run: bool, timeout: float) -> None:
    """Restore a revision's spec, ConfigMaps and Secrets on the hub in one step; every cluster gets them through the
    normal sync. A canary in progress is aborted first. The undo is recorded as a new revision.

    \b
    Examples:
      kubectl tmc rollout undo deployment/web -n shop
      kubectl tmc rollout undo deployment/web -n shop --to-revision 1 --dry-run
      kubectl tmc rollout undo crontab/nightly -n jobs
    """
    from tmc.controllers.rollback.plan import revision_number

    hub = connect()
    t, obj = _workload(hub, ref)
    name = r.name_of(obj)
    shown = f"{t.kind.lower()}.{t.group}/{name}" if t.group else f"{t.kind.lower()}/{name}"
    revisions = _revisions(hub, t.kind, name)
    if not revisions:
        raise CliError(f"no rollout history found for {shown}: nothing to undo")
    if to_revision is not None and all(revision_number(x) != to_revision for x in revisions):
        known = ", ".join(str(revision_number(x)) for x in revisions)
        raise CliError(f"unable to find the specified revision {to_revision} (revisions: {known})")
    if dry_run:
        _dry_run(hub, obj, revisions, to_revision, shown)
        return
    _request(hub, t, obj, to_revision, shown, timeout)


def _request(hub: Hub, t: r.WorkloadType, obj: dict[str, Any], wanted: int | None, shown: str, timeout: float) -> None:
    from tmc.api.rollback import UNDO_ANNOTATION, UNDO_PREVIOUS, UNDO_RESULT_ANNOTATION
    from tmc.client import MERGE_PATCH, Conflict

    token = os.urandom(6).hex()
    path = hub.path(t.group, t.version, t.plural, name=r.name_of(obj), namespace=hub.namespace)
    value = f"{wanted if wanted is not None else UNDO_PREVIOUS}@{token}"
    for attempt in range(10):  # a placed workload is busy: every syncer writes its status report to it
        try:
            hub.client.patch(path, {"metadata": {"annotations": {UNDO_ANNOTATION: value}}}, MERGE_PATCH)
            break
        except Conflict:
            if attempt == 9:
                raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = hub.client.get(path)
        result = str(((current.get("metadata") or {}).get("annotations") or {}).get(UNDO_RESULT_ANNOTATION, ""))
        if result.startswith(f"{token} "):
            head, *warnings = result[len(token) + 1 :].split("; ")
            verdict, _, detail = head.partition(" ")
            if verdict != "ok":
                raise CliError(detail)
            for warning in warnings:
                click.echo(f"Warning: {warning}", err=True)
            click.echo(f"{shown} rolled back to revision {detail}")
            return
        time.sleep(0.1)  # polling the hub for the controller's answer
    raise CliError(
        f"the hub did not answer the undo of {shown} within {timeout:g}s",
        "is the hub's rollback controller running? the request stays on the workload until it is",
    )


def _dry_run(hub: Hub, obj: dict[str, Any], revisions: list[dict[str, Any]], wanted: int | None, shown: str) -> None:
    from tmc.controllers.rollback.plan import choose_target, plan_undo
    from tmc.controllers.rollback.snapshot import (
        configmap_entry,
        fingerprint,
        referenced,
        secret_entry,
        template_of,
    )

    cms, secrets = _listed(hub, CONFIGMAPS), _listed(hub, SECRETS)
    cm_names, secret_names = referenced(obj)
    current = fingerprint(
        template_of(obj),
        [configmap_entry(n, cms.get(n)) for n in cm_names],
        [secret_entry(n, secrets.get(n)) for n in secret_names],
    )
    try:
        target = choose_target(revisions, current, wanted)
    except ValueError as e:
        raise CliError(str(e)) from None
    plan = plan_undo(obj, target, revisions, cms, secrets, _other_references(hub, obj))
    click.echo(f"{shown} rolled back to revision {plan.target} (dry run)")
    for canary in _active_canaries(hub, r.name_of(obj)):
        click.echo(f"  canary {canary} is aborted first: traffic back to stable in every cluster, then cleaned up")
    if plan.template_changes:
        before = _yaml(template_of(obj)).splitlines(keepends=True)
        after = _yaml(plan.template).splitlines(keepends=True)
        click.echo("  template:")
        click.echo(_indent("".join(difflib.unified_diff(before, after, "current", f"revision {plan.target}"))))
    for cm in plan.configmaps:
        click.echo(f"  configmap/{cm['name']}: {'re-created' if cm['create'] else 'restored'}")
    for name in plan.secrets:
        click.echo(f"  secret/{name}: {'re-created' if name in plan.created_secrets else 'restored'}")
    for name in plan.delete_configmaps:
        click.echo(f"  configmap/{name}: deleted (only the undone change used it)")
    for name in plan.delete_secrets:
        click.echo(f"  secret/{name}: deleted (only the undone change used it)")
    if not plan.changes:
        click.echo("  nothing changes: the workload already runs that revision's content")
    for warning in plan.warnings:
        click.echo(f"Warning: {warning}", err=True)


def _listed(hub: Hub, gvr: tuple[str, str, str]) -> dict[str, dict[str, Any]]:
    items, _ = hub.client.list_all(hub.path(*gvr, namespace=hub.namespace))
    return {str(x["metadata"]["name"]): x for x in items}


def _other_references(hub: Hub, obj: dict[str, Any]) -> set[tuple[str, str]]:
    from tmc.controllers.rollback.snapshot import referenced

    out: set[tuple[str, str]] = set()
    for plural in ("deployments", "statefulsets", "daemonsets"):
        for item in _listed(hub, ("apps", "v1", plural)).values():
            if item["metadata"].get("uid") == (obj.get("metadata") or {}).get("uid"):
                continue
            item.setdefault("apiVersion", "apps/v1")
            cms, secrets = referenced(item)
            out |= {("configmaps", n) for n in cms} | {("secrets", n) for n in secrets}
    return out


def _active_canaries(hub: Hub, name: str) -> list[str]:
    from tmc.client import NotFound

    try:
        items, _ = hub.client.list_all(hub.path(*CANARIES, namespace=hub.namespace))
    except NotFound:
        return []  # this hub serves no CanaryDeployments
    return [
        str(c["metadata"]["name"])
        for c in items
        if _spec(c).get("targetRef", {}).get("name") == name
        and (c.get("status") or {}).get("phase", "") in ("Progressing", "Analyzing", "Paused")
    ]
