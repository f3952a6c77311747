"""kubectl's client flags (`--kubeconfig`, `KUBECONFIG`, `--context`, `--server`, `--token`, `--workspace`,
`-n/--namespace`) and the connection they describe.

The flags are added to every command that talks to the hub (kubectl accepts them after the subcommand, so a group
option would not do). `connect()` reads the kubeconfig once and gives a `Hub`: a `SyncClient` at the server's origin
(any workspace is reachable as `/clusters/<path>/...`), the workspace and namespace to use, and, for watches only, a
`BlockingClient` made on first use. The client layer is imported lazily: `--help` must not pay for it, and a
command that does not watch never imports aiohttp.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tmc.cli.errors import CliError, current_server

if TYPE_CHECKING:
    from tmc.client import BlockingClient, Kubeconfig, SyncClient

F = TypeVar("F", bound=Callable[..., Any])
_META = "tmc.client-flags"


@dataclass
class ClientFlags:
    kubeconfig: str | None = None
    context: str | None = None
    server: str | None = None
    token: str | None = None
    workspace: str | None = None
    namespace: str | None = None


def flags(ctx: click.Context | None = None) -> ClientFlags:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    found: ClientFlags = root.meta.setdefault(_META, ClientFlags())
    return found


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(flags(ctx), field, value)
        return value

    return callback


def client_flags(namespaced: bool = True) -> Callable[[F], F]:
    """Add the client flags to a command; their values are read with `flags()` / `connect()`."""

    def decorate(command: F) -> F:
        options = [
            click.option(
                "--kubeconfig",
                envvar="KUBECONFIG",
                expose_value=False,
                callback=_store("kubeconfig"),
                help="Kubeconfig file (default: KUBECONFIG, else ~/.kube/config).",
            ),
            click.option("--context", expose_value=False, callback=_store("context"), help="Kubeconfig context."),
            click.option("--server", expose_value=False, callback=_store("server"), help="Hub URL (overrides it)."),
            click.option("--token", expose_value=False, callback=_store("token"), help="Bearer token."),
            click.option(
                "--workspace",
                expose_value=False,
                callback=_store("workspace"),
                help="kcp workspace path, e.g. root:team-a (default: the context's, else root).",
            ),
        ]
        if namespaced:
            options.append(
                click.option(
                    "-n",
                    "--namespace",
                    expose_value=False,
                    callback=_store("namespace"),
                    help="Namespace (default: the context's, else default).",
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def kubeconfig_path(flag: str | None) -> str:
    """The kubeconfig file to read: the flag (or KUBECONFIG, first existing entry of the list), else
    ~/.kube/config."""
    if flag:
        entries = [e for e in flag.split(os.pathsep) if e]
        for entry in entries:
            if os.path.exists(entry):
                return entry
        if entries:
            return entries[0]
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def context_namespace(path: str, context: str | None) -> str | None:
    """The namespace the kubeconfig's (current or named) context sets, if any."""
    import yaml

    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):
        return None
    name = context or config.get("current-context")
    for entry in config.get("contexts") or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            ns = (entry.get("context") or {}).get("namespace")
            return str(ns) if ns else None
    return None


def valid_workspace(path: str) -> str:
    parts = path.split(":")
    if not path or any(not p or not all(c.isalnum() or c == "-" for c in p) for p in parts):
        raise click.BadParameter(f"{path!r} is not a workspace path such as root:team-a", param_hint="--workspace")
    return path


@dataclass
class Hub:
    """The connection commands use: the client at the hub's origin, the workspace and namespace in effect."""

    client: SyncClient
    workspace: str
    namespace: str
    kubeconfig: str
    _watcher: BlockingClient | None = None

    def watcher(self, streams: int = 1) -> BlockingClient:
        """The asynchronous client, for watches (`watcher().run(coroutine)`, `watcher().client.watch(...)`), with a
        connection for each of `streams` concurrent watches (a watch holds its connection)."""
        if self._watcher is None:
            from tmc.client import BlockingClient

            self._watcher = BlockingClient(
                self.client.config, base_url=self.client.base_url, connections=max(4, streams + 1)
            )
        return self._watcher

    @property
    def config(self) -> Kubeconfig:
        return self.client.config

    def path(
        self,
        group: str,
        version: str,
        plural: str,
        name: str | None = None,
        namespace: str | None = None,
        workspace: str | None = None,
        subresource: str = "",
    ) -> str:
        """An API path in `workspace` (default: the current one); `namespace` for namespaced resources."""
        api = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        out = f"/clusters/{workspace or self.workspace}{api}"
        if namespace:
            out += f"/namespaces/{namespace}"
        out += f"/{plural}"
        if name:
            out += f"/{name}"
        if subresource:
            out += f"/{subresource}"
        return out

    def close(self) -> None:
        self.client.close()
        if self._watcher is not None:
            self._watcher.close()


def load(ctx: click.Context | None = None) -> tuple[Kubeconfig, str]:
    """The kubeconfig with the flags applied, and the file it came from."""
    from tmc.client import load_kubeconfig

    f = flags(ctx)
    path = kubeconfig_path(f.kubeconfig)
    if not os.path.exists(path) and not f.server:
        raise CliError(f"no kubeconfig at {path}", "pass --kubeconfig, set KUBECONFIG, or give --server and --token")
    from tmc.client import Kubeconfig

    if os.path.exists(path):
        try:
            config = load_kubeconfig(path, f.context)
        except (ValueError, OSError, KeyError, TypeError) as e:
            raise CliError(f"cannot use kubeconfig {path}: {e}", "check --kubeconfig and --context") from None
    else:
        config = Kubeconfig(server=str(f.server), insecure=True)
    if f.server:
        config = dataclasses.replace(config, server=f.server)
    if f.token:
        config = dataclasses.replace(config, token=f.token, cert_pem=None, key_pem=None)
    return config, path


def connect(ctx: click.Context | None = None, timeout: float = 15.0) -> Hub:
    """A `Hub` for the command's flags; closed when the command ends."""
    from tmc.client.sync import SyncClient

    ctx = ctx or click.get_current_context()
    f = flags(ctx)
    config, path = load(ctx)
    workspace = valid_workspace(f.workspace) if f.workspace else (config.workspace or "root")
    namespace = f.namespace or context_namespace(path, f.context) or "default"
    current_server.update(server=config.base_url, context=config.context)
    client = SyncClient(config, base_url=config.base_url, timeout=timeout)
    hub = Hub(client, workspace, namespace, path)
    ctx.call_on_close(hub.close)
    return hub
