"""Runs `tmc sim-cluster` processes for end-to-end tests (also usable by the syncer's tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness import readyz, wait_until


@dataclass
class SimCluster:
    name: str
    data_dir: str
    port: int
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, f"{self.name}.kubeconfig")

    @property
    def outage_file(self) -> str:
        return os.path.join(self.data_dir, f"{self.name}.outage")

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, f"{self.name}.log")

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
        cmd = [sys.executable, "-m", "tmc", "sim-cluster", "--name", self.name, "--data-dir", self.data_dir]
        cmd += ["--secure-port", str(self.port), *self.extra_args]
        self.process = subprocess.Popen(cmd, stdout=log, stderr=log)
        wait_until(self.ready, timeout=timeout, what=f"sim-cluster {self.name} to be ready (log: {self.log_path})")

    def ready(self) -> bool:
        """/readyz answers 200 only once nodes, controllers and the kubeconfig are in place."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"sim-cluster exited with {self.process.returncode}; log:\n{self.log_text()}")
        return readyz(self.base_url)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def outage(self, on: bool) -> None:
        """The soft outage switch: the cluster stops answering while the file exists."""
        path = Path(self.outage_file)
        if on:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def log_text(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-5000:]
        except OSError:
            return ""
