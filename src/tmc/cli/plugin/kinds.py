"""The resource names `kubectl tmc get|describe` accept, kubectl-style: plural, singular and short names."""

from __future__ import annotations

from typing import Any

import click

KINDS: dict[str, tuple[str, ...]] = {
    "synctargets": ("synctarget", "st"),
    "placements": ("placement", "pl"),
    "clusters": ("cluster", "cl"),
    "workloads": ("workload", "wl"),
}
_BY_ALIAS = {alias: kind for kind, aliases in KINDS.items() for alias in (kind, *aliases)}


class ResourceType(click.ParamType):
    name = "resource"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        kind = _BY_ALIAS.get(str(value).lower())
        if kind is None:
            names = ", ".join(f"{k} ({'|'.join(a)})" for k, a in KINDS.items())
            self.fail(f'unknown resource type "{value}"; kubectl tmc knows {names}', param, ctx)
        return kind

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(k) for k in KINDS if k.startswith(incomplete)]


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Names of the chosen resource from the hub (quietly nothing when the hub cannot be asked)."""
    from click.shell_completion import CompletionItem

    kind = ctx.params.get("resource") or "clusters"
    try:
        from tmc.cli import resources
        from tmc.cli.kubeconfig_flags import connect

        hub = connect(ctx, timeout=3)
    except Exception:  # completion must never print an error into the shell
        return []
    try:
        if kind == "placements":
            items, _ = hub.client.list_all(hub.path(*resources.PL))
        elif kind == "workloads":
            items = resources.list_workloads(hub, hub.namespace).objects
            return [
                CompletionItem(f"{o['kind'].lower()}/{resources.name_of(o)}")
                for o in items
                if resources.name_of(o).startswith(incomplete.split("/")[-1])
            ]
        else:
            items = resources.list_sync_targets(hub)
    except Exception:
        return []
    finally:
        hub.close()
    return [CompletionItem(n) for n in (resources.name_of(o) for o in items) if n.startswith(incomplete)]


def complete_clusters(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    ctx.params.setdefault("resource", "clusters")
    return complete_names(ctx, param, incomplete)
