"""The rollback controller, for the hub's composition root."""

from __future__ import annotations

from tmc.controllers.rollback.controller import RollbackController
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def rollback_controllers(
    store: Store, registry: ResourceRegistry, service: ObjectService, *, prometheus_url: str = ""
) -> list[Controller]:
    return [RollbackController(store, registry, service, prometheus_url=prometheus_url)]
