"""CPU accounting for a measurement window (Linux /proc; zeros elsewhere).

On a small shared machine throughput numbers move with whatever else runs. Two numbers help read them:
the CPU time the server process spent (per request it is a cost that does not depend much on contention), and the
CPU time used by processes other than the server, the load generator (children of this process) and this process
("other load": close to 0 cores on a quiet machine).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from types import TracebackType

_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (0.0 when unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def system_busy() -> float:
    """CPU seconds all cores spent not idle since boot (0.0 when unknown)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


def _own() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuWindow:
    """`with CpuWindow([server_pid]) as w: ...` then w.server (CPU s of those pids), w.other (cores used by others).

    Children of this process count as our own only once they have been waited for (wrk runs are)."""

    pids: list[int]
    wall: float = 0.0
    server: float = 0.0
    own: float = 0.0
    other: float = 0.0
    _start: tuple[float, float, float, list[float]] = field(default=(0.0, 0.0, 0.0, []), repr=False)

    def __enter__(self) -> CpuWindow:
        self._start = (time.perf_counter(), system_busy(), _own(), [process_cpu(p) for p in self.pids])
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall0, busy0, own0, pids0 = self._start
        self.wall = time.perf_counter() - wall0
        self.server = sum(process_cpu(p) - c for p, c in zip(self.pids, pids0, strict=True))
        self.own = _own() - own0
        busy = system_busy() - busy0
        self.other = max(0.0, busy - self.server - self.own) / self.wall if self.wall else 0.0
