"""The SyncTarget area's controllers: heartbeat and Ready, and Location status. (`SyncerURLController` is added by the
hub alone: it needs the URL the hub is served at.)"""

from __future__ import annotations

from tmc.api.workload import DEFAULT_HEARTBEAT_THRESHOLD
from tmc.controllers.runtime import Controller
from tmc.controllers.synctarget.heartbeat import HeartbeatController
from tmc.controllers.synctarget.location import LocationStatusController
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def synctarget_controllers(
    store: Store,
    registry: ResourceRegistry,
    service: ObjectService,
    *,
    heartbeat_threshold: float = DEFAULT_HEARTBEAT_THRESHOLD,
) -> list[Controller]:
    return [
        HeartbeatController(store, registry, service, heartbeat_threshold=heartbeat_threshold),
        LocationStatusController(store, registry, service),
    ]
