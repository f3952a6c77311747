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

Run alone: python -m benchmarks.bench_canary [--quick] [--clusters N] [--trials N]. Defaults: 10 clusters, 20 trials,
about 3 minutes; --quick: 5 trials, about 1.5 minutes. Needs the mesh CRDs (deploy/crds/), which `tmc up` installs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import tempfile
import time
from typing import Any

from aiohttp import web

from benchmarks.prop_support import ensure, pct, placement, until
from benchmarks.report import Row, row, table
from tmc.cli.up import free_port, start_system
from tmc.client import ApiError, KubeClient, load_kubeconfig

HUB = "/clusters/root"
NS = "bench-canary"
GOAL = ("<=", 2000.0)  # ms, p99
VS = "apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/web"


@dataclasses.dataclass
class CanarySettings:
    clusters: int = 10
    trials: int = 20

    def quick(self) -> CanarySettings:
        return dataclasses.replace(self, trials=5)


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
        app.router.add_get("/", lambda _: web.json_response({"ok": self.ok}))
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
                return await _bench(hub, members, endpoint, cfg)
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
    args = parser.parse_args()
    cfg = CanarySettings(clusters=args.clusters)
    cfg = cfg.quick() if args.quick else cfg
    if args.trials:
        cfg = dataclasses.replace(cfg, trials=args.trials)
    print(table(run(cfg)))


if __name__ == "__main__":
    main()
