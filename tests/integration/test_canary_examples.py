"""examples/canary/ applies to a hub with the real kubectl: app.yaml for real, the two versions with
--dry-run=server (both admitted); `kubectl get canarydeployments` shows the printer columns and the controller
takes the CanaryDeployment up (the stable copy and its Services appear)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.canary_env import CRDS, NS, OPTS, SERVICES, WS, Running, crd, running_hub
from tmc.apimachinery.resources import BUILTIN_RESOURCES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "canary"
DEPLOYMENTS = next(r for r in BUILTIN_RESOURCES if r.group == "apps" and r.plural == "deployments")
pytestmark = pytest.mark.usefixtures("kubectl_binary")


def kubectl(binary: str, r: Running, *args: str) -> str:
    done = subprocess.run(
        [binary, "--kubeconfig", r.kubeconfig, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_examples_apply(tmp_path: Path, kubectl_binary: str) -> None:
    with running_hub(tmp_path, seed=False) as r:

        async def install() -> None:
            await r.hub.service.create(
                CRDS, WS, None, crd("networking.istio.io", "VirtualService", "virtualservices"), OPTS
            )
            r.hub.registry.invalidate(WS)

        r.call(install())
        out = kubectl(kubectl_binary, r, "apply", "-f", str(EXAMPLES / "app.yaml"))
        assert "canarydeployment.tmc.kcp.io/web created" in out
        for name in ("good-version.yaml", "bad-version.yaml"):
            out = kubectl(kubectl_binary, r, "apply", "--dry-run=server", "-f", str(EXAMPLES / name))
            assert "deployment.apps/web configured (server dry run)" in out
        table = kubectl(kubectl_binary, r, "get", "canarydeployments", "-n", NS)
        assert table.split("\n")[0].split() == ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]
        r.until(lambda st: bool(st.get("stableRevision")))
        assert r.hub.store.get(DEPLOYMENTS.key(WS, NS, "web-primary")) is not None
        assert r.hub.store.get(SERVICES.key(WS, NS, "web-canary")) is not None
