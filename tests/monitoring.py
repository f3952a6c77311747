"""What the rule and dashboard tests share: the files under deploy/, the metric names their queries use, which
metrics are still to come, and which panels may be empty on a healthy system."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "tmc-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
PROMETHEUS_RULE = ROOT / "deploy" / "prometheus" / "tmc-prometheusrule.yaml"
DASHBOARDS = ROOT / "deploy" / "grafana"
OBSERVABILITY_DOC = ROOT / "docs" / "observability.md"

# Metrics the rules or dashboards use that no process exports yet. When one lands, delete it here: its panels then
# must have data in tests/e2e/test_prometheus.py.
PENDING_METRICS: frozenset[str] = frozenset()

# Panels whose series appear only when something goes wrong (errors, overflows, failed decisions): empty is right on
# a healthy system. (dashboard uid, panel title)
ALLOWED_EMPTY: frozenset[tuple[str, str]] = frozenset(
    {
        ("tmc-cluster", "Sync errors by type"),
        ("tmc-cluster", "Syncer errors"),
        ("tmc-placement", "Failed decisions per second"),
        ("tmc-hub-api", "5xx ratio (availability SLO allows 0.1%)"),
        ("tmc-hub-api", "Reconcile errors per second"),
    }
)

_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "le"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric and recorded-series names a PromQL expression reads (functions, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if word in _PROMQL_WORDS or following.startswith("("):
            continue  # a keyword or a function call
        if re.fullmatch(r"\d+[smhdwy]", word) or word in ("Inf", "NaN"):
            continue
        names.add(word)
    return names


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        out[board["uid"]] = board
    return out


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every query of every panel."""
    return [
        (uid, panel["title"], target["expr"])
        for uid, board in dashboards().items()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def variable_queries() -> list[tuple[str, str]]:
    """(dashboard uid, the PromQL inside label_values(...)) of every query variable."""
    out = []
    for uid, board in dashboards().items():
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
                assert inner, variable["definition"]
                out.append((uid, inner.group(1)))
    return out


def concrete(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Grafana sends it with every cluster selected."""
    return expr.replace("$__rate_interval", rate_interval).replace("$cluster", ".+")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def doc_anchors() -> set[str]:
    return {
        github_anchor(line.lstrip("#"))
        for line in OBSERVABILITY_DOC.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    }
