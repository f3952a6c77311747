"""The core controllers, in the order a process starts them."""

from __future__ import annotations

from tmc.controllers.core.gc import GarbageCollector
from tmc.controllers.core.namespace import NamespaceController
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def core_controllers(store: Store, registry: ResourceRegistry, service: ObjectService) -> list[Controller]:
    return [NamespaceController(store, registry, service), GarbageCollector(store, registry, service)]
