"""The hub's scheduling controllers, composed from their areas in the order they feed each other: SyncTarget
heartbeat/Ready and Location status first, then the placement scheduler and the assignment controller."""

from __future__ import annotations

from tmc.api.workload import DEFAULT_HEARTBEAT_THRESHOLD
from tmc.controllers.placement.wiring import placement_controllers
from tmc.controllers.rollback.wiring import rollback_controllers
from tmc.controllers.runtime import Controller
from tmc.controllers.synctarget.wiring import synctarget_controllers
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
    prometheus_url: str = "",
) -> list[Controller]:
    """not_ready_grace: how long a not-Ready target keeps its copies (default: the heartbeat threshold);
    prometheus_url: where RollbackPolicy queries go when they name no address."""
    grace = heartbeat_threshold if not_ready_grace is None else not_ready_grace
    return [
        *synctarget_controllers(store, registry, service, heartbeat_threshold=heartbeat_threshold),
        *placement_controllers(store, registry, service, not_ready_grace=grace),
        # Revisions follow placement: only placed workloads get them.
        *rollback_controllers(store, registry, service, prometheus_url=prometheus_url),
    ]
