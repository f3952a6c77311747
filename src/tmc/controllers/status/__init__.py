"""Status aggregation: per-target status reports from syncers summed into the hub object's `.status`."""

from tmc.controllers.status.controller import StatusAggregationController

__all__ = ["StatusAggregationController"]
