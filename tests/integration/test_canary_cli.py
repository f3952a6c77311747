"""`kubectl tmc rollout` against an in-process hub (real HTTPS API, the real canary controller running in real
time) whose Deployments are reported Ready as the syncers would report them: get, list, pause, resume, promote,
abort, retry, promote --full and status, each judged by what the command prints and what the rollout does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.integration.canary_env import NS, Running, running_hub
from tmc.cli.plugin.main import cli


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with running_hub(tmp_path) as r:
        yield r


def tmc(r: Running, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-n", NS, "--kubeconfig", r.kubeconfig])


def phase(name: str, reason: str | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda st: st.get("phase") == name and (reason is None or st.get("pauseReason") == reason)


def test_rollout_commands_drive_a_canary(running: Running) -> None:
    r = running
    r.until(phase("Succeeded"))
    assert tmc(r, "rollout", "status", "web", "--timeout", "5s").exit_code == 0
    r.set_image("web:2")
    r.until(phase("Paused", "PauseStep"))

    out = tmc(r, "rollout", "get", "web")
    assert out.exit_code == 0, out.output
    assert "Paused (PauseStep)" in out.output and "canary 20, stable 80" in out.output
    assert "eu-1  weight 20  canary 2/2 ready  stable 2/2 ready" in out.output
    watched = tmc(r, "rollout", "get", "web", "-w", "--timeout", "1.2s")
    assert watched.exit_code == 0 and watched.output.startswith("Name:") and "Paused (PauseStep)" in watched.output
    listed = tmc(r, "rollout", "list")
    assert listed.output.split("\n")[0].split() == ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"]
    assert listed.output.split("\n")[1].split()[:4] == ["web", "Paused", "1", "20"]

    assert tmc(r, "rollout", "promote", "web").output.strip() == "canarydeployment.tmc.kcp.io/web promoted"
    r.until(lambda st: st.get("weight") == 60 and st.get("pauseReason") == "PauseStep")
    assert tmc(r, "rollout", "pause", "web").exit_code == 0
    r.until(phase("Paused", "Manual"))
    assert tmc(r, "rollout", "resume", "web").exit_code == 0
    r.until(phase("Paused", "PauseStep"))

    assert tmc(r, "rollout", "abort", "web").exit_code == 0
    st = r.until(phase("RolledBack"))
    assert st["weight"] == 0
    failed = tmc(r, "rollout", "status", "web", "--timeout", "5s")
    assert failed.exit_code == 1 and "rolled back" in failed.output
    again = tmc(r, "rollout", "abort", "web")
    assert again.exit_code == 1 and "no canary in progress" in again.output

    assert tmc(r, "rollout", "retry", "web").exit_code == 0
    r.until(lambda st: st.get("weight") == 20 and st.get("phase") == "Paused")
    assert tmc(r, "rollout", "promote", "web", "--full").output.strip() == (
        "canarydeployment.tmc.kcp.io/web fully promoted"
    )
    done = tmc(r, "rollout", "status", "web", "--timeout", "60s")
    assert done.exit_code == 0, done.output
    assert r.status()["stableRevision"] == st["canaryRevision"]

    missing = tmc(r, "rollout", "get", "nope")
    assert missing.exit_code == 1 and 'canarydeployment "nope" not found' in missing.output
