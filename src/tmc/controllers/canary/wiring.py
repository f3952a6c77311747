"""The canary area: its controller, and the analysis engine's check of spec.analysis at admission (the API layer
checks the rest of a CanaryDeployment but cannot import the engine)."""

from __future__ import annotations

from tmc.api.canary import CANARY_DEPLOYMENTS
from tmc.controllers.canary import analysis as a
from tmc.controllers.canary.controller import CanaryController
from tmc.controllers.canary.plan import analysis_causes
from tmc.controllers.runtime import Controller
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import ObjectService
from tmc.storage.interface import Store


def canary_controllers(
    store: Store, registry: ResourceRegistry, service: ObjectService, *, prometheus_url: str = ""
) -> list[Controller]:
    """prometheus_url: the analysis' Prometheus when a metric names no address."""
    service.validators[(CANARY_DEPLOYMENTS.group, CANARY_DEPLOYMENTS.kind)] = analysis_causes
    providers = a.Providers(a.PrometheusProvider(prometheus_url))
    return [CanaryController(store, registry, service, providers)]
