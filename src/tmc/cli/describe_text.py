"""kubectl-describe-style text: `Key:  value` lines, indented sections and small aligned tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tmc.cli.output import render_table, text


class Describer:
    """Collects lines; `str()` is the whole description."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def field(self, key: str, value: Any, indent: int = 0) -> None:
        self.lines.append(f"{' ' * indent}{key + ':':<22}{text(value) if value != '' else ''}")

    def section(self, title: str) -> None:
        self.lines.append(f"{title}:")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "<none>") -> None:
        if not rows:
            self.lines.append(f"  {empty}")
            return
        rendered = render_table(headers, [[text(c) for c in r] for r in rows], no_headers=False, color=False)
        self.lines.extend("  " + line for line in rendered.splitlines())

    def conditions(self, obj: dict[str, Any]) -> None:
        from tmc.cli.resources import ago

        rows = [
            (c.get("type"), c.get("status"), c.get("reason") or "", ago(c.get("lastTransitionTime")), c.get("message"))
            for c in (obj.get("status") or {}).get("conditions") or ()
            if isinstance(c, dict)
        ]
        self.section("Conditions")
        self.table(("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"), rows)

    def events(self, events: Sequence[dict[str, Any]]) -> None:
        from tmc.cli.resources import ago

        rows = [
            (
                e.get("type"),
                e.get("reason"),
                ago(e.get("lastTimestamp") or e.get("eventTime")),
                (e.get("source") or {}).get("component") or e.get("reportingComponent"),
                e.get("message"),
            )
            for e in events[-15:]
        ]
        self.section("Events")
        self.table(("TYPE", "REASON", "AGE", "FROM", "MESSAGE"), rows)

    def __str__(self) -> str:
        return "\n".join(self.lines) + "\n"
