"""Keeps the model live: one list+watch per kind (tmc.client's ListWatcher: resumes from the last resourceVersion
after a disconnect, lists again only on 410 Gone), plus samplers for what is not an object: the hub's
/readyz?verbose and health monitor states every few seconds, and sync latency and errors from Prometheus when there
is one, else from the syncers' /metrics that `tmc up` lists in its up.json.

Runs on the Textual app's event loop; every change calls `changed()`, which only marks the screen dirty.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tmc.cli import resources as r
from tmc.cli.health_checks import parse_metrics, parse_verbose
from tmc.client import ApiError, KubeClient, ListWatcher, Unreachable
from tmc.tui.model import EVENTS, PLACEMENTS, SYNC_TARGETS, Check, Model

_COMPONENT_STATE = {1.0: "healthy", 0.5: "degraded", 0.0: "unhealthy"}
LATENCY_QUERY = (
    'histogram_quantile(0.99, sum by (le) (rate(tmc_syncer_sync_duration_seconds_bucket{direction="down"}[1m])))'
)
ERRORS_QUERY = "sum(rate(tmc_syncer_sync_errors_total[1m]))"


def _freeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    """A gc callback. Right after a full collection everything still tracked is alive, so freezing it costs no
    garbage and keeps the next full collections from walking it again: a burst of watch events leaves tens of
    thousands of new dicts in the model (the hub rewrites the placed workloads' status), and each full collection
    that walked them held the loop for about 50 ms."""
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


@dataclass
class Sources:
    """Where metrics come from: a Prometheus URL, else syncer /metrics URLs (both may be absent)."""

    prometheus: str | None = None
    syncer_metrics: list[str] = field(default_factory=list)


def discover(kubeconfig: str, prometheus: str | None) -> Sources:
    """`--prometheus` if given; else what `tmc up`'s up.json (next to its admin.kubeconfig) says runs."""
    found = Sources(prometheus=prometheus)
    description = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), "up.json")
    try:
        with open(description) as f:
            up = json.load(f)
    except (OSError, ValueError):
        return found
    if found.prometheus is None and isinstance(up.get("prometheus"), dict):
        found.prometheus = str(up["prometheus"].get("url") or "") or None
    for c in up.get("clusters") or ():
        if isinstance(c, dict) and isinstance(c.get("syncer"), dict) and c["syncer"].get("metrics"):
            found.syncer_metrics.append(str(c["syncer"]["metrics"]))
    return found


class KindWatcher(ListWatcher):
    """One collection into the model: SyncTargets, Placements, a workload type, or Events."""

    def __init__(
        self, client: KubeClient, path: str, model: Model, kind: str, item_kind: str, changed: Callable[[], None]
    ) -> None:
        super().__init__(client, path, name=f"dashboard-{kind}")
        self.model = model
        self.kind = kind
        self.item_kind = item_kind
        self.changed = changed
        self.has_listed = asyncio.Event()

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("kind", self.item_kind)  # list items carry no kind
        return obj

    def listed(self, items: list[dict[str, Any]]) -> None:
        items = [self._stamp(i) for i in items]
        if self.kind == EVENTS:
            self.model.replace_events(items)
        else:
            self.model.collection(self.kind).replace(self.item_kind, items)
        self.has_listed.set()
        # Listed objects live long: keep the cyclic GC from walking tens of thousands of dicts on every collection
        # (refcounting still frees them when a watch event replaces them).
        gc.freeze()
        self.changed()

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        obj = self._stamp(obj)
        if self.kind == EVENTS:
            self.model.add_event(kind, obj)
        else:
            self.model.collection(self.kind).apply(kind, obj)
        self.changed()

    def connection_changed(self, connected: bool) -> None:
        self.model.connected[self.name] = connected
        if not connected:
            self.model.last_error = self.last_error
        self.changed()


class Feed:
    """Starts the watches and samplers; `stop()` ends them."""

    def __init__(
        self,
        client: KubeClient,
        model: Model,
        changed: Callable[[], None],
        sources: Sources | None = None,
        interval: float = 5.0,
    ) -> None:
        self.client = client
        self.model = model
        self.changed = changed
        self.sources = sources or Sources()
        self.interval = interval
        self.tasks: list[asyncio.Task[None]] = []
        self.watchers: list[KindWatcher] = []
        self._previous: tuple[float, float, float, float] | None = None  # (time, sum, count, errors)
        self._session: aiohttp.ClientSession | None = None

    def _path(self, group: str, version: str, plural: str) -> str:
        api = f"/api/{version}" if not group else f"/apis/{group}/{version}"
        return f"/clusters/{self.model.workspace}{api}/{plural}"

    def _watch(self, path: str, kind: str, item_kind: str) -> KindWatcher:
        watcher = KindWatcher(self.client, path, self.model, kind, item_kind, self.changed)
        self.model.connected[watcher.name] = True  # not "down" before it tried
        self.watchers.append(watcher)
        self.tasks.append(asyncio.create_task(watcher.run()))
        return watcher

    async def start(self) -> None:
        if _freeze_after_full_collection not in gc.callbacks:
            gc.callbacks.append(_freeze_after_full_collection)
        targets = self._watch(self._path(*r.ST), SYNC_TARGETS, "SyncTarget")
        self._watch(self._path(*r.PL), PLACEMENTS, "Placement")
        self._watch(self._path(*r.EVENTS), EVENTS, "Event")
        self.tasks.append(asyncio.create_task(self._workloads_after(targets)))
        self.tasks.append(asyncio.create_task(self._sample_forever()))

    async def _workloads_after(self, targets: KindWatcher) -> None:
        # The syncers' resource types come from the SyncTargets; the defaults when the hub is not answering yet.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(targets.has_listed.wait(), 10)
        for t in r.workload_types(list(self.model.targets.objects.values())):
            self._watch(self._path(t.group, t.version, t.plural), f"workloads-{t.plural}", t.kind)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(_freeze_after_full_collection)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        if self._session is not None:
            await self._session.close()
        await self.client.close()

    # ---------------------------------------------------------------- samplers

    async def _sample_forever(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        """One round: hub health, then the metric series."""
        await self._health()
        try:
            if self.sources.prometheus:
                await self._from_prometheus(self.sources.prometheus)
            elif self.sources.syncer_metrics:
                await self._from_syncers(self.sources.syncer_metrics)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError):
            self.model.latency.add(None)
            self.model.errors.add(None)
        self.changed()

    async def _health(self) -> None:
        h = self.model.health
        try:
            try:
                body = await self.client.request("GET", "/readyz", params={"verbose": "true"}, timeout=5)
                h.ready = True
            except ApiError as e:  # a failing check answers 500 with the same list
                body, h.ready = e.body, False
            h.checks = [Check(c.name, c.ok, c.detail) for c in parse_verbose(str(body or ""))]
            try:
                # Only the monitor's series: the whole body is megabytes with a big fleet, read on the UI's loop.
                params = {"name[]": "tmc_component_health"}
                text = str(await self.client.request("GET", "/metrics", params=params, timeout=5))
                samples = parse_metrics(text, frozenset({"tmc_component_health"}))
                h.components = {
                    s.labels.get("component", ""): _COMPONENT_STATE.get(s.value, "degraded") for s in samples
                }
            except ApiError:
                h.components = {}
            h.reachable, h.error = True, ""
        except Unreachable as e:
            h.reachable, h.error = False, str(e)
            self.model.last_error = str(e)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        return self._session

    async def _query(self, base: str, query: str) -> float | None:
        async with self._http().get(f"{base.rstrip('/')}/api/v1/query", params={"query": query}) as response:
            body = await response.json()
        result = (body.get("data") or {}).get("result") or []
        if not result:
            return 0.0
        value = float(result[0]["value"][1])
        return None if value != value else value  # NaN: no samples in the window

    async def _from_prometheus(self, base: str) -> None:
        self.model.metrics_source = "prometheus"
        latency = await self._query(base, LATENCY_QUERY)
        self.model.latency.add(None if latency is None else latency * 1000)
        self.model.errors.add(await self._query(base, ERRORS_QUERY))
        async with self._http().get(f"{base.rstrip('/')}/api/v1/alerts") as response:
            body = await response.json()
        self.model.alerts = list((body.get("data") or {}).get("alerts") or [])

    async def _from_syncers(self, urls: list[str]) -> None:
        """Mean down-sync latency and error rate over the last interval, from the syncers' counters."""
        self.model.metrics_source = "syncers"
        names = frozenset(
            {
                "tmc_syncer_sync_duration_seconds_sum",
                "tmc_syncer_sync_duration_seconds_count",
                "tmc_syncer_sync_errors_total",
            }
        )
        total_sum = total_count = errors = 0.0
        for url in urls:
            try:
                async with self._http().get(url) as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError, OSError):
                continue  # a stopped member: the others still count
            for s in parse_metrics(text, names):
                if s.name == "tmc_syncer_sync_errors_total":
                    errors += s.value
                elif s.labels.get("direction") == "down":
                    if s.name.endswith("_sum"):
                        total_sum += s.value
                    else:
                        total_count += s.value
        now = time.monotonic()
        previous, self._previous = self._previous, (now, total_sum, total_count, errors)
        if previous is None:
            return
        elapsed = max(1e-6, now - previous[0])
        count = total_count - previous[2]
        self.model.latency.add((total_sum - previous[1]) / count * 1000 if count > 0 else 0.0)
        self.model.errors.add(max(0.0, errors - previous[3]) / elapsed)
