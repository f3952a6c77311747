"""The canary controller against an in-process hub (tests/integration/canary_env.py) and a stand-in Prometheus:
promotion through 10 -> 50 -> 100, abort to weight 0 everywhere in the verdict's reconcile, one bad cluster failing
the fleet, an unreachable Prometheus, Inconclusive pausing, the user's actions, and the three traffic modes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from tests.integration.canary_env import (
    DEPLOYMENTS,
    GATEWAY,
    ISTIO,
    NS,
    REPLICAS,
    SERVICES,
    WS,
    Env,
    canary,
    hub,
    measurements,
)
from tmc.api.canary import CANARY_DEPLOYMENTS

STEPS: list[dict[str, Any]] = [
    {"setWeight": 10},
    {"analysis": {"duration": "20s", "thresholds": [{"metric": "error-rate", "operator": "<", "value": 0.05}]}},
    {"setWeight": 50},
    {"pause": {"duration": "30s"}},
    {"analysis": {"duration": "20s"}},
]


def phase(name: str) -> Any:
    return lambda st: st.get("phase") == name


def vs_weights(env: Env) -> dict[str, int]:
    vs = env.get(env.info("networking.istio.io", "virtualservices"), "web")
    assert vs is not None
    return {d["destination"]["host"]: d["weight"] for d in vs["spec"]["http"][0]["route"]}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_istio_canary_promotes_through_10_50_100(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, canary(ISTIO, STEPS)) as env:
            st = await env.until(phase("Succeeded"))
            stable_rev = st["stableRevision"]
            assert vs_weights(env) == {"web-primary": 100, "web-canary": 0}
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary is not None and primary["spec"]["selector"] == {"matchLabels": {"app": "web-primary"}}
            assert env.get(SERVICES, "web-canary")["spec"]["selector"] == {"app": "web"}  # type: ignore[index]
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 0  # type: ignore[index]
            successes = sample("tmc_canary_successes_total")
            durations = sample("tmc_canary_duration_seconds_count")

            await env.set_image("web:2")
            st = await env.until(lambda s: s.get("weight") == 10)
            assert st["canaryRevision"] != stable_rev and st["phase"] == "Progressing"
            assert vs_weights(env) == {"web-primary": 90, "web-canary": 10}
            assert sample("tmc_canary_weight", canary="web", namespace="shop") == 10
            st = await env.until(phase("Analyzing"))
            st = await env.until(lambda s: s.get("weight") == 50)
            assert vs_weights(env) == {"web-primary": 50, "web-canary": 50}
            st = await env.until(phase("Succeeded"))
            assert env.seen_weights[-4:] == [0, 10, 50, 0], env.seen_weights
            assert st["stableRevision"] != stable_rev and st["canaryRevision"] == ""
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"  # type: ignore[index]
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 0  # type: ignore[index]
            assert vs_weights(env) == {"web-primary": 100, "web-canary": 0}
            ms = measurements(st)
            assert ms and all(m["phase"] == "Successful" for m in ms)
            assert {c["cluster"] for c in ms[0]["clusters"]} == {"eu-1", "us-1"}
            assert 'workload="web"' in env.prometheus.queries[0]
            assert sample("tmc_canary_successes_total") == successes + 1
            assert sample("tmc_canary_duration_seconds_count") == durations + 1
            assert sample("tmc_canary_metric_analysis", canary="web", metric="error-rate") > 0
            reasons = [e["reason"] for e in env.events()]
            assert "CanaryStarted" in reasons and "Promoted" in reasons

    asyncio.run(main())


def routed_weight(env: Env) -> int:
    return vs_weights(env)["web-canary"]


def test_failure_in_one_cluster_sets_weight_0_in_the_verdicts_reconcile_then_rolls_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, canary(ISTIO, STEPS)) as env:
            await env.until(phase("Succeeded"))
            failures = sample("tmc_canary_failures_total", reason="AnalysisFailed")
            await env.set_image("web:bad")
            await env.until(lambda s: s.get("weight") == 10)
            env.prometheus.values["us-1"] = 0.2  # bad in one cluster only
            # Every pass checks: the reconcile that writes Failed has already written weight 0.
            for _ in range(40):
                st = await env.step()
                if st["phase"] == "Failed":
                    break
                assert routed_weight(env) == 10
            assert st["phase"] == "Failed", st
            assert routed_weight(env) == 0 and st["weight"] == 0
            assert "us-1" in st["message"] and "0.2" in st["message"] and "result < 0.05" in st["message"]
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 2  # type: ignore[index]
            st = await env.step()
            assert st["phase"] == "RolledBack"
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 0  # type: ignore[index]
            assert routed_weight(env) == 0
            assert sample("tmc_canary_failures_total", reason="AnalysisFailed") == failures + 1
            assert sample("tmc_canary_status", canary="web", namespace="shop") == 2
            warning = next(e for e in env.events() if e["reason"] == "AnalysisFailed")
            assert warning["type"] == "Warning" and "us-1" in warning["message"] and "0.2" in warning["message"]
            # The rolled-back revision stays rolled back; a new edit starts a new canary.
            for _ in range(3):
                assert (await env.step())["phase"] == "RolledBack"
            env.prometheus.values["us-1"] = 0.01
            await env.set_image("web:3")
            st = await env.until(lambda s: s.get("weight") == 10)
            assert st["phase"] == "Progressing"

    asyncio.run(main())


def test_unreachable_prometheus_gives_errors_never_success_and_aborts(tmp_path: Path) -> None:
    async def main() -> None:
        cd = canary(ISTIO, [{"setWeight": 20}, {"pause": {"duration": "5m"}}])
        cd["spec"]["analysis"]["consecutiveErrorLimit"] = 2
        async with hub(tmp_path, cd) as env:
            await env.until(phase("Succeeded"))
            await env.set_image("web:2")
            await env.until(lambda s: s.get("weight") == 20)
            env.prometheus.status = 503
            st = await env.until(phase("Failed"), tick=11)
            ms = measurements(st)
            errors = [m for m in ms if m["phase"] == "Error"]
            assert len(errors) == 3 and "503" in errors[-1]["message"]
            assert st["analysis"]["phase"] == "Error" and routed_weight(env) == 0
            assert "AnalysisError" in st["message"]
            assert all(m["phase"] != "Successful" for m in ms)

    asyncio.run(main())


def test_inconclusive_pauses_until_promoted(tmp_path: Path) -> None:
    async def main() -> None:
        cd = canary(ISTIO, [{"setWeight": 30}, {"analysis": {}}, {"setWeight": 60}, {"pause": {}}])
        metric = cd["spec"]["analysis"]["metrics"][0]
        metric["failureCondition"] = "result > 0.1"  # between 0.05 and 0.1: neither holds -> Inconclusive
        async with hub(tmp_path, cd) as env:
            await env.until(phase("Succeeded"))
            env.prometheus.values = {"eu-1": 0.07, "us-1": 0.01}
            await env.set_image("web:2")
            st = await env.until(phase("Paused"))
            assert st["pauseReason"] == "Inconclusive" and st["weight"] == 30
            for _ in range(3):
                assert (await env.step())["phase"] == "Paused"
            env.prometheus.values = {"eu-1": 0.01, "us-1": 0.01}
            await env.act("promote@1")
            st = await env.until(lambda s: s.get("weight") == 60)
            st = await env.until(phase("Paused"))
            assert st["pauseReason"] == "PauseStep"
            await env.act("promote@2")
            await env.until(phase("Succeeded"))

    asyncio.run(main())


def test_user_pause_resume_abort_retry_and_promote_full(tmp_path: Path) -> None:
    async def main() -> None:
        cd = canary(ISTIO, [{"setWeight": 25}, {"pause": {"duration": "10m"}}, {"setWeight": 75}])
        async with hub(tmp_path, cd) as env:
            await env.until(phase("Succeeded"))
            await env.set_image("web:2")
            await env.until(lambda s: s.get("weight") == 25)
            await env.patch_canary(lambda o: o["spec"].update(paused=True))
            st = await env.until(phase("Paused"))
            assert st["pauseReason"] == "Manual" and st["weight"] == 25
            await env.patch_canary(lambda o: o["spec"].update(paused=False))
            st = await env.until(phase("Progressing"))
            await env.act("abort@1")
            st = await env.step()
            assert st["phase"] == "Failed" and routed_weight(env) == 0 and "aborted by the user" in st["message"]
            st = await env.until(phase("RolledBack"))
            await env.act("retry@2")
            st = await env.until(lambda s: s.get("weight") == 25)
            assert st["phase"] == "Progressing" and st.get("abortedRevision") is None
            await env.act("promote-full@3")
            st = await env.until(phase("Succeeded"))
            assert 75 not in env.seen_weights
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"  # type: ignore[index]

    asyncio.run(main())


def test_gateway_api_weights_in_http_route_backend_refs(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, canary(GATEWAY, [{"setWeight": 40}, {"pause": {}}])) as env:
            await env.until(phase("Succeeded"))
            await env.set_image("web:2")
            await env.until(phase("Paused"))
            route = env.get(env.info("gateway.networking.k8s.io", "httproutes"), "web")
            assert route is not None
            assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "web", "port": 80}]
            refs = {r["name"]: (r["weight"], r["port"]) for r in route["spec"]["rules"][0]["backendRefs"]}
            assert refs == {"web-primary": (60, 80), "web-canary": (40, 80)}
            assert env.get(SERVICES, "web-primary")["spec"]["ports"][0]["targetPort"] == 8080  # type: ignore[index]

    asyncio.run(main())


def test_replica_share_without_a_mesh(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(
            tmp_path, canary(REPLICAS, [{"setWeight": 25}, {"setWeight": 50}, {"pause": {}}]), replicas=3
        ) as env:
            await env.until(phase("Succeeded"))
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary is not None
            assert primary["spec"]["selector"]["matchLabels"] == {"app": "web", "canary.tmc.kcp.io/role": "stable"}
            assert env.get(SERVICES, "web-canary") is None
            await env.set_image("web:2")
            st = await env.until(lambda s: s.get("weight") == 25)
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 1  # type: ignore[index]  # 1 of 4 pods
            st = await env.until(phase("Paused"))
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 3  # type: ignore[index]  # 3 of 6
            assert {c["cluster"]: c["weight"] for c in st["clusters"]} == {"eu-1": 50, "us-1": 50}
            assert env.get(DEPLOYMENTS, "web-primary")["spec"]["replicas"] == 3  # type: ignore[index]

    asyncio.run(main())


def test_canary_pods_never_ready_hit_the_progress_deadline(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, canary(ISTIO, [{"setWeight": 10}], progressDeadlineSeconds=60)) as env:
            await env.until(phase("Succeeded"))
            env.held.add("us-1")
            await env.set_image("web:2")
            st = await env.until(phase("Failed"), tick=10)
            assert "ProgressDeadlineExceeded" in st["message"] and st["weight"] == 0
            assert [c["canaryReady"] for c in st["clusters"]] == [2, 0]

    asyncio.run(main())


def test_deleting_the_canary_deployment_gives_the_traffic_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, canary(ISTIO, [{"setWeight": 10}, {"pause": {}}])) as env:
            await env.until(phase("Succeeded"))
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 0  # type: ignore[index]
            await env.service.delete(CANARY_DEPLOYMENTS, WS, NS, "web", {})
            assert env.store.get(env.key) is not None  # held by the finalizer until the traffic is handed back
            await env.controller.reconcile(env.key)
            assert env.store.get(env.key) is None
            assert env.get(DEPLOYMENTS, "web")["spec"]["replicas"] == 2  # type: ignore[index]
            vs = env.get(env.info("networking.istio.io", "virtualservices"), "web")
            assert vs is not None and vs["spec"]["http"][0]["route"] == [{"destination": {"host": "web"}}]

    asyncio.run(main())


def test_the_last_pause_ends_in_a_status_write_before_the_stable_copy_takes_the_template(tmp_path: Path) -> None:
    """Many canaries ending their last pause together: each one's end is written at once, not behind its stable
    copy's template write (and that write's fan-out to every cluster)."""

    def image(env: Env) -> str:
        primary = env.get(DEPLOYMENTS, "web-primary")
        assert primary is not None
        return str(primary["spec"]["template"]["spec"]["containers"][0]["image"])

    async def main() -> None:
        steps = [{"setWeight": 50}, {"pause": {"duration": "30s"}}]
        async with hub(tmp_path, canary(ISTIO, steps)) as env:
            await env.until(phase("Succeeded"))
            old = image(env)
            await env.set_image("web:2")
            st = await env.until(lambda s: bool(s.get("promotingRevision")))
            assert st["currentStepIndex"] == 2 and st["phase"] == "Progressing" and st["weight"] == 50
            assert image(env) == old  # the pass that ended the pause wrote the status only
            st = await env.step()
            assert image(env) == "web:2" and st["promotingRevision"] == st["canaryRevision"]
            assert vs_weights(env) == {"web-primary": 50, "web-canary": 50}  # until the stable copy is Ready
            st = await env.until(phase("Succeeded"))
            assert st["stableRevision"] != "" and vs_weights(env) == {"web-primary": 100, "web-canary": 0}

    asyncio.run(main())
