"""What tracing costs end to end: the propagation benchmark (benchmarks.bench_propagation) twice in one run, tracing
off, then on with every span sampled (ratio 1.0) and exported over OTLP/HTTP to a sink in a process of its own; each
Deployment of the latency stream is created inside a span of this process, so it carries a sampled `traceparent` and
its whole path (hub request, placement decision, syncer writes, status reports) is traced.

Reported: propagation p50/p99, status p99 and the downstream apply rate with tracing on, each with the same run's
tracing-off value as its baseline, and how many spans the sink received.

Run alone: python -m benchmarks.bench_tracing [--quick]. The full run is two propagation runs of 300 Deployments
(about 4 minutes); --quick: 100 each (about 1.5 minutes).

`--on-first` swaps the order of the two runs: the second run of a pair tends to cost a little less CPU per object
(warm caches), which flatters whichever runs second.

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


def _settings(quick: bool, clusters: int | None) -> bench_propagation.PropagationSettings:
    cfg = bench_propagation.PropagationSettings().quick()
    if not quick:
        cfg = dataclasses.replace(cfg, deployments=300, burst=500)
    if clusters:
        cfg = dataclasses.replace(cfg, clusters=clusters)
    return cfg


def _find(rows: list[Row], prefix: str) -> Row | None:
    return next((r for r in rows if str(r["name"]).startswith(prefix)), None)


def run(quick: bool = False, clusters: int | None = None, on_first: bool = False) -> tuple[list[Row], list[str]]:
    cfg = _settings(quick, clusters)
    if not on_first:
        print("... tracing: propagation with tracing off", flush=True)
        off_rows, off_notes = bench_propagation.run(cfg)
    sink = SinkProcess()
    try:
        tracing.configure("tmc-bench", endpoint=sink.endpoint, sample_ratio=1.0, env={})
        print("... tracing: propagation with tracing on", flush=True)
        flags = ("--tracing-endpoint", sink.endpoint, "--tracing-sample-ratio", "1")
        on_rows, on_notes = bench_propagation.run(dataclasses.replace(cfg, tracing=flags))
    finally:
        tracing.shutdown()
        received = sink.stats()
        sink.close()
    if on_first:
        print("... tracing: propagation with tracing off", flush=True)
        off_rows, off_notes = bench_propagation.run(cfg)
    rows: list[Row] = []
    for prefix in COMPARED:
        on, off = _find(on_rows, prefix), _find(off_rows, prefix)
        if on is None or off is None:
            continue
        rows.append(
            row(
                f"tracing on: {on['name']}",
                float(on["value"]),
                str(on["unit"]),
                baseline=float(off["value"]),
                baseline_name="tracing off, same run",
            )
        )
    on_rate, off_rate = _find(rows, "tracing on: downstream"), _find(off_rows, "downstream objects applied/s, burst")
    notes = [
        f"tracing: {cfg.deployments} Deployments and a burst of {cfg.burst} ConfigMaps x {cfg.clusters} members per "
        f"run; the sink received {received['requests']:,} exports ({received['bytes'] / 1e6:.1f} MB of spans)",
        "tracing: spans by process and name: "
        + ", ".join(f"{name} {count:,}" for name, count in sorted(received["spans"].items(), key=lambda i: -i[1])),
    ]
    # Where the CPU went, per process group, in each run: what tracing costs each kind of process.
    for label, run_notes in (("off", off_notes), ("on", on_notes)):
        notes += [f"tracing {label}: {n}" for n in run_notes if "CPU per" in n]
    if on_rate is not None and off_rate is not None and float(off_rate["value"]) > 0:
        change = float(on_rate["value"]) / float(off_rate["value"]) - 1
        if not math.isnan(change):
            notes.append(f"tracing: apply rate {change:+.0%} with tracing on")
    return rows, notes


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
    # The second run of a pair tends to be a little cheaper (warm caches); swapping the order shows by how much.
    parser.add_argument("--on-first", action="store_true", help="run with tracing on first, then off")
    args = parser.parse_args()
    if args.spans:
        rows = span_cost()
        print(table(rows))
        print("note:", rows[-1]["note"])
        return
    if args.pair:
        rows, notes = tracing_pair.run(200 if args.quick else 500, args.clusters or 10)
    else:
        rows, notes = run(args.quick, args.clusters, args.on_first)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
