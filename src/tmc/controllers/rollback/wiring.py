"""The rollback controller, for the hub's composition root."""

from __future__ import annotations

import os

from tmc.controllers.rollback.controller import RollbackController
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store

# `TMC_REVISIONS=off` in the hub's environment: no revisions, no undo, no automatic rollback (the overhead benchmark
# runs the hub both ways; docs/rollback.md).
ENV_SWITCH = "TMC_REVISIONS"


def rollback_controllers(
    store: Store, registry: ResourceRegistry, service: ObjectService, *, prometheus_url: str = ""
) -> list[Controller]:
    if os.environ.get(ENV_SWITCH, "").lower() in ("off", "false", "0"):
        return []
    return [RollbackController(store, registry, service, prometheus_url=prometheus_url)]
