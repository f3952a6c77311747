"""Child processes `tmc up` starts (hub, simulated clusters, syncers, Prometheus): each in its own process group,
its output in a log file, its pid in a pid file, stopped with SIGTERM (then SIGKILL) when `tmc up` ends."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass


@dataclass
class ChildProcess:
    pid_file: str
    log_file: str
    process: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str]) -> None:
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        os.makedirs(os.path.dirname(self.log_file), exist_ok=True)
        with open(self.log_file, "ab") as log:
            # Own process group: a Ctrl-C in the terminal reaches `tmc up` only, which then stops children in order.
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        with open(self.pid_file, "w") as f:
            f.write(f"{self.process.pid}\n")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            # A SIGSTOPped child (fault injection) cannot handle SIGTERM until it is continued.
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if os.path.exists(self.pid_file):
            os.remove(self.pid_file)
