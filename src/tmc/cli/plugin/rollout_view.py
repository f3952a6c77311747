"""`kubectl tmc rollout get`'s tree, as text from a CanaryDeployment (pure, no I/O): the header (status, step,
weights, revisions), each cluster with its weight and the canary's and stable copy's readiness, and the analysis
runs with their last measurements (value, phase, cluster; a comparison's score, statistic and p-value)."""

from __future__ import annotations

from typing import Any

ICONS = {
    "Succeeded": "✔",
    "Progressing": "◌",
    "Analyzing": "◌",
    "Paused": "॥",
    "Failed": "✖",
    "RolledBack": "✖",
    "Pending": "◌",
    "Successful": "✔",
    "Error": "⚠",
    "Inconclusive": "?",
    "Running": "◌",
}
ALPHA = "\N{GREEK SMALL LETTER ALPHA}"  # Argo's mark for an analysis run
SHOWN = 5  # measurements per metric in the tree


def _icon(phase: str) -> str:
    return ICONS.get(phase, "?")


def _step_text(spec: dict[str, Any], index: int) -> str:
    steps = spec.get("steps") or []
    if index >= len(steps):
        return f"{len(steps)}/{len(steps)}"
    step = steps[index]
    kind = next(iter(step), "")
    body = step.get(kind)
    detail = f"{kind} {body}" if kind == "setWeight" else kind
    if isinstance(body, dict) and body.get("duration") is not None:
        detail += f" {body['duration']}"
    return f"{index}/{len(steps)} ({detail})"


def header(cd: dict[str, Any]) -> list[tuple[str, str]]:
    md, spec, st = cd.get("metadata") or {}, cd.get("spec") or {}, cd.get("status") or {}
    phase = str(st.get("phase") or "Pending")
    routing = spec.get("trafficRouting") or {}
    router = next(iter(routing), "")
    weight = int(st.get("weight") or 0)
    rows = [
        ("Name", str(md.get("name", ""))),
        ("Namespace", str(md.get("namespace", ""))),
        ("Status", f"{_icon(phase)} {phase}" + (f" ({st['pauseReason']})" if st.get("pauseReason") else "")),
        ("Message", str(st.get("message") or "")),
        ("Target", f"Deployment/{(spec.get('targetRef') or {}).get('name', '')}"),
        ("Routing", router),
        ("Step", _step_text(spec, int(st.get("currentStepIndex") or 0)) if st.get("canaryRevision") else "-"),
        ("Weight", f"canary {weight}, stable {100 - weight}"),
        ("Stable", str(st.get("stableRevision") or "-")),
        ("Canary", str(st.get("canaryRevision") or "-")),
    ]
    if spec.get("clusters"):
        rows.insert(7, ("Wave", _wave_text(spec, st)))
    return rows


def _wave_text(spec: dict[str, Any], st: dict[str, Any]) -> str:
    """Which wave runs, the first wave's clusters and the gate."""
    first = [c.get("cluster") for c in st.get("clusters") or [] if c.get("wave") == "First"]
    gate = (spec.get("clusters") or {}).get("gate") or "auto"
    wave = st.get("wave") or "-"
    if wave == "Rest" and st.get("firstWaveWeight") is not None:
        wave += f" (first wave holds {st['firstWaveWeight']})"
    return f"{wave}; first wave: {', '.join(map(str, first)) or 'no matching cluster'}; gate {gate}"


def _measurement(m: dict[str, Any]) -> str:
    where = f" {m['cluster']}" if m.get("cluster") else ""
    value = f" value={m['value']}" if m.get("value") else ""
    out = f"{_icon(str(m.get('phase')))} {m.get('phase')} {m.get('finishedAt', '')}{where}{value}"
    comparison = m.get("comparison") or {}
    for j in comparison.get("metrics") or []:
        p = f" p={j['pValue']}" if j.get("pValue") else ""
        stat = f" U={j['statistic']}" if j.get("statistic") else ""
        out += f"\n        {j.get('name')}: {j.get('classification')}{stat}{p}"
    if m.get("message"):
        out += f"\n        {m['message']}"
    return out


def _run(title: str, run: dict[str, Any] | None) -> list[str]:
    if not run:
        return []
    phase = str(run.get("phase"))
    lines = [f"{ALPHA} {title}  {_icon(phase)} {phase}  {run.get('message', '')}"]
    for metric in run.get("metrics") or []:
        counts = (
            f"✔ {metric.get('successful', 0)}  ✖ {metric.get('failed', 0)}  "
            f"? {metric.get('inconclusive', 0)}  ⚠ {metric.get('error', 0)}"
        )
        lines.append(f"  └─ {metric.get('name')}  {metric.get('phase')}  {counts}")
        for m in (metric.get("measurements") or [])[-SHOWN:]:
            lines.append("      • " + _measurement(m))
    return lines


def render(cd: dict[str, Any]) -> str:
    rows = header(cd)
    width = max(len(k) for k, _ in rows) + 1
    out = [f"{k + ':':<{width}} {v}" for k, v in rows]
    st = cd.get("status") or {}
    clusters = st.get("clusters") or []
    out.append("")
    out.append(f"⟳ {rows[0][1]}")
    for i, c in enumerate(clusters):
        branch = "└─" if i == len(clusters) - 1 else "├─"
        wave = f"  wave {c['wave']}" if c.get("wave") else ""
        out.append(
            f"{branch} ☸ {c.get('cluster')}{wave}  weight {c.get('weight', 0)}  "
            f"canary {c.get('canaryReady', 0)}/{c.get('canaryReplicas', 0)} ready  "
            f"stable {c.get('stableReady', 0)}/{c.get('stableReplicas', 0)} ready"
        )
    if not clusters:
        out.append("└─ (not placed on any cluster yet)")
    out.extend(_run("background analysis", st.get("analysis")))
    out.extend(_run("step analysis", st.get("stepAnalysis")))
    return "\n".join(out) + "\n"


def summary(cd: dict[str, Any]) -> dict[str, Any]:
    """The row of `rollout list`."""
    st = cd.get("status") or {}
    return {
        "object": cd,
        "phase": st.get("phase") or "Pending",
        "step": st.get("currentStepIndex", 0),
        "weight": st.get("weight", 0),
        "stable": st.get("stableRevision") or "",
        "canary": st.get("canaryRevision") or "",
        "clusters": len(st.get("clusters") or []),
    }
