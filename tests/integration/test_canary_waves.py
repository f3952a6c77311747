"""A first wave of clusters (spec.clusters) and Istio DestinationRule subsets, against the in-process hub of
tests/integration/canary_env.py: the weights each member would serve (the routing object as that member's syncer
sees it, per-target spec diff applied), the gate between the waves, an abort in the second wave, a selector that
matches no placed cluster, and routing by subsets of one Service."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from tests.integration.canary_env import (
    DEPLOYMENTS,
    GATEWAY,
    ISTIO,
    KEYS,
    NS,
    OPTS,
    REPLICAS,
    SERVICES,
    WS,
    Env,
    canary,
    crd,
    hub,
)
from tmc.api.canary import CANARY_DEPLOYMENTS, ROLE_LABEL
from tmc.api.workload import SYNC_TARGETS
from tmc.apimachinery import errors
from tmc.cli.plugin import rollout_view
from tmc.protocol.view import to_view
from tmc.registry.resources import CRDS

FIRST = {"syncTargetSelector": {"matchLabels": {"wave": "first"}}}
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"analysis": {}}, {"setWeight": 50}, {"pause": {"duration": "10s"}}]
VS = ("networking.istio.io", "virtualservices")
DR = ("networking.istio.io", "destinationrules")


def waved(clusters: dict[str, Any] = FIRST, routing: dict[str, Any] = ISTIO) -> dict[str, Any]:
    cd = canary(routing, STEPS, clusters=clusters)
    cd["spec"]["analysis"]["metrics"][0]["provider"]["prometheus"]["query"] = 'errors{cluster=~"{{ args.clusters }}"}'
    return cd


async def label(env: Env, cluster: str, labels: dict[str, str]) -> None:
    entry = env.store.get(SYNC_TARGETS.key(WS, None, cluster))
    assert entry is not None
    body = copy.deepcopy(entry.obj)
    body["metadata"].update(labels=labels, resourceVersion=str(entry.rev))
    await env.service.update(SYNC_TARGETS, WS, None, cluster, body, OPTS)


def member_weights(env: Env, canary_host: str = "web-canary") -> dict[str, int]:
    """cluster -> the canary weight of the VirtualService as that cluster's syncer is served it."""
    vs = env.get(env.info(*VS), "web")
    assert vs is not None
    out = {}
    for key, cluster in KEYS.items():
        route = to_view(vs, key, cluster)["spec"]["http"][0]["route"]
        out[cluster] = next(d["weight"] for d in route if d["destination"]["host"] == canary_host)
    return out


def per_cluster(st: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {c["cluster"]: (c.get("wave", ""), c["weight"]) for c in st.get("clusters") or []}


def test_first_wave_carries_the_canary_then_the_gate_then_the_rest_of_the_fleet(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path) as env:
            await label(env, "eu-1", {"wave": "first"})
            await env.service.create(CANARY_DEPLOYMENTS, WS, NS, waved(), OPTS)
            await env.until(lambda s: s.get("phase") == "Succeeded")
            await env.set_image("web:2")

            st = await env.until(lambda s: s.get("weight") == 20)
            assert st["wave"] == "First"
            assert member_weights(env) == {"eu-1": 20, "us-1": 0}
            assert per_cluster(st) == {"eu-1": ("First", 20), "us-1": ("Rest", 0)}
            cond = next(c for c in st["conditions"] if c["type"] == "FirstWave")
            assert cond["status"] == "True" and "eu-1" in cond["message"]
            shown = rollout_view.render(env.get(CANARY_DEPLOYMENTS, "web") or {})  # kubectl tmc rollout get
            assert "Wave:      First; first wave: eu-1; gate auto" in shown
            assert "☸ eu-1  wave First  weight 20" in shown and "☸ us-1  wave Rest  weight 0" in shown

            st = await env.until(lambda s: s.get("weight") == 50)
            assert member_weights(env) == {"eu-1": 50, "us-1": 0}
            assert env.prometheus.queries and all('cluster=~"eu-1"' in q for q in env.prometheus.queries)

            # The gate (auto): the first wave's analysis passed, the rest of the fleet runs the steps from 0; the
            # first wave keeps the 50 it reached.
            st = await env.until(lambda s: s.get("wave") == "Rest" and s.get("weight") == 20)
            assert member_weights(env) == {"eu-1": 50, "us-1": 20}
            assert per_cluster(st) == {"eu-1": ("First", 50), "us-1": ("Rest", 20)}
            await env.until(lambda s: s.get("phase") == "Analyzing")
            assert 'cluster=~"eu-1|us-1"' in env.prometheus.queries[-1]

            st = await env.until(lambda s: s.get("phase") == "Succeeded")
            assert "wave" not in st and member_weights(env) == {"eu-1": 0, "us-1": 0}
            vs = env.get(env.info(*VS), "web")
            assert vs is not None and not any("spec-diff" in a for a in vs["metadata"].get("annotations") or {})
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary is not None
            assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
            reasons = [e["reason"] for e in env.events()]
            assert reasons.index("WaveGatePassed") < reasons.index("Promoted")

    asyncio.run(main())


def test_manual_gate_waits_for_promote_and_an_abort_in_the_rest_sets_0_everywhere(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path) as env:
            await label(env, "eu-1", {"wave": "first"})
            await env.service.create(CANARY_DEPLOYMENTS, WS, NS, waved({**FIRST, "gate": "manual"}), OPTS)
            await env.until(lambda s: s.get("phase") == "Succeeded")
            await env.set_image("web:2")
            st = await env.until(lambda s: s.get("phase") == "Paused")
            assert st["pauseReason"] == "WaveGate" and st["wave"] == "First"
            for _ in range(3):  # held there
                st = await env.step()
            assert st["phase"] == "Paused" and member_weights(env) == {"eu-1": 50, "us-1": 0}

            await env.act("promote@1")
            st = await env.until(lambda s: s.get("wave") == "Rest" and s.get("weight") == 20)
            assert member_weights(env) == {"eu-1": 50, "us-1": 20}

            env.prometheus.values["us-1"] = 0.5  # the rest of the fleet is bad
            seen: list[dict[str, int]] = []
            while True:
                st = await env.step()
                seen.append(member_weights(env))
                if st["phase"] in ("Failed", "RolledBack"):
                    break
            # Weight 0 in both clusters, the first wave's diff included, in the verdict's own reconcile.
            assert seen[-1] == {"eu-1": 0, "us-1": 0}
            assert "us-1" in st["message"]

    asyncio.run(main())


def test_a_first_wave_that_matches_no_placed_cluster_is_a_condition_and_an_event(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path, waved({"syncTargetSelector": {"matchLabels": {"wave": "none"}}})) as env:
            await env.until(lambda s: s.get("phase") == "Succeeded")
            await env.set_image("web:2")
            for _ in range(3):
                st = await env.step()
            assert st["phase"] == "Progressing" and "syncTargetSelector" in st["message"]
            cond = next(c for c in st["conditions"] if c["type"] == "FirstWave")
            assert (cond["status"], cond["reason"]) == ("False", "NoMatchingClusters")
            assert member_weights(env) == {"eu-1": 0, "us-1": 0}
            warnings = [e for e in env.events() if e["reason"] == "NoFirstWaveClusters"]
            assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

            await label(env, "us-1", {"wave": "none"})  # a cluster now matches: the first wave starts
            st = await env.until(lambda s: s.get("weight") == 20)
            assert member_weights(env) == {"eu-1": 0, "us-1": 20}

    asyncio.run(main())


@pytest.mark.parametrize(
    ("spec", "field", "text"),
    [
        ({"routing": REPLICAS}, "spec.clusters.syncTargetSelector", "needs trafficRouting.istio"),
        (
            {"clusters": {"syncTargetSelector": {"matchExpressions": [{"key": "wave", "operator": "Near"}]}}},
            "spec.clusters.syncTargetSelector.matchExpressions[0].operator",
            "",
        ),
        ({"clusters": {**FIRST, "gate": "later"}}, "spec.clusters.gate", '"later"'),
        ({"clusters": {"gate": "auto"}}, "spec.clusters.syncTargetSelector", "Required"),
    ],
    ids=["no mesh", "selector", "gate", "no selector"],
)
def test_invalid_waves_are_422_naming_the_field(tmp_path: Path, spec: dict[str, Any], field: str, text: str) -> None:
    async def main() -> None:
        async with hub(tmp_path) as env:
            with pytest.raises(errors.StatusError) as caught:
                await env.service.create(CANARY_DEPLOYMENTS, WS, NS, waved(**spec), OPTS)
            assert caught.value.code == 422
            causes = (caught.value.details or {})["causes"]
            assert any(c["field"] == field and text in c["message"] for c in causes), causes

    asyncio.run(main())


def test_destination_rule_subsets_split_one_service(tmp_path: Path) -> None:
    routing = {
        "istio": {
            "virtualService": {"name": "web"},
            "destinationRule": {"name": "web", "stableSubsetName": "v-stable", "canarySubsetName": "v-canary"},
        }
    }

    async def main() -> None:
        async with hub(tmp_path) as env:
            await env.service.create(
                CRDS, WS, None, crd("networking.istio.io", "DestinationRule", "destinationrules"), OPTS
            )
            env.registry.invalidate(WS)
            await env.service.create(CANARY_DEPLOYMENTS, WS, NS, canary(routing, STEPS), OPTS)
            st = await env.until(lambda s: s.get("phase") == "Succeeded")
            stable_rev = st["stableRevision"]
            await env.set_image("web:2")
            st = await env.until(lambda s: s.get("weight") == 20)
            dr = env.get(env.info(*DR), "web")
            assert dr is not None and dr["spec"]["host"] == "web"
            assert {s["name"]: s["labels"] for s in dr["spec"]["subsets"]} == {
                "v-stable": {"app": "web", ROLE_LABEL: "stable"},
                "v-canary": {"app": "web", ROLE_LABEL: "canary"},
            }
            vs = env.get(env.info(*VS), "web")
            assert vs is not None
            assert vs["spec"]["http"][0]["route"] == [
                {"destination": {"host": "web", "subset": "v-stable"}, "weight": 80},
                {"destination": {"host": "web", "subset": "v-canary"}, "weight": 20},
            ]
            # One Service: no -primary/-canary Services; the canary's pods carry the role, which is no new revision.
            assert env.get(SERVICES, "web-canary") is None and env.get(SERVICES, "web-primary") is None
            target = env.get(DEPLOYMENTS, "web")
            assert target is not None and target["spec"]["template"]["metadata"]["labels"][ROLE_LABEL] == "canary"
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary is not None and primary["spec"]["selector"]["matchLabels"] == {
                "app": "web",
                ROLE_LABEL: "stable",
            }
            st = await env.until(lambda s: s.get("phase") == "Succeeded")
            assert st["stableRevision"] != stable_rev
            assert [e["reason"] for e in env.events()].count("CanaryStarted") == 1
            primary = env.get(DEPLOYMENTS, "web-primary")
            assert primary is not None and primary["spec"]["template"]["metadata"]["labels"][ROLE_LABEL] == "stable"

    asyncio.run(main())


def test_a_first_wave_with_gateway_api_weights_the_http_route_per_cluster(tmp_path: Path) -> None:
    async def main() -> None:
        async with hub(tmp_path) as env:
            await label(env, "us-1", {"wave": "first"})
            await env.service.create(CANARY_DEPLOYMENTS, WS, NS, waved(routing=GATEWAY), OPTS)
            await env.until(lambda s: s.get("phase") == "Succeeded")
            await env.set_image("web:2")
            await env.until(lambda s: s.get("weight") == 20)
            route = env.get(env.info("gateway.networking.k8s.io", "httproutes"), "web")
            assert route is not None
            served = {
                cluster: {
                    b["name"]: b["weight"] for b in to_view(route, key, cluster)["spec"]["rules"][0]["backendRefs"]
                }
                for key, cluster in KEYS.items()
            }
            assert served == {
                "eu-1": {"web-primary": 100, "web-canary": 0},
                "us-1": {"web-primary": 80, "web-canary": 20},
            }

    asyncio.run(main())
