"""The hub's scheduling controllers, built in the order they feed each other."""

from __future__ import annotations

from tmc.controllers.placement.assignment import AssignmentController
from tmc.controllers.placement.controller import PlacementController
from tmc.controllers.runtime import Controller
from tmc.controllers.synctarget.heartbeat import DEFAULT_HEARTBEAT_THRESHOLD, HeartbeatController
from tmc.controllers.synctarget.location import LocationStatusController
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def scheduling_controllers(
    store: Store,
    registry: ResourceRegistry,
    service: ObjectService,
    *,
    heartbeat_threshold: float = DEFAULT_HEARTBEAT_THRESHOLD,
    not_ready_grace: float | None = None,
) -> list[Controller]:
    """SyncTarget heartbeat/Ready, Location status, the placement scheduler and the assignment controller.
    not_ready_grace: how long a not-Ready target keeps its copies (default: the heartbeat threshold)."""
    grace = heartbeat_threshold if not_ready_grace is None else not_ready_grace
    return [
        HeartbeatController(store, registry, service, heartbeat_threshold=heartbeat_threshold),
        LocationStatusController(store, registry, service),
        PlacementController(store, registry, service),
        AssignmentController(store, registry, service, not_ready_grace=grace),
    ]
