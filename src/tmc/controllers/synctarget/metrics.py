"""Per-SyncTarget gauges from each target's status: capacity, utilization and the health score.

Series are labelled by SyncTarget name (`cluster`): member clusters are few and long-lived, so this stays bounded,
and without the name the series would be useless. A deleted SyncTarget's series are removed.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.metrics import MetricWrapperBase

from tmc.observability import catalogue
from tmc.observability.catalogue import HUB

CLUSTER_CAPACITY = catalogue.gauge(
    "tmc_cluster_capacity",
    "Capacity a member cluster reports in its SyncTarget's status (cpu in cores, memory in bytes, pods as a count).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='sum by (resource) (tmc_cluster_capacity{resource="cpu"})',
)
CLUSTER_UTILIZATION = catalogue.gauge(
    "tmc_cluster_utilization_ratio",
    "Allocated over allocatable per resource of a member cluster, from its SyncTarget's status (0 to 1).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='max by (cluster) (tmc_cluster_utilization_ratio{resource=~"cpu|memory"}) > 0.9',
)
CLUSTER_UTILIZATION_PERCENT = catalogue.gauge(
    "tmc_cluster_resource_utilization_percent",
    "Allocated over allocatable per resource of a member cluster, as a percentage (0 to 100).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='topk(5, tmc_cluster_resource_utilization_percent{resource="cpu"})',
)
CLUSTER_HEALTH = catalogue.gauge(
    "tmc_cluster_health_score",
    "Health of a member cluster from 0 to 100: 0 when its SyncTarget is not Ready, else 100 minus up to 20 points "
    "as the heartbeat ages towards the threshold, up to 40 for failed and up to 10 for pending objects (as "
    "fractions of all the syncer counts) and up to 20 for cpu/memory utilization between 90 % and 100 %. "
    "`location` is the SyncTarget's topology.kubernetes.io/region label.",
    ("cluster", "workspace", "location"),
    owners=(HUB,),
    promql="min by (location) (tmc_cluster_health_score) < 50",
)

_published: dict[tuple[str, str], tuple[set[str], tuple[str, str, str] | None]] = {}


def publish(
    workspace: str,
    cluster: str,
    location: str,
    capacity: Mapping[str, float],
    allocatable: Mapping[str, float],
    allocated: Mapping[str, float],
    health: float,
) -> None:
    """Set the gauges of SyncTarget `cluster` in `workspace` from its status."""
    resources = set(capacity) | set(allocatable)
    old_resources, old_health = _published.get((workspace, cluster), (set(), None))
    for resource in old_resources - resources:
        _remove_resource(cluster, resource)
    health_labels = (cluster, workspace, location)
    if old_health is not None and old_health != health_labels:
        _remove(CLUSTER_HEALTH, old_health)  # its location changed
    _published[(workspace, cluster)] = (resources, health_labels)
    for resource in resources:
        CLUSTER_CAPACITY.labels(cluster, resource).set(capacity.get(resource, allocatable.get(resource, 0)))
        total = allocatable.get(resource, capacity.get(resource, 0.0))
        ratio = min(1.0, allocated.get(resource, 0.0) / total) if total > 0 else 0.0
        CLUSTER_UTILIZATION.labels(cluster, resource).set(ratio)
        CLUSTER_UTILIZATION_PERCENT.labels(cluster, resource).set(round(ratio * 100, 2))
    CLUSTER_HEALTH.labels(*health_labels).set(health)


def forget(workspace: str, cluster: str) -> None:
    resources, health_labels = _published.pop((workspace, cluster), (set(), None))
    for resource in resources:
        _remove_resource(cluster, resource)
    if health_labels is not None:
        _remove(CLUSTER_HEALTH, health_labels)


def _remove_resource(cluster: str, resource: str) -> None:
    for gauge in (CLUSTER_CAPACITY, CLUSTER_UTILIZATION, CLUSTER_UTILIZATION_PERCENT):
        _remove(gauge, (cluster, resource))


def _remove(gauge: MetricWrapperBase, labels: tuple[str, ...]) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass
