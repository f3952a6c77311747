"""examples/canary end to end on `tmc up` with Prometheus and simulated traffic: the bad version fails the analysis
on its measured 5xx rate and is rolled back with weight 0 in every member's VirtualService; the good version goes
through its steps and is promoted. `kubectl tmc rollout status` gives the verdict as its exit code.

Needs the simulated clusters' traffic and the mesh CRDs (deploy/crds/); skips where they are not present."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import TmcUp, free_port, wait_until
from tests.tools import require_prometheus

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "canary"
CLUSTERS = ("cluster-1", "cluster-2")
pytestmark = [
    pytest.mark.usefixtures("kubectl_binary"),
    pytest.mark.skipif(
        not (ROOT / "deploy" / "crds" / "istio-networking.yaml").exists(),
        reason="needs the simulated traffic and the mesh CRDs (deploy/crds/), which tmc up installs",
    ),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    require_prometheus("prometheus")
    args = ("--clusters", "2", "--sync-target-heartbeat-threshold", "5s", "--heartbeat-period", "1s")
    up = TmcUp(str(tmp_path_factory.mktemp("up-canary")), free_port(), *args, "--ready-delay", "200ms")
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


def rollout_status(system: TmcUp) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).parent / "kubectl-tmc"), "rollout", "status", "web", "-n", "shop"]
    env = {**os.environ, "KUBECONFIG": system.kubectl().kubeconfig}
    return subprocess.run([*cmd, "--timeout", "150s"], capture_output=True, text=True, timeout=180, env=env)


def member_weights(system: TmcUp, cluster: str) -> dict[str, int] | None:
    items = system.kubectl(cluster).json("get", "virtualservices", "-A")["items"]
    if not items:
        return None
    return {d["destination"]["host"]: d.get("weight", 0) for d in items[0]["spec"]["http"][0]["route"]}


def test_bad_version_rolled_back_everywhere_good_version_promoted(system: TmcUp) -> None:
    hub = system.kubectl()
    hub.run("apply", "-f", str(EXAMPLES / "app.yaml"))

    def status() -> dict[str, Any]:
        return dict(hub.json("get", "canarydeployment", "web", "-n", "shop").get("status") or {})

    first = wait_until(lambda: status().get("phase") == "Succeeded" and status(), timeout=60, what="initialised")
    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: member_weights(system, c) == {"web-primary": 100, "web-canary": 0},
            timeout=30,
            what=f"stable routing in {cluster}",
        )

    hub.run("apply", "-f", str(EXAMPLES / "bad-version.yaml"))
    verdict = rollout_status(system)
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    st = status()
    assert st["phase"] in ("Failed", "RolledBack") and st["weight"] == 0, st
    assert "error-rate" in st["message"] and "result < 0.05" in st["message"], st["message"]
    assert st["stableRevision"] == first["stableRevision"]
    for cluster in CLUSTERS:
        wait_until(
            lambda c=cluster: member_weights(system, c) == {"web-primary": 100, "web-canary": 0},
            timeout=30,
            what=f"weight 0 in {cluster}",
        )

    hub.run("apply", "-f", str(EXAMPLES / "good-version.yaml"))
    verdict = rollout_status(system)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    st = status()
    assert st["phase"] == "Succeeded" and st["stableRevision"] != first["stableRevision"]
    measured = [m for metric in st["analysis"]["metrics"] for m in metric["measurements"]]
    assert measured and {c["cluster"] for c in measured[-1]["clusters"]} == set(CLUSTERS)
    primary = hub.json("get", "deployment", "web-primary", "-n", "shop")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
