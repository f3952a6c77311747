"""Notices when this process stopped running for a while: SIGSTOP, a suspended VM, heavy swapping, a blocked loop.

Judgements of the form "nothing heard from X for N seconds" are only fair for time the judge itself was running:
while the hub was stopped nobody could reach it, so that silence says nothing about X. `LoopWatch.stalled_between`
says how much of a wall-clock interval this process spent stalled; the SyncTarget heartbeat controller does not
count that time against a heartbeat's age.

A stall is noticed either by the ticker task (it wakes every `interval` seconds and measures the gap) or by a
caller that runs before the ticker after a resume, so the answer never depends on which timer the event loop
happens to fire first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB

log = logging.getLogger("tmc.runtime.loopwatch")

STALLS = catalogue.counter(
    "tmc_event_loop_stalls_total",
    "Times this process's event loop did not run for more than a second (stopped, suspended or starved).",
    owners=(HUB,),  # the heartbeat controller: it must know of its own stalls to judge heartbeats fairly
    promql="increase(tmc_event_loop_stalls_total[15m]) > 0",
)
# Unlike CLOCK_MONOTONIC, CLOCK_BOOTTIME keeps counting while the machine is suspended.
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)
MIN_STALL = 1.0  # shorter gaps are scheduling noise, not worth remembering
KEEP = 64  # stalls remembered; older ones no longer matter to any heartbeat still considered healthy


class LoopWatch:
    def __init__(
        self,
        *,
        interval: float = 0.25,
        min_stall: float = MIN_STALL,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.interval = interval
        self.min_stall = min_stall
        self.clock = clock
        if monotonic is None:
            monotonic = time.monotonic if _BOOTTIME is None else lambda: time.clock_gettime(_BOOTTIME)
        self.monotonic = monotonic
        self.started = clock()  # wall-clock time of start()
        self.stalls: deque[tuple[float, float]] = deque(maxlen=KEEP)  # (wall start, wall end)
        self._last_tick = monotonic()

    def start(self) -> asyncio.Task[None]:
        self.started = self.clock()
        self._last_tick = self.monotonic()
        return asyncio.create_task(self._tick(), name="loop-watch")

    def check(self) -> None:
        """Record a stall if the loop has not run for a while (call from any code the loop runs)."""
        now = self.monotonic()
        stalled = now - self._last_tick - self.interval
        self._last_tick = now
        if stalled > self.min_stall:
            end = self.clock()
            self.stalls.append((end - stalled, end))
            STALLS.inc()
            log.warning(
                "event loop did not run; that time does not count against heartbeats",
                extra={"stalled_seconds": round(stalled, 1)},
            )

    def stalled_between(self, start: float, end: float) -> float:
        """Seconds of the wall-clock interval [start, end] this process spent stalled."""
        self.check()
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self.stalls)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()
