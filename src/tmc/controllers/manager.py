"""Runs a process's controllers: starts them (the leader-elected ones once this process leads), reports each one's
health for the readiness endpoint, and stops them in reverse order.

Leader election is a seam today: the hub runs as one process, so `SingleProcessElector` leads at once. A Lease-based
elector (for several hub replicas on one etcd) implements the same two methods and changes nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from tmc.controllers.runtime import Controller
from tmc.observability.health import Check

log = logging.getLogger("tmc.controllers.manager")


class LeaderElector(Protocol):
    async def acquire(self) -> None:
        """Return once this process leads."""

    async def release(self) -> None:
        """Give up leadership (at shutdown), so another replica can take over at once."""


class SingleProcessElector:
    """The only replica always leads."""

    async def acquire(self) -> None:
        return None

    async def release(self) -> None:
        return None


class ControllerManager:
    def __init__(self, controllers: Sequence[Controller], elector: LeaderElector | None = None) -> None:
        self.controllers = list(controllers)
        self.elector: LeaderElector = elector or SingleProcessElector()
        self._started: list[Controller] = []

    def add(self, controller: Controller) -> None:
        """Register one more controller before `start` (a composition root adding its own)."""
        self.controllers.append(controller)

    async def start(self) -> None:
        for controller in self.controllers:
            if not controller.needs_leader_election:
                await self._start(controller)
        if any(c.needs_leader_election for c in self.controllers):
            await self.elector.acquire()
            for controller in self.controllers:
                if controller.needs_leader_election:
                    await self._start(controller)

    async def _start(self, controller: Controller) -> None:
        await controller.start()
        self._started.append(controller)
        log.debug("controller started", extra={"controller": controller.name})

    async def stop(self) -> None:
        for controller in reversed(self._started):
            await controller.stop()
        self._started.clear()
        await self.elector.release()

    def checks(self) -> list[Check]:
        """One readiness check per controller: it was started and its tasks are alive."""
        started = {id(c) for c in self._started}
        return [
            Check(f"controller-{c.name}", id(c) in started and c.running(), "" if c.running() else "not running")
            for c in self.controllers
        ]
