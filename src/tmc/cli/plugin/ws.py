"""`kubectl tmc ws`: kcp's `kubectl ws` — show, tree, use (`..`, `-`, `:`/`~`, absolute or relative) and create.

`ws use` rewrites the path of the current context's server URL (`https://hub/clusters/<path>`) in the kubeconfig,
as kcp's plugin does, and keeps the context it left as `workspace.kcp.io/previous`, which `ws use -` returns to.
"""

from __future__ import annotations

import time
from typing import Any

import click

from tmc.cli import resources as r
from tmc.cli.errors import CliError
from tmc.cli.kubeconfig_flags import Hub, client_flags, connect, flags, kubeconfig_path
from tmc.cli.lazy import CONTEXT_SETTINGS
from tmc.cli.progress import Progress

PREVIOUS = "workspace.kcp.io/previous"


def resolve(current: str, target: str, previous: str | None) -> str:
    """The workspace path `target` names, seen from `current` (kcp's shell-like rules)."""
    if target == "-":
        if not previous:
            raise CliError("no previous workspace", "'ws use -' works after a 'ws use'")
        return previous
    if target in (":", "~", "root", ":root"):
        return "root"
    if target == ".":
        return current
    if target.startswith(":"):
        return target[1:]
    if target.startswith("root:"):
        return target
    path = current
    for part in target.split(":"):
        if part == "..":
            if ":" not in path:
                raise CliError(f"{path} has no parent workspace", "'ws use :' goes to root")
            path = path.rsplit(":", 1)[0]
        elif part and part != ".":
            path = f"{path}:{part}"
    return path


def _load(path: str) -> dict[str, Any]:
    import yaml

    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CliError(f"cannot read kubeconfig {path}: {e}", "check --kubeconfig") from None
    if not isinstance(config, dict):
        raise CliError(f"{path} is not a kubeconfig", "check --kubeconfig")
    return config


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any] | None:
    for entry in config.get(section) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def _set(config: dict[str, Any], section: str, name: str, key: str, value: dict[str, Any]) -> None:
    entry = _named(config, section, name)
    if entry is None:
        config.setdefault(section, []).append({"name": name, key: value})
    else:
        entry[key] = value


def switch(path: str, context: str | None, origin: str, workspace: str) -> str | None:
    """Point the context's server at `workspace`, remembering the old server as the previous context. Returns the
    previous workspace path."""
    import copy
    from urllib.parse import urlsplit

    import yaml

    config = _load(path)
    name = context or config.get("current-context")
    ctx = _named(config, "contexts", str(name)) if name else None
    if ctx is None:
        raise CliError(f"context {name!r} not found in {path}", "pass --context")
    cluster = _named(config, "clusters", str((ctx.get("context") or {}).get("cluster")))
    if cluster is None:
        raise CliError(f"context {name!r} names no cluster in {path}", "fix the kubeconfig")
    old_server = str((cluster.get("cluster") or {}).get("server") or "")
    old_path = urlsplit(old_server).path
    old_ws = old_path[len("/clusters/") :] if old_path.startswith("/clusters/") else None
    if old_ws != workspace:
        _set(config, "clusters", PREVIOUS, "cluster", copy.deepcopy(cluster.get("cluster") or {}))
        _set(config, "contexts", PREVIOUS, "context", {**(ctx.get("context") or {}), "cluster": PREVIOUS})
    cluster.setdefault("cluster", {})["server"] = f"{origin}/clusters/{workspace}"
    with open(path, "w") as f:
        yaml.safe_dump(config, f, default_flow_style=False, sort_keys=False)
    return old_ws


def previous_workspace(path: str) -> str | None:
    from urllib.parse import urlsplit

    cluster = _named(_load(path), "clusters", PREVIOUS)
    server = str(((cluster or {}).get("cluster") or {}).get("server") or "")
    ws_path = urlsplit(server).path
    return ws_path[len("/clusters/") :] if ws_path.startswith("/clusters/") else None


def check_exists(hub: Hub, workspace: str) -> None:
    """The workspace exists and is Ready (asked of its parent, as kcp does)."""
    from tmc.client import NotFound

    if workspace == "root":
        return
    parent, _, name = workspace.rpartition(":")
    try:
        ws = hub.client.get(hub.path(*r.WS, name=name, workspace=parent))
    except NotFound:
        raise CliError(
            f'workspace "{workspace}" not found', f"list them with 'kubectl tmc ws tree --workspace {parent}'"
        ) from None
    phase = (ws.get("status") or {}).get("phase")
    if phase != "Ready":
        raise CliError(f'workspace "{workspace}" is {phase or "not ready"}', "wait until it is Ready")


def use(hub: Hub, target: str) -> None:
    f = flags()
    if f.server:
        raise click.UsageError("ws use edits the kubeconfig; it cannot be combined with --server")
    path = kubeconfig_path(f.kubeconfig)
    new = resolve(hub.workspace, target, previous_workspace(path) if target == "-" else None)
    check_exists(hub, new)
    switch(path, f.context, hub.config.base_url, new)
    click.echo(f'Current workspace is "{new}".')


@click.group("ws", invoke_without_command=True, context_settings=CONTEXT_SETTINGS)
@client_flags(namespaced=False)
@click.pass_context
def ws(ctx: click.Context) -> None:
    """Show the current workspace; `ws use`, `ws tree`, `ws create` as kcp's `kubectl ws`.

    \b
    Examples:
      kubectl tmc ws                       # Current workspace is "root".
      kubectl tmc ws tree
      kubectl tmc ws create team-a --enter
      kubectl tmc ws use ..                # parent; also :, ~ (root), - (previous), root:a:b, a:b
    """
    if ctx.invoked_subcommand is None:
        hub = connect()
        click.echo(f'Current workspace is "{hub.workspace}".')


@ws.command("use")
@click.argument("path")
@client_flags(namespaced=False)
def use_command(path: str) -> None:
    """Enter a workspace: PATH is absolute (root:a, :a), relative (a, a:b), `..`, `-` (previous) or `:`/`~` (root).

    \b
    Examples:
      kubectl tmc ws use root:team-a
      kubectl tmc ws use -
    """
    use(connect(), path)


@ws.command("cd", hidden=True)
@click.argument("path")
@client_flags(namespaced=False)
def cd_command(path: str) -> None:
    """Alias of `ws use`.

    \b
    Example:
      kubectl tmc ws cd ..
    """
    use(connect(), path)


def _children(hub: Hub, workspace: str) -> list[str]:
    from tmc.client import ApiError

    try:
        items, _ = hub.client.list_all(hub.path(*r.WS, workspace=workspace))
    except ApiError:
        return []
    return sorted(r.name_of(i) for i in items)


@ws.command("tree")
@client_flags(namespaced=False)
def tree(depth: int = 8) -> None:
    """The workspaces under the current one, as a tree.

    \b
    Example:
      kubectl tmc ws tree
    """
    hub = connect()
    lines = [hub.workspace]

    def walk(path: str, prefix: str, level: int) -> None:
        children = _children(hub, path) if level < depth else []
        for i, name in enumerate(children):
            last = i == len(children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{name}")
            walk(f"{path}:{name}", prefix + ("    " if last else "│   "), level + 1)

    walk(hub.workspace, "", 0)
    click.echo("\n".join(lines))


@ws.command("create")
@click.argument("name")
@click.option("--enter", is_flag=True, help="Enter the workspace once it is Ready.")
@click.option("--ignore-existing", is_flag=True, help="Succeed when it already exists.")
@click.option("--type", "type_", default=None, help="Workspace type name (default: universal).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@client_flags(namespaced=False)
def create(name: str, enter: bool, ignore_existing: bool, type_: str | None, quiet: bool) -> None:
    """Create a child workspace of the current one and wait until it is Ready.

    \b
    Examples:
      kubectl tmc ws create team-a
      kubectl tmc ws create team-a --enter
    """
    from tmc.client import AlreadyExists

    hub = connect()
    body: dict[str, Any] = {"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}}
    if type_:
        body["spec"] = {"type": {"name": type_}}
    try:
        hub.client.create(hub.path(*r.WS), body)
    except AlreadyExists:
        if not ignore_existing:
            raise CliError(f'workspace "{hub.workspace}:{name}" already exists', "pass --ignore-existing") from None
    with Progress(f"waiting for workspace {name} to be Ready", quiet=quiet) as progress:
        deadline = time.monotonic() + 60
        while True:
            obj = hub.client.get(hub.path(*r.WS, name=name))
            if (obj.get("status") or {}).get("phase") == "Ready":
                break
            if time.monotonic() > deadline:
                raise CliError(f"workspace {name} is not Ready after 60s", "check the hub's log")
            progress.update(f"phase {(obj.get('status') or {}).get('phase') or 'Scheduling'}")
            time.sleep(0.2)
    if not quiet:
        click.echo(f'Workspace "{hub.workspace}:{name}" is ready.')
    if enter:
        use(hub, f"{hub.workspace}:{name}")
