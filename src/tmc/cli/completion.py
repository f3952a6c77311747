"""`completion bash|zsh|fish` for `kubectl tmc` and `tmcctl`: click's completion scripts; resource names come from
the hub through the commands' shell_complete callbacks."""

from __future__ import annotations

import click


def _script(program: str, complete_var: str, shell: str, group: str) -> str:
    import importlib

    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:
        raise click.BadParameter(f"{shell!r}: one of bash, zsh, fish")
    root = importlib.import_module(group).cli
    return cls(root, {}, program, complete_var).source()


_SHELLS = click.Choice(["bash", "zsh", "fish"])


@click.command("completion")
@click.argument("shell", type=_SHELLS)
def plugin_completion(shell: str) -> None:
    """Print the completion script for kubectl-tmc.

    \b
    Examples:
      source <(kubectl tmc completion bash)
      kubectl tmc completion zsh > "${fpath[1]}/_kubectl-tmc"
      kubectl tmc completion fish > ~/.config/fish/completions/kubectl-tmc.fish
    """
    from tmc.cli.plugin.main import COMPLETE_VAR

    click.echo(_script("kubectl-tmc", COMPLETE_VAR, shell, "tmc.cli.plugin.main"))


@click.command("completion")
@click.argument("shell", type=_SHELLS)
def ctl_completion(shell: str) -> None:
    """Print the completion script for tmcctl.

    \b
    Examples:
      source <(tmcctl completion bash)
      tmcctl completion fish > ~/.config/fish/completions/tmcctl.fish
    """
    from tmc.cli.ctl.main import COMPLETE_VAR

    click.echo(_script("tmcctl", COMPLETE_VAR, shell, "tmc.cli.ctl.main"))


def kubectl_complete() -> None:
    """`kubectl_complete-tmc`: kubectl (1.26+) runs it as `kubectl_complete-tmc __complete ARGS... INCOMPLETE` to
    complete `kubectl tmc ...`, and reads cobra's format: one candidate per line, then `:<directive>` (4: no file
    completion)."""
    import sys

    from click.shell_completion import ShellComplete

    from tmc.cli.plugin.main import COMPLETE_VAR, cli

    args = sys.argv[1:]
    if args and args[0] in ("__complete", "__completeNoDesc"):
        args = args[1:]
    incomplete = args.pop() if args else ""
    try:
        items = ShellComplete(cli, {}, "kubectl-tmc", COMPLETE_VAR).get_completions(args, incomplete)
    except Exception:  # a half-typed command line must never make the shell print a traceback
        items = []
    for item in items:
        if item.type == "plain":
            click.echo(item.value)
    click.echo(":4")
