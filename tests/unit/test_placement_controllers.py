"""The placement scheduler and assignment controllers in-process: SyncTargets, Locations, Placements, namespaces and
Deployments written through ObjectService; decisions, labels, annotations and Events polled from the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from tests.unit._scheduling_env import CONFIGMAPS, DEPLOYMENTS, REGION, SECRETS, ZONE, Env, rfc3339
from tmc.api.scheduling import PLACEMENTS
from tmc.api.workload import (
    PLACEMENT_ANNOTATION,
    SYNC_TARGETS,
    deletion_annotation,
    spec_diff_annotation,
    state_label,
    status_diff_annotation,
    syncer_finalizer,
)
from tmc.apimachinery.conditions import find
from tmc.controllers.placement.assignment import AssignmentController
from tmc.controllers.status import StatusAggregationController
from tmc.registry.service import NAMESPACES, WriteOptions
from tmc.storage.interface import Event

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def condition(env: Env, placement: str, type_: str, ws: str = "root") -> dict[str, Any]:
    status = (env.get(PLACEMENTS, placement, ws=ws) or {}).get("status") or {}
    return find(status.get("conditions"), type_) or {}


async def fleet(env: Env) -> dict[str, str]:
    """Four Ready targets in two regions and three zones; returns name -> key."""
    return {
        "eu-1": await env.target("eu-1", {REGION: "eu", ZONE: "eu-a"}),
        "eu-2": await env.target("eu-2", {REGION: "eu", ZONE: "eu-b"}),
        "us-1": await env.target("us-1", {REGION: "us", ZONE: "us-a"}),
        "us-2": await env.target("us-2", {REGION: "us", ZONE: "us-a"}),
    }


def test_spread_placement_labels_namespace_and_workload_and_records_events(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            keys = await fleet(env)
            await env.namespace("web", {"app": "web"})
            await env.namespace("other")
            await env.deployment("web", "web", 3)
            await env.placement(
                "web",
                {"syncTargetSelector": {}, "namespaceSelector": {"matchLabels": {"app": "web"}}, "numberOfTargets": 2},
            )
            await env.until(lambda: env.decided_names("web") == ["eu-1", "us-1"], "a spread decision")
            want = {keys["eu-1"]: "Sync", keys["us-1"]: "Sync"}
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == want, "deployment labels")
            assert env.keys_on(NAMESPACES, "web") == want
            assert env.annotations(NAMESPACES, "web")[PLACEMENT_ANNOTATION] == ""
            assert env.keys_on(NAMESPACES, "other") == {}
            placement = env.get(PLACEMENTS, "web") or {}
            assert placement["status"]["phase"] == "Bound"
            assert [d["replicas"] for d in placement["status"]["decisions"]] == [3, 3]
            assert condition(env, "web", "Ready")["status"] == "True"
            scheduled = condition(env, "web", "Scheduled")
            assert scheduled["status"] == "True" and "strategy Spread" in scheduled["message"]
            events = await env.until(lambda: env.events_about("web"), "a Placement event")
            assert events[0]["reason"] == "Scheduled"
            assert events[0]["message"] == "Placed on eu-1, us-1 by strategy Spread"
            deployment_events = await env.until(lambda: env.events_about("web", "web"), "a Deployment event")
            assert deployment_events[0]["message"] == "Runs on eu-1, us-1 by Placement web"

    run(main())


@pytest.mark.parametrize("strategy", ["RoundRobin", "Spread", "Affinity", "Binpack"])
def test_each_strategy_schedules_through_the_controller(tmp_path: Path, strategy: str) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            alloc = {"allocatable": {"cpu": "10", "memory": "10Gi"}}
            await env.target("idle", status={**alloc, "allocated": {"cpu": "1", "memory": "1Gi"}})
            await env.target("busy", status={**alloc, "allocated": {"cpu": "9", "memory": "9Gi"}})
            await env.target("mid", status={**alloc, "allocated": {"cpu": "5", "memory": "5Gi"}})
            await env.placement("p", {"syncTargetSelector": {}, "strategy": strategy, "numberOfTargets": 2})
            chosen = await env.until(lambda: env.decided_names("p"), "decisions")
            assert len(chosen) == 2
            if strategy == "Binpack":
                assert chosen == ["busy", "mid"]
                assert sorted(d["score"] for d in env.decisions("p")) == [50, 90]
            assert f"strategy {strategy}" in condition(env, "p", "Scheduled")["message"]

    run(main())


def test_divided_replicas_sum_and_deterministic_remainders(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            keys = await fleet(env)
            await env.namespace("web")
            await env.deployment("web", "web", 10)
            await env.placement(
                "web",
                {
                    "syncTargetSelector": {"matchLabels": {REGION: "eu"}},
                    "replicaScheduling": {"type": "Divided"},
                },
            )

            def shares(targets: int = 3) -> dict[str, int] | None:
                ann = env.annotations(DEPLOYMENTS, "web", "web")
                decided = {d["syncTarget"]["name"]: d["key"] for d in env.decisions("web")}
                if len(decided) != targets:
                    return None
                out = {}
                for name, key in decided.items():
                    if spec_diff_annotation(key) not in ann:
                        return None
                    out[name] = orjson.loads(ann[spec_diff_annotation(key)])[0]["value"]
                return out

            assert await env.until(lambda: shares(2), "two targets") == {"eu-1": 5, "eu-2": 5}
            k3 = await env.target("eu-3", {REGION: "eu", ZONE: "eu-c"})  # added later: decisions follow
            # eu-1 and eu-2 keep their 5 until eu-3 reports its 3 available: re-dividing never lowers availability.
            surge = await env.until(shares, "spec-diff annotations for three targets")
            assert surge == {"eu-1": 5, "eu-2": 5, "eu-3": 3}
            await env.report("web", "web", k3, 3)
            got = await env.until(lambda: (s := shares()) != surge and s, "the shares re-divided")
            assert got == {"eu-1": 4, "eu-2": 3, "eu-3": 3}
            assert sum(got.values()) == 10
            assert [d["replicas"] for d in env.decisions("web")] == [4, 3, 3]
            ops = orjson.loads(env.annotations(DEPLOYMENTS, "web", "web")[spec_diff_annotation(keys["eu-1"])])
            assert ops == [{"op": "replace", "path": "/replicas", "value": 4}]
            # Scaling is re-divided.
            await env.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 5}}, "web")
            await env.until(lambda: shares() == {"eu-1": 2, "eu-2": 2, "eu-3": 1}, "re-division after scaling")

    run(main())


def test_static_weights_divide_by_region(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await fleet(env)
            await env.namespace("web")
            await env.deployment("web", "web", 12)
            weights = [
                {"syncTargetSelector": {"matchLabels": {REGION: "eu"}}, "weight": 2},
                {"syncTargetSelector": {"matchLabels": {REGION: "us"}}, "weight": 1},
            ]
            await env.placement(
                "web", {"syncTargetSelector": {}, "replicaScheduling": {"type": "Divided", "weights": weights}}
            )
            await env.until(lambda: len(env.decisions("web")) == 4 and env.decisions("web")[0]["replicas"], "replicas")
            assert {d["syncTarget"]["name"]: (d["weight"], d["replicas"]) for d in env.decisions("web")} == {
                "eu-1": (2, 4),
                "eu-2": (2, 4),
                "us-1": (1, 2),
                "us-2": (1, 2),
            }

    run(main())


def test_locations_select_regions_and_no_match_is_pending(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await fleet(env)
            await env.location("europe", {"geo": "eu"}, {"matchLabels": {REGION: "eu"}})
            await env.location("america", {"geo": "us"}, {"matchLabels": {REGION: "us"}})
            await env.placement("eu", {"locationSelectors": [{"matchLabels": {"geo": "eu"}}]})
            await env.placement("all", {"locationSelectors": [{}], "numberOfTargets": 2})
            await env.placement("none", {"locationSelectors": []})
            await env.until(lambda: env.decided_names("eu") == ["eu-1", "eu-2"], "the eu location's targets")
            status = (env.get(PLACEMENTS, "eu") or {})["status"]
            assert status["selectedLocation"] == {"path": "root", "locationName": "europe"}
            await env.until(lambda: env.decided_names("all") == ["eu-1", "us-1"], "both locations, spread")
            ready = await env.until(lambda: condition(env, "none", "Ready") or None, "LocationNoMatch")
            assert (ready["status"], ready["reason"], ready["severity"]) == ("False", "LocationNoMatch", "Error")
            scheduled = condition(env, "none", "Scheduled")
            assert scheduled["reason"] == "ScheduleLocationNotFound"
            assert (env.get(PLACEMENTS, "none") or {})["status"]["phase"] == "Pending"

    run(main())


def test_placement_in_another_workspace_uses_root_targets(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            keys = await fleet(env)
            ws = "root:team-a"
            await env.service.ensure_namespace(ws, "default")
            await env.namespace("shop", ws=ws)
            await env.deployment("shop", "cart", 2, ws=ws)
            await env.placement("shop", {"syncTargetSelector": {"matchLabels": {REGION: "us"}}}, ws=ws)
            want = {keys["us-1"]: "Sync", keys["us-2"]: "Sync"}
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "cart", "shop", ws) == want, "labels in root:team-a")
            assert [d["syncTarget"]["workspace"] for d in env.decisions("shop", ws)] == ["root", "root"]

    run(main())


def test_capabilities_and_taints_are_honoured(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("gpu", spec={"capabilities": [{"type": "gpu", "available": True}]})
            await env.target("plain")
            await env.target(
                "maint", spec={"taints": [{"key": "maintenance", "value": "true", "effect": "NoSchedule"}]}
            )
            await env.placement("ml", {"syncTargetSelector": {}, "capabilityRequirements": [{"type": "gpu"}]})
            await env.placement("any", {"syncTargetSelector": {}})
            tol = [{"key": "maintenance", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
            await env.placement("tolerant", {"syncTargetSelector": {}, "tolerations": tol})
            await env.until(lambda: env.decided_names("ml") == ["gpu"], "the gpu target only")
            await env.until(lambda: env.decided_names("any") == ["gpu", "plain"], "the untainted targets")
            await env.until(lambda: env.decided_names("tolerant") == ["gpu", "maint", "plain"], "all targets")
            assert (
                "1 with untolerated taint maintenance=true:NoSchedule" in condition(env, "any", "Scheduled")["message"]
            )

    run(main())


def test_configmaps_and_secrets_follow_their_workload(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            keys = await fleet(env)
            await env.namespace("web")
            await env.configmap("web", "web-config")
            await env.configmap("web", "unrelated")
            await env.service.create(SECRETS, "root", "web", {"metadata": {"name": "tls"}}, WriteOptions())
            pod = {
                "containers": [
                    {"name": "app", "image": "nginx", "envFrom": [{"configMapRef": {"name": "web-config"}}]}
                ],
                "volumes": [{"name": "tls", "projected": {"sources": [{"secret": {"name": "tls"}}]}}],
            }
            await env.deployment("web", "web", 1, labels={"app": "web"}, pod=pod)
            await env.placement(
                "web",
                {
                    "syncTargetSelector": {"matchLabels": {ZONE: "eu-a"}},
                    "workloadSelector": {"matchLabels": {"app": "web"}},
                },
            )
            want = {keys["eu-1"]: "Sync"}

            def followed() -> bool:
                return (
                    env.keys_on(CONFIGMAPS, "web-config", "web")
                    == env.keys_on(SECRETS, "tls", "web")
                    == env.keys_on(DEPLOYMENTS, "web", "web")
                    == want
                )

            await env.until(followed, "the ConfigMap and Secret to follow the Deployment")
            assert env.keys_on(CONFIGMAPS, "unrelated", "web") == {}

    run(main())


def synced(*types: tuple[str, str]) -> dict[str, Any]:
    """What a syncer reports in its SyncTarget's status: the types it syncs."""
    return {"syncedResources": [{"group": g, "resource": r, "versions": ["v1"], "state": "Accepted"} for g, r in types]}


def test_hub_adds_the_syncer_finalizer_for_types_the_syncer_syncs(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a", {REGION: "eu"}, status=synced(("apps", "deployments"), ("", "configmaps")))
            kb = await env.target("b", {REGION: "us"})  # its syncer has not said what it syncs
            await env.namespace("web")
            await env.configmap("web", "settings")
            await env.service.create(SECRETS, "root", "web", {"metadata": {"name": "tls"}}, WriteOptions())
            token = {
                "metadata": {"name": "token", "annotations": {"kubernetes.io/service-account.name": "default"}},
                "type": "kubernetes.io/service-account-token",
            }
            await env.service.create(SECRETS, "root", "web", token, WriteOptions())
            await env.deployment("web", "web", 1)
            await env.placement("web", {"syncTargetSelector": {}})
            both = {ka: "Sync", kb: "Sync"}
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == both, "placed on a and b")
            await env.until(lambda: env.keys_on(SECRETS, "token", "web") == both, "everything labelled")

            def finalizers(info: Any, name: str) -> list[str]:
                return list(((env.get(info, name, "web") or {}).get("metadata") or {}).get("finalizers") or [])

            # Only a's, and only on the types a's syncer syncs: a finalizer no syncer would remove blocks deletion.
            assert finalizers(DEPLOYMENTS, "web") == [syncer_finalizer(ka)]
            assert finalizers(CONFIGMAPS, "settings") == [syncer_finalizer(ka)]
            assert finalizers(SECRETS, "tls") == []
            assert finalizers(SECRETS, "token") == []

            # Leaving a then goes through the deletion protocol: a's syncer removes the copy and the finalizer.
            await env.patch(PLACEMENTS, "web", {"spec": {"syncTargetSelector": {"matchLabels": {REGION: "us"}}}})
            await env.report("web", "web", kb, 1)
            await env.until(
                lambda: deletion_annotation(ka) in env.annotations(DEPLOYMENTS, "web", "web"), "a's copy leaving"
            )
            assert env.keys_on(DEPLOYMENTS, "web", "web") == both

    run(main())


def test_not_ready_target_is_replaced_and_old_copy_kept_until_new_is_available(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path, not_ready_grace=0.0) as env:
            ka = await env.target("a", {REGION: "eu"})
            kb = await env.target("b", {REGION: "us"})
            await env.namespace("web")
            await env.configmap("web", "settings")
            await env.deployment("web", "web", 2)
            await env.placement("web", {"syncTargetSelector": {}, "numberOfTargets": 1})
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {ka: "Sync"}, "placed on a")
            # What a's syncer does: take its finalizer, then report the workload available.
            await env.patch(DEPLOYMENTS, "web", {"metadata": {"finalizers": [syncer_finalizer(ka)]}}, "web")
            await env.report("web", "web", ka, 2)

            await env.heartbeat("a", ready=False)  # the syncer on a stops: its heartbeat goes stale
            await env.until(lambda: env.decided_names("web") == ["b"], "rescheduled to b")
            both = {ka: "Sync", kb: "Sync"}
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == both, "the new copy added")
            await env.until(lambda: env.keys_on(CONFIGMAPS, "settings", "web") == both, "the ConfigMap on both")
            annotations = env.annotations(DEPLOYMENTS, "web", "web")
            assert deletion_annotation(ka) not in annotations, "the old copy must stay until b is available"
            assert env.keys_on(NAMESPACES, "web") == both
            waiting = await env.until(
                lambda: [e for e in env.events_about("web", "web") if e["reason"] == "Rescheduling"], "an Event"
            )
            assert "keeping the copy on a until b reports the workload available" in waiting[0]["message"]
            placement_events = [e["message"] for e in env.events_about("web")]
            assert any("dropped a (not Ready)" in m for m in placement_events), placement_events

            await env.report("web", "web", kb, 1)  # b is not there yet: 1 of 2
            await env.report("web", "web", kb, 2)
            await env.until(
                lambda: deletion_annotation(ka) in env.annotations(DEPLOYMENTS, "web", "web"), "a's copy deleted"
            )
            # The finalizer keeps a's label until a's syncer has deleted the downstream copy; the ConfigMap has none.
            assert env.keys_on(DEPLOYMENTS, "web", "web") == both
            await env.until(lambda: env.keys_on(CONFIGMAPS, "settings", "web") == {kb: "Sync"}, "ConfigMap moved")
            await env.until(
                lambda: deletion_annotation(ka) in env.annotations(NAMESPACES, "web"), "namespace leaving a"
            )
            done = await env.until(
                lambda: [e for e in env.events_about("web", "web") if e["reason"] == "Rescheduled"], "an Event"
            )
            message = done[0]["message"]
            assert message == "Runs on b by Placement web; removing it from a: its new targets report it available"

    run(main())


def test_last_available_copy_is_never_removed(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a")
            await env.namespace("web")
            await env.deployment("web", "web", 1)
            await env.placement("web", {"syncTargetSelector": {}})
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {ka: "Sync"}, "placed on a")
            await env.report("web", "web", ka, 1)
            await env.heartbeat("a", ready=False)
            failed = await env.until(lambda: condition(env, "web", "Scheduled").get("reason"), "NoValidTarget")
            assert failed == "NoValidTarget"
            assert "1 not Ready" in condition(env, "web", "Scheduled")["message"]
            assert env.decisions("web") == []
            assert env.keys_on(DEPLOYMENTS, "web", "web") == {ka: "Sync"}
            assert deletion_annotation(ka) not in env.annotations(DEPLOYMENTS, "web", "web")
            await env.until(
                lambda: any(e["reason"] == "FailedScheduling" for e in env.events_about("web")), "FailedScheduling"
            )
            # The target comes back: nothing moved, nothing to undo.
            await env.heartbeat("a")
            await env.until(lambda: env.decided_names("web") == ["a"], "a chosen again")

    run(main())


def test_cordon_stops_new_placements_and_moves_existing_gracefully(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a")
            kb = await env.target("b")
            await env.namespace("web")
            await env.deployment("web", "web", 1)
            await env.placement("web", {"syncTargetSelector": {}, "numberOfTargets": 1})
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {ka: "Sync"}, "placed on a")
            await env.report("web", "web", ka, 1)
            await env.patch(SYNC_TARGETS, "a", {"spec": {"unschedulable": True}})
            await env.until(lambda: env.decided_names("web") == ["b"], "moved to b")
            await env.placement("new", {"syncTargetSelector": {}})
            await env.until(lambda: env.decided_names("new") == ["b"], "new placements avoid a")
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {ka: "Sync", kb: "Sync"}, "both")
            await env.report("web", "web", kb, 1)
            # No syncer finalizer on a: the label goes at once.
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {kb: "Sync"}, "a's copy removed")

    run(main())


def test_evict_after_moves_workloads_when_it_passes(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            # RFC 3339 with a fraction (the API accepts it; kcp's clients write whole seconds).
            evict = rfc3339(time.time() + 0.6)
            await env.target("a", spec={"evictAfter": evict})
            await env.target("b")
            await env.placement("web", {"syncTargetSelector": {}, "numberOfTargets": 1})
            await env.until(lambda: env.decided_names("web") == ["a"], "a chosen while its eviction is ahead")
            # No event happens at the eviction time: the controller's timed requeue alone must move the Placement.
            await env.until(lambda: env.decided_names("web") == ["b"], "moved off a", timeout=4.0)
            assert "1 evicting" in condition(env, "web", "Scheduled")["message"]

    run(main())


def test_deleting_the_placement_unassigns(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a")
            await env.namespace("web")
            await env.deployment("web", "web", 1)
            await env.configmap("web", "plain")
            await env.placement("web", {"syncTargetSelector": {}})
            await env.until(lambda: env.keys_on(CONFIGMAPS, "plain", "web") == {ka: "Sync"}, "assigned")
            await env.patch(DEPLOYMENTS, "web", {"metadata": {"finalizers": [syncer_finalizer(ka)]}}, "web")
            await env.report("web", "web", ka, 1)
            await env.service.delete(PLACEMENTS, "root", None, "web", {})
            # With the syncer's finalizer: the deletion annotation, the syncer deletes downstream and strips the label.
            await env.until(lambda: deletion_annotation(ka) in env.annotations(DEPLOYMENTS, "web", "web"), "deletion")
            # Without: the label goes at once.
            await env.until(lambda: env.keys_on(CONFIGMAPS, "plain", "web") == {}, "plain ConfigMap unassigned")
            # The namespace follows kcp: deletion annotation now, label after a 5 s grace.
            await env.until(lambda: deletion_annotation(ka) in env.annotations(NAMESPACES, "web"), "namespace leaving")
            assert env.keys_on(NAMESPACES, "web") == {ka: "Sync"}

    run(main())


def test_hand_labelled_namespaces_without_placements_are_left_alone(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a")
            await env.namespace("manual", {state_label(ka): "Sync"})
            await env.configmap("manual", "cm")
            await env.patch(CONFIGMAPS, "cm", {"metadata": {"labels": {state_label(ka): "Sync"}}}, "manual")
            # A Placement elsewhere proves the controllers are running and have seen everything.
            await env.namespace("placed", {"placed": "yes"})
            await env.placement(
                "p", {"syncTargetSelector": {}, "namespaceSelector": {"matchLabels": {"placed": "yes"}}}
            )
            await env.until(lambda: env.keys_on(NAMESPACES, "placed") == {ka: "Sync"}, "the placed namespace")
            assert env.keys_on(NAMESPACES, "manual") == {ka: "Sync"}
            assert env.keys_on(CONFIGMAPS, "cm", "manual") == {ka: "Sync"}
            assert env.annotations(NAMESPACES, "manual") == {}

    run(main())


def test_hub_status_leaves_out_targets_that_are_not_ready(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            summing = StatusAggregationController(env.store, env.registry, env.service)
            await summing.start()
            try:
                kb = await env.target("b", {"only": "b"})
                await env.namespace("web")
                await env.deployment("web", "web", 2)
                await env.placement("web", {"syncTargetSelector": {"matchLabels": {"only": "b"}}})
                await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == {kb: "Sync"}, "placed on b")
                await env.report("web", "web", kb, 2)

                def ready() -> int | None:
                    status = (env.get(DEPLOYMENTS, "web", "web") or {}).get("status")
                    return None if status is None else int(status.get("readyReplicas") or 0)

                await env.until(lambda: ready() == 2, "2 ready on the hub")
                # b goes silent. With nowhere else to go its copy stays and the Deployment does not change; b's
                # readiness alone makes the hub sum again, without b's stale report.
                await env.heartbeat("b", ready=False)
                await env.until(lambda: ready() == 0, "b's stale report left out")
                assert env.keys_on(DEPLOYMENTS, "web", "web") == {kb: "Sync"}
                await env.heartbeat("b")
                await env.until(lambda: ready() == 2, "b counted again")
            finally:
                await summing.stop()

    run(main())


def test_a_divided_move_waits_for_the_larger_share(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            ka = await env.target("a")
            kb = await env.target("b")
            kc = await env.target("c")
            await env.namespace("web")
            await env.deployment("web", "web", 6)
            await env.placement("web", {"syncTargetSelector": {}, "replicaScheduling": {"type": "Divided"}})
            await env.until(lambda: len(env.keys_on(DEPLOYMENTS, "web", "web")) == 3, "placed on three")
            await env.patch(DEPLOYMENTS, "web", {"metadata": {"finalizers": [syncer_finalizer(kc)]}}, "web")
            for key in (ka, kb, kc):
                await env.report("web", "web", key, 2)

            await env.heartbeat("c", ready=False)
            await env.until(lambda: env.decided_names("web") == ["a", "b"], "c dropped")

            def share(key: str) -> int | None:
                raw = env.annotations(DEPLOYMENTS, "web", "web").get(spec_diff_annotation(key))
                return orjson.loads(raw)[0]["value"] if raw else None

            await env.until(lambda: share(ka) == 3 and share(kb) == 3, "a and b get 3 each")
            # a and b still report the 2 they ran before: that is not the 3 they now have to run.
            assert deletion_annotation(kc) not in env.annotations(DEPLOYMENTS, "web", "web")
            await env.report("web", "web", ka, 3)
            await env.report("web", "web", kb, 3)
            await env.until(lambda: deletion_annotation(kc) in env.annotations(DEPLOYMENTS, "web", "web"), "c leaves")

    run(main())


def test_syncer_bookkeeping_does_not_replan_the_namespace_unless_a_move_waits(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            assignment = next(c for c in env.controllers if isinstance(c, AssignmentController))
            key = DEPLOYMENTS.key("root", "web", "web")
            ns_key = NAMESPACES.key("root", None, "web")
            before = {"metadata": {"name": "web", "labels": {state_label("k"): "Sync"}}, "spec": {"replicas": 1}}

            def queued(after_md: dict[str, Any], spec: dict[str, Any] | None = None) -> list[str]:
                after = {"metadata": {**before["metadata"], **after_md}, "spec": spec or before["spec"]}
                return list(assignment.keys_for(Event("MODIFIED", key, 2, after, b"", before)))

            report = {"annotations": {status_diff_annotation("k"): "{}"}}
            assert queued({"finalizers": [syncer_finalizer("k")]}) == []
            assert queued(report) == []
            assert queued({"labels": {}}) == [ns_key]
            assert queued({"annotations": {deletion_annotation("k"): "now"}}) == [ns_key]
            assert queued({}, {"replicas": 2}) == [ns_key]
            assignment._held.add(ns_key)  # a move waits for the new targets' reports
            assert queued(report) == [ns_key]

    run(main())


def test_a_not_ready_target_keeps_its_copies_for_the_grace(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path, not_ready_grace=1.5) as env:
            ka = await env.target("a", {REGION: "eu"})
            kb = await env.target("b", {REGION: "us"})
            await env.namespace("web")
            await env.deployment("web", "web", 1)
            await env.namespace("settings")  # no workload there to hold it
            await env.configmap("settings", "flags")
            await env.placement("web", {"syncTargetSelector": {}})
            both = {ka: "Sync", kb: "Sync"}
            await env.until(lambda: env.keys_on(DEPLOYMENTS, "web", "web") == both, "placed on a and b")
            await env.until(lambda: env.keys_on(CONFIGMAPS, "flags", "settings") == both, "the ConfigMap too")
            finalizers = [syncer_finalizer(ka), syncer_finalizer(kb)]
            await env.patch(DEPLOYMENTS, "web", {"metadata": {"finalizers": finalizers}}, "web")
            for key in (ka, kb):
                await env.report("web", "web", key, 1)

            # A blip: a misses its heartbeats, and is back before the grace ends. Nothing is deleted anywhere.
            await env.heartbeat("a", ready=False)
            await env.until(lambda: env.decided_names("web") == ["b"], "a dropped from the decision")
            resting = await env.until(
                lambda: [e for e in env.events_about("web", "web") if "while it is not Ready" in e["message"]],
                "an Event about the grace",
            )
            assert resting[0]["message"].endswith("keeping the copy on a while it is not Ready, for up to 1.5s")
            assert deletion_annotation(ka) not in env.annotations(DEPLOYMENTS, "web", "web")
            assert env.keys_on(CONFIGMAPS, "flags", "settings") == both
            await env.heartbeat("a", ready=True)
            await env.until(lambda: env.decided_names("web") == ["a", "b"], "a back in the decision")
            assert env.keys_on(DEPLOYMENTS, "web", "web") == both
            assert deletion_annotation(ka) not in env.annotations(DEPLOYMENTS, "web", "web")

            # Not Ready for longer than the grace: its copy goes (the others are available).
            down_at = time.monotonic()
            await env.heartbeat("a", ready=False)
            await env.until(
                lambda: deletion_annotation(ka) in env.annotations(DEPLOYMENTS, "web", "web"),
                "a's copy deleted after the grace",
            )
            assert time.monotonic() - down_at >= 1.4

    run(main())


def test_placement_score_and_replica_sum_changes_do_not_replan_namespaces(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            assignment = next(c for c in env.controllers if isinstance(c, AssignmentController))
            await env.namespace("web")
            key = PLACEMENTS.key("root", None, "p")

            def placement(score: int, weight: int = 1) -> dict[str, Any]:
                decision = {"syncTarget": {"workspace": "root", "name": "a"}, "key": "k", "score": score}
                return {
                    "metadata": {"name": "p"},
                    "spec": {},
                    "status": {"decisions": [{**decision, "weight": weight}]},
                }

            def queued(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
                return list(assignment.keys_for(Event("MODIFIED", key, 2, after, b"", before)))

            # Scores follow every capacity report, replica sums every new workload; assignment reads neither.
            assert queued(placement(10), placement(11)) == []
            more = placement(10)
            more["status"]["decisions"][0]["replicas"] = 7
            assert queued(placement(10), more) == []
            assert NAMESPACES.key("root", None, "web") in queued(placement(10), placement(10, weight=2))

    run(main())
