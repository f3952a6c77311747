"""A controller fed by several store prefixes, so it sees SyncTargets, Locations and Placements without watching
(and filtering) every write under /registry/."""

from __future__ import annotations

from collections.abc import Iterable

from tmc.controllers.runtime import Controller

# Delay before reconciling again after a write conflict. Never zero: a conflict often means another write to the
# object is being committed, and an immediate retry (the work queue hands out ready keys without suspending)
# would spin without ever letting that commit complete.
CONFLICT_RETRY = 0.02


class MultiPrefixController(Controller):
    """Subclasses set `prefixes` and map both the initial listing (`initial_keys`) and events (`keys_for`) to keys."""

    prefixes: tuple[str, ...] = ()

    def initial_keys(self) -> Iterable[str]:
        return ()

    def watch_prefixes(self) -> Iterable[str]:
        return self.prefixes
