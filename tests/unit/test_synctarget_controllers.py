"""SyncTarget heartbeat health and Ready, the key label, Location status, cluster metrics, and their pure helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import REGISTRY

from tests.unit._scheduling_env import REGION, Env, rfc3339
from tmc.api.scheduling import LOCATIONS
from tmc.api.workload import SYNC_TARGET_KEY_LABEL, SYNC_TARGETS
from tmc.apimachinery.conditions import condition, find, set_condition, summarize
from tmc.apimachinery.quantity import quantity_value
from tmc.controllers.synctarget.heartbeat import READY_INPUTS, heartbeat_condition
from tmc.observability.health import health_score
from tmc.protocol.keys import sync_target_key
from tmc.registry.service import WriteOptions

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def conditions(env: Env, name: str) -> list[dict[str, Any]]:
    return list(((env.get(SYNC_TARGETS, name) or {}).get("status") or {}).get("conditions") or [])


def cond(env: Env, name: str, type_: str) -> dict[str, Any]:
    return find(conditions(env, name), type_) or {}


def test_heartbeat_sets_key_label_and_ready(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1", {REGION: "eu"})
            labels = (env.get(SYNC_TARGETS, "eu-1") or {})["metadata"]["labels"]
            assert labels[SYNC_TARGET_KEY_LABEL] == sync_target_key("root", "eu-1")
            assert cond(env, "eu-1", "HeartbeatHealthy")["status"] == "True"
            assert cond(env, "eu-1", "Ready")["status"] == "True"

    run(main())


def test_missing_and_stale_heartbeats_use_kcp_reasons(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.service.create(SYNC_TARGETS, "root", None, {"metadata": {"name": "new"}}, WriteOptions())
            await env.until(lambda: cond(env, "new", "Ready"), "conditions on a target without heartbeat")
            hb = cond(env, "new", "HeartbeatHealthy")
            assert (hb["status"], hb["reason"], hb["severity"], hb["message"]) == (
                "False",
                "ErrorHeartbeat",
                "Warning",
                "No heartbeat yet seen",
            )
            ready = cond(env, "new", "Ready")
            assert (ready["status"], ready["reason"], ready["message"]) == ("False", "ErrorHeartbeat", hb["message"])
            await env.target("old", ready=False)
            stale = cond(env, "old", "HeartbeatHealthy")["message"]
            beat = (env.get(SYNC_TARGETS, "old") or {})["status"]["lastSyncerHeartbeatTime"]
            assert stale == f"No heartbeat since {beat}"
            # The health monitor's verdict says the same in its own words.
            healthy = cond(env, "old", "Healthy")
            assert (healthy["status"], healthy["reason"]) == ("False", "HeartbeatStale")
            assert healthy["message"] == f"no heartbeat since {beat} (threshold 300s)"
            assert cond(env, "new", "Healthy")["reason"] == "HeartbeatStale"

    run(main())


def test_ready_turns_false_when_heartbeats_stop_without_any_event(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path, heartbeat_threshold=0.5) as env:
            await env.target("eu-1")
            first = cond(env, "eu-1", "Ready")
            started = time.monotonic()
            await env.until(lambda: cond(env, "eu-1", "Ready").get("status") == "False", "Ready=False", timeout=3)
            assert time.monotonic() - started < 1.5
            assert cond(env, "eu-1", "Ready")["lastTransitionTime"] >= first["lastTransitionTime"]
            assert (cond(env, "eu-1", "Healthy")["status"], cond(env, "eu-1", "Healthy")["reason"]) == (
                "False",
                "HeartbeatStale",
            )
            await env.heartbeat("eu-1")  # the syncer is back
            await env.until(lambda: cond(env, "eu-1", "Ready").get("status") == "True", "Ready=True again")
            assert cond(env, "eu-1", "Healthy")["reason"] == "Healthy"

    run(main())


def test_ready_summarizes_syncer_ready(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1")
            syncer = condition("SyncerReady", False, "DownstreamUnreachable", "cannot reach the cluster", "Error")
            await env.heartbeat("eu-1", extra={"conditions": set_condition(conditions(env, "eu-1"), syncer)})
            await env.until(lambda: cond(env, "eu-1", "Ready").get("status") == "False", "Ready to follow SyncerReady")
            assert cond(env, "eu-1", "Ready")["reason"] == "DownstreamUnreachable"
            assert cond(env, "eu-1", "HeartbeatHealthy")["status"] == "True"

    run(main())


def test_location_status_counts_instances(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1", {REGION: "eu"})
            await env.target("eu-2", {REGION: "eu"}, ready=False)
            await env.target("eu-3", {REGION: "eu"}, spec={"unschedulable": True})
            await env.target("us-1", {REGION: "us"})
            await env.location("europe", {"geo": "eu", "tier": "1"}, {"matchLabels": {REGION: "eu"}})

            def counts() -> tuple[Any, Any]:
                status = (env.get(LOCATIONS, "europe") or {}).get("status") or {}
                return status.get("instances"), status.get("availableInstances")

            await env.until(lambda: counts() == (3, 1), "3 instances, 1 available")
            annotations = env.annotations(LOCATIONS, "europe")
            assert annotations["scheduling.kcp.io/labels"] == "geo=eu tier=1"
            await env.heartbeat("eu-2")
            await env.until(lambda: counts() == (3, 2), "a recovered target to count as available")

    run(main())


def test_cluster_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            status = {
                "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                "allocatable": {"cpu": "15", "memory": "60Gi", "pods": "110"},
                "allocated": {"cpu": "7500m", "memory": "15Gi", "pods": "11"},
                "syncerStatus": {"syncedResources": 9, "pendingResources": 0, "failedResources": 1},
            }
            await env.target("metrics-1", {REGION: "eu"}, status=status)

            def sample(name: str, **labels: str) -> float | None:
                return REGISTRY.get_sample_value(name, {"cluster": "metrics-1", **labels})

            def score() -> float | None:
                return sample("tmc_cluster_health_score", workspace="root", location="eu")

            await env.until(lambda: sample("tmc_cluster_capacity", resource="cpu"), "capacity gauge")
            assert sample("tmc_cluster_capacity", resource="memory") == 64 * 2**30
            assert sample("tmc_cluster_utilization_ratio", resource="cpu") == 0.5
            assert sample("tmc_cluster_utilization_ratio", resource="pods") == pytest.approx(0.1)
            assert sample("tmc_cluster_resource_utilization_percent", resource="cpu") == 50.0
            first = score()
            assert first is not None and 90 < first < 97  # one failed sync in ten costs 4 points

            # More pods scheduled: utilization follows the next heartbeat.
            busier = {**status, "allocated": {"cpu": "15", "memory": "60Gi", "pods": "55"}}
            await env.heartbeat("metrics-1", extra=busier)
            await env.until(lambda: sample("tmc_cluster_utilization_ratio", resource="cpu") == 1.0, "cpu saturated")
            assert sample("tmc_cluster_resource_utilization_percent", resource="pods") == 50.0
            assert sample("tmc_cluster_capacity", resource="cpu") == 16
            saturated = score()
            assert saturated is not None and saturated < first  # saturation costs points

            # Failures beyond 10 % of the synced objects: Healthy=False, and the score drops further.
            failing = {**busier, "syncerStatus": {"syncedResources": 5, "pendingResources": 0, "failedResources": 5}}
            await env.heartbeat("metrics-1", extra=failing)
            await env.until(lambda: cond(env, "metrics-1", "Healthy").get("reason") == "SyncFailures", "SyncFailures")
            await env.until(lambda: (score() or 100) < saturated, "the score to drop with the failures")

            # Bigger nodes: the capacity gauge follows.
            grown = {**failing, "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"}}
            await env.heartbeat("metrics-1", extra=grown)
            await env.until(lambda: sample("tmc_cluster_capacity", resource="cpu") == 32, "capacity grows")

            await env.service.delete(SYNC_TARGETS, "root", None, "metrics-1", {})
            await env.until(lambda: score() is None, "series removed with the target")
            assert sample("tmc_cluster_capacity", resource="cpu") is None

    run(main())


# ------------------------------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2500m", 2.5),
        ("16", 16.0),
        ("64Gi", 64 * 2**30),
        ("1.5G", 1.5e9),
        ("1e3", 1000.0),
        ("100Ki", 102400.0),
        (4, 4.0),
        ("", None),
        ("lots", None),
        (True, None),
    ],
)
def test_quantity_value(text: Any, value: float | None) -> None:
    assert quantity_value(text) == value


def test_heartbeat_condition_and_expiry() -> None:
    now = 1_000_000.0
    healthy, expires = heartbeat_condition(rfc3339(now - 10), now, 30.0)
    assert healthy == {"type": "HeartbeatHealthy", "status": "True"}
    assert expires == now + 20
    stale, none = heartbeat_condition(rfc3339(now - 30), now, 30.0)
    assert stale["status"] == "False" and none is None
    missing, _ = heartbeat_condition(None, now, 30.0)
    assert missing["message"] == "No heartbeat yet seen"


@pytest.mark.parametrize(
    ("present", "want"),
    [
        ([], None),
        ([condition("HeartbeatHealthy", True)], ("True", "")),
        (
            [
                condition("SyncerReady", False, "A", "a", "Warning"),
                condition("HeartbeatHealthy", False, "B", "b", "Error"),
            ],
            ("False", "B"),
        ),
        (
            [
                condition("SyncerReady", False, "A", "a", "Warning"),
                condition("HeartbeatHealthy", False, "B", "b", "Warning"),
            ],
            ("False", "A"),
        ),
        (
            [condition("SyncerReady", "Unknown", "Starting"), condition("HeartbeatHealthy", True)],
            ("Unknown", "Starting"),
        ),
        ([condition("SyncerAuthorized", False, "SyncerUnauthorized")], None),
    ],
)
def test_ready_summary(present: list[dict[str, Any]], want: tuple[str, str] | None) -> None:
    got = summarize("Ready", present, READY_INPUTS)
    assert (None if got is None else (got["status"], got.get("reason", ""))) == want


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    first = set_condition([], condition("Ready", True), now="t1")
    same = set_condition(first, condition("Ready", True, message="still"), now="t2")
    flipped = set_condition(same, condition("Ready", False, "X"), now="t3")
    assert [c["lastTransitionTime"] for c in (*first, *same, *flipped)] == ["t1", "t1", "t3"]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ((False, 1.0, 30.0, 10, 0, 0, 0.0), 0.0),
        ((True, 0.0, 30.0, 10, 0, 0, 0.0), 100.0),
        ((True, 15.0, 30.0, 10, 0, 0, 0.0), 90.0),
        ((True, 30.0, 30.0, 0, 0, 0, 0.0), 80.0),
        ((True, 0.0, 30.0, 0, 0, 10, 0.0), 60.0),
        ((True, 0.0, 30.0, 5, 5, 0, 0.0), 95.0),
        ((True, 0.0, 30.0, 0, 0, 0, 0.95), 90.0),
        ((True, 0.0, 30.0, 0, 0, 0, 1.0), 80.0),
    ],
)
def test_health_score(args: tuple[Any, ...], want: float) -> None:
    assert health_score(*args) == pytest.approx(want)


def test_healthy_names_an_unreachable_member_as_the_cause_of_a_stale_heartbeat(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1")
            unreachable = condition(
                "MemberClusterReachable", False, "MemberClusterUnreachable", "member cluster not answering", "Error"
            )
            # The syncer says its member does not answer, while the heartbeat is still fresh: healthy for now.
            await env.heartbeat("eu-1", extra={"conditions": set_condition(conditions(env, "eu-1"), unreachable)})
            await env.until(lambda: cond(env, "eu-1", "MemberClusterReachable"), "the syncer's condition")
            assert cond(env, "eu-1", "Healthy")["reason"] == "Healthy"
            # Then the heartbeat goes stale: the reason is the member, not the syncer.
            await env.heartbeat("eu-1", ready=False)
            await env.until(lambda: cond(env, "eu-1", "Healthy").get("reason") == "Unreachable", "Unreachable")
            healthy = cond(env, "eu-1", "Healthy")
            assert (healthy["status"], healthy["message"]) == ("False", "member cluster not answering")
            assert cond(env, "eu-1", "Ready")["status"] == "False"

    run(main())
