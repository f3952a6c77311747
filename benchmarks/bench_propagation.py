"""TMC end to end: propagation and status latency, and the downstream apply rate, of a whole system on this machine.

A real hub, `clusters` `tmc sim-cluster` processes and one `tmc syncer` each, started by `tmc up`'s own code
(`tmc.cli.up.start_system`). One Placement places the namespaces `bench-prop-NN` (`per_namespace` Deployments each)
on every target with Duplicated replicas (each member runs the full `replicas: 1`), so every hub Deployment becomes
one Deployment in each member.

1. Latency. `deployments` Deployments are created on the hub at a fixed rate (open loop: the i-th request is sent at
   start + i/rate whatever the answers do). A watch worker process (benchmarks.prop_watch) watches the Deployments of
   every member and of the hub and stamps arrivals with CLOCK_MONOTONIC, the clock this process stamps requests with.
   - propagation, per (Deployment, member): first arrival of the object in the member's watch minus the hub's 201;
   - status, per (Deployment, member): the member's pod turns Ready in the simulated cluster (its Deployment shows
     `readyReplicas: 1`) until the hub Deployment's `.status` counts it. With one replica per member the hub's
     summed `readyReplicas` is the number of Ready members, so the k-th member to turn Ready is reflected when the
     hub first shows `readyReplicas >= k`: latency = that arrival minus the k-th member's arrival. The syncer's leg
     alone (until that member's per-target report on the hub shows it) is given too.
   Same-run baselines, interleaved with the stream (one every `probe_every` creates): a ConfigMap created directly in
   a member (round robin) and one created directly on the hub, each timed from sending the create to its arrival on a
   watch of the same server: one hop (one durable write and one watch event) under the same load.
2. Downstream apply rate. `burst` ConfigMaps are created on the hub in namespace `bench-burst`, which no Placement
   selects yet; then a Placement selects it for every target, and the clock runs until all burst x clusters copies
   have arrived in the members' watches (cross-checked with the syncers' `syncer_operations_total` creates).
   With `bursts` > 1 the bursts follow one another (namespaces `bench-burst-2`, ...) and the rows are the median
   burst's.
   Baselines from one client process (aiohttp, like the syncers): ConfigMaps created directly in one member with 32
   requests in flight, and in every member at once with 16 in flight each (a syncer's default concurrency).

Also reported: the CPU each part of the system used per hub Deployment, from /proc.

Run alone: python -m benchmarks.bench_propagation [--quick] [--rate R] [--deployments N] [--burst N] [--bursts N]
[--members-nice N] [--keep DIR]. Defaults: 1,000 Deployments at 5/s, about 4.5 minutes in all; --quick: 100, about 40 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.prop_support import (
    Cpu,
    configmap,
    deployment,
    ensure,
    fill,
    pct,
    placement,
    quarters,
    syncer_metric,
    until,
)
from benchmarks.prop_watch import Facts, Observer, StreamSpec
from benchmarks.report import Row, row, table
from tmc.cli.up import System, free_port, start_system
from tmc.client import KubeClient, load_kubeconfig
from tmc.observability import tracing
from tmc.protocol.keys import sync_target_key

HUB = "/clusters/root"
PLACEMENTS = f"{HUB}/apis/scheduling.kcp.io/v1alpha1/placements"
LATENCY_GOAL = ("<=", 250.0)
RATE_GOAL = (">=", 2000.0)
KARMADA_P99_MS = 1300.0
PODS_PER_NODE = 100  # simulated nodes take 110 pods; members get enough nodes for every replica


@dataclasses.dataclass
class PropagationSettings:
    clusters: int = 10
    deployments: int = 1000
    rate: float = 5.0  # hub creates per second in the latency stream
    per_namespace: int = 50  # Deployments per hub namespace (20 namespaces for 1,000)
    burst: int = 1000  # ConfigMaps in the burst (each lands in every member)
    bursts: int = 1  # bursts one after another, each in a namespace of its own; rows are the median burst's
    direct: int = 2000  # ConfigMaps per direct-create baseline
    probe_every: int = 10  # one pair of one-hop probes per this many Deployments
    ready_delay: str = "200ms"  # simulated pods turn Ready this long after they are bound
    settle_timeout: float = 180.0
    members_nice: int = 0  # run the simulated clusters at this nice level (they stand in for other machines)
    tracing: tuple[str, ...] = ()  # tracing flags for every process (benchmarks.bench_tracing)
    member_tracing: tuple[str, ...] | None = None  # the simulated clusters' own, when not `tracing`

    def quick(self) -> PropagationSettings:
        return dataclasses.replace(self, deployments=100, burst=300, direct=500, settle_timeout=45.0)


# -------------------------------------------------------------------- the run


class Bench:
    def __init__(self, system: System, cfg: PropagationSettings) -> None:
        self.system = system
        self.cfg = cfg
        config = load_kubeconfig(system.hub_kubeconfig)
        self.hub = KubeClient(config, base_url=config.base_url, connections=32)
        self.members = [KubeClient(load_kubeconfig(m.kubeconfig), connections=32) for m in system.members]
        self.keys = [sync_target_key("root", m.name) for m in system.members]
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.cpu = Cpu(system)
        count = max(1, math.ceil(cfg.deployments / cfg.per_namespace))
        self.namespaces = [f"bench-prop-{i:02d}" for i in range(count)]
        self.direct_one = math.nan
        self.direct_all = math.nan
        self.lat = _Latency()
        self.done_bursts: list[_Burst] = []
        # The latency samples (ms) behind the rows, by the rows' name before the comma, for pooling over rounds.
        self.samples: dict[str, list[float]] = {}

    async def close(self) -> None:
        for client in (self.hub, *self.members):
            await client.close()

    async def prepare(self) -> None:
        n = len(self.members)

        async def ready_targets() -> bool:
            items = (await self.hub.get(f"{HUB}/apis/workload.kcp.io/v1alpha1/synctargets"))["items"]
            conditions = [(st.get("status") or {}).get("conditions") or [] for st in items]
            return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in cs) for cs in conditions) == n

        await until(ready_targets, 90, f"{n} Ready SyncTargets")
        bursts = [(_burst_name(k), _burst_name(k)) for k in range(self.cfg.bursts)]
        namespaces = [(ns, "prop") for ns in self.namespaces] + bursts + [("bench-probe", "")]
        for name, label in namespaces:
            labels = {"tmc-bench": label} if label else {}
            await ensure(self.hub, f"{HUB}/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
        for member in self.members:
            for name in ("bench-probe", "bench-direct"):
                await ensure(member, "/api/v1/namespaces", {"metadata": {"name": name}})
        await ensure(self.hub, PLACEMENTS, placement("bench-prop", "prop"))

        async def decided() -> bool:
            p = await self.hub.get(f"{PLACEMENTS}/bench-prop")
            return len((p.get("status") or {}).get("decisions") or []) == n

        await until(decided, 30, "the Placement's decisions")
        # Warm-up, one Deployment per namespace: the downstream namespaces exist before the measurement starts, and
        # every path has been taken once.
        for ns in self.namespaces:
            body = deployment(f"warmup-{ns}", "warmup")
            await self.hub.create(f"{HUB}/apis/apps/v1/namespaces/{ns}/deployments", body)

        async def warm() -> bool:
            items = (await self.hub.get(f"{HUB}/apis/apps/v1/deployments", {"labelSelector": "bench=warmup"}))["items"]
            ready = [d for d in items if int((d.get("status") or {}).get("readyReplicas") or 0) == n]
            return len(ready) == len(self.namespaces)

        await until(warm, 90, "the warm-up Deployments Ready on every member")
        await self.idle()

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until no syncer has work queued, so that a part does not run into the tail of the previous one."""

        async def quiet() -> bool:
            return syncer_metric(self.system, "tmc_syncer_objects", 'state="pending"') == 0

        try:
            await until(quiet, timeout, "idle syncers", every=0.5)
        except TimeoutError:
            self.notes.append(f"syncers still had work queued after {timeout:.0f}s of waiting between parts")

    # ---------------------------------------------------------------- 1. latency

    def _latency_specs(self, label: str) -> list[StreamSpec]:
        members, hub = self.system.members, self.system.hub_kubeconfig
        selector = f"bench={label}"
        return [
            *(StreamSpec(m.name, m.kubeconfig, "/apis/apps/v1/deployments", selector) for m in members),
            StreamSpec("hub", hub, f"{HUB}/apis/apps/v1/deployments", selector, reports=True),
            *(StreamSpec(f"{m.name} probe", m.kubeconfig, "/api/v1/configmaps", "bench=probe") for m in members),
            StreamSpec("hub probe", hub, f"{HUB}/api/v1/namespaces/bench-probe/configmaps"),
        ]

    async def latency(self) -> None:
        await self.latency_part(0, self.cfg.deployments)
        self.latency_rows()

    async def latency_part(
        self, first: int, count: int, measured: bool = True, shared: SharedStream | None = None
    ) -> None:
        """Deployments `first` to `first + count - 1` of the stream, at the stream's rate, watched until each is
        Ready everywhere. A stream can run in parts, each labelling its Deployments apart so its watches see only
        its own, and beside other systems' streams (`shared`; benchmarks.bench_tracing). A part not `measured` is a
        warm-up: what it saw is dropped."""
        cfg, n = self.cfg, len(self.members)
        lat = self.lat if measured else _Latency()
        rate = cfg.rate / shared.systems if shared else cfg.rate
        label = f"prop-{first}"
        specs = self._latency_specs(label)
        observer = Observer(specs)
        traced = bool(cfg.tracing) and tracing.enabled

        async def create(
            client: KubeClient, path: str, body: dict[str, Any], done: Callable[[float, float], None]
        ) -> None:
            sent = time.monotonic()
            try:
                # With tracing on in this process, each create sends a sampled traceparent, as a traced client would.
                with tracing.span("create") if traced else contextlib.nullcontext():
                    await client.create(path, body)
            except Exception as e:  # counted and reported; the stream goes on
                lat.failures.append(f"{body['metadata']['name']}: {e}")
                return
            done(sent, time.monotonic())

        def deployment_done(name: str) -> Callable[[float, float], None]:
            def done(sent: float, acked: float) -> None:
                lat.acks[name] = acked
                lat.ack_ms.append((acked - sent) * 1000)

            return done

        tasks: list[asyncio.Task[None]] = []
        try:
            if shared:
                await shared.opened.wait()  # every system's watches are open
            cpu0 = self.cpu.sample()
            start = time.monotonic() + 0.2 + (shared.index / cfg.rate if shared else 0.0)
            for i in range(first, first + count):
                wait = start + (i - first) / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:
                    lat.lag = max(lat.lag, -wait)
                name = f"d-{i:04d}"
                path = f"{HUB}/apis/apps/v1/namespaces/{self.namespaces[i % len(self.namespaces)]}/deployments"
                tasks.append(
                    asyncio.create_task(create(self.hub, path, deployment(name, label), deployment_done(name)))
                )
                if i % cfg.probe_every == 0:
                    probe, m = f"p-{i:04d}", (i // cfg.probe_every) % n
                    member_path = "/api/v1/namespaces/bench-probe/configmaps"
                    hub_path = f"{HUB}/api/v1/namespaces/bench-probe/configmaps"
                    tasks.append(
                        asyncio.create_task(
                            create(
                                self.members[m],
                                member_path,
                                configmap(probe, "probe"),
                                functools.partial(lat.member_probe_sent, probe, m),
                            )
                        )
                    )
                    tasks.append(
                        asyncio.create_task(
                            create(
                                self.hub,
                                hub_path,
                                configmap(probe, "probe"),
                                functools.partial(lat.hub_probe_sent, probe),
                            )
                        )
                    )
            await asyncio.gather(*tasks)

            async def complete() -> bool:
                progress = observer.progress()
                members = all(seen >= count and ready >= count for seen, ready, _ in progress[:n])
                return members and progress[n][1] >= count * n

            try:
                await until(complete, cfg.settle_timeout, "every Deployment Ready on every member and on the hub", 0.5)
            except TimeoutError:
                self.notes.append(f"latency: not complete {cfg.settle_timeout:.0f}s after the last create")
            cpu1 = self.cpu.sample()
        finally:
            for task in tasks:
                task.cancel()
            facts = observer.stop()
        if not measured:
            return
        lat.add(facts)
        of = f"Deployments {first}-{first + count - 1}" if count < cfg.deployments else f"{count} Deployments"
        self.notes.append(
            f"latency: {of} at {rate:g}/s; " + Cpu.describe(cpu0, cpu1, count, f"hub Deployment ({n} member copies)")
        )
        for spec, f in zip(specs, facts, strict=True):
            if f.errors:
                self.notes.append(f"latency: watch of {spec.label}: {f.errors[0]}")

    def latency_rows(self) -> None:
        """The latency rows over every part of the stream run so far."""
        lat = self.lat
        facts, acks, ack_ms = lat.facts, lat.acks, lat.ack_ms
        member_probes, hub_probes = lat.member_probes, lat.hub_probes
        self.notes.append(f"latency: worst send lag {lat.lag * 1000:.0f} ms")
        if lat.failures:
            self.notes.append(f"latency: {len(lat.failures)} creates failed, e.g. {lat.failures[0]}")
        n = len(self.members)
        members, hub, probes, hub_probe = facts[:n], facts[n], facts[n + 1 : 2 * n + 1], facts[2 * n + 1]
        propagation: list[tuple[str, float]] = []
        status: list[tuple[str, float]] = []
        reported: list[float] = []
        missing_copies = missing_status = 0
        for name, acked in acks.items():
            ready_times: list[float] = []
            for m, f in enumerate(members):
                seen = f.seen.get(name)
                if seen is None:
                    missing_copies += 1
                    continue
                propagation.append((name, (seen - acked) * 1000))
                levels = f.ready.get(name) or []
                if levels:
                    ready_times.append(levels[0])
                    at = (hub.reported.get(name) or {}).get(self.keys[m])
                    if at is not None:
                        reported.append((at - levels[0]) * 1000)
            hub_levels = hub.ready.get(name) or []
            for k, t in enumerate(sorted(ready_times)):
                if k < len(hub_levels):
                    status.append((name, (hub_levels[k] - t) * 1000))
                else:
                    missing_status += 1
        hop_member = [(probes[m].seen[k] - t) * 1000 for k, (m, t) in member_probes.items() if k in probes[m].seen]
        hop_hub = [(hub_probe.seen[k] - t) * 1000 for k, t in hub_probes.items() if k in hub_probe.seen]
        prop_ms = [v for _, v in propagation]
        status_ms = [v for _, v in status]
        self.samples = {
            "propagation hub -> member": prop_ms,
            "status member -> hub .status": status_ms,
            "hub Deployment create (201)": ack_ms,
        }
        pairs = f"{len(acks)} Deployments x {n} members"
        for q, label, goal in ((0.5, "p50", None), (0.99, "p99", LATENCY_GOAL)):
            self.rows.append(
                row(
                    f"propagation hub -> member, {label}",
                    pct(prop_ms, q),
                    "ms",
                    goal=goal,
                    baseline=pct(hop_member, q),
                    baseline_name="one hop: create in a member -> its watch",
                    note=f"{pairs}; Karmada publishes {KARMADA_P99_MS:g} ms p99" if goal else pairs,
                )
            )
        self.rows.append(row("propagation hub -> member, max", max(prop_ms, default=math.nan), "ms"))
        for q, label, goal in ((0.5, "p50", None), (0.99, "p99", LATENCY_GOAL)):
            self.rows.append(
                row(
                    f"status member -> hub .status, {label}",
                    pct(status_ms, q),
                    "ms",
                    goal=goal,
                    baseline=pct(hop_hub, q),
                    baseline_name="one hop: create on the hub -> its watch",
                    note="pod Ready in the member until the hub's summed readyReplicas counts it",
                )
            )
        self.rows.append(row("status member -> hub .status, max", max(status_ms, default=math.nan), "ms"))
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            self.rows.append(
                row(
                    f"status member -> hub, syncer's leg, {label}",
                    pct(reported, q),
                    "ms",
                    note="until the member's per-target report (diff.syncer.internal.kcp.io/<key>) is on the hub",
                )
            )
        self.rows.append(row("hub Deployment create (201), p50", pct(ack_ms, 0.5), "ms"))
        self.rows.append(row("hub Deployment create (201), p99", pct(ack_ms, 0.99), "ms"))
        self.notes.append(
            f"latency: {len(prop_ms)} propagation and {len(status_ms)} status samples, {len(hop_member)} member and "
            f"{len(hop_hub)} hub one-hop probes; p99 per quarter of the stream (by creation order), propagation "
            f"{quarters(propagation)} ms, status {quarters(status)} ms"
        )
        if missing_copies or missing_status:
            self.notes.append(
                f"latency: {missing_copies} (Deployment, member) copies never arrived, {missing_status} Ready "
                "members never counted on the hub"
            )

    # ---------------------------------------------------------------- 2. downstream apply rate

    async def direct(self) -> None:
        """Baselines: this process creating ConfigMaps directly in the members."""
        cfg = self.cfg
        path = "/api/v1/namespaces/bench-direct/configmaps"
        names = [f"one-{i:05d}" for i in range(cfg.direct)]
        self.direct_one = await fill(self.members[0], path, names, "direct", 32)
        per = max(1, cfg.direct // len(self.members))
        started = time.monotonic()
        await asyncio.gather(*(fill(m, path, [f"all-{i:05d}" for i in range(per)], "direct", 16) for m in self.members))
        self.direct_all = per * len(self.members) / (time.monotonic() - started)

    async def burst(self, k: int, start: Callable[[int], Awaitable[None]] | None = None) -> None:
        """One burst into the namespace `_burst_name(k)`, placed by a Placement of the same name. `start`, when
        given, is awaited with the watch worker's pid (0 if unknown) once everything is ready, just before the clock
        starts (to start two systems' bursts at the same moment)."""
        cfg, n = self.cfg, len(self.members)
        name = _burst_name(k)
        names = [f"b-{i:05d}" for i in range(cfg.burst)]
        await fill(self.hub, f"{HUB}/api/v1/namespaces/{name}/configmaps", names, name, 32)
        specs = [StreamSpec(m.name, m.kubeconfig, "/api/v1/configmaps", f"bench={name}") for m in self.system.members]
        observer = Observer(specs)
        created = ('operation="create"', 'result="success"')
        synced0 = syncer_metric(self.system, "syncer_operations_total", *created)
        settled = True
        try:
            if start is not None:
                await start(observer.process.pid or 0)
            cpu0 = self.cpu.sample()
            started = time.monotonic()
            await self.hub.create(PLACEMENTS, placement(name, name))

            async def arrived() -> bool:
                return all(seen >= cfg.burst for seen, _, _ in observer.progress())

            try:
                await until(arrived, cfg.settle_timeout, f"{name} in every member", 0.2)
            except TimeoutError:
                settled = False
            cpu1 = self.cpu.sample()
        finally:
            facts = observer.stop()
        synced = syncer_metric(self.system, "syncer_operations_total", *created) - synced0
        arrivals = sorted(t for f in facts for t in f.seen.values())
        if not arrivals:
            self.notes.append(f"{name}: nothing arrived")
            return
        total = len(arrivals)
        lo, hi = arrivals[total // 10], arrivals[(total * 9) // 10]
        self.notes.append(
            f"{name}: {total} of {cfg.burst * n} copies arrived in {arrivals[-1] - started:.2f}s; the syncers counted "
            f"{synced:.0f} downstream writes; " + Cpu.describe(cpu0, cpu1, total, "downstream object")
        )
        if not settled:
            self.notes.append(f"{name}: not complete after {cfg.settle_timeout:.0f}s")
        self.done_bursts.append(
            _Burst(
                total / (arrivals[-1] - started),
                (total * 8 // 10) / (hi - lo) if hi > lo else math.nan,
                (arrivals[0] - started) * 1000,
            )
        )

    async def bursts(self) -> None:
        """`cfg.bursts` bursts one after another, the syncers idle before each."""
        for k in range(self.cfg.bursts):
            if k:
                await self.idle()
            await self.burst(k)
        self.burst_rows()

    def burst_rows(self) -> None:
        """The rows of the median burst run so far (by its whole rate), so that one burst slowed by whatever else
        the machine did at that moment does not decide."""
        cfg, n, done = self.cfg, len(self.members), self.done_bursts
        if not done:
            return
        median = sorted(done, key=lambda b: b.rate)[(len(done) - 1) // 2]
        of = f" (median of {len(done)} bursts)" if len(done) > 1 else ""
        if len(done) > 1:
            self.notes.append("bursts: applies/s " + ", ".join(f"{b.rate:,.0f}" for b in done))
        self.rows.append(
            row(
                f"downstream objects applied/s, burst of {cfg.burst:,} ConfigMaps x {n} members{of}",
                median.rate,
                "objects/s",
                goal=RATE_GOAL,
                baseline=self.direct_all,
                baseline_name=f"direct creates into all {n} members, one client",
                note="from the Placement's create to the last copy (scheduling and assignment included)",
            )
        )
        self.rows.append(
            row(
                "downstream objects applied/s, middle 80% of the burst",
                median.middle,
                "objects/s",
                goal=RATE_GOAL,
                baseline=self.direct_one,
                baseline_name="direct creates into one member, one client",
            )
        )
        self.rows.append(row("burst: Placement create -> first downstream copy", median.first_ms, "ms"))


@dataclasses.dataclass(frozen=True)
class SharedStream:
    """A stream run beside the streams of other systems: all start once every one's watches are open, and their
    creates alternate, system `index` of `systems` sending each of its Deployments `index / rate` seconds after the
    previous system's, so that the machine gets `rate` creates a second in all."""

    opened: asyncio.Barrier
    index: int
    systems: int


@dataclasses.dataclass
class _Latency:
    """What the parts of the latency stream saw, merged (Deployment and probe names differ between parts)."""

    facts: list[Facts] = dataclasses.field(default_factory=list)
    acks: dict[str, float] = dataclasses.field(default_factory=dict)  # Deployment -> its 201
    ack_ms: list[float] = dataclasses.field(default_factory=list)
    member_probes: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)  # probe -> (member, sent)
    hub_probes: dict[str, float] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)
    lag: float = 0.0  # worst send lag, seconds

    def member_probe_sent(self, name: str, member: int, sent: float, _acked: float) -> None:
        self.member_probes[name] = (member, sent)

    def hub_probe_sent(self, name: str, sent: float, _acked: float) -> None:
        self.hub_probes[name] = sent

    def add(self, facts: list[Facts]) -> None:
        if not self.facts:
            self.facts = facts
            return
        for mine, theirs in zip(self.facts, facts, strict=True):
            mine.seen |= theirs.seen
            mine.ready |= theirs.ready
            mine.reported |= theirs.reported
            mine.events += theirs.events
            mine.errors += theirs.errors


@dataclasses.dataclass(frozen=True)
class _Burst:
    rate: float  # copies per second, from the Placement's create to the last copy
    middle: float  # copies per second over the middle 80 % of arrivals
    first_ms: float  # Placement create -> first copy


def _burst_name(k: int) -> str:
    """The namespace, label value and Placement of burst k (the first keeps the name it always had)."""
    return "bench-burst" if k == 0 else f"bench-burst-{k + 1}"


async def _bench(system: System, cfg: PropagationSettings) -> tuple[list[Row], list[str]]:
    bench = Bench(system, cfg)
    try:
        timings: list[str] = []
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("prepare", bench.prepare),
            ("latency", bench.latency),
            ("direct", bench.direct),
            ("burst", bench.bursts),
        ]
        for name, step in steps:
            started = time.monotonic()
            print(f"... propagation: {name}", flush=True)
            await step()
            if name in ("latency", "direct"):
                await bench.idle()
            timings.append(f"{name} {time.monotonic() - started:.0f}s")
        bench.notes.append("propagation: parts took " + ", ".join(timings))
        return bench.rows, bench.notes
    finally:
        await bench.close()


def start(cfg: PropagationSettings, data_dir: str) -> System:
    """A system (hub, simulated clusters, syncers) for the benchmark, with enough nodes for every replica."""
    pods = cfg.deployments + math.ceil(cfg.deployments / cfg.per_namespace)  # per member, warm-ups included
    system = start_system(
        data_dir,
        secure_port=free_port(),
        clusters=cfg.clusters,
        ready_delay=cfg.ready_delay,
        nodes=max(3, math.ceil(pods / PODS_PER_NODE)),
        tracing=cfg.tracing,
        member_tracing=cfg.member_tracing,
    )
    if cfg.members_nice:
        for m in system.members:
            if m.sim.process is not None:
                os.setpriority(os.PRIO_PROCESS, m.sim.process.pid, cfg.members_nice)
    return system


def run(cfg: PropagationSettings | None = None, keep: str | None = None) -> tuple[list[Row], list[str]]:
    """`keep`: a data dir to run the system in and leave behind (logs, databases) instead of a temporary one."""
    cfg = cfg or PropagationSettings()
    with contextlib.ExitStack() as stack:
        data_dir = keep or stack.enter_context(tempfile.TemporaryDirectory(prefix="tmc-bench-prop-"))
        started = time.monotonic()
        system = start(cfg, data_dir)
        try:
            rows, notes = asyncio.run(_bench(system, cfg))
        finally:
            system.stop()
        notes.append(
            f"propagation: {time.monotonic() - started:.0f}s in all, starting and stopping the system included"
        )
        if cfg.members_nice:
            notes.append(f"propagation: the simulated clusters ran at nice {cfg.members_nice}")
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description="TMC propagation benchmark (hub, simulated clusters, syncers)")
    parser.add_argument("--quick", action="store_true", help=f"{PropagationSettings().quick().deployments} Deployments")
    parser.add_argument("--rate", type=float, help="hub creates per second in the latency stream")
    parser.add_argument("--deployments", type=int, help="Deployments in the latency stream")
    parser.add_argument("--burst", type=int, help="ConfigMaps per burst")
    parser.add_argument("--bursts", type=int, default=1, help="bursts one after another (rows: the median burst)")
    parser.add_argument("--members-nice", type=int, default=0, help="nice level of the simulated clusters")
    parser.add_argument("--keep", metavar="DIR", help="run the system in DIR and keep its logs and data")
    args = parser.parse_args()
    cfg = PropagationSettings().quick() if args.quick else PropagationSettings()
    cfg.rate = args.rate or cfg.rate
    cfg.deployments = args.deployments or cfg.deployments
    cfg.members_nice = args.members_nice
    cfg.burst = args.burst or cfg.burst
    cfg.bursts = args.bursts
    rows, notes = run(cfg, args.keep)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
