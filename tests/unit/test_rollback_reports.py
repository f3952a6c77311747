"""The rollback controller under a stream of syncer status reports: one look per debounce window, not one per
report, and the revision still turns Available once every cluster reports it (docs/rollback.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from tests.unit._scheduling_env import DEPLOYMENTS, Env
from tmc.api.rollback import AVAILABLE, PROGRESSING, WORKLOAD_REVISIONS
from tmc.api.workload import status_diff_annotation
from tmc.controllers.rollback.controller import RollbackController
from tmc.controllers.runtime import Result

NS = "shop"
REPORTS = 12


def _report(generation: int, available: int) -> str:
    status = {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "availableReplicas": available}
    return orjson.dumps({"status": status}).decode()


def test_a_burst_of_status_reports_makes_one_look_and_the_revision_still_turns_available(tmp_path: Path) -> None:
    async def main() -> None:
        async with Env(tmp_path) as e:
            rollback = next(c for c in e.controllers if isinstance(c, RollbackController))
            rollback.debounce = 0.3
            looks: list[str] = []
            inner = rollback._reconcile

            async def counted(key: str) -> Result | None:
                looks.append(key)
                return await inner(key)

            rollback._reconcile = counted  # type: ignore[method-assign]
            keys = [await e.target("a"), await e.target("b")]
            await e.location("all")
            await e.placement("pl", {"locationSelectors": [{}], "namespaceSelector": {"matchLabels": {"shop": "y"}}})
            await e.namespace(NS, {"shop": "y"})
            await e.deployment(NS, "web", 1)
            await e.until(lambda: len(e.keys_on(DEPLOYMENTS, "web", NS)) == 2, "web placed on both targets")
            await e.until(lambda: list(e.store.list(WORKLOAD_REVISIONS.key_prefix("root", NS))), "revision 1")
            revision = next(iter(e.store.list(WORKLOAD_REVISIONS.key_prefix("root", NS)))).key
            generation = e.get(DEPLOYMENTS, "web", NS)["metadata"]["generation"]  # type: ignore[index]
            await asyncio.sleep(rollback.debounce * 2)  # let the looks the placement's writes queued pass
            looks.clear()

            # Cluster a keeps reporting while its pod starts (a different report each time), well inside one
            # debounce window; before, each report queued its own look 0.3 s later.
            for i in range(REPORTS):
                annotations = {status_diff_annotation(keys[0]): _report(generation, 0) + " " * i}
                await e.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": annotations}}, NS)
            await asyncio.sleep(rollback.debounce * 2.5)  # long enough for every look those reports queued
            web = "/registry/apps/deployments/root/shop/web"
            assert 1 <= looks.count(web) <= 2, looks
            assert (e.store.get(revision).obj.get("status") or {}).get("phase") in (None, PROGRESSING)  # type: ignore[union-attr]

            annotations = {status_diff_annotation(k): _report(generation, 1) for k in keys}
            await e.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": annotations}}, NS)
            await e.until(
                lambda: (e.store.get(revision).obj.get("status") or {}).get("phase") == AVAILABLE,  # type: ignore[union-attr]
                "revision 1 Available on both clusters",
            )

    asyncio.run(main())
