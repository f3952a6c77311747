"""Per-SyncTarget gauges from each target's status: capacity, utilization and the health score.

Series are labelled by SyncTarget name (`cluster`): member clusters are few and long-lived, so this stays bounded,
and without the name the series would be useless. A deleted SyncTarget's series are removed. A fleet of 1,000
targets has about 10,000 of these series, so they are rendered as text when a heartbeat changes them and a scrape
only joins the lines (observability/exposition.py). Two SyncTargets of one name in different workspaces would give
the same capacity and utilization series; the first workspace in sort order is shown.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

from tmc.observability import catalogue, exposition
from tmc.observability.catalogue import HUB
from tmc.observability.exposition import label_value

CLUSTER_CAPACITY = catalogue.describe(
    "tmc_cluster_capacity",
    "gauge",
    "Capacity a member cluster reports in its SyncTarget's status (cpu in cores, memory in bytes, pods as a count).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='sum by (resource) (tmc_cluster_capacity{resource="cpu"})',
)
CLUSTER_UTILIZATION = catalogue.describe(
    "tmc_cluster_utilization_ratio",
    "gauge",
    "Allocated over allocatable per resource of a member cluster, from its SyncTarget's status (0 to 1).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='max by (cluster) (tmc_cluster_utilization_ratio{resource=~"cpu|memory"}) > 0.9',
)
CLUSTER_UTILIZATION_PERCENT = catalogue.describe(
    "tmc_cluster_resource_utilization_percent",
    "gauge",
    "Allocated over allocatable per resource of a member cluster, as a percentage (0 to 100).",
    ("cluster", "resource"),
    owners=(HUB,),
    promql='topk(5, tmc_cluster_resource_utilization_percent{resource="cpu"})',
)
CLUSTER_HEALTH = catalogue.describe(
    "tmc_cluster_health_score",
    "gauge",
    "Health of a member cluster from 0 to 100: 0 when its SyncTarget is not Ready, else 100 minus up to 20 points "
    "as the heartbeat ages towards the threshold, up to 40 for failed and up to 10 for pending objects (as "
    "fractions of all the syncer counts) and up to 20 for cpu/memory utilization between 90 % and 100 %. "
    "`location` is the SyncTarget's topology.kubernetes.io/region label.",
    ("cluster", "workspace", "location"),
    owners=(HUB,),
    promql="min by (location) (tmc_cluster_health_score) < 50",
)

# (workspace, cluster) -> family name -> its exposition lines for that SyncTarget
_published: dict[tuple[str, str], dict[str, str]] = {}
_PER_NAME = (CLUSTER_CAPACITY.name, CLUSTER_UTILIZATION.name, CLUSTER_UTILIZATION_PERCENT.name)


def publish(
    workspace: str,
    cluster: str,
    location: str,
    capacity: Mapping[str, float],
    allocatable: Mapping[str, float],
    allocated: Mapping[str, float],
    health: float,
) -> None:
    """Set the series of SyncTarget `cluster` in `workspace` from its status."""
    lines: dict[str, list[str]] = {name: [] for name in (*_PER_NAME, CLUSTER_HEALTH.name)}
    name = label_value(cluster)
    for resource in sorted(set(capacity) | set(allocatable)):
        labels = f'{{cluster="{name}",resource="{label_value(resource)}"}}'
        value = float(capacity.get(resource, allocatable.get(resource, 0)))
        lines[CLUSTER_CAPACITY.name].append(f"{CLUSTER_CAPACITY.name}{labels} {value!r}\n")
        total = allocatable.get(resource, capacity.get(resource, 0.0))
        ratio = min(1.0, allocated.get(resource, 0.0) / total) if total > 0 else 0.0
        lines[CLUSTER_UTILIZATION.name].append(f"{CLUSTER_UTILIZATION.name}{labels} {float(ratio)!r}\n")
        percent = float(round(ratio * 100, 2))
        lines[CLUSTER_UTILIZATION_PERCENT.name].append(f"{CLUSTER_UTILIZATION_PERCENT.name}{labels} {percent!r}\n")
    labels = f'{{cluster="{name}",workspace="{label_value(workspace)}",location="{label_value(location)}"}}'
    lines[CLUSTER_HEALTH.name].append(f"{CLUSTER_HEALTH.name}{labels} {float(health)!r}\n")
    _published[(workspace, cluster)] = {family: "".join(text) for family, text in lines.items()}


def forget(workspace: str, cluster: str) -> None:
    _published.pop((workspace, cluster), None)


def _samples(name: str) -> Iterator[str]:
    seen: set[str] = set()
    for (_, cluster), families in sorted(_published.items()):
        if name in _PER_NAME:
            if cluster in seen:
                continue
            seen.add(cluster)
        yield families.get(name, "")


for _doc in (CLUSTER_CAPACITY, CLUSTER_UTILIZATION, CLUSTER_UTILIZATION_PERCENT, CLUSTER_HEALTH):
    exposition.register(_doc.name, functools.partial(_samples, _doc.name))
