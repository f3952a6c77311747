"""What tracing costs end to end: the propagation benchmark (benchmarks.bench_propagation) in rounds of three runs,
each on a system of its own: tracing off; on in TMC's processes (hub and syncers) with every span sampled (ratio
1.0) and exported over OTLP/HTTP to a sink in a process of its own; and on in the simulated member clusters as
well. Each Deployment of the latency stream is created inside a span of this process, so it carries a sampled
`traceparent` and its whole path (hub request, placement decision, syncer writes, status reports) is traced.

Reported: propagation p50/p99, status p99 and the downstream apply rate of both traced runs, each the median over
the rounds with the tracing-off median as its baseline; the goal (p99 and applies/s within 10 %) is on TMC's
tracing (the second run): the members stand in for real clusters, whose API servers trace by their own
configuration. Each round starts with the next run, so none always runs first.

Run alone: python -m benchmarks.bench_tracing [--quick] [--rounds N]. Each run (one system started, measured and
stopped) takes about 1.5 minutes with --quick (100 Deployments), longer with 300; three rounds by default
(`benchmarks.run`: two rounds, quick size).

`--pair` measures CPU per thread instead (benchmarks.tracing_pair, about a minute and a half): two systems at once,
one traced, each placing a burst of ConfigMaps on every member at the same moment; on a shared machine the steadiest
signal of what tracing costs per object. `--quick`: 200 ConfigMaps instead of 500.

`--spans` measures one span instead (a few seconds): the CPU of this process per traced call on an asyncio loop (a
child span of a remote parent with four attributes, an await inside, one attribute set after, its `traceparent`
formatted), tracing off, with the OpenTelemetry SDK's span and batch processor, and with TMC's light span, both
exporting to the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import time

from benchmarks import bench_propagation, tracing_pair
from benchmarks.otlp_sink import SinkProcess
from benchmarks.report import Row, row, table
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
    """The goal as a bound on the tracing-on value."""
    if prefix == GOAL_ROWS[0]:
        return ("<=", round(off * 1.1, 3))
    if prefix == GOAL_ROWS[1]:
        return (">=", round(off * 0.9, 3))
    return None


def _settings(quick: bool, clusters: int | None) -> bench_propagation.PropagationSettings:
    # A burst of 10,000 copies (about 5 s) in both: one of 3,000 (under 2 s) is mostly its start, and its rate
    # moved by 20 % between identical runs.
    cfg = dataclasses.replace(bench_propagation.PropagationSettings().quick(), burst=1000)
    if not quick:
        cfg = dataclasses.replace(cfg, deployments=300)
    if clusters:
        cfg = dataclasses.replace(cfg, clusters=clusters)
    return cfg


def _find(rows: list[Row], prefix: str) -> Row | None:
    return next((r for r in rows if str(r["name"]).startswith(prefix)), None)


# The runs of one round: label, and whether the simulated clusters trace their requests too.
RUNS = (("off", None), ("on", False), ("on, members too", True))


def run(
    quick: bool = False, clusters: int | None = None, on_first: bool = False, rounds: int = 1
) -> tuple[list[Row], list[str]]:
    """Rounds of three propagation runs, each on a system of its own: tracing off; on in TMC's processes (hub,
    syncers); on in the simulated member clusters too. The goal compares the first two: the members stand in for
    real clusters, whose API servers trace (or not) by their own configuration, so their spans are not what turning
    on TMC's tracing costs; the third run shows what they add on this machine, where they share the two cores with
    everything else. Each round starts with the next run (`on_first`: the first round starts with tracing on), and
    each row is the median over the rounds: two systems started the same way differ by 10-15 % in CPU per object,
    which one run of each cannot tell from what tracing costs."""
    cfg = _settings(quick, clusters)
    results: dict[str, list[tuple[list[Row], list[str]]]] = {label: [] for label, _ in RUNS}
    orders: list[list[tuple[str, bool | None]]] = []
    sink = SinkProcess()
    try:
        flags = ("--tracing-endpoint", sink.endpoint, "--tracing-sample-ratio", "1")
        for r in range(rounds):
            shift = (r + (1 if on_first else 0)) % len(RUNS)
            orders.append([*RUNS[shift:], *RUNS[:shift]])
            for label, members in orders[-1]:
                print(f"... tracing: round {r + 1}, propagation with tracing {label}", flush=True)
                if members is None:
                    results[label].append(bench_propagation.run(cfg))
                    continue
                tracing.configure("tmc-bench", endpoint=sink.endpoint, sample_ratio=1.0, env={})
                try:
                    traced = dataclasses.replace(cfg, tracing=flags, member_tracing=None if members else ())
                    results[label].append(bench_propagation.run(traced))
                finally:
                    tracing.shutdown()
    finally:
        received = sink.stats()
        sink.close()
    notes = [
        f"tracing: {cfg.deployments} Deployments and a burst of {cfg.burst} ConfigMaps x {cfg.clusters} members per "
        f"run, {rounds} round(s) in the orders "
        + "; ".join(", ".join(label for label, _ in order) for order in orders)
        + f"; rows are medians over the rounds; the sink received {received['requests']:,} exports "
        f"({received['bytes'] / 1e6:.1f} MB of spans)",
        "tracing: spans by process and name: "
        + ", ".join(f"{name} {count:,}" for name, count in sorted(received["spans"].items(), key=lambda i: -i[1])),
    ]
    rows: list[Row] = []
    for label, _ in RUNS[1:]:
        for prefix in COMPARED:
            on, off = _median(results[label], prefix), _median(results["off"], prefix)
            if on is None or off is None:
                continue
            rows.append(
                row(
                    f"tracing {label}: {on[0]}",
                    on[1],
                    on[2],
                    goal=_goal(prefix, off[1]) if label == "on" else None,
                    baseline=off[1],
                    baseline_name="tracing off, same run",
                )
            )
            if prefix in GOAL_ROWS and off[1] > 0:
                each = ", ".join(f"{v:,.3g}" for v in _values(results[label], prefix))
                base = ", ".join(f"{v:,.3g}" for v in _values(results["off"], prefix))
                notes.append(
                    f"tracing {label}: {prefix.split(',')[0]} {on[1] / off[1] - 1:+.0%} (rounds: {each}; off: {base})"
                )
    # Where the CPU went, per process group, in each run: what tracing costs each kind of process.
    for label, _ in RUNS:
        for _, run_notes in results[label]:
            notes += [f"tracing {label}: {n}" for n in run_notes if "CPU per downstream object" in n]
    return rows, notes


def _values(results: list[tuple[list[Row], list[str]]], prefix: str) -> list[float]:
    found = (_find(rows, prefix) for rows, _ in results)
    return [float(r["value"]) for r in found if r is not None and not math.isnan(float(r["value"]))]


def _median(results: list[tuple[list[Row], list[str]]], prefix: str) -> tuple[str, float, str] | None:
    """(name, median value, unit) of a row over the rounds."""
    first = next((r for r in (_find(rows, prefix) for rows, _ in results) if r is not None), None)
    values = _values(results, prefix)
    if first is None or not values:
        return None
    return str(first["name"]), statistics.median(values), str(first["unit"])


SPAN_CALLS = 20_000
_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _calls(n: int) -> None:
    parent = tracing.parse_traceparent(_PARENT)
    for i in range(n):
        attributes = {"workload.type": "configmaps", "workload.name": f"c{i}", "workload.namespace": "default"}
        attributes["cluster.name"] = "cluster-1"
        if not tracing.enabled:  # as every call site does
            await asyncio.sleep(0)
            continue
        with tracing.span("workload-sync", parent=parent, kind=tracing.SpanKind.CLIENT, attributes=attributes) as s:
            tracing.current_traceparent()
            await asyncio.sleep(0)
            s.set_attribute("http.response.status_code", 201)


def _cpu_per_call(n: int) -> float:
    """Microseconds of this process's CPU (every thread: the export too) per traced call, flushed."""
    asyncio.run(_calls(200))  # warm caches and the export path
    tracing.force_flush()
    started = time.process_time()
    asyncio.run(_calls(n))
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
        tracing.shutdown()
        spans = sink.stats()["spans"].get("tmc-bench: workload-sync", 0)
    finally:
        tracing.shutdown()
        sink.close()
    note = f"{calls:,} calls per variant; the sink received {spans:,} spans from the light tracer"
    return [
        row("traced call, tracing off", off, "us CPU"),
        row("traced call, SDK span + batch export", sdk_cost, "us CPU", baseline=off, baseline_name="tracing off"),
        row("traced call, light span + batch export", light, "us CPU", baseline=sdk_cost, baseline_name="SDK span"),
        row("light span overhead", light - off, "us CPU", baseline=sdk_cost - off, baseline_name="SDK span", note=note),
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
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three runs (rows are medians)")
    args = parser.parse_args()
    if args.spans:
        rows = span_cost()
        print(table(rows))
        print("note:", rows[-1]["note"])
        return
    if args.pair:
        rows, notes = tracing_pair.run(200 if args.quick else 500, args.clusters or 10)
    else:
        rows, notes = run(args.quick, args.clusters, args.on_first, args.rounds)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
