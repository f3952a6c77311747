"""Automatic rollback: a RollbackPolicy watches its workload's newest revision while it spreads. When more than
`maxUnavailableClusters` clusters miss the progress deadline, or its Prometheus query (the canary analysis'
provider) returns a value past the threshold, the workload goes back everywhere to the newest revision that was
healthy everywhere.

It never loops: a revision that was rolled back, and a revision a rollback made, are never judged again; the next
revision the user makes is. It never rolls back to a revision that was not healthy: with none, it says so.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tmc.api.rollback import (
    FAILED,
    POLICY_KIND,
    PROGRESSING,
    REASON_ANALYSIS,
    REASON_PROGRESS_DEADLINE,
    ROLLBACK_POLICIES,
)
from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo
from tmc.controllers.canary.analysis.prometheus import PrometheusProvider
from tmc.controllers.canary.analysis.readings import ProviderError
from tmc.controllers.placement.events import WARNING
from tmc.controllers.rollback.context import Shared, WorkloadKey, now, stamp
from tmc.controllers.rollback.plan import revision_number
from tmc.controllers.rollback.restore import Request, UndoError, WaitForCanary, undo

log = logging.getLogger("tmc.controllers.rollback")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
DEFAULT_INTERVAL = 30.0


@dataclass(frozen=True)
class Verdict:
    reason: str
    message: str


def judge_clusters(rev: dict[str, Any], max_unavailable: int) -> Verdict | None:
    """ProgressDeadlineExceeded when more than `max_unavailable` clusters failed, naming them."""
    clusters = (rev.get("status") or {}).get("clusters") or ()
    failed = sorted(str(c.get("name")) for c in clusters if c.get("state") == FAILED)
    if len(failed) <= max_unavailable:
        return None
    return Verdict(
        REASON_PROGRESS_DEADLINE,
        f"revision {revision_number(rev)} not available within the progress deadline on "
        f"{len(failed)} of {len(clusters)} clusters ({', '.join(failed)}); at most {max_unavailable} allowed",
    )


def judge_values(values: list[Any], op: str, threshold: float, query: str) -> Verdict | None:
    compare = _COMPARE[op]
    bad = [v for v in values if isinstance(v, int | float) and compare(float(v), threshold)]
    if not bad:
        return None
    return Verdict(REASON_ANALYSIS, f"query {query!r} returned {bad[0]:g} ({op} {threshold:g})")


def healthy_target(revisions: list[dict[str, Any]], bad: dict[str, Any]) -> dict[str, Any] | None:
    """The newest revision, older than `bad`, that was available on every cluster, with different content."""
    fingerprint = (bad.get("spec") or {}).get("fingerprint")
    for rev in reversed(revisions):
        if revision_number(rev) >= revision_number(bad):
            continue
        if (rev.get("status") or {}).get("healthy") and (rev.get("spec") or {}).get("fingerprint") != fingerprint:
            return rev
    return None


def watched(rev: dict[str, Any]) -> bool:
    """Whether the policy still judges this revision: not made by a rollback, not rolled back, not yet healthy."""
    spec, status = rev.get("spec") or {}, rev.get("status") or {}
    if spec.get("rollbackTo") or spec.get("automatic"):
        return False
    return status.get("phase") in (PROGRESSING, FAILED) and not status.get("healthy")


class PolicyEngine:
    """The policy part of the rollback controller; `prometheus` is shared with nothing else and closed on stop."""

    def __init__(self, shared: Shared, prometheus_url: str = "") -> None:
        self.shared = shared
        self.prometheus = PrometheusProvider(prometheus_url)
        self._last_query: dict[str, float] = {}  # workload key -> when its policy's query last ran
        self._no_target: set[tuple[str, int]] = set()  # (workload key, revision) told there is no healthy target

    async def close(self) -> None:
        await self.prometheus.close()

    async def _analysis(self, key: str, rev: dict[str, Any], spec: dict[str, Any]) -> tuple[Verdict | None, float]:
        analysis = spec.get("analysis")
        if not isinstance(analysis, dict):
            return None, 0.0
        interval = float(analysis.get("intervalSeconds") or DEFAULT_INTERVAL)
        wait = self._last_query.get(key, 0.0) + interval - time.monotonic()
        if wait > 0:
            return None, wait
        self._last_query[key] = time.monotonic()
        source = analysis.get("prometheus") or {}
        threshold = analysis.get("failureThreshold") or {}
        query = str(source.get("query", ""))
        try:
            reading = await self.prometheus.query(query, address=str(source.get("address", "")))
        except ProviderError as e:
            # An unanswered query is not a failed revision (the analysis' rule): wait for the next one.
            log.warning("rollback policy query failed: %s", e)
            return None, interval
        op, value = str(threshold.get("operator", ">")), float(threshold.get("value", 0))
        return judge_values(reading.values, op, value, query), interval

    async def evaluate(
        self, wk: WorkloadKey, info: ResourceInfo, obj: dict[str, Any], rev: dict[str, Any], policy: dict[str, Any]
    ) -> float | None:
        """Judge the newest revision; roll back when it fails. Returns when to look again (None: no need)."""
        if not watched(rev):
            return None
        spec = policy.get("spec") or {}
        key = info.key(wk.cluster, wk.namespace, wk.name)
        verdict = judge_clusters(rev, int(spec.get("maxUnavailableClusters") or 0))
        again: float | None = None
        if verdict is None:
            verdict, again = await self._analysis(key, rev, spec)
        if verdict is None:
            return again
        target = healthy_target(self.shared.revisions(wk, info.kind), rev)
        if target is None:
            if (key, revision_number(rev)) not in self._no_target:
                self._no_target.add((key, revision_number(rev)))
                message = f"{verdict.message}; no earlier revision was healthy everywhere, so nothing was rolled back"
                await self.shared.events.record(wk.cluster, obj, WARNING, "RollbackSkipped", message)
            return None
        user = f"{POLICY_KIND.lower()}/{policy['metadata']['name']}"
        request = Request(revision_number(target), user, verdict.reason, verdict.message)
        try:
            restored, _ = await undo(self.shared, wk, info, obj, request)
        except WaitForCanary:
            return 0.2
        except UndoError as e:
            await self.shared.events.record(wk.cluster, obj, WARNING, "RollbackFailed", f"{verdict.message}: {e}")
            return None
        except errors.StatusError as e:
            if e.code == 409:  # the user changed the spec meanwhile: their revision is judged instead
                log.info("automatic rollback gave way to a user edit: %s", e)
                return None
            raise
        await self._record(wk, policy, revision_number(rev), restored, verdict)
        return None

    async def _record(self, wk: WorkloadKey, policy: dict[str, Any], bad: int, restored: int, verdict: Verdict) -> None:
        last = {"from": bad, "to": restored, "reason": verdict.reason, "message": verdict.message, "time": stamp(now())}
        for _ in range(5):
            entry = self.shared.store.get(ROLLBACK_POLICIES.key(wk.cluster, wk.namespace, policy["metadata"]["name"]))
            if entry is None:
                return
            status = {**(entry.obj.get("status") or {}), "lastRollback": last, "observedRevision": bad}
            body = {**entry.obj, "status": status}
            body["metadata"] = {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}
            try:
                await self.shared.service.update(
                    ROLLBACK_POLICIES,
                    wk.cluster,
                    wk.namespace,
                    entry.obj["metadata"]["name"],
                    body,
                    self.shared.opts,
                    "status",
                )
                return
            except errors.StatusError as e:
                if e.code != 409:
                    raise
