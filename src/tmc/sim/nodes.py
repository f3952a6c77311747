"""The simulated nodes: `<name>-node-<i>` with capacity, Ready condition, nodeInfo and addresses, created at start
and brought up to date on every start (so restarts with other flags resize and relabel them)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tmc.apimachinery import errors, meta
from tmc.apimachinery.meta import now_rfc3339
from tmc.registry.service import ObjectService, WriteOptions
from tmc.sim.base import NODES
from tmc.sim.podstatus import merge_conditions, node_index, node_ip

FIELD_MANAGER = "tmc-sim"  # the field manager its writes are recorded under

KUBELET_VERSION = "v1.32.0-sim"
CLUSTER_ANNOTATION = "sim.tmc.io/cluster"
# --labels shorthands for the well-known topology labels.
_TOPOLOGY = {"region": "topology.kubernetes.io/region", "zone": "topology.kubernetes.io/zone"}
_INVALID_VALUE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def node_name(cluster: str, index: int) -> str:
    return f"{cluster}-node-{index}"


def node_labels(cluster: str, name: str, cpu: str, memory: str, extra: dict[str, str]) -> dict[str, str]:
    instance = _INVALID_VALUE_CHARS.sub("-", f"sim-{cpu}cpu-{memory}".lower())
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance,
        "type": "kwok",
    }
    for key, value in extra.items():
        labels[key] = value
        if key in _TOPOLOGY:
            labels[_TOPOLOGY[key]] = value
    return labels


def node_object(cluster: str, index: int, cpu: str, memory: str, extra: dict[str, str]) -> dict[str, Any]:
    name = node_name(cluster, index)
    cidr = f"10.244.{node_index(name)}.0/24"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(cluster, name, cpu, memory, extra),
            "annotations": {CLUSTER_ANNOTATION: cluster, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "providerID": f"sim://{cluster}/{name}"},
    }


def _condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def node_status(node: dict[str, Any], cpu: str, memory: str, now: str) -> dict[str, Any]:
    name = str(node["metadata"]["name"])
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    stable = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.sim.tmc.io")
    conditions = [
        _condition(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now
        ),
        _condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
        _condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
        _condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now),
    ]
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": merge_conditions((node.get("status") or {}).get("conditions"), conditions),
        "addresses": [{"type": "InternalIP", "address": node_ip(name)}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": stable.hex,
            "systemUUID": str(stable),
            "bootID": str(uuid.uuid4()),
            "kernelVersion": "6.1.0-sim",
            "osImage": "TMC simulated node",
            "containerRuntimeVersion": "containerd://1.7.22-sim",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


async def ensure_nodes(
    service: ObjectService, cluster: str, name: str, count: int, cpu: str, memory: str, labels: dict[str, str]
) -> list[str]:
    """Create or update `count` nodes for the simulated cluster `name` and remove its surplus ones."""
    names = []
    now = now_rfc3339()
    for index in range(count):
        wanted = node_object(name, index, cpu, memory, labels)
        node_key = NODES.key(cluster, None, wanted["metadata"]["name"])
        entry = service.store.get(node_key)
        if entry is None:
            current = await service.create(NODES, cluster, None, wanted, WriteOptions(field_manager=FIELD_MANAGER))
        else:
            body = meta.deep_copy(entry.obj)
            body["metadata"].setdefault("labels", {}).update(wanted["metadata"]["labels"])
            body["metadata"].setdefault("annotations", {}).update(wanted["metadata"]["annotations"])
            body["spec"] = {**(body.get("spec") or {}), **wanted["spec"]}
            current = await service.update(
                NODES, cluster, None, body["metadata"]["name"], body, WriteOptions(field_manager=FIELD_MANAGER)
            )
        status_body = {
            "metadata": {"name": current["metadata"]["name"]},
            "status": node_status(current, cpu, memory, now),
        }
        await service.update(
            NODES,
            cluster,
            None,
            current["metadata"]["name"],
            status_body,
            WriteOptions(field_manager=FIELD_MANAGER),
            "status",
        )
        names.append(str(current["metadata"]["name"]))
    for entry in list(service.store.list(NODES.key_prefix(cluster))):
        md = entry.obj["metadata"]
        if (md.get("annotations") or {}).get(CLUSTER_ANNOTATION) == name and md["name"] not in names:
            with errors.ignore_not_found():
                await service.delete(NODES, cluster, None, str(md["name"]), {})
    return names
