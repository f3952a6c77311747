"""Result rows, the printed table and the JSON report."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def row(
    name: str,
    value: float,
    unit: str,
    *,
    goal: tuple[str, float] | None = None,
    baseline: float | None = None,
    baseline_name: str = "",
    note: str = "",
) -> Row:
    """One result. `goal` is (">=" or "<=", target); `met` says whether the value reaches it (reported, never
    asserted). `baseline` is a same-run reference number in the same unit, described by `baseline_name`."""
    out: Row = {"name": name, "value": round(float(value), 3), "unit": unit}
    if goal is not None:
        op, target = goal
        out["goal"] = f"{op} {target:g}"
        out["met"] = value >= target if op == ">=" else value <= target
    if baseline is not None:
        out["baseline"] = round(float(baseline), 3)
        out["baseline_name"] = baseline_name
    if note:
        out["note"] = note
    return out


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def table(rows: list[Row]) -> str:
    header = ("benchmark", "value", "unit", "goal", "baseline (same run)")
    lines: list[tuple[str, ...]] = [header]
    for r in rows:
        goal = r.get("goal", "")
        if goal:
            goal += " ok" if r.get("met") else " MISSED"
        base = ""
        if "baseline" in r:
            base = f"{_num(r['baseline'])} {r.get('baseline_name', '')}".strip()
        lines.append((r["name"], _num(r["value"]), r["unit"], goal, base))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].rjust(widths[1])]
        cells += [line[i].ljust(widths[i]) for i in range(2, len(header))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[Row]) -> str:
    lines = ["| benchmark | value | unit | goal | baseline (same run) |", "|---|---:|---|---|---|"]
    for r in rows:
        goal = r.get("goal", "")
        if goal:
            goal = f"{goal} ({'met' if r.get('met') else '**missed**'})"
        base = f"{_num(r['baseline'])} {r.get('baseline_name', '')}".strip() if "baseline" in r else ""
        lines.append(f"| {r['name']} | {_num(r['value'])} | {r['unit']} | {goal} | {base} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return ""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else ""


def machine() -> dict[str, Any]:
    import aiohttp

    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory": mem,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "aiohttp": aiohttp.__version__,
        "wrk": _version(["wrk", "-v"]),
        "kubectl": _version(["kubectl", "version", "--client"]),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
