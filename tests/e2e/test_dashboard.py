"""`tmc dashboard` in a real terminal (a tmux pane) against `tmc up` with two members: a Placement created with
kubectl appears on the Placements screen without a key press, and a member stopped with SIGSTOP turns its cluster
NotReady on the Clusters screen. The screen is read with `tmux capture-pane`, polled with a deadline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.harness import TmcUp, free_port, wait_until

TMUX_HINT = "tmux is not installed (apt-get install tmux; scripts/install-system-packages.sh installs it as root)"
pytestmark = [
    pytest.mark.usefixtures("kubectl_binary"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason=TMUX_HINT),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    up = TmcUp(
        str(tmp_path_factory.mktemp("dashboard")),
        free_port(),
        "--clusters",
        "2",
        "--sync-target-heartbeat-threshold",
        "3s",
        "--heartbeat-period",
        "1s",
        "--ready-delay",
        "200ms",
        "--no-prometheus",
    )
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


class Pane:
    """One tmux pane on a private tmux server (its own socket), running a command at a fixed size."""

    def __init__(self, command: list[str], width: int = 120, height: int = 30) -> None:
        self.socket = f"tmc-dashboard-{os.getpid()}-{os.urandom(3).hex()}"
        line = " ".join(subprocess.list2cmdline([c]) for c in command)
        self.tmux("new-session", "-d", "-s", "dash", "-x", str(width), "-y", str(height), line)

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "dash")

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "dash", *keys)

    def line_with(self, *words: str) -> str | None:
        return next((line for line in self.screen().splitlines() if all(w in line for w in words)), None)

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        """wait_until, with the screen as it was at the deadline in the failure."""
        try:
            return wait_until(check, timeout=timeout, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; the screen:\n{self.screen()}") from None

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def test_dashboard_follows_the_hub_live(system: TmcUp) -> None:
    hub = system.kubectl()
    kubeconfig = os.path.join(system.data_dir, "admin.kubeconfig")
    pane = Pane([sys.executable, "-m", "tmc", "dashboard", "--kubeconfig", kubeconfig])
    try:
        pane.press("2")
        pane.wait(
            lambda: pane.line_with("cluster-1", " Ready ") and pane.line_with("cluster-2", " Ready "),
            timeout=30,
            what="both clusters Ready on the Clusters screen",
        )
        pane.press("3")
        pane.wait(lambda: "PLACEMENT" in pane.screen(), what="the Placements screen")
        hub.apply(
            {
                "apiVersion": "scheduling.kcp.io/v1alpha1",
                "kind": "Placement",
                "metadata": {"name": "dash-web"},
                "spec": {
                    "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
                    "locationSelectors": [{}],
                    "namespaceSelector": {"matchLabels": {"dash": "yes"}},
                    "numberOfTargets": 1,
                },
            }
        )
        # No key press from here: the decision arrives by the watch.
        decision = pane.wait(lambda: pane.line_with("dash-web", "cluster-"), timeout=20, what="the decision on screen")
        assert "cluster-" in decision

        pane.press("2")
        pid = system.pid("cluster-1")
        os.kill(pid, signal.SIGSTOP)
        try:
            pane.wait(
                lambda: pane.line_with("cluster-1", "NotReady"),
                timeout=30,
                what="cluster-1 NotReady on screen",
            )
            assert pane.line_with("cluster-2", " Ready ") is not None
        finally:
            os.kill(pid, signal.SIGCONT)
        pane.press("q")
    finally:
        pane.close()
