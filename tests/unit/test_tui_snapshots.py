"""Every dashboard screen at 80x24 and 160x48, compared with the committed SVGs (which docs/dashboard.md shows).

The data is fixed (four clusters, two Placements, six workloads, Events, a health report, metric series) and the
clock is frozen, so a change in the picture is a change in the dashboard. After an intended change, regenerate with
`TMC_UPDATE_SNAPSHOTS=1 pytest tests/unit/test_tui_snapshots.py` and look at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tmc.protocol.keys import sync_target_key
from tmc.tui.app import Dashboard
from tmc.tui.model import Check, Model

SNAPSHOTS = Path(__file__).parent / "snapshots" / "dashboard"
UPDATE = os.environ.get("TMC_UPDATE_SNAPSHOTS") == "1"
NOW = datetime.datetime(2026, 5, 4, 12, 0, 0, tzinfo=datetime.UTC)
CLUSTERS = (
    ("eu-1", "eu-central-1", "eu-central-1a", True, 0.42),
    ("eu-2", "eu-central-1", "eu-central-1b", True, 0.81),
    ("us-1", "us-east-1", "us-east-1a", False, 0.10),
    ("ap-1", "ap-south-1", "ap-south-1a", True, 0.55),
)


def ago(seconds: int) -> str:
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def key(name: str) -> str:
    return sync_target_key("root", name)


def sync_target(name: str, region: str, zone: str, ready: bool, used: float) -> dict[str, Any]:
    state = "True" if ready else "False"
    return {
        "kind": "SyncTarget",
        "metadata": {
            "name": name,
            "labels": {
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
                "internal.workload.kcp.io/key": key(name),
            },
        },
        "spec": {"unschedulable": name == "ap-1"},
        "status": {
            "lastSyncerHeartbeatTime": ago(2 if ready else 95),
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "allocated": {"cpu": str(round(16 * used, 1)), "memory": f"{round(64 * used / 2)}Gi", "pods": "20"},
            "syncerStatus": {"syncedResources": 3, "pendingResources": 0, "failedResources": 0 if ready else 1},
            "conditions": [
                {"type": "Ready", "status": state, "reason": "" if ready else "HeartbeatExpired"},
                {
                    "type": "Healthy",
                    "status": state,
                    "reason": "Healthy" if ready else "Unhealthy",
                    "message": "" if ready else "no heartbeat for 95s",
                    "lastTransitionTime": ago(600 if ready else 90),
                },
            ],
        },
    }


def placement(name: str, strategy: str, targets: list[str]) -> dict[str, Any]:
    return {
        "kind": "Placement",
        "metadata": {"name": name},
        "spec": {"strategy": strategy},
        "status": {
            "phase": "Bound",
            "decisions": [
                {"syncTarget": {"workspace": "root", "name": t}, "score": 90 - 10 * i, "weight": 1, "replicas": 2}
                for i, t in enumerate(targets)
            ],
        },
    }


def workload(kind: str, namespace: str, name: str, states: dict[str, str]) -> dict[str, Any]:
    labels, annotations = {}, {}
    for target, state in states.items():
        k = key(target)
        labels[f"state.workload.kcp.io/{k}"] = "" if state == "pending" else "Sync"
        if state in ("synced", "available"):
            annotations[f"sync.tmc.kcp.io/last-sync.{k}"] = ago(30)
            status = {"replicas": 2, "availableReplicas": 2 if state == "available" else 0}
            annotations[f"diff.syncer.internal.kcp.io/{k}"] = json.dumps({"status": status})
        elif state == "failed":
            annotations[f"sync.tmc.kcp.io/error.{k}"] = "admission webhook denied the request"
        elif state == "paused":
            annotations[f"sync.tmc.kcp.io/state.{k}"] = "Paused"
    annotations["tracing.k8s.io/traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {"replicas": 4} if kind == "Deployment" else {},
    }


def event(n: int, kind: str, name: str, type_: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Event",
        "metadata": {"name": f"e{n}", "namespace": "shop", "uid": f"uid-{n}"},
        "involvedObject": {"kind": kind, "name": name, "namespace": "" if kind == "Placement" else "shop"},
        "type": type_,
        "reason": reason,
        "message": message,
        "lastTimestamp": ago(10 * n),
    }


def fixed_model() -> Model:
    model = Model("root", clock=lambda: NOW, server="https://127.0.0.1:6443")
    model.targets.replace("SyncTarget", [sync_target(*c) for c in CLUSTERS])
    model.placements.replace(
        "Placement", [placement("web", "Spread", ["eu-1", "eu-2"]), placement("batch", "Binpack", ["us-1"])]
    )
    workloads = [
        workload("Deployment", "shop", "web", {"eu-1": "available", "eu-2": "synced"}),
        workload("Deployment", "shop", "cart", {"eu-1": "available", "eu-2": "failed"}),
        workload("Service", "shop", "web", {"eu-1": "synced", "eu-2": "synced"}),
        workload("ConfigMap", "shop", "settings", {"eu-1": "paused", "eu-2": "synced"}),
        workload("Deployment", "batch", "report", {"us-1": "pending"}),
        workload("Job", "batch", "nightly", {"us-1": "failed"}),
    ]
    for w in workloads:
        model.workloads.apply("ADDED", w)
    model.replace_events(
        [
            event(1, "Deployment", "cart", "Warning", "SyncFailed", "eu-2: admission webhook denied the request"),
            event(2, "Placement", "web", "Normal", "Scheduled", "chose eu-1, eu-2 by Spread"),
            event(3, "ConfigMap", "settings", "Normal", "SyncPaused", "sync paused on eu-1"),
            event(4, "Deployment", "web", "Normal", "Synced", "applied on eu-2"),
        ]
    )
    h = model.health
    h.reachable, h.ready = True, True
    h.checks = [Check("ping", True, "ok"), Check("storage", True, "ok")]
    h.components = {"overall": "degraded", "hub": "healthy"}
    model.metrics_source = "syncers"
    for i in range(40):
        model.latency.add(40 + (i * 37) % 60)
        model.errors.add(0.2 * ((i * 7) % 5))
    return model


SCREENS = {
    "overview": ("1",),
    "clusters": ("2",),
    "cluster": ("2", "down", "enter"),  # eu-1's detail
    "placements": ("3",),
    "workloads": ("4",),
    "events": ("5",),
    "debug": ("4", "down", "d"),  # the second workload row, debugged
}


async def screenshot(screen: str, size: tuple[int, int]) -> str:
    app = Dashboard(fixed_model(), tick=3600)  # no ticks during the shot: every redraw comes from a key
    async with app.run_test(size=size) as pilot:
        await pilot.press(*SCREENS[screen])
        await pilot.pause()
        return app.export_screenshot()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_matches_the_committed_snapshot(screen: str, size: tuple[int, int]) -> None:
    svg = asyncio.run(screenshot(screen, size))
    path = SNAPSHOTS / f"{screen}-{size[0]}x{size[1]}.svg"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
        if not UPDATE:
            pytest.fail(f"{path.name} did not exist; written now: look at it and commit it")
    assert svg == path.read_text(), f"{path.name} changed; TMC_UPDATE_SNAPSHOTS=1 rewrites it (then look at it)"
