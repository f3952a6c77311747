"""What CEL validation rules cost a write: creates of a custom resource whose CRD has 10 `x-kubernetes-validations`
rules against creates of the same resource from a CRD with the same schema and no rules, in one run. Two rule
sets: `RULES` exercises each Kubernetes library family (regex, lists, quantity, URL: Python functions called from
cel-cpp), `NATIVE_RULES` checks similar things with CEL's built-ins only. A second CRD without rules is the
control: its ratio to the first shows how far two identical kinds differ in the same run.

1. In process: `admit()` (defaulting, schema validation, rules) of one object, per call, against no rules.
2. Over HTTP against a hub subprocess: POSTs with generateName at 32 connections, alternating rounds (no rules,
   library rules, built-in rules, the control; each round starts with the next kind) so that all see the same
   machine; rates are totals over the rounds and each ratio is reported against the goal of at least 0.8. The
   hub's CPU time per create (from /proc) is reported too: it depends much less on what else the machine runs than
   the rate does.

Run alone: python -m benchmarks.bench_cel [--quick]. About 2 minutes (--quick: 40 s).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import orjson

from benchmarks.bench_http import _call, _ensure_namespaces, _session
from benchmarks.cpu import CpuWindow, process_cpu
from benchmarks.loadgen import Load, LoadResult, run_load
from benchmarks.report import Row, row, table
from benchmarks.servers import Server, start_hub

NAMESPACE = "bench-cel"
GROUP = "bench.tmc.io"
RULES = [
    {"rule": "self.replicas >= 0 && self.replicas <= self.maxReplicas", "message": "replicas out of range"},
    {"rule": "self.image.matches('^[a-z0-9./-]+(:[a-zA-Z0-9._-]+)?$')", "message": "bad image"},
    {"rule": "self.ports.all(p, p.port > 0 && p.port < 65536)", "fieldPath": ".ports"},
    {"rule": "self.ports.map(p, p.name).isSorted()", "message": "ports sorted by name"},
    {"rule": "quantity(self.memory).isLessThan(quantity('64Gi'))", "reason": "FieldValueForbidden"},
    {"rule": "isURL(self.endpoint) && url(self.endpoint).getScheme() == 'https'"},
    {"rule": "self.mode in ['fast', 'slow']", "messageExpression": "'unknown mode ' + self.mode"},
    {"rule": "self.tags.all(t, t.size() <= 32)"},
    {"rule": "!has(self.paused) || !self.paused || self.replicas == 0"},
    {"rule": "self.mode == oldSelf.mode", "message": "field is immutable"},
]
NATIVE_RULES = [
    *RULES[:3],
    {"rule": "self.ports.all(p, p.name.size() < 16)"},
    {"rule": "self.memory.endsWith('Mi') || self.memory.endsWith('Gi')", "reason": "FieldValueForbidden"},
    {"rule": "self.endpoint.startsWith('https://')"},
    *RULES[6:],
]


@dataclass
class CelSettings:
    connections: int = 32
    warmup: float = 1.0
    seconds: float = 4.0  # per round and kind
    rounds: int = 6
    admit_calls: int = 3000

    def quick(self) -> CelSettings:
        return CelSettings(self.connections, 0.5, 2.0, 3, 1000)


def schema(rules: list[dict[str, Any]] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
            "image": {"type": "string", "maxLength": 256},
            "memory": {"type": "string", "maxLength": 32},
            "endpoint": {"type": "string", "maxLength": 256},
            "mode": {"type": "string", "maxLength": 16},
            "paused": {"type": "boolean"},
            "tags": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64}},
            "ports": {
                "type": "array",
                "maxItems": 16,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "maxLength": 15}, "port": {"type": "integer"}},
                },
            },
        },
    }
    if rules:
        spec["x-kubernetes-validations"] = copy.deepcopy(rules)
    return {"type": "object", "properties": {"spec": spec}}


def crd(plural: str, kind: str, rules: list[dict[str, Any]] | None) -> dict[str, Any]:
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema(rules)}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [version],
        },
    }


def custom_resource(kind: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind,
        "metadata": {"generateName": "bench-", "labels": {"app": "bench"}},
        "spec": {
            "replicas": 3,
            "maxReplicas": 10,
            "image": "registry.example.com/team/app:1.2.3",
            "memory": "512Mi",
            "endpoint": "https://api.example.com/v1",
            "mode": "fast",
            "tags": ["a", "b", "c"],
            "ports": [{"name": "grpc", "port": 9090}, {"name": "http", "port": 80}, {"name": "metrics", "port": 9100}],
        },
    }


# (plural, kind, rules, label)
KINDS: tuple[tuple[str, str, list[dict[str, Any]] | None, str], ...] = (
    ("plainwidgets", "PlainWidget", None, "no rules"),
    ("celwidgets", "CelWidget", RULES, "10 CEL rules, 4 calling Kubernetes libraries"),
    ("nativewidgets", "NativeWidget", NATIVE_RULES, "10 CEL rules, built-ins only"),
    # The control: a second kind without rules, measured like the others. How far its ratio strays from 1 is the
    # resolution of every ratio in the same run.
    ("controlwidgets", "ControlWidget", None, "no rules, control"),
)


def bench_admit(cfg: CelSettings) -> list[Row]:
    """Per-call cost of admission in process (no HTTP, no storage), each rule set against no rules."""
    from tmc.registry.admission import admit
    from tmc.registry.resources import crd_resources
    from tmc.registry.service import WriteOptions

    timings: dict[str, float] = {}
    for plural, kind, rules, label in KINDS:
        info = crd_resources(crd(plural, kind, rules))[0]
        obj = custom_resource(kind)
        obj["metadata"].update(name="bench-x", namespace=NAMESPACE)
        admit(info, copy.deepcopy(obj), None, WriteOptions())  # compile, warm caches
        objs = [copy.deepcopy(obj) for _ in range(cfg.admit_calls)]
        started = time.process_time()  # CPU time: the machine may be busy with other work
        for o in objs:
            admit(info, o, None, WriteOptions())
        timings[label] = (time.process_time() - started) / cfg.admit_calls * 1e6
    base = KINDS[0][3]
    rows = [row(f"CR admission in process, {base}", timings[base], "us/object")]
    for *_, label in KINDS[1:]:
        rows.append(
            row(
                f"CR admission in process, {label}",
                timings[label],
                "us/object",
                baseline=timings[base],
                baseline_name="no rules, same run",
            )
        )
    return rows


async def _setup(hub: Server) -> None:
    await _ensure_namespaces(hub, [NAMESPACE])
    async with _session(hub) as s:
        for plural, kind, rules, _ in KINDS:
            status, body = await _call(
                s,
                "POST",
                "/clusters/root/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                crd(plural, kind, rules),
            )
            if status not in (201, 409):
                raise RuntimeError(f"creating CRD {plural}: {status} {body[:300]!r}")
        # one violating create, to be sure the rules are enforced in this run
        bad = custom_resource("CelWidget")
        bad["spec"]["replicas"] = 50
        status, body = await _call(s, "POST", f"/clusters/root/apis/{GROUP}/v1/namespaces/{NAMESPACE}/celwidgets", bad)
        if status != 422:
            raise RuntimeError(f"a create breaking a rule was answered {status}: {body[:300]!r}")


def _load(hub: Server, plural: str, kind: str, connections: int, seconds: float) -> LoadResult:
    body = orjson.dumps(custom_resource(kind)).decode()
    load = Load("POST", f"/clusters/root/apis/{GROUP}/v1/namespaces/{NAMESPACE}/{plural}", body, 201)
    return run_load(hub.base_url, hub.token, hub.ssl_context(), load, connections=connections, duration=seconds)


def bench_http(hub: Server, cfg: CelSettings) -> tuple[list[Row], list[str]]:
    asyncio.run(_setup(hub))
    for plural, kind, _, _ in KINDS:
        _load(hub, plural, kind, cfg.connections, cfg.warmup)
    ok = {label: 0 for *_, label in KINDS}
    seconds = {label: 0.0 for *_, label in KINDS}
    cpu = {label: 0.0 for *_, label in KINDS}
    p99: dict[str, list[float]] = {label: [] for *_, label in KINDS}
    notes: list[str] = []
    with CpuWindow([hub.pid]) as window:
        for i in range(cfg.rounds):
            # each round starts with another kind: none always runs on the smallest store or first after a pause
            for plural, kind, _, label in KINDS[i % len(KINDS) :] + KINDS[: i % len(KINDS)]:
                before = process_cpu(hub.pid)
                res = _load(hub, plural, kind, cfg.connections, cfg.seconds)
                cpu[label] += process_cpu(hub.pid) - before
                ok[label] += res.ok
                seconds[label] += res.seconds
                p99[label].append(res.p99_ms)
                if res.bad or res.errors:
                    notes.append(f"cel creates ({kind}): {res.bad} non-201 responses, {res.errors} socket errors")
    notes.append(f"cel: other processes on the machine used {window.other:.2f} cores on average during the creates")
    rate = {k: ok[k] / seconds[k] if seconds[k] else 0.0 for k in ok}
    # hub CPU per create: what the rules cost the hub, much less sensitive to other load than the rate
    per = {k: cpu[k] / ok[k] * 1e6 if ok[k] else 0.0 for k in ok}
    c = cfg.connections
    base = KINDS[0][3]
    rows = [row(f"CR creates, {base}, {c} conns", rate[base], "creates/s")]
    for _, _, rules, label in KINDS[1:]:
        rows += [
            row(
                f"CR creates, {label}, {c} conns",
                rate[label],
                "creates/s",
                baseline=rate[base],
                baseline_name="no rules, same run",
            ),
            row(
                f"CR creates ratio, {label} / no rules",
                rate[label] / rate[base] if rate[base] else 0.0,
                "ratio",
                goal=(">=", 0.8) if rules else None,
            ),
            row(
                f"hub CPU per CR create, {label}",
                per[label],
                "us",
                baseline=per[base],
                baseline_name="no rules, same run",
            ),
            row(
                f"CR create p99, {label} (median of rounds)",
                statistics.median(p99[label]),
                "ms",
                baseline=statistics.median(p99[base]),
                baseline_name="no rules, same run",
            ),
        ]
    return rows, notes


def run(quick: bool = False, hub: Server | None = None) -> tuple[list[Row], list[str]]:
    cfg = CelSettings().quick() if quick else CelSettings()
    rows = bench_admit(cfg)
    if hub is not None:
        r, notes = bench_http(hub, cfg)
        return rows + r, notes
    with tempfile.TemporaryDirectory(prefix="tmc-bench-") as tmp:
        server = start_hub(os.path.join(tmp, "hub"))
        try:
            r, notes = bench_http(server, cfg)
        finally:
            server.stop()
    return rows + r, notes


def main() -> None:
    parser = argparse.ArgumentParser(description="Custom resource creates with 10 CEL rules against none")
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    args = parser.parse_args()
    rows, notes = run(args.quick)
    print(table(rows))
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
