"""One line on stderr for every expected failure, and the exit codes: 1 for a failure, 2 for a usage error.

Commands raise `CliError` (or let the client's typed errors through); `run` turns whatever escapes into
`error: <what failed>; <what to do>` and never prints a traceback for an expected failure. Client errors are
imported only when one is being explained, so start-up stays cheap.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

EXIT_FAILURE = 1
EXIT_USAGE = 2

# Set by the connection code: which hub an unreachable/401 message is about.
current_server: dict[str, str] = {}


class CliError(click.ClickException):
    """An expected failure: `message` says what failed, `hint` what to try."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(f"{message}; {hint}" if hint else message)


def explain(error: BaseException) -> str | None:
    """The one-line message for a client-layer failure, None for anything unexpected."""
    from tmc.client import errors as ce

    server = current_server.get("server", "the hub")
    context = current_server.get("context", "")
    where = f"{server} (context {context!r})" if context else server
    if isinstance(error, ce.Unreachable):
        return (
            f"cannot reach the hub at {where}: {_short(str(error))}; "
            "check that it is running and that --kubeconfig/--context/--server point at it"
        )
    if isinstance(error, ce.Unauthorized):
        return f"the hub at {where} did not accept the credentials (401); check --token or the kubeconfig's user"
    if isinstance(error, ce.Forbidden):
        return f"forbidden (403): {error.message}; use a context whose user may do this"
    if isinstance(error, ce.NotFound):
        if "workspaces.tenancy.kcp.io" in error.message:
            return f"not found: {error.message}; check --workspace or the context ('kubectl tmc ws tree' lists them)"
        return f"not found: {error.message}"
    if isinstance(error, ce.Invalid):
        return f"invalid: {error.message}"
    if isinstance(error, ce.Conflict):
        return f"conflict: {error.message}; try again"
    if isinstance(error, ce.ApiError):
        return f"the hub answered {error.code} {error.reason}: {error.message}"
    return None


def _short(text: str) -> str:
    # aiohttp's messages repeat the URL and the OS error; the first clause says enough.
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _say(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def run(command: click.Command, prog_name: str, complete_var: str | None = None) -> None:
    """Run a click command tree as a program: parse, invoke, translate failures, exit."""
    try:
        code = command.main(prog_name=prog_name, complete_var=complete_var, standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        _say(f"{e.format_message()}{hint}")
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        _say(e.format_message())
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        _say("aborted")
        sys.exit(EXIT_FAILURE)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `kubectl tmc get st | head`: the reader left; not an error worth a word.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_FAILURE)
    except Exception as e:
        message = explain(e)
        if message is None:
            raise
        _say(message)
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


def guard(call: Callable[[], Any], message: str, hint: str = "") -> Any:
    """`call()`, turning a ValueError/OSError (a bad file, say) into a CliError."""
    try:
        return call()
    except (ValueError, OSError) as e:
        raise CliError(f"{message}: {e}", hint) from None
