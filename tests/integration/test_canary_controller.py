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
    REPLICAS,
    SERVICES,
    Env,
    canary,
    hub,
    measurements,
)

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
            assert sample("tmc_canary_metric_analysis", canary="web", metric="error-rate") > 0
            reasons = [e["reason"] for e in env.events()]
            assert "CanaryStarted" in reasons and "Promoted" in reasons

    asyncio.run(main())
