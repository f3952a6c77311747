"""The placement area's controllers: the scheduler (Placement decisions) and the assignment controller (labels,
finalizers and spec diffs on the placed objects), in the order they feed each other."""

from __future__ import annotations

from tmc.api.scheduling import PLACEMENTS
from tmc.api.workload import DEFAULT_HEARTBEAT_THRESHOLD
from tmc.controllers.placement.assignment import AssignmentController
from tmc.controllers.placement.controller import PlacementController
from tmc.controllers.placement.simulate import simulation
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def placement_controllers(
    store: Store,
    registry: ResourceRegistry,
    service: ObjectService,
    *,
    not_ready_grace: float = DEFAULT_HEARTBEAT_THRESHOLD,
) -> list[Controller]:
    """not_ready_grace: how long a not-Ready target keeps its copies. Also makes a server-side dry run of a
    Placement answer with the scheduler's simulated decisions (simulate.py)."""
    scheduler = PlacementController(store, registry, service)
    service.dry_run_views[(PLACEMENTS.group, PLACEMENTS.plural)] = simulation(scheduler)
    return [
        scheduler,
        AssignmentController(store, registry, service, not_ready_grace=not_ready_grace),
    ]
