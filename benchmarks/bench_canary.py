"""Canary abort latency across clusters: from the analysis verdict on the hub to weight 0 in every member's
VirtualService.

A hub, `clusters` simulated clusters and their syncers, started by `tmc up`'s own code (`start_system`, which installs
the mesh CRDs on the hub and syncs them). One Placement places namespace `bench-canary` on every cluster, with a
Deployment, its Service, a VirtualService and a CanaryDeployment whose analysis is one web metric measured every
second against a local HTTP endpoint this process serves. Each trial edits the Deployment's image (a new canary),
waits until every member's VirtualService carries the canary weight 20, then makes the endpoint answer "bad":

- verdict: the hub first shows it (its VirtualService at weight 0, written in the verdict's reconcile, or the
  CanaryDeployment `Failed`), polled every 10 ms;
- arrival: every member's copy of the VirtualService at weight 0, each member polled every 10 ms;
- latency = the last member's arrival minus the verdict.

Same-run baseline: an annotation edit of a hub ConfigMap placed on the same clusters, timed the same way from the
hub's 200 to its arrival in the last member: what the syncers take for any object, which the canary's own cost
comes on top of.

Then, on the same system, 20 concurrent canaries (phase `fleet`): 20 Deployments in one namespace placed on every
cluster, each with its Service, VirtualService and CanaryDeployment whose steps are setWeight 20, pause, setWeight 50,
pause, setWeight 80, pause (each pause `pause` seconds), and a background web metric measured every 2 s. Every round
edits all 20 images at once; the CanaryDeployments are listed every 50 ms and the moment each one enters each step
is noted:

- per-step overhead: how much longer than its configured duration each step took (the pauses' duration, 0 for a
  setWeight), from the step the weight first applies (the canary's pods are Ready) to the last; goal <= 1 s (p99);
- start: image edit to the first weight written (includes 20 x 10 canary pods becoming Ready) and promotion: end of
  the last step to Succeeded (the stable copies rolling to the new version in every cluster);
- controller CPU: the hub process's cores during the rounds, against the same hub idle for 10 s (5 s quick) with the
  20 canaries Succeeded and the same 50 ms listing running (the same-run baseline).

Run alone: python -m benchmarks.bench_canary [--quick] [--clusters N] [--trials N] [--phase abort|fleet|all].
Defaults: 10 clusters, 20 trials and 3 rounds, about 4.5 minutes; --quick: 5 trials and 1 round, about 2 minutes.
Needs the mesh CRDs (deploy/crds/), which `tmc up` installs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
from typing import Any

from aiohttp import web

from benchmarks.cpu import process_cpu
from benchmarks.prop_support import ensure, pct, placement, until
from benchmarks.report import Row, row, table
from tmc.cli.up import free_port, start_system
from tmc.client import ApiError, KubeClient, load_kubeconfig

HUB = "/clusters/root"
NS = "bench-canary"
GOAL = ("<=", 2000.0)  # ms, p99
FLEET_NS = "bench-canaries"
STEP_GOAL = ("<=", 1000.0)  # ms, p99 of a step's time beyond its configured duration
VS = "apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/web"


@dataclasses.dataclass
class CanarySettings:
    clusters: int = 10
    trials: int = 20
    canaries: int = 20
    rounds: int = 3
    pause: float = 3.0  # seconds, each of the three pause steps
    idle: float = 10.0  # seconds of the idle baseline
    phases: tuple[str, ...] = ("abort", "fleet")

    def quick(self) -> CanarySettings:
        return dataclasses.replace(self, trials=5, rounds=1, idle=5.0)


def _manifests(endpoint: str) -> list[tuple[str, dict[str, Any]]]:
    labels = {"app": "web"}
    ns = f"{HUB}/api/v1/namespaces/{NS}"
    return [
        (f"{HUB}/api/v1/namespaces", {"metadata": {"name": NS, "labels": {"tmc-bench": "bench-canary"}}}),
        (f"{HUB}/apis/scheduling.kcp.io/v1alpha1/placements", placement("bench-canary", "bench-canary")),
        (
            f"{HUB}/apis/apps/v1/namespaces/{NS}/deployments",
            {
                "metadata": {"name": "web", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "web", "image": "v0"}]},
                    },
                },
            },
        ),
        (f"{ns}/services", {"metadata": {"name": "web"}, "spec": {"selector": labels, "ports": [{"port": 80}]}}),
        (f"{ns}/configmaps", {"metadata": {"name": "probe"}, "data": {}}),
        (
            f"{HUB}/apis/tmc.kcp.io/v1alpha1/namespaces/{NS}/canarydeployments",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "trafficRouting": {"istio": {"virtualService": {"name": "web"}}},
                    "steps": [{"setWeight": 20}, {"pause": {}}],
                    "analysis": {
                        "metrics": [
                            {
                                "name": "health",
                                "interval": "1s",
                                "successCondition": "result == true",
                                "provider": {"web": {"url": endpoint, "jsonPath": "{$.ok}"}},
                            }
                        ]
                    },
                },
            },
        ),
    ]


class Endpoint:
    """The analysis' web endpoint: {"ok": true} until told otherwise."""

    def __init__(self) -> None:
        self.ok = True
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()

        async def answer(_: web.Request) -> web.Response:
            return web.json_response({"ok": self.ok})

        app.router.add_get("/", answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _canary_weight(vs: dict[str, Any] | None) -> int | None:
    for route in ((vs or {}).get("spec") or {}).get("http") or []:
        for dest in route.get("route") or []:
            if (dest.get("destination") or {}).get("host") == "web-canary":
                return int(dest.get("weight") or 0)
    return None


async def _get(client: KubeClient, path: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = await client.get(path)
        return out
    except ApiError as e:
        if e.code == 404:
            return None
        raise


async def _member_vs(member: KubeClient) -> dict[str, Any] | None:
    """A member's copy (in its kcp-<hash> namespace: listed across namespaces)."""
    try:
        listed = await member.get("/apis/networking.istio.io/v1/virtualservices")
    except ApiError:
        return None
    items = listed.get("items") or []
    return items[0] if items else None


async def _arrivals(members: list[KubeClient], done: Any, timeout: float = 30.0) -> float:
    """Monotonic time the last member satisfied `done` (each polled every 10 ms)."""

    async def one(member: KubeClient) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await done(member):
                return time.monotonic()
            await asyncio.sleep(0.01)
        raise TimeoutError("benchmark: a member did not catch up")

    return max(await asyncio.gather(*(one(m) for m in members)))


async def _bench(hub: KubeClient, members: list[KubeClient], endpoint: Endpoint, cfg: CanarySettings) -> list[Row]:
    for path, body in _manifests(endpoint.url):
        await ensure(hub, path, body)
    cd_path = f"{HUB}/apis/tmc.kcp.io/v1alpha1/namespaces/{NS}/canarydeployments/web"
    vs_path = f"{HUB}/{VS.format(ns=NS)}"

    async def phase() -> str:
        cd = await _get(hub, cd_path)
        return str(((cd or {}).get("status") or {}).get("phase", ""))

    await until(lambda: _is(phase, "Succeeded"), 120, "the canary's stable copy in every cluster")
    latencies: list[float] = []
    baselines: list[float] = []
    for trial in range(cfg.trials):
        endpoint.ok = True
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"v{trial + 1}"}]}}}}
        await hub.patch(f"{HUB}/apis/apps/v1/namespaces/{NS}/deployments/web", patch)

        async def weight_is(member: KubeClient, w: int) -> bool:
            return _canary_weight(await _member_vs(member)) == w

        await _arrivals(members, lambda m: weight_is(m, 20), timeout=60)
        endpoint.ok = False

        async def verdict() -> bool:
            return _canary_weight(await _get(hub, vs_path)) == 0 or await phase() in ("Failed", "RolledBack")

        seen = await until(verdict, 30, "the verdict", every=0.01)
        last = await _arrivals(members, lambda m: weight_is(m, 0))
        latencies.append((last - seen) * 1000)
        await until(lambda: _is(phase, "RolledBack"), 30, "the rollback")

        # Baseline: any placed object's edit, hub to the last member.
        token = str(time.time_ns())
        await hub.patch(f"{HUB}/api/v1/namespaces/{NS}/configmaps/probe", {"metadata": {"annotations": {"t": token}}})
        sent = time.monotonic()

        async def probe_arrived(member: KubeClient, token: str = token) -> bool:
            listed = await member.get("/api/v1/configmaps", params={"fieldSelector": "metadata.name=probe"})
            items = listed.get("items") or []
            return any((i["metadata"].get("annotations") or {}).get("t") == token for i in items)

        baselines.append((await _arrivals(members, probe_arrived) - sent) * 1000)
    base = statistics.median(baselines)
    note = f"{cfg.trials} trials, {cfg.clusters} clusters"
    return [
        row(
            "canary verdict to weight 0 in every member p50",
            pct(latencies, 0.5),
            "ms",
            baseline=base,
            baseline_name="placed ConfigMap edit, hub to last member, p50",
            note=note,
        ),
        row(
            "canary verdict to weight 0 in every member p99",
            pct(latencies, 0.99),
            "ms",
            goal=GOAL,
            baseline=pct(baselines, 0.99),
            baseline_name="placed ConfigMap edit, hub to last member, p99",
            note=note,
        ),
    ]


def _fleet_manifests(cfg: CanarySettings, endpoint: str) -> list[tuple[str, dict[str, Any]]]:
    ns = f"{HUB}/api/v1/namespaces/{FLEET_NS}"
    out: list[tuple[str, dict[str, Any]]] = [
        (f"{HUB}/api/v1/namespaces", {"metadata": {"name": FLEET_NS, "labels": {"tmc-bench": FLEET_NS}}}),
        (f"{HUB}/apis/scheduling.kcp.io/v1alpha1/placements", placement(FLEET_NS, FLEET_NS)),
    ]
    steps: list[dict[str, Any]] = []
    for weight in (20, 50, 80):
        steps += [{"setWeight": weight}, {"pause": {"duration": f"{cfg.pause:g}s"}}]
    for i in range(cfg.canaries):
        name, labels = f"web-{i}", {"app": f"web-{i}"}
        template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "v0"}]}}
        out += [
            (
                f"{HUB}/apis/apps/v1/namespaces/{FLEET_NS}/deployments",
                {
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
                },
            ),
            (f"{ns}/services", {"metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 80}]}}),
            (
                f"{HUB}/apis/tmc.kcp.io/v1alpha1/namespaces/{FLEET_NS}/canarydeployments",
                {
                    "metadata": {"name": name},
                    "spec": {
                        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "trafficRouting": {"istio": {"virtualService": {"name": name}}},
                        "steps": steps,
                        "analysis": {
                            "metrics": [
                                {
                                    "name": "health",
                                    "interval": "2s",
                                    "successCondition": "result == true",
                                    "provider": {"web": {"url": endpoint, "jsonPath": "{$.ok}"}},
                                }
                            ]
                        },
                    },
                },
            ),
        ]
    return out


class StepClock:
    """Lists the CanaryDeployments every 50 ms and notes when each first shows each (revision, step) and when it
    is Succeeded on a revision."""

    def __init__(self, hub: KubeClient) -> None:
        self.hub = hub
        self.seen: dict[tuple[str, str, int], float] = {}  # (name, canary revision, step) -> first seen
        self.done: dict[tuple[str, str], float] = {}  # (name, stable revision) -> Succeeded first seen
        self.task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        path = f"{HUB}/apis/tmc.kcp.io/v1alpha1/namespaces/{FLEET_NS}/canarydeployments"
        while True:
            listed = await self.hub.get(path)
            now = time.monotonic()
            for cd in listed.get("items") or []:
                name, st = cd["metadata"]["name"], cd.get("status") or {}
                if st.get("canaryRevision") and st.get("phase") in ("Progressing", "Analyzing", "Paused"):
                    self.seen.setdefault((name, st["canaryRevision"], int(st.get("currentStepIndex") or 0)), now)
                if st.get("phase") == "Succeeded":
                    self.done.setdefault((name, str(st.get("stableRevision"))), now)
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self.task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def succeeded(self, names: list[str]) -> dict[str, tuple[str, float]]:
        """name -> (stable revision, when) of the latest Succeeded seen."""
        out: dict[str, tuple[str, float]] = {}
        for (name, rev), at in self.done.items():
            if name in names and (name not in out or at > out[name][1]):
                out[name] = (rev, at)
        return out


async def _fleet(hub: KubeClient, pid: int, endpoint: Endpoint, cfg: CanarySettings) -> list[Row]:
    endpoint.ok = True  # the abort phase leaves it answering "bad"
    for path, body in _fleet_manifests(cfg, endpoint.url):
        await ensure(hub, path, body)
    names = [f"web-{i}" for i in range(cfg.canaries)]
    clock = StepClock(hub)
    clock.start()
    try:
        await until(lambda: _all_done(clock, names, {}), 180, "the 20 canaries' stable copies")
        # Same-run baseline: the hub with the canaries Succeeded (their background analysis stopped) and this
        # benchmark's listing running.
        idle_cpu, idle_wall = process_cpu(pid), time.monotonic()
        await asyncio.sleep(cfg.idle)
        idle = (process_cpu(pid) - idle_cpu) / (time.monotonic() - idle_wall)
        durations = [0.0, cfg.pause] * 3
        overheads: list[float] = []
        by_pause: list[list[float]] = [[], [], []]
        starts: list[float] = []
        promotions: list[float] = []
        busy, wall = 0.0, 0.0
        for rnd in range(cfg.rounds):
            before = clock.succeeded(names)
            cpu0, t0 = process_cpu(pid), time.monotonic()
            image = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": f"v{rnd + 1}"}]}}}}
            await asyncio.gather(
                *(hub.patch(f"{HUB}/apis/apps/v1/namespaces/{FLEET_NS}/deployments/{n}", image) for n in names)
            )
            sent = time.monotonic()

            async def promoted(before: dict[str, tuple[str, float]] = before) -> bool:
                return await _all_done(clock, names, before)

            await until(promoted, 120 + 10 * cfg.pause, "the 20 promotions")
            busy += process_cpu(pid) - cpu0
            wall += time.monotonic() - t0
            after = clock.succeeded(names)
            for n in names:
                rev = after[n][0]
                at = {i: t for (name, r, i), t in clock.seen.items() if name == n and r == rev}
                # A setWeight step is passed in the reconcile that writes its weight, so a listing shows the pauses
                # (1, 3, 5) and then the promotion (6): each pause's time runs from its weight being written to the
                # next weight (or the promotion) being written.
                if not all(i in at for i in (1, 3, 5, 6)):
                    continue  # a step passed between two listings: not timed
                starts.append((at[1] - sent) * 1000)
                for k, (i, j) in enumerate(((1, 3), (3, 5), (5, 6))):
                    overheads.append((at[j] - at[i] - durations[i]) * 1000)
                    by_pause[k].append(overheads[-1])
                promotions.append((after[n][1] - at[6]) * 1000)
    finally:
        await clock.stop()
    note = (
        f"{cfg.canaries} canaries x {cfg.rounds} rounds, {cfg.clusters} clusters, 3 pauses of {cfg.pause:g}s; "
        f"machine load average {os.getloadavg()[0]:.1f} at the end"
    )
    pauses = cfg.pause * 3
    return [
        row(
            "20 canaries: step time beyond its duration p50",
            pct(overheads, 0.5),
            "ms",
            baseline=cfg.pause * 1000,
            baseline_name="configured pause",
            note=note + f"; {len(overheads)} steps timed",
        ),
        row(
            "20 canaries: step time beyond its duration p99",
            pct(overheads, 0.99),
            "ms",
            goal=STEP_GOAL,
            baseline=cfg.pause * 1000,
            baseline_name="configured pause",
            note=note
            + "; p50/p99 by pause: "
            + ", ".join(f"{k + 1}: {pct(v, 0.5):.0f}/{pct(v, 0.99):.0f} ms" for k, v in enumerate(by_pause)),
        ),
        row("20 canaries: image edit to first weight p50", pct(starts, 0.5), "ms", note=note),
        row(
            "20 canaries: last pause to Succeeded (promotion) p50",
            pct(promotions, 0.5),
            "ms",
            note=note + f"; all pauses of one canary {pauses:g}s",
        ),
        row(
            "20 canaries: hub CPU during the rounds",
            busy / wall if wall else 0.0,
            "cores",
            baseline=idle,
            baseline_name="hub idle, canaries Succeeded",
            note=note + f"; {busy:.1f} CPU s over {wall:.1f} s",
        ),
    ]


async def _all_done(clock: StepClock, names: list[str], before: dict[str, tuple[str, float]]) -> bool:
    """Every canary Succeeded on a revision other than the one it was on (`before`), or at all when empty."""
    now = clock.succeeded(names)
    return all(n in now and (n not in before or now[n][0] != before[n][0]) for n in names)


async def _is(probe: Any, value: str) -> bool:
    return bool(await probe() == value)


def run(cfg: CanarySettings | None = None) -> list[Row]:
    cfg = cfg or CanarySettings()
    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tmc-bench-canary-"))
        system = start_system(data_dir, secure_port=free_port(), clusters=cfg.clusters, ready_delay="200ms")
        stack.callback(system.stop)

        async def main() -> list[Row]:
            config = load_kubeconfig(system.hub_kubeconfig)
            hub = KubeClient(config, base_url=config.base_url)
            members = [KubeClient(load_kubeconfig(m.kubeconfig)) for m in system.members]
            endpoint = Endpoint()
            await endpoint.start()
            try:
                crds = await hub.get(f"{HUB}/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                names = {c["metadata"]["name"] for c in crds.get("items") or []}
                if "virtualservices.networking.istio.io" not in names:
                    raise RuntimeError(
                        "the hub serves no VirtualService CRD: this tmc up does not install deploy/crds/"
                    )
                rows = await _bench(hub, members, endpoint, cfg) if "abort" in cfg.phases else []
                if "fleet" in cfg.phases:
                    assert system.hub.process is not None
                    rows += await _fleet(hub, system.hub.process.pid, endpoint, cfg)
                return rows
            finally:
                await endpoint.stop()
                await hub.close()
                for m in members:
                    await m.close()

        return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--phase", choices=("abort", "fleet", "all"), default="all")
    args = parser.parse_args()
    phases = ("abort", "fleet") if args.phase == "all" else (args.phase,)
    cfg = CanarySettings(clusters=args.clusters, phases=phases)
    cfg = cfg.quick() if args.quick else cfg
    if args.trials:
        cfg = dataclasses.replace(cfg, trials=args.trials)
    rows = run(cfg)
    print(table(rows))
    for r in rows:
        if r.get("note"):
            print(f"note: {r['name']}: {r['note']}")


if __name__ == "__main__":
    main()
