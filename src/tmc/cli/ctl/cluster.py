"""`tmcctl cluster list|status|register|cordon|uncordon|drain|unregister`: member clusters as SyncTargets."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from tmc.cli import resources as r
from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.names import REGION_LABEL
from tmc.cli.output import OutputFormat, Printer, output_option, printer_options
from tmc.cli.params import Duration, parse_labels
from tmc.cli.placement_spec import capabilities as parse_capabilities
from tmc.cli.plugin.get import selector_option
from tmc.cli.plugin.kinds import complete_clusters
from tmc.cli.progress import Progress

_MEMBER_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
}


@click.group("cluster", context_settings=CONTEXT_SETTINGS)
def cluster() -> None:
    """Register, inspect, cordon, drain and unregister member clusters (SyncTargets).

    \b
    Examples:
      tmcctl cluster list
      tmcctl cluster register eu-1 --location eu-central-1 --capabilities gpu:true
      tmcctl cluster drain eu-1 --timeout 5m
    """


@cluster.command("list")
@selector_option
@printer_options
@client_flags(namespaced=False)
def list_(selector: str, output: OutputFormat, no_headers: bool, sort_by: str | None, no_color: bool) -> None:
    """Clusters with readiness, health, scheduling state, utilisation, heartbeat and workload count.

    \b
    Examples:
      tmcctl cluster list -o wide
      tmcctl cluster list -l topology.kubernetes.io/region=eu-central-1
    """
    from tmc.cli.plugin.get import fetch

    items, columns = fetch(connect(), "clusters", (), selector, False)
    Printer(output, no_headers, sort_by, no_color, columns).print(items)


@cluster.command("status")
@click.argument("name", shell_complete=complete_clusters)
@client_flags(namespaced=False)
def status(name: str) -> None:
    """Everything about one cluster: health, resources, conditions, workloads, Events.

    \b
    Example:
      tmcctl cluster status cluster-1
    """
    from tmc.cli.plugin.describe import describe_sync_target

    hub = connect()
    st = r.get_sync_target(hub, name)
    click.echo(describe_sync_target(hub, st, r.list_workloads(hub, None), cluster=True), nl=False)


def taints(values: tuple[str, ...]) -> list[dict[str, str]]:
    """`key=value:NoSchedule` (value optional) -> taints."""
    out = []
    for text in values:
        kv, colon, effect = text.rpartition(":")
        key, _, value = kv.partition("=")
        if not colon or not key or effect not in ("NoSchedule", "NoExecute"):
            raise click.BadParameter(f"{text!r} is not KEY[=VALUE]:NoSchedule|NoExecute", param_hint="--taint")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


def register_target(
    hub: Hub, name: str, labels: dict[str, str], caps: list[dict[str, Any]], taint_list: list[dict[str, str]]
) -> tuple[dict[str, Any], bool]:
    """Create the SyncTarget, or bring an existing one's labels, capabilities and taints to these; (object,
    created)."""
    from tmc.client import MERGE_PATCH, NotFound

    spec: dict[str, Any] = {}
    if caps:
        spec["capabilities"] = [{"type": c["type"], "available": c["required"]} for c in caps]
    if taint_list:
        spec["taints"] = taint_list
    try:
        hub.client.get(hub.path(*r.ST, name=name))
    except NotFound:
        body = {
            "apiVersion": "workload.kcp.io/v1alpha1",
            "kind": "SyncTarget",
            "metadata": {"name": name, "labels": labels},
            "spec": spec,
        }
        return hub.client.create(hub.path(*r.ST), body), True
    patch: dict[str, Any] = {"metadata": {"labels": labels}}
    if spec:
        patch["spec"] = spec
    return hub.client.patch(hub.path(*r.ST, name=name), patch, MERGE_PATCH), False


def apply_to_member(kubeconfig: str, objects: list[dict[str, Any]]) -> None:
    """Create each object on the member cluster, or merge the manifest into an existing one."""
    from tmc.client import AlreadyExists, ApiError, SyncClient, Unreachable, load_kubeconfig

    try:
        config = load_kubeconfig(kubeconfig)
        client = SyncClient(config, base_url=config.base_url)
    except (ValueError, OSError) as e:
        raise CliError(f"cannot use member kubeconfig {kubeconfig}: {e}", "check --apply-to") from None
    with client:
        for obj in objects:
            ns = r.meta(obj).get("namespace", "")
            collection = _MEMBER_PATHS[obj["kind"]].format(ns=ns)
            try:
                try:
                    client.create(collection, obj)
                except AlreadyExists:
                    client.patch(f"{collection}/{r.name_of(obj)}", obj)
            except Unreachable as e:
                raise CliError(f"cannot reach the member cluster: {e}", "check --apply-to") from None
            except ApiError as e:
                raise CliError(f"member cluster refused {obj['kind']} {r.name_of(obj)}: {e.message}", "") from None


def wait_ready(hub: Hub, name: str, timeout: float, quiet: bool) -> None:
    deadline = time.monotonic() + timeout
    with Progress(f"waiting for cluster {name} to be Ready", quiet=quiet) as progress:
        while True:
            st = hub.client.get(hub.path(*r.ST, name=name))
            if r.ready(st) == "True":
                return
            heartbeat = (st.get("status") or {}).get("lastSyncerHeartbeatTime")
            progress.update("no heartbeat yet" if not heartbeat else f"last heartbeat {r.ago(heartbeat)} ago")
            if time.monotonic() > deadline:
                raise CliError(
                    f"cluster {name} is not Ready after {timeout:g}s",
                    f"is its syncer running? 'kubectl tmc debug syncer {name}'",
                )
            time.sleep(0.5)


@cluster.command("register")
@click.argument("name")
@click.option("--location", default=None, help=f"Region of the cluster (label {REGION_LABEL}).")
@click.option("--labels", default="", help="More SyncTarget labels, k=v,k2=v2.")
@click.option("--capabilities", default="", help="What the cluster offers: gpu:true,ssd:false,...")
@click.option("--taint", "taint_values", multiple=True, help="KEY[=VALUE]:NoSchedule|NoExecute (repeatable).")
@output_option(("command", "manifest", "yaml", "json"), default="command")
@click.option("--image", default=None, help="Syncer image for -o manifest / --apply-to.")
@click.option("--member-kubeconfig", default="member.kubeconfig", show_default=True, help="For the printed command.")
@click.option("--apply-to", default=None, help="Apply the manifest to the member cluster of this kubeconfig.")
@click.option("--wait", is_flag=True, help="Wait until the SyncTarget is Ready.")
@click.option("--timeout", type=Duration(), default="5m", show_default=True, help="How long --wait waits.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@client_flags(namespaced=False)
def register(
    name: str,
    location: str | None,
    labels: str,
    capabilities: str,
    taint_values: tuple[str, ...],
    output: OutputFormat,
    image: str | None,
    member_kubeconfig: str,
    apply_to: str | None,
    wait: bool,
    timeout: float,
    quiet: bool,
) -> None:
    """Create (or update, idempotently) the cluster's SyncTarget and print how to run its syncer.

    -o command (default) prints the `tmc syncer` command line; -o manifest the objects to apply to the member
    cluster (Namespace, ServiceAccount, RBAC, Secret with the hub kubeconfig, Deployment running `tmc syncer`).

    \b
    Examples:
      tmcctl cluster register eu-1 --location eu-central-1 --capabilities gpu:true
      tmcctl cluster register eu-1 -o manifest | kubectl --kubeconfig eu-1.kubeconfig apply -f -
      tmcctl cluster register eu-1 --apply-to eu-1.kubeconfig --wait
    """
    from tmc.cli.ctl import manifest as m

    label_map = parse_labels(labels)
    if location:
        label_map[REGION_LABEL] = location
    caps = parse_capabilities(capabilities)
    taint_list = taints(taint_values)
    hub = connect()
    st, created = register_target(hub, name, label_map, caps, taint_list)
    hub_config = m.hub_kubeconfig(hub.config.base_url, hub.config.ca_pem, hub.config.token, hub.config.insecure)
    objects = m.manifest(
        name, str(r.meta(st).get("uid")), hub.workspace, hub_config, label_map, image or m.DEFAULT_IMAGE
    )
    if apply_to:
        apply_to_member(apply_to, objects)
    if output.kind == "command":
        if not quiet:
            click.echo(f"synctarget.workload.kcp.io/{name} {'created' if created else 'configured'}")
            args = m.syncer_args(name, hub.workspace, hub.kubeconfig, member_kubeconfig, label_map)
            click.echo(f"Run its syncer with access to the member cluster:\n  {m.command_line(args)}")
            if apply_to:
                click.echo(f"Applied the syncer's manifest to {apply_to}.")
    else:
        fmt = OutputFormat("yaml") if output.kind == "manifest" else output
        if fmt.kind == "yaml":
            import yaml

            click.echo("---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects), nl=False)
        else:
            Printer(fmt).print(objects)
    if wait:
        wait_ready(hub, name, timeout, quiet)
        if not quiet:
            click.echo(f"cluster {name} is Ready", err=output.kind != "command")


def _spec_patch(hub: Hub, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    from tmc.client import MERGE_PATCH

    r.get_sync_target(hub, name)
    patched: dict[str, Any] = hub.client.patch(hub.path(*r.ST, name=name), {"spec": spec}, MERGE_PATCH)
    return patched


def cordon_target(hub: Hub, name: str) -> str:
    """Mark the SyncTarget unschedulable; what happened, as one line (the CLI and the dashboard both say it)."""
    if (r.get_sync_target(hub, name).get("spec") or {}).get("unschedulable"):
        return f"cluster {name} already cordoned"
    _spec_patch(hub, name, {"unschedulable": True})
    return f"cluster {name} cordoned"


def uncordon_target(hub: Hub, name: str) -> str:
    """Make the SyncTarget schedulable again (also ends a drain); what happened, as one line."""
    spec = r.get_sync_target(hub, name).get("spec") or {}
    if not spec.get("unschedulable") and not spec.get("evictAfter"):
        return f"cluster {name} already uncordoned"
    _spec_patch(hub, name, {"unschedulable": None, "evictAfter": None})
    return f"cluster {name} uncordoned"


@cluster.command("cordon")
@click.argument("name", shell_complete=complete_clusters)
@client_flags(namespaced=False)
def cordon(name: str) -> None:
    """Mark the cluster unschedulable: nothing new is placed there.

    \b
    Example:
      tmcctl cluster cordon cluster-2
    """
    click.echo(cordon_target(connect(), name))


@cluster.command("uncordon")
@click.argument("name", shell_complete=complete_clusters)
@client_flags(namespaced=False)
def uncordon(name: str) -> None:
    """Make the cluster schedulable again (also ends a drain).

    \b
    Example:
      tmcctl cluster uncordon cluster-2
    """
    click.echo(uncordon_target(connect(), name))


def drain_target(hub: Hub, name: str, timeout: float, quiet: bool) -> None:
    """Cordon, set evictAfter to now, and wait until no workload carries the cluster's state label."""
    st = r.get_sync_target(hub, name)
    key = r.target_key(st, hub.workspace)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _spec_patch(hub, name, {"unschedulable": True, "evictAfter": now})
    targets = r.list_sync_targets(hub)
    types = r.workload_types(targets)
    first = r.list_workloads(hub, None, targets=targets, types=types).count(key)
    deadline = time.monotonic() + timeout
    with Progress(f"draining {name}", total=max(first, 1), quiet=quiet) as progress:
        left = first
        while left:
            if time.monotonic() > deadline:
                raise CliError(
                    f"{left} workload(s) still on {name} after {timeout:g}s",
                    f"see them with 'kubectl tmc describe cl {name}'; can another cluster take them?",
                )
            time.sleep(0.5)
            left = r.list_workloads(hub, None, targets=targets, types=types).count(key)
            progress.update(f"{left} workload(s) left", completed=first - left)
    if not quiet:
        click.echo(f"cluster {name} drained ({first} workload(s) moved off)")


@cluster.command("drain")
@click.argument("name", shell_complete=complete_clusters)
@click.option("--timeout", type=Duration(), default="5m", show_default=True, help="Give up after this long.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@client_flags(namespaced=False)
def drain(name: str, timeout: float, quiet: bool) -> None:
    """Cordon the cluster and move its workloads off gracefully; waits until none is left.

    \b
    Example:
      tmcctl cluster drain cluster-2 --timeout 2m
    """
    drain_target(connect(), name, timeout, quiet)


@cluster.command("unregister")
@click.argument("name", shell_complete=complete_clusters)
@click.option("--force", is_flag=True, help="Delete at once, without draining first.")
@click.option("--timeout", type=Duration(), default="5m", show_default=True, help="How long the drain may take.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@client_flags(namespaced=False)
def unregister(name: str, force: bool, timeout: float, quiet: bool) -> None:
    """Drain the cluster, then delete its SyncTarget (stop its syncer afterwards).

    \b
    Examples:
      tmcctl cluster unregister cluster-3
      tmcctl cluster unregister cluster-3 --force
    """
    hub = connect()
    if not force:
        drain_target(hub, name, timeout, quiet)
    else:
        r.get_sync_target(hub, name)
    hub.client.delete(hub.path(*r.ST, name=name))
    click.echo(f"synctarget.workload.kcp.io/{name} deleted")
