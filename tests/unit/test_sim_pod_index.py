"""The simulated scheduler's pod index: per-node sums and pending pods kept from events, in revision order."""

from __future__ import annotations

from typing import Any

from tmc.sim.scheduling import NodeState, PodIndex, Resources


def pod(name: str, node: str = "", cpu: str = "500m", phase: str = "Running") -> dict[str, Any]:
    container = {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec, "status": {"phase": phase}}


def used(index: PodIndex, node: str = "n1") -> Resources:
    nodes = index.account([NodeState(node, {}, Resources(4000, 8 * 2**30, 110))])
    return nodes[node].used


def test_sums_follow_binds_finishes_and_deletes() -> None:
    index = PodIndex()
    index.put("a", 1, pod("a"))
    index.put("b", 2, pod("b", "n1"))
    assert [p["metadata"]["name"] for p in index.unbound()] == ["a"]
    assert used(index) == Resources(500, 2**30, 1)

    index.put("a", 3, pod("a", "n1", cpu="1"))  # bound
    assert index.unbound() == []
    assert used(index) == Resources(1500, 2 * 2**30, 2)

    index.put("b", 4, pod("b", "n1", phase="Succeeded"))  # finished: its requests no longer count
    assert used(index) == Resources(1000, 2**30, 1)
    index.remove("a", 5)
    assert used(index) == Resources(0, 0, 0)


def test_a_late_event_never_undoes_a_newer_write() -> None:
    index = PodIndex()
    index.put("a", 1, pod("a"))
    index.put("a", 7, pod("a", "n1"))  # the scheduler's own bind, counted at once
    index.put("a", 1, pod("a"))  # the ADDED event, arriving after the bind
    assert index.unbound() == [] and used(index).pods == 1
    index.remove("a", 6)  # older than what the index holds
    assert used(index).pods == 1


def test_orphans_are_the_pods_of_missing_nodes() -> None:
    index = PodIndex()
    index.put("a", 1, pod("a", "gone", phase="Succeeded"))
    index.put("b", 2, pod("b", "n1"))
    assert [p["metadata"]["name"] for p in index.orphans({"n1"})] == ["a"]
    index.reset()
    assert index.orphans(set()) == [] and index.unbound() == []
