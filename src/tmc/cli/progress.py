"""Progress on stderr for anything that waits: a rich spinner or bar on a terminal, one plain line otherwise (logs
stay readable), nothing with -q. rich is imported only here, only when a terminal will show it."""

from __future__ import annotations

import sys
from typing import Any

import click


class Progress:
    """`with Progress("draining cluster-1", total=12) as p: p.update("3 left", completed=9)`."""

    def __init__(self, what: str, *, total: int | None = None, quiet: bool = False) -> None:
        self.what = what
        self.total = total
        self.quiet = quiet
        self._live: Any = None
        self._task: Any = None
        self._last = ""

    def __enter__(self) -> Progress:
        if self.quiet:
            return self
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(TimeElapsedColumn())
            self._live = RichProgress(*columns, console=Console(stderr=True), transient=True)
            self._live.start()
            self._task = self._live.add_task(self.what, total=self.total)
        else:
            click.echo(f"{self.what}...", err=True)
        return self

    def update(self, detail: str = "", completed: int | None = None) -> None:
        if self.quiet:
            return
        if self._live is not None:
            text = f"{self.what}: {detail}" if detail else self.what
            self._live.update(self._task, description=text, completed=completed)
        elif detail and detail != self._last:
            self._last = detail
            click.echo(f"  {detail}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
