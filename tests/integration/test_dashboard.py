"""`tmc dashboard` driven by Textual's pilot against a real in-process hub: every screen fills from the hub's
watches, every action (confirmed) changes the hub through the CLI's own functions, `/` filters, and the banner shows
while the hub is down and goes once the watches have reconnected by themselves.

The SyncTargets are registered and heartbeated by the test (no syncers): the scheduler, status and Event machinery
are the hub's own. What is asserted is what the screen draws (the visible lines of the table, the text panels).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from tmc.cli.kubeconfig_flags import Hub as CliHub
from tmc.client import KubeClient, SyncClient, load_kubeconfig
from tmc.server.hub import Hub, ServerConfig
from tmc.tui.actions import Actions
from tmc.tui.app import Dashboard
from tmc.tui.feed import Feed
from tmc.tui.model import Model
from tmc.tui.screens import ClusterScreen, Confirm, Help
from tmc.tui.table import VirtualTable

ST = "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets"
PL = "/clusters/root/apis/scheduling.kcp.io/v1alpha1/placements"
NS = "shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def until(pilot: Pilot[None], check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await pilot.pause(0.05)
    app = pilot.app
    tables = [(t.id, lines(t)[:3]) for t in app.screen.query(VirtualTable) if t.size.height]
    raise AssertionError(f"timed out waiting for {what}: {app.focused} {tables}")


def lines(table: VirtualTable) -> list[str]:
    """What the table draws on screen now, one string per line."""
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


def drawn(app: Dashboard, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def register(client: KubeClient, name: str, region: str) -> None:
    await client.create(
        ST,
        {
            "apiVersion": "workload.kcp.io/v1alpha1",
            "kind": "SyncTarget",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/region": region}},
            "spec": {},
        },
    )
    await heartbeat(client, name)


async def heartbeat(client: KubeClient, name: str) -> None:
    status = {
        "lastSyncerHeartbeatTime": now(),
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "allocated": {"cpu": "2", "memory": "8Gi", "pods": "10"},
    }
    await client.patch(f"{ST}/{name}/status", {"status": status})


async def seed(client: KubeClient) -> None:
    # What `tmc up` creates: one Location over every SyncTarget.
    await client.create(
        "/clusters/root/apis/scheduling.kcp.io/v1alpha1/locations",
        {
            "apiVersion": "scheduling.kcp.io/v1alpha1",
            "kind": "Location",
            "metadata": {"name": "default"},
            "spec": {
                "resource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
                "instanceSelector": {},
            },
        },
    )
    await register(client, "east-1", "us-east-1")
    await register(client, "west-1", "us-west-1")
    await client.create(
        "/clusters/root/api/v1/namespaces", {"metadata": {"name": NS, "labels": {"dash": "yes"}}, "kind": "Namespace"}
    )
    await client.create(
        PL,
        {
            "apiVersion": "scheduling.kcp.io/v1alpha1",
            "kind": "Placement",
            "metadata": {"name": "web"},
            "spec": {
                "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
                "locationSelectors": [{}],
                "namespaceSelector": {"matchLabels": {"dash": "yes"}},
                "numberOfTargets": 1,
            },
        },
    )
    await client.create(
        f"/clusters/root/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        },
    )


class Hubs:
    """The hub under test; `stop()` and `start()` again on the same port and data (the dashboard keeps running)."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = ServerConfig(data_dir=str(tmp_path / "hub"), secure_port=free_port())
        self.hub: Hub | None = None

    async def start(self) -> None:
        self.hub = Hub(self.config)
        await self.hub.start()

    async def stop(self) -> None:
        if self.hub is not None:
            hub, self.hub = self.hub, None
            await hub.stop()


def run(tmp_path: Path, scenario: Callable[[Dashboard, Pilot[None], KubeClient, Hubs], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = Hubs(tmp_path)
        await hub.start()
        kubeconfig = str(tmp_path / "hub" / "admin.kubeconfig")
        config = load_kubeconfig(kubeconfig)
        client = KubeClient(config, base_url=config.base_url)
        cli_hub = CliHub(SyncClient(config, base_url=config.base_url), "root", "default", kubeconfig)
        model = Model("root", server=config.base_url)
        try:
            await seed(client)

            async def start(app: Dashboard) -> Feed:
                feed = Feed(KubeClient(config, base_url=config.base_url), model, app.changed, interval=0.5)
                await feed.start()
                return feed

            app = Dashboard(model, actions=Actions(cli_hub), start_feed=start, tick=0.05)
            async with app.run_test(size=(120, 36)) as pilot:
                await scenario(app, pilot, client, hub)
        finally:
            cli_hub.close()
            await client.close()
            await hub.stop()

    asyncio.run(main())


async def confirm(pilot: Pilot[None], app: Dashboard, key: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, Confirm), f"the confirmation of {key}")
    await pilot.press("y")


def test_every_screen_and_action_against_a_live_hub(tmp_path: Path) -> None:
    async def scenario(app: Dashboard, pilot: Pilot[None], client: KubeClient, hub: Hubs) -> None:
        def target(name: str) -> dict[str, Any]:
            return app.model.targets.objects[("SyncTarget", "", name)]

        # Overview: health from /readyz, counts from the watches.
        await until(pilot, lambda: "hub ready" in drawn(app, "#overview-text"), "the hub's health")
        await until(pilot, lambda: "Placements 1" in drawn(app, "#overview-text"), "the Placement counted")

        # Clusters: both targets with region and utilisation bars.
        await pilot.press("2")
        clusters = app.query_one("#clusters", VirtualTable)
        await until(pilot, lambda: sum("-1 " in line for line in lines(clusters)) == 2, "two clusters drawn")
        east = next(line for line in lines(clusters) if line.startswith("east-1"))
        assert "us-east-1" in east and "25%" in east, east  # 2 of 8 CPUs

        # Enter: one cluster's detail with its conditions; Esc back.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ClusterScreen), "the cluster screen")
        assert "east-1" in drawn(app, "#cluster-detail") and "CONDITION" in drawn(app, "#cluster-detail")
        await pilot.press("escape")

        # Cordon and uncordon, confirmed, through tmcctl's functions; the watch brings the change back.
        await confirm(pilot, app, "c")
        await until(pilot, lambda: "Cordoned" in lines(clusters)[1], "east-1 cordoned on screen")
        await confirm(pilot, app, "u")
        await until(pilot, lambda: "Schedulable" in lines(clusters)[1], "east-1 uncordoned on screen")
        # Pause and resume sync to the cluster (kubectl tmc sync pause --cluster).
        await confirm(pilot, app, "p")
        await until(
            pilot,
            lambda: target("east-1")["metadata"].get("annotations", {}).get("sync.tmc.kcp.io/paused") == "true",
            "east-1 paused",
        )
        await confirm(pilot, app, "r")
        await until(
            pilot,
            lambda: "sync.tmc.kcp.io/paused" not in target("east-1")["metadata"].get("annotations", {}),
            "east-1 resumed",
        )

        # `/` filters any table; Esc clears.
        await pilot.press("slash", *"region:west", "enter")
        await until(pilot, lambda: lines(clusters)[1].startswith("west-1") and not lines(clusters)[2], "filtered")
        await pilot.press("escape")
        await until(pilot, lambda: lines(clusters)[2].startswith("west-1"), "the filter cleared")

        # Placements: the decision, and Enter asks the hub why each target was chosen or left out.
        await pilot.press("3")
        placements = app.query_one("#placement-table", VirtualTable)
        await until(
            pilot, lambda: any(line.startswith("web") and "-1" in line for line in lines(placements)), "decision"
        )
        await pilot.press("enter")
        await until(pilot, lambda: "why, for Placement web" in drawn(app, "#candidates"), "the candidates")
        text = drawn(app, "#candidates")
        assert "chosen" in text and "eligible, not chosen" in text, text

        # Workloads: the matrix row of the placed Deployment; force, pause and resume it.
        await pilot.press("4")
        workloads = app.query_one("#workloads", VirtualTable)
        await until(pilot, lambda: any("web" in line and "pending" in line for line in lines(workloads)), "web")
        await confirm(pilot, app, "f")

        def annotations() -> dict[str, str]:
            obj = app.model.workloads.objects.get(("Deployment", NS, "web")) or {}
            return dict(obj.get("metadata", {}).get("annotations") or {})

        await until(pilot, lambda: any(k.startswith("sync.tmc.kcp.io/force.") for k in annotations()), "force token")
        await confirm(pilot, app, "p")
        await until(pilot, lambda: any("paused" in line for line in lines(workloads)), "web paused on screen")
        await confirm(pilot, app, "r")
        await until(pilot, lambda: "sync.tmc.kcp.io/paused" not in annotations(), "web resumed")
        await pilot.press("slash", *"state:failed", "enter")
        await until(pilot, lambda: "no placed workloads" in lines(workloads)[1], "nothing failed")
        await pilot.press("escape")

        # Debug of the selected workload: spec, per-target state, its Events.
        await pilot.press("d")
        await until(pilot, lambda: "hub spec" in drawn(app, "#debug-text"), "the debug view")
        debug = drawn(app, "#debug-text")
        assert "Deployment shop/web" in debug and "per target" in debug and "events" in debug, debug

        # Events: the stream shows what the hub recorded (a scheduling or sync-control Event).
        await pilot.press("5")
        events = app.query_one("#events", VirtualTable)
        await until(pilot, lambda: len([line for line in lines(events)[1:] if line]) >= 1, "an Event")

        # Keys help, and the footer names the screens.
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, Help), "the help")
        await pilot.press("escape")

        # The hub goes away: a banner; it comes back on the same port: the watches reconnect by themselves.
        await pilot.press("2")
        await hub.stop()
        await until(pilot, lambda: app.query_one("#banner").has_class("down"), "the unreachable banner", 30)
        assert "hub unreachable" in drawn(app, "#banner")
        await hub.start()
        await until(pilot, lambda: not app.query_one("#banner").has_class("down"), "the banner gone", 40)
        await client.patch(f"{ST}/west-1", {"metadata": {"labels": {"after": "restart"}}})
        await until(pilot, lambda: "after" in target("west-1")["metadata"]["labels"], "a change after the restart")

    run(tmp_path, scenario)
