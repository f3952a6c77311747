"""A controller fed by several store prefixes, so it sees SyncTargets, Locations and Placements without watching
(and filtering) every write under /registry/."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tmc.controllers.runtime import Controller
from tmc.storage.interface import CompactedError

# Delay before reconciling again after a write conflict. Never zero: a conflict often means another write to the
# object is being committed, and an immediate retry (the work queue hands out ready keys without suspending)
# would spin without ever letting that commit complete.
CONFLICT_RETRY = 0.02


class MultiPrefixController(Controller):
    """Subclasses set `prefixes` and map both the initial listing (`initial_keys`) and events (`keys_for`) to keys."""

    prefixes: tuple[str, ...] = ()

    def initial_keys(self) -> Iterable[str]:
        return ()

    async def start(self) -> None:
        start_rev = self.store.current_rev
        for key in list(self.initial_keys()):
            self.queue.add(key)
        for prefix in self.prefixes:
            self._tasks.append(asyncio.create_task(self._watch_prefix(prefix, start_rev), name=f"{self.name}-watch"))
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}"))

    async def _watch_prefix(self, prefix: str, rev: int) -> None:
        while True:
            try:
                watch = self.store.watch(prefix, rev)
            except CompactedError:
                # Fell behind the retained history: start over from now and reconcile everything, like a relist.
                rev = self.store.current_rev
                for key in list(self.initial_keys()):
                    self.queue.add(key)
                continue
            try:
                async for event in watch:
                    rev = event.rev
                    self.observe(event)
                    for key in self.keys_for(event):
                        self.queue.add(key)
            finally:
                watch.close()
            await asyncio.sleep(0.1)  # the watch ended (overflow or shutdown): resume from the last revision
