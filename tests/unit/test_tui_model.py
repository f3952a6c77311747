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


def test_running_sums_equal_a_full_count_after_any_events() -> None:
    """The Clusters screen's counts move per watch event; after a random mix of events, a relist and a renamed
    target they equal what counting every object from scratch gives."""
    import random

    other = sync_target_key("root", "eu-2")
    rng = random.Random(7)
    model = Model("root")
    model.targets.replace("SyncTarget", [{"kind": "SyncTarget", "metadata": {"name": "eu-1"}}])

    def workload(i: int) -> dict[str, Any]:
        obj = placed(rng.choice([{}, {f"sync.tmc.kcp.io/error.{KEY}": "x"}, {"sync.tmc.kcp.io/paused": "eu-1"}]))
        obj["metadata"]["name"] = f"w{i}"
        if rng.random() < 0.5:
            obj["metadata"]["labels"][f"state.workload.kcp.io/{other}"] = "Sync"
        return obj

    def full_count() -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        fresh = Model("root", targets=model.targets, workloads=model.workloads)
        got = views.placed(fresh)
        return dict(got.counts), {k: dict(v) for k, v in got.states.items()}

    for step in range(600):
        i = rng.randrange(40)
        model.workloads.apply("DELETED" if rng.random() < 0.2 else "MODIFIED", workload(i))
        if step % 50 == 0:
            sums = views.placed(model)
            assert (dict(sums.counts), {k: dict(v) for k, v in sums.states.items()}) == full_count()
        if step == 300:
            model.workloads.replace("Deployment", [workload(n) for n in range(10)])
        if step == 400:
            model.targets.replace("SyncTarget", [{"kind": "SyncTarget", "metadata": {"name": "eu-2"}}])
    sums = views.placed(model)
    assert (dict(sums.counts), {k: dict(v) for k, v in sums.states.items()}) == full_count()


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


def test_incremental_views_equal_a_fresh_count_after_any_events() -> None:
    """Target names, the Clusters rows' order, the Workloads rows and the placed count are kept up to date per
    watch event; after a random mix of SyncTarget and workload events they equal what a fresh model computes."""
    import random

    rng = random.Random(11)
    model = Model("root")

    def target(i: int) -> dict[str, Any]:
        labels = {"burst": str(rng.random())}
        if rng.random() < 0.3:  # the hub's key label, now and then a different one
            labels["internal.workload.kcp.io/key"] = rng.choice([sync_target_key("root", f"t{i}"), f"other{i}"])
        return {"kind": "SyncTarget", "metadata": {"name": f"t{i}", "labels": labels}}

    def workload(i: int) -> dict[str, Any]:
        labels = {f"state.workload.kcp.io/{sync_target_key('root', f't{n}')}": "Sync" for n in range(i % 3, 9, 4)}
        return {"kind": "Deployment", "metadata": {"name": f"w{i}", "namespace": f"ns{i % 4}", "labels": labels}}

    def rows(m: Model) -> list[tuple[str, dict[str, str]]]:
        return [(w.obj["metadata"]["name"], w.states) for w in views.workload_rows(m)]

    model.targets.replace("SyncTarget", [target(i) for i in range(6)])
    for step in range(800):
        if rng.random() < 0.4:
            i = rng.randrange(9)
            model.targets.apply("DELETED" if rng.random() < 0.15 else "MODIFIED", target(i))
        else:
            i = rng.randrange(30)
            model.workloads.apply("DELETED" if rng.random() < 0.2 else "MODIFIED", workload(i))
        if step % 40 == 0:
            fresh = Model("root", targets=model.targets, workloads=model.workloads)
            assert model.target_names() == fresh.target_names()
            assert views.cluster_rows(model) == sorted(
                model.targets.objects.values(), key=lambda o: o["metadata"]["name"]
            )
            assert rows(model) == rows(fresh)
            assert views.placed(model).objects == views.placed(fresh).objects
            assert all(model.key_of(st) == fresh.key_of(st) for st in model.targets.objects.values())


def test_a_change_repaints_only_the_lines_that_differ() -> None:
    """A burst that changes rows off screen, or changes nothing the columns show, repaints no line; a visible row's
    new text repaints that line, and it shows the new text (not a kept one)."""
    import asyncio

    from textual.app import App, ComposeResult

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield VirtualTable([Column("NAME", 12, lambda o: o["name"], pure=True)], key=lambda o: o["name"])

    async def run() -> None:
        app = One()
        async with app.run_test(size=(30, 10)) as pilot:
            table = app.query_one(VirtualTable)
            items = [{"name": f"row-{i}", "other": 0} for i in range(100)]
            table.set_items(items)
            await pilot.pause()
            drawn: list[int] = []
            render_line = table.render_line

            def counted(y: int) -> Any:
                drawn.append(y)
                return render_line(y)

            table.render_line = counted  # type: ignore[method-assign]
            items = [{**o, "other": 1} for o in items]  # every object new, nothing shown changed
            items[50] = {"name": "renamed-50"}  # off screen
            table.set_items(items)
            await pilot.pause()
            assert drawn == []
            items = list(items)
            items[3] = {"name": "renamed-3"}  # line 4: the header, then rows 0 to 3
            table.set_items(items)
            await pilot.pause()
            assert drawn == [4]
            assert render_line(4).text.startswith("renamed-3")
            table.action_cursor(1)  # the cursor line moves: the old and the new one repaint
            await pilot.pause()
            assert sorted(drawn[1:]) == [1, 2]

    asyncio.run(run())
