"""Per-SyncTarget gauges: capacity, utilization and a health score.

Series are labelled by workspace and SyncTarget name: member clusters are few and long-lived, so this stays
bounded, and without the name the series would be useless. A deleted SyncTarget's series are removed.
"""

from __future__ import annotations

from collections.abc import Mapping

from tmc.observability import catalogue

CLUSTER_CAPACITY = catalogue.gauge(
    "tmc_cluster_capacity",
    "Capacity a member cluster reports (cpu in cores, memory in bytes, pods as a count).",
    ["workspace", "cluster", "resource"],
    owners=(catalogue.HUB,),
    promql='tmc_cluster_capacity{resource="cpu"}',
)
CLUSTER_UTILIZATION = catalogue.gauge(
    "tmc_cluster_utilization_ratio",
    "Allocated over allocatable per resource of a member cluster (0 to 1).",
    ["workspace", "cluster", "resource"],
    owners=(catalogue.HUB,),
    promql="tmc_cluster_utilization_ratio > 0.85",
)
CLUSTER_HEALTH = catalogue.gauge(
    "tmc_cluster_health_score",
    "Health of a member cluster from 0 (not Ready) to 1 (fresh heartbeat, no sync failures, not saturated).",
    ["workspace", "cluster"],
    owners=(catalogue.HUB,),
    promql="tmc_cluster_health_score < 0.5",
)


def health_score(
    ready: bool,
    heartbeat_age: float | None,
    threshold: float,
    synced: int,
    pending: int,
    failed: int,
    utilization: float,
) -> float:
    """0 when not Ready; otherwise 1 minus penalties for an ageing heartbeat (up to 0.2 as it nears the threshold),
    failed syncs (up to 0.4) and pending syncs (up to 0.1) as fractions of all synced objects, and saturation
    (up to 0.2 between 90 % and 100 % utilization). Weighted so that only sync failures can push a Ready cluster
    below one half."""
    if not ready:
        return 0.0
    score = 1.0
    if heartbeat_age is not None and threshold > 0:
        score -= 0.2 * min(1.0, max(0.0, heartbeat_age) / threshold)
    total = synced + pending + failed
    if total > 0:
        score -= 0.4 * failed / total + 0.1 * pending / total
    if utilization > 0.9:
        score -= 0.2 * min(1.0, (utilization - 0.9) / 0.1)
    return round(max(0.0, min(1.0, score)), 3)


_published: dict[tuple[str, str], set[str]] = {}


def publish(
    workspace: str,
    cluster: str,
    capacity: Mapping[str, float],
    allocatable: Mapping[str, float],
    allocated: Mapping[str, float],
    health: float,
) -> None:
    resources = set(capacity) | set(allocatable)
    for resource in _published.get((workspace, cluster), set()) - resources:
        _remove(workspace, cluster, resource)
    _published[(workspace, cluster)] = resources
    for resource in resources:
        CLUSTER_CAPACITY.labels(workspace, cluster, resource).set(capacity.get(resource, allocatable.get(resource, 0)))
        total = allocatable.get(resource, capacity.get(resource, 0.0))
        ratio = min(1.0, allocated.get(resource, 0.0) / total) if total > 0 else 0.0
        CLUSTER_UTILIZATION.labels(workspace, cluster, resource).set(ratio)
    CLUSTER_HEALTH.labels(workspace, cluster).set(health)


def forget(workspace: str, cluster: str) -> None:
    for resource in _published.pop((workspace, cluster), set()):
        _remove(workspace, cluster, resource)
    try:
        CLUSTER_HEALTH.remove(workspace, cluster)
    except KeyError:
        pass


def _remove(workspace: str, cluster: str, resource: str) -> None:
    for gauge in (CLUSTER_CAPACITY, CLUSTER_UTILIZATION):
        try:
            gauge.remove(workspace, cluster, resource)
        except KeyError:
            pass
