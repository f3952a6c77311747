"""The dashboard's pure parts: the `/` filter, the per-target states it shows, and a table that draws only what is on
screen (a 10,000-row table renders a line without touching the other rows)."""

from __future__ import annotations

import json
from typing import Any

from rich.style import Style

from tmc.protocol.keys import sync_target_key
from tmc.tui import views
from tmc.tui.model import Model
from tmc.tui.table import Column, Filter, VirtualTable

KEY = sync_target_key("root", "eu-1")


def placed(annotations: dict[str, str], label: str = "Sync") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {f"state.workload.kcp.io/{KEY}": label},
            "annotations": annotations,
        },
    }


def test_filter_words_and_tags() -> None:
    f = Filter.parse("web state:fail")
    tags = {"state": frozenset({"failed", "synced"})}
    assert f.matches("shop deployment web", tags)
    assert not f.matches("shop deployment cart", tags)
    assert not f.matches("shop deployment web", {"state": frozenset({"synced"})})
    assert not f.matches("shop deployment web", {})  # a tag the row does not have
    assert not Filter.parse("  ")


def test_target_states_in_the_dashboards_words() -> None:
    status = json.dumps({"status": {"replicas": 2, "availableReplicas": 2}})
    assert views.target_state(placed({}, label=""), KEY, "", "eu-1") == "pending"
    assert views.target_state(placed({}), KEY, "Sync", "eu-1") == "pending"  # assigned, nothing written yet
    synced = {f"sync.tmc.kcp.io/last-sync.{KEY}": "2026-05-04T12:00:00Z"}
    assert views.target_state(placed(synced), KEY, "Sync", "eu-1") == "synced"
    available = {**synced, f"diff.syncer.internal.kcp.io/{KEY}": status}
    assert views.target_state(placed(available), KEY, "Sync", "eu-1") == "available"
    failed = {f"sync.tmc.kcp.io/error.{KEY}": "denied"}
    assert views.target_state(placed(failed), KEY, "Sync", "eu-1") == "failed"
    assert views.target_state(placed({"sync.tmc.kcp.io/paused": "eu-1"}), KEY, "Sync", "eu-1") == "paused"
    assert views.target_state(placed({"sync.tmc.kcp.io/paused": "eu-2"}), KEY, "Sync", "eu-1") == "pending"


def test_states_follow_a_new_version_of_the_object() -> None:
    model = Model("root")
    obj = placed({})
    model.workloads.apply("ADDED", obj)
    assert views.placed(model).states[KEY] == {"pending": 1}
    model.workloads.apply("MODIFIED", placed({f"sync.tmc.kcp.io/error.{KEY}": "denied"}))
    assert views.placed(model).states[KEY] == {"failed": 1}
    model.workloads.apply("DELETED", obj)
    assert views.placed(model).counts == {}


def test_a_large_table_renders_only_the_visible_rows() -> None:
    calls: list[int] = []

    def name(i: int) -> str:
        calls.append(i)
        return f"row-{i}"

    table = VirtualTable([Column("NAME", 10, name)], key=lambda i: i)
    table.set_items(range(10_000))
    line = table._line(5_000, 0, 20, Style())
    assert line.text.startswith("row-5000") and calls == [5_000]
    table.set_filter("row-9999")
    assert table.rows == [9_999] and table.selected == 9_999
