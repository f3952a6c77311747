"""What tracing costs end to end: the propagation benchmark (benchmarks.bench_propagation) on four systems started
side by side: tracing off; on in TMC's processes (hub and syncers) with every span sampled (ratio 1.0) and exported
over OTLP/HTTP to a sink in a process of its own; on in the simulated member clusters as well; and off again, the
control. Each Deployment of a traced system's latency stream is created inside a span of this process, so it
carries a sampled `traceparent` and its whole path (hub request, placement decision, syncer writes, status reports)
is traced.

The latency stream runs on all four systems at once, their creates alternating: one Deployment every 1/rate s on
the machine, system after system, so that a slow second of the machine falls on the systems alike. (Taking turns
in parts of 25 Deployments each, 10 s a part, put each slow stretch on one system: two identical untraced systems'
p99s differed by up to 94 % in a round.) Before the measured stream each system runs a warm-up stream, dropped.

The bursts go in pairs, every two of the four systems once per burst round (a round robin), both at the same
moment, each system pinned to a core of its own for the burst (its hub, members, syncers and the watch worker
that times the arrivals). A burst saturates the machine, and the machine's speed drifts: the same system's bursts
one after another differed by up to 20 % in their rates, so bursts that took turns compared different minutes.
Paired, both see the same seconds; pinned, neither takes CPU from the other, so each runs at what its own work
per object allows on one core. Which side gets which core alternates. The control shows what is left: how far
two identical systems differ when measured this way.

Reported: propagation p50/p99, status p99, hub create p99 and the downstream apply rate of each system over all
the rounds (each round on new systems): the quantiles of every round's samples pooled; the rate as the median of
the bursts paired with an untraced system against the median of those partners', and as the median of the pairs'
ratios, which the rate's goal is on. The goal (p99 and applies/s within 10 %) is on TMC's tracing: the members
stand in for real clusters, whose API servers trace by their own configuration.

Run alone: python -m benchmarks.bench_tracing [--quick] [--rounds N]. A round takes 12 to 18 minutes with --quick
(100 Deployments and 5 burst rounds), longer with 300 Deployments and 9 burst rounds; three rounds by default
(`benchmarks.run`: two rounds, quick size).

`--pair` measures CPU per thread instead (benchmarks.tracing_pair, about a minute and a half): two systems at once,
one traced, each placing a burst of ConfigMaps on every member at the same moment; on a shared machine the steadiest
signal of what tracing costs per object. `--quick`: 200 ConfigMaps instead of 500.

`--spans` measures one span instead (a few seconds): the CPU of this process per traced call on an asyncio loop (a
child span of a remote parent with four attributes, an await inside, one attribute set after, its `traceparent`
formatted), tracing off, with the OpenTelemetry SDK's span and batch processor, with TMC's light span and with
the leaf span the syncer makes per write, all exporting to the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from benchmarks import bench_propagation, tracing_pair
from benchmarks.bench_propagation import Bench, PropagationSettings, SharedStream
from benchmarks.otlp_sink import SinkProcess
from benchmarks.prop_support import pct
from benchmarks.report import Row, row, table
from tmc.cli.up import System
from tmc.observability import tracing

# Rows of the propagation benchmark compared on and off (name prefix -> short label).
COMPARED = (
    "propagation hub -> member, p50",
    "propagation hub -> member, p99",
    "status member -> hub .status, p99",
    "hub Deployment create (201), p99",
    "downstream objects applied/s, burst",
)


# The rows the goal is on: p99 and applies/s within 10 % of tracing off's.
GOAL_ROWS = ("propagation hub -> member, p99", "downstream objects applied/s, burst")


def _goal(prefix: str, off: float) -> tuple[str, float] | None:
    """The p99 goal as a bound on the tracing-on value (the rate's is on the paired ratio, `_paired_rate`)."""
    return ("<=", round(off * 1.1, 3)) if prefix == GOAL_ROWS[0] else None


# Deployments of warm-up per system, before the measured stream.
WARM_UP = 25


def _settings(quick: bool, clusters: int | None) -> PropagationSettings:
    # Bursts of 5,000 copies, about 10 s on one core (see `_paired_burst`): one of 3,000 on two cores (under 2 s)
    # was mostly its start, and its rate moved by 20 % between identical runs. The systems' streams together at
    # half the propagation benchmark's rate: at 5/s ten members' stream alone keeps both cores busy, and its p99
    # is then the length of whatever queue a slow second left behind (two identical systems differed by up to 95 %).
    # Five burst rounds (ten bursts of a traced system paired with an untraced one's): one pair's ratio can be
    # 20 % off the next one's, so the median needs many.
    cfg = dataclasses.replace(PropagationSettings().quick(), rate=2.5, burst=500, bursts=5, settle_timeout=120.0)
    if not quick:
        cfg = dataclasses.replace(cfg, deployments=300, bursts=9)
    if clusters:
        cfg = dataclasses.replace(cfg, clusters=clusters)
    return cfg


def _find(rows: list[Row], prefix: str) -> Row | None:
    return next((r for r in rows if str(r["name"]).startswith(prefix)), None)


# The systems of one round: label, and whether the simulated clusters trace their requests too (None: nothing
# traces). The second untraced system is the control: how far two identical systems differ in the same minutes,
# which is the resolution of the comparison.
RUNS = (("off", None), ("on", False), ("on, members too", True), ("off, control", None))
BASE, TRACED, TRACED_MEMBERS, CONTROL = (label for label, _ in RUNS)
# Every two systems burst together once in each burst round (three slots of two pairs: a round robin), so that
# each system bursts as often as every other and holds as many objects (a system slows as its objects grow).
PAIRS = (
    (TRACED, BASE),
    (TRACED_MEMBERS, CONTROL),
    (TRACED, CONTROL),
    (TRACED_MEMBERS, BASE),
    (TRACED, TRACED_MEMBERS),
    (CONTROL, BASE),
)
BURSTS_PER_ROUND = 2 * len(PAIRS) // len(RUNS)  # each system's share of PAIRS
# What each system's bursts are compared with: the untraced systems' bursts at the same moments.
PARTNERS = {TRACED: (BASE, CONTROL), TRACED_MEMBERS: (BASE, CONTROL), CONTROL: (BASE,)}
Pair = tuple[float, float, str]  # a burst's applies/s, its partner's at the same moment, and the partner


@dataclasses.dataclass(frozen=True)
class Result:
    """What one system measured in one round: its rows and notes, and the raw samples behind them."""

    rows: list[Row]
    notes: list[str]
    samples: dict[str, list[float]]  # latency samples (ms) by row name before the comma
    pairs: list[Pair]  # each burst's applies/s, its partner's at the same moment, and the partner


T = TypeVar("T")


def _rotated(items: list[T], k: int) -> list[T]:
    k %= len(items)
    return items[k:] + items[:k]


async def _streams(benches: dict[str, Bench], labels: list[str], first: int, count: int, measured: bool) -> None:
    """The same part of the latency stream on every system at once, their creates alternating (SharedStream)."""
    opened = asyncio.Barrier(len(labels))
    await asyncio.gather(
        *(
            benches[label].latency_part(first, count, measured, SharedStream(opened, index, len(labels)))
            for index, label in enumerate(labels)
        )
    )
    for label in labels:
        await benches[label].idle()


def _pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of these processes on `cpus` (affinity is per thread, and a thread started later inherits its
    creator's)."""
    for pid in pids:
        with contextlib.suppress(OSError):  # a process or thread that just ended
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task), cpus)


def _pids(bench: Bench) -> list[int]:
    return [pid for pids in bench.cpu.pids.values() for pid in pids]


async def _paired_burst(pair: tuple[Bench, Bench], ks: tuple[int, int], cores: tuple[int, int]) -> tuple[float, float]:
    """Two systems' bursts at the same moment, each system (hub, members, syncers and the burst's watch worker)
    pinned to a core of its own while it runs: (applies/s, applies/s), NaN for a burst that got nowhere."""
    everywhere = os.sched_getaffinity(0)
    ready = asyncio.Barrier(2)
    pinned: list[int] = []

    def starter(bench: Bench, core: int) -> Callable[[int], Awaitable[None]]:
        async def start(watcher: int) -> None:
            pids = [*_pids(bench), watcher] if watcher else _pids(bench)
            pinned.extend(pids)
            if len(everywhere) > 1:
                _pin(pids, {core})
            async with asyncio.timeout(300):
                await ready.wait()

        return start

    before = (len(pair[0].done_bursts), len(pair[1].done_bursts))
    try:
        sides = zip(pair, ks, cores, strict=True)
        await asyncio.gather(*(bench.burst(k, starter(bench, core)) for bench, k, core in sides))
    finally:
        _pin(pinned, everywhere)
    await asyncio.gather(*(bench.idle() for bench in pair))
    return _last_rate(pair[0], before[0]), _last_rate(pair[1], before[1])


def _last_rate(bench: Bench, had: int) -> float:
    """The rate of the burst a system just ran, NaN when it recorded none (nothing arrived)."""
    return bench.done_bursts[-1].rate if len(bench.done_bursts) > had else math.nan


async def _interleaved(benches: dict[str, Bench], cfg: PropagationSettings, shift: int) -> dict[str, list[Pair]]:
    """The propagation benchmark's latency stream on every system at once, one Deployment at a time in turn; then
    `cfg.bursts` rounds of bursts in pairs (PAIRS), the two systems of a pair at the same moment on a core each, so
    that whatever else the machine does in those seconds falls on both alike and neither takes CPU from the other.
    The pairs' order rotates from round to round, and which core each side gets alternates."""
    labels = _rotated(list(benches), shift)
    for bench in benches.values():
        await bench.prepare()
    # A warm-up part first, dropped: the first part after the systems start had the worst p99 (in 84 parts of
    # earlier runs, 5 of the 6 quarters over 150 ms were first quarters), whatever the system.
    print("... tracing: warm-up stream", flush=True)
    await _streams(benches, labels, cfg.deployments, WARM_UP, measured=False)
    print(f"... tracing: stream of {cfg.deployments} Deployments per system", flush=True)
    await _streams(benches, labels, 0, cfg.deployments, measured=True)
    cpus = sorted(os.sched_getaffinity(0))
    paired: dict[str, list[Pair]] = {label: [] for label in benches}
    done = dict.fromkeys(benches, 0)  # bursts each system has run (its next burst's namespace)
    for k in range(cfg.bursts):
        for a, b in _rotated(list(PAIRS), 2 * k + shift):
            side = (k + PAIRS.index((a, b)) + shift) % 2
            print(f"... tracing {a} and {b}: burst round {k + 1}", flush=True)
            cores = (cpus[side % len(cpus)], cpus[(side + 1) % len(cpus)])
            rate_a, rate_b = await _paired_burst((benches[a], benches[b]), (done[a], done[b]), cores)
            done[a], done[b] = done[a] + 1, done[b] + 1
            paired[a].append((rate_a, rate_b, b))
            paired[b].append((rate_b, rate_a, a))
    for bench in benches.values():
        bench.latency_rows()
    return paired


async def _round(
    systems: dict[str, tuple[System, PropagationSettings]], cfg: PropagationSettings, shift: int
) -> dict[str, Result]:
    benches = {label: Bench(system, own) for label, (system, own) in systems.items()}
    try:
        paired = await _interleaved(benches, cfg, shift)
    finally:
        for bench in benches.values():
            await bench.close()
    return {
        label: Result(bench.rows, bench.notes, bench.samples, paired.get(label, [])) for label, bench in benches.items()
    }


def run(
    quick: bool = False, clusters: int | None = None, on_first: bool = False, rounds: int = 1, rate: float = 0.0
) -> tuple[list[Row], list[str]]:
    """Rounds of the systems in RUNS started side by side (`_interleaved`). The goal compares the
    first two: the members stand in for real clusters, whose API servers trace (or not) by their own
    configuration, so their spans are not what turning on TMC's tracing costs; the third shows what they add on
    this machine, where they share the two cores with everything else; the fourth, untraced, is the control. Each
    row is the median over the rounds, each round on systems of its own."""
    cfg = _settings(quick, clusters)
    cfg.rate = rate or cfg.rate
    results: dict[str, list[Result]] = {label: [] for label, _ in RUNS}
    sink = SinkProcess()
    try:
        flags = ("--tracing-endpoint", sink.endpoint, "--tracing-sample-ratio", "1")
        configs = {
            label: cfg
            if members is None
            else dataclasses.replace(cfg, tracing=flags, member_tracing=None if members else ())
            for label, members in RUNS
        }
        # A namespace for each of a system's bursts.
        configs = {label: dataclasses.replace(c, bursts=cfg.bursts * BURSTS_PER_ROUND) for label, c in configs.items()}
        for r in range(rounds):
            print(f"... tracing: round {r + 1}, starting {len(RUNS)} systems", flush=True)
            with contextlib.ExitStack() as stack:
                systems: dict[str, tuple[System, PropagationSettings]] = {}
                for label, c in configs.items():
                    data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tmc-bench-tracing-"))
                    system = bench_propagation.start(c, data_dir)
                    stack.callback(system.stop)
                    systems[label] = (system, c)
                tracing.configure("tmc-bench", endpoint=sink.endpoint, sample_ratio=1.0, env={})
                stack.callback(tracing.shutdown)
                for label, result in asyncio.run(_round(systems, cfg, r + (1 if on_first else 0))).items():
                    results[label].append(result)
    finally:
        received = sink.stats()
        sink.close()
    notes = [
        f"tracing: {cfg.deployments} Deployments (after {WARM_UP} of warm-up) and {cfg.bursts * BURSTS_PER_ROUND} "
        f"bursts of {cfg.burst} ConfigMaps x {cfg.clusters} members per system, {rounds} round(s) of "
        f"{len(RUNS)} systems, "
        f"their streams alternating at {cfg.rate:g} creates/s in all; {cfg.bursts} burst rounds, each system's "
        f"bursts paired with each other's once a round, a core each; rows pool the rounds (latency quantiles over "
        f"all their samples, the rate as the median of the bursts paired with an untraced system, against the "
        f"median of those partners' bursts); the sink "
        f"received {received['requests']:,} exports "
        f"({received['bytes'] / 1e6:.1f} MB of spans)",
        "tracing: spans by process and name: "
        + ", ".join(f"{name} {count:,}" for name, count in sorted(received["spans"].items(), key=lambda i: -i[1])),
    ]
    rows: list[Row] = []
    for label in PARTNERS:
        for prefix in COMPARED:
            if prefix == GOAL_ROWS[1]:
                control = _pair_ratios(CONTROL, results[CONTROL]) if label != CONTROL else []
                rated = _paired_rate(label, results[label], cfg, control)
                if rated is not None:
                    rows += rated[0]
                    notes.append(rated[1])
                continue
            on, off = _pooled(results[label], prefix), _pooled(results[BASE], prefix)
            if on is None or off is None:
                continue
            rows.append(
                row(
                    f"tracing {label}: {on[0]}",
                    on[1],
                    on[2],
                    goal=_goal(prefix, off[1]) if label == TRACED else None,
                    baseline=off[1],
                    baseline_name="tracing off, same run",
                )
            )
            if prefix in GOAL_ROWS and off[1] > 0:
                each = ", ".join(f"{v:,.3g}" for v in _values(results[label], prefix))
                base = ", ".join(f"{v:,.3g}" for v in _values(results[BASE], prefix))
                paired = ", ".join(f"{r:+.0%}" for r in _ratios(results[label], results[BASE], prefix))
                by_round = statistics.median(_values(results[label], prefix))
                by_round_off = statistics.median(_values(results[BASE], prefix))
                notes.append(
                    f"tracing {label}: {prefix.split(',')[0]} {on[1] / off[1] - 1:+.0%} pooled; the median of the "
                    f"rounds' own values {by_round / by_round_off - 1:+.0%} (rounds: {each}; off: {base}; each "
                    f"round against off in the same round: {paired})"
                )
    # Where the CPU went, per process group, in each system: what tracing costs each kind of process.
    for label, _ in RUNS:
        for result in results[label]:
            kept = ("CPU per downstream object", "bursts:", "per quarter", "not complete", "failed")
            notes += [f"tracing {label}: {n}" for n in result.notes if any(k in n for k in kept)]
    return rows, notes


def _values(results: list[Result], prefix: str) -> list[float]:
    found = (_find(result.rows, prefix) for result in results)
    return [float(r["value"]) for r in found if r is not None and not math.isnan(float(r["value"]))]


def _ratios(on: list[Result], off: list[Result], prefix: str) -> list[float]:
    """A row's value over the untraced system's, round by round (the systems of a round took turns in the same
    minutes, so this pairing removes what the minutes did to both)."""
    out = []
    for on_result, off_result in zip(on, off, strict=True):
        a, b = _find(on_result.rows, prefix), _find(off_result.rows, prefix)
        if a is not None and b is not None and float(b["value"]) > 0 and not math.isnan(float(a["value"])):
            out.append(float(a["value"]) / float(b["value"]) - 1)
    return out


def _pooled(results: list[Result], prefix: str) -> tuple[str, float, str] | None:
    """(name, value, unit) of a latency row over every round at once: the quantile of all the rounds' samples
    together. A p99 of one round's 1,000 samples is its 10th worst, one Deployment's copies; pooled over three
    rounds it is the 30th worst of 3,000."""
    first = next((r for r in (_find(result.rows, prefix) for result in results) if r is not None), None)
    if first is None:
        return None
    key, _, quantile = prefix.partition(", ")
    samples = [v for result in results for v in result.samples.get(key, [])]
    return str(first["name"]), pct(samples, float(quantile[1:]) / 100), str(first["unit"])


def _paired(label: str, results: list[Result]) -> list[tuple[float, float]]:
    """(a burst's rate, its untraced partner's at the same moment) for every pair of a system with PARTNERS."""
    partners = PARTNERS[label]
    # A NaN rate (nothing arrived) fails both comparisons and drops its pair.
    return [(a, b) for result in results for a, b, partner in result.pairs if partner in partners and a > 0 < b]


def _pair_ratios(label: str, results: list[Result]) -> list[float]:
    """A system's burst rate over its untraced partner's at the same moment, minus 1, for every pair."""
    return [a / b - 1 for a, b in _paired(label, results)]


def _paired_rate(
    label: str, results: list[Result], cfg: PropagationSettings, control: list[float]
) -> tuple[list[Row], str] | None:
    """The apply-rate rows of a system over every round's bursts paired with an untraced system's (PARTNERS): its
    median rate against those partners' median, and the median of the pairs' ratios, which the goal is on (each
    pair shares its seconds, so the ratio is what is left of what the machine did to both), beside the control's
    (`control`: the same for two untraced systems). A note lists every pair's ratio."""
    partners = PARTNERS[label]
    pairs = _paired(label, results)
    if not pairs:
        return None
    on, off = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
    ratios = [a / b - 1 for a, b in pairs]
    ratio = 100 * statistics.median(ratios)
    against = f"'{partners[0]}'" if len(partners) == 1 else "an untraced system"
    rows = [
        row(
            f"tracing {label}: downstream objects applied/s, burst of {cfg.burst:,} ConfigMaps x {cfg.clusters} "
            f"members on one core (median of {len(pairs)} bursts)",
            on,
            "objects/s",
            baseline=off,
            baseline_name=f"{' and '.join(partners)}, same moments",
        ),
        row(
            f"tracing {label}: downstream objects applied/s against {against} at the same moment (median of "
            f"{len(ratios)} pairs)",
            ratio,
            "%",
            goal=(">=", -10.0) if label == TRACED else None,
            baseline=100 * statistics.median(control) if control else None,
            baseline_name=f"{CONTROL} against {PARTNERS[CONTROL][0]}",
        ),
    ]
    note = (
        f"tracing {label}: applies/s {on / off - 1:+.0%} (medians); each burst against {against}'s at the same "
        f"moment: median {ratio:+.1f} % ({', '.join(f'{r:+.0%}' for r in ratios)})"
    )
    return rows, note


SPAN_CALLS = 20_000
_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _calls(n: int, leaf: bool) -> None:
    parent = tracing.parse_traceparent(_PARENT)
    kind = tracing.SpanKind.CLIENT
    for i in range(n):
        attributes = {"workload.type": "configmaps", "workload.name": f"c{i}", "workload.namespace": "default"}
        attributes["cluster.name"] = "cluster-1"
        if not tracing.enabled:  # as every call site does
            await asyncio.sleep(0)
            continue
        if leaf:  # the syncer's downstream write
            with tracing.leaf_span("workload-sync", parent, kind, attributes):
                tracing.current_traceparent()
                await asyncio.sleep(0)
            continue
        with tracing.span("workload-sync", parent=parent, kind=kind, attributes=attributes) as s:
            tracing.current_traceparent()
            await asyncio.sleep(0)
            s.set_attribute("http.response.status_code", 201)


def _cpu_per_call(n: int, leaf: bool = False) -> float:
    """Microseconds of this process's CPU (every thread: the export too) per traced call, flushed."""
    asyncio.run(_calls(200, leaf))  # warm caches and the export path
    tracing.force_flush()
    started = time.process_time()
    asyncio.run(_calls(n, leaf))
    tracing.force_flush()
    return (time.process_time() - started) / n * 1e6


def span_cost(calls: int = SPAN_CALLS) -> list[Row]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from tmc.observability.otlp_encoding import FastOTLPSpanExporter

    off = _cpu_per_call(calls)
    sink = SinkProcess()
    try:
        # The SDK's span, as tracing used it before the light tracer, with TMC's encoder.
        sdk = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)), id_generator=tracing.SpanIds())  # type: ignore[arg-type]
        # Queues that hold every span of a run: a dropped span would not be paid for.
        queue = calls + 1000
        exporter = FastOTLPSpanExporter(endpoint=sink.endpoint + "/v1/traces")
        sdk.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=queue))
        tracing.enabled = True
        tracing._tracer = sdk.get_tracer("tmc")
        sdk_cost = _cpu_per_call(calls)
        tracing.shutdown()
        sdk.shutdown()
        env = {"OTEL_BSP_MAX_QUEUE_SIZE": str(queue)}
        tracing.configure("tmc-bench", endpoint=sink.endpoint, sample_ratio=1.0, env=env)
        light = _cpu_per_call(calls)
        leaf = _cpu_per_call(calls, leaf=True)
        tracing.shutdown()
        spans = sink.stats()["spans"].get("tmc-bench: workload-sync", 0)
    finally:
        tracing.shutdown()
        sink.close()
    note = f"{calls:,} calls per variant; the sink received {spans:,} spans from the light tracer (light and leaf)"
    return [
        row("traced call, tracing off", off, "us CPU"),
        row("traced call, SDK span + batch export", sdk_cost, "us CPU", baseline=off, baseline_name="tracing off"),
        row("traced call, light span + batch export", light, "us CPU", baseline=sdk_cost, baseline_name="SDK span"),
        row("traced call, leaf span + batch export", leaf, "us CPU", baseline=light, baseline_name="light span"),
        row("light span overhead", light - off, "us CPU", baseline=sdk_cost - off, baseline_name="SDK span"),
        row("leaf span overhead", leaf - off, "us CPU", baseline=light - off, baseline_name="light span", note=note),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Propagation with tracing on against tracing off")
    parser.add_argument("--quick", action="store_true", help="100 Deployments per run instead of 300")
    parser.add_argument("--clusters", type=int, help="member clusters (default: the propagation benchmark's 10)")
    parser.add_argument("--spans", action="store_true", help="only the CPU of one span on an asyncio loop")
    parser.add_argument(
        "--pair", action="store_true", help="CPU per thread, two systems at once, one traced (benchmarks.tracing_pair)"
    )
    # Rounds rotate the order anyway; this only chooses which run the first round starts with.
    parser.add_argument("--on-first", action="store_true", help="start the first round with tracing on")
    parser.add_argument("--rate", type=float, default=0.0, help="hub creates per second, all streams together")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the four systems (rows pool them)")
    args = parser.parse_args()
    if args.spans:
        rows = span_cost()
        print(table(rows))
        print("note:", rows[-1]["note"])
        return
    if args.pair:
        rows, notes = tracing_pair.run(200 if args.quick else 500, args.clusters or 10)
    else:
        rows, notes = run(args.quick, args.clusters, args.on_first, args.rounds, args.rate)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
