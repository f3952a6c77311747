"""Placement simulation: a server-side dry run of a Placement create or update answers with the scheduler's
decisions now and one candidate entry per SyncTarget, writes nothing, and agrees with the real decision that follows
when the change is applied."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from tests.unit._scheduling_env import LOCATION_RESOURCE, Env, rfc3339
from tmc.api.scheduling import PLACEMENTS, SIMULATION_CANDIDATES_FIELD
from tmc.api.workload import SYNC_TARGETS
from tmc.registry.service import MERGE_PATCH, WriteOptions

DRY = WriteOptions(dry_run=True)


def by_name(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["syncTarget"]["name"]: c for c in obj["status"][SIMULATION_CANDIDATES_FIELD]}


def chosen(obj: dict[str, Any]) -> list[str]:
    return sorted(d["syncTarget"]["name"] for d in obj["status"].get("decisions") or ())


def test_dry_run_create_explains_every_target_and_writes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("a", {"tier": "gold"}, spec={"capabilities": [{"type": "gpu"}]})
            await env.target("b", {"tier": "gold"}, spec={"unschedulable": True, "capabilities": [{"type": "gpu"}]})
            await env.target("c", {"tier": "gold"}, ready=False)
            await env.target("d", {"tier": "gold"}, spec={"taints": [{"key": "maint", "effect": "NoSchedule"}]})
            await env.target("e", {"tier": "silver"})
            await env.target("f", {"tier": "gold"}, spec={"evictAfter": rfc3339(time.time() - 5)})
            await env.target("g", {"tier": "gold"})
            spec = {
                "locationResource": LOCATION_RESOURCE,
                "namespaceSelector": {},
                "syncTargetSelector": {"matchLabels": {"tier": "gold"}},
                "numberOfTargets": 1,
                "capabilityRequirements": [{"type": "gpu", "required": False}],
            }
            body = {"metadata": {"name": "web"}, "spec": spec}
            sim = await env.service.create(PLACEMENTS, "root", None, body, DRY)
            cands = by_name(sim)
            assert set(cands) == set("abcdefg")
            assert cands["a"]["selected"] and cands["a"]["reason"].startswith("chosen")
            assert cands["a"]["scores"]["preferredCapabilities"] == 1
            assert cands["b"]["reason"] == "excluded: unschedulable (cordoned)"
            assert cands["c"]["reason"] == "excluded: not Ready"
            assert cands["d"]["reason"] == "excluded: with untolerated taint maint:NoSchedule"
            assert cands["e"]["reason"] == "excluded: not matching syncTargetSelector"
            assert cands["f"]["reason"].startswith("excluded: evicting")
            assert not cands["g"]["selected"] and "numberOfTargets 1" in cands["g"]["reason"]
            assert cands["g"]["scores"]["preferredCapabilities"] == 0
            assert chosen(sim) == ["a"]
            assert sim["status"]["phase"] in ("Bound", "Unbound")
            assert env.get(PLACEMENTS, "web") is None

            # The real Placement decides the same.
            await env.service.create(PLACEMENTS, "root", None, body, WriteOptions())
            await env.until(lambda: env.decided_names("web") == ["a"], "real decision")

    asyncio.run(main())


def test_simulating_a_change_shows_what_the_real_change_then_decides(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            for name in ("a", "b", "c", "d"):
                await env.target(name, {"region": "eu" if name in "ab" else "us"})
            await env.namespace("web")
            await env.deployment("web", "web", 6)
            await env.placement(
                "web", {"syncTargetSelector": {}, "numberOfTargets": 2, "replicaScheduling": {"type": "Divided"}}
            )
            await env.until(lambda: len(env.decided_names("web")) == 2, "two targets")
            before = env.get(PLACEMENTS, "web")
            assert before is not None
            change = {"spec": {"numberOfTargets": 3}}
            sim = await env.service.patch(PLACEMENTS, "root", None, "web", MERGE_PATCH, orjson.dumps(change), DRY)
            # Sticky: the two current targets are kept (and said so), a third joins.
            kept = env.decided_names("web")
            assert set(kept) < set(chosen(sim)) and len(chosen(sim)) == 3
            assert all(by_name(sim)[n]["reason"].startswith("kept") for n in kept)
            assert sum(d["replicas"] for d in sim["status"]["decisions"]) == 6
            assert env.get(PLACEMENTS, "web") == before  # nothing written

            # An unchanged dry-run update still simulates (what `sync status` of an existing Placement sends).
            same = await env.service.update(PLACEMENTS, "root", None, "web", before, DRY)
            assert chosen(same) == kept

            await env.patch(PLACEMENTS, "web", change)
            await env.until(lambda: env.decided_names("web") == chosen(sim), "real decision matches")
            real = {d["syncTarget"]["name"]: d["replicas"] for d in env.decisions("web")}
            assert real == {d["syncTarget"]["name"]: d["replicas"] for d in sim["status"]["decisions"]}

            # A cordon shows up in the next simulation as the reason a target leaves.
            await env.patch(SYNC_TARGETS, sorted(real)[0], {"spec": {"unschedulable": True}})
            await asyncio.sleep(0.05)
            current = env.get(PLACEMENTS, "web")
            assert current is not None
            again = await env.service.update(PLACEMENTS, "root", None, "web", current, DRY)
            assert by_name(again)[sorted(real)[0]]["reason"] == "excluded: unschedulable (cordoned)"

    asyncio.run(main())


def test_targets_outside_the_locations_and_no_location_at_all_are_explained(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as env:
            await env.target("eu-1", {"region": "eu"})
            await env.target("us-1", {"region": "us"})
            await env.location("eu", {"geo": "eu"}, {"matchLabels": {"region": "eu"}})
            spec: dict[str, Any] = {
                "locationResource": LOCATION_RESOURCE,
                "namespaceSelector": {},
                "locationSelectors": [{"matchLabels": {"geo": "eu"}}],
            }
            sim = await env.service.create(PLACEMENTS, "root", None, {"metadata": {"name": "p"}, "spec": spec}, DRY)
            assert by_name(sim)["us-1"]["reason"] == "not in the selected Locations"
            assert by_name(sim)["eu-1"]["selected"]
            assert sim["status"]["selectedLocation"]["locationName"] == "eu"

            spec["locationSelectors"] = [{"matchLabels": {"geo": "mars"}}]
            none = await env.service.create(PLACEMENTS, "root", None, {"metadata": {"name": "p"}, "spec": spec}, DRY)
            assert {c["reason"].split(":")[0] for c in none["status"][SIMULATION_CANDIDATES_FIELD]} == {"no candidates"}
            assert none["status"]["phase"] == "Pending" and not none["status"]["decisions"]

    asyncio.run(main())
