"""Status aggregation: per-target reports summed into the hub object's status."""

from __future__ import annotations

from typing import Any

import orjson

from tmc.controllers.status.aggregate import aggregate_status, current_targets, merge_conditions
from tmc.protocol.keys import sync_target_key

A = sync_target_key("root", "a")
B = sync_target_key("root", "b")
C = sync_target_key("root", "c")


def obj(
    reports: dict[str, dict[str, Any] | None], *, status: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    labels = {f"state.workload.kcp.io/{k}": "Sync" for k in reports}
    annotations = {
        f"diff.syncer.internal.kcp.io/{k}": orjson.dumps({"status": r}).decode() for k, r in reports.items() if r
    }
    annotations.update(extra.pop("annotations", {}))
    out: dict[str, Any] = {"metadata": {"name": "x", "generation": 4, "labels": labels, "annotations": annotations}}
    if status is not None:
        out["status"] = status
    return out


def cond(ctype: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"type": ctype, "status": status, "reason": reason}


def test_deployment_counters_are_summed() -> None:
    o = obj(
        {
            A: {
                "replicas": 2,
                "readyReplicas": 2,
                "availableReplicas": 2,
                "updatedReplicas": 2,
                "observedGeneration": 4,
            },
            B: {
                "replicas": 3,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "updatedReplicas": 3,
                "unavailableReplicas": 2,
                "observedGeneration": 4,
            },
        }
    )
    status = aggregate_status("apps", "Deployment", o)
    assert status == {
        "replicas": 5,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "updatedReplicas": 5,
        "unavailableReplicas": 2,
        "observedGeneration": 4,
    }


def test_observed_generation_is_the_lowest_and_waits_for_every_target() -> None:
    both = obj({A: {"observedGeneration": 4}, B: {"observedGeneration": 3}}, status={"observedGeneration": 2})
    assert aggregate_status("apps", "Deployment", both)["observedGeneration"] == 3  # type: ignore[index]
    # B has not reported yet: keep what the hub had.
    waiting = obj({A: {"observedGeneration": 4}, B: None}, status={"observedGeneration": 2})
    assert aggregate_status("apps", "Deployment", waiting)["observedGeneration"] == 2  # type: ignore[index]
    fresh = obj({A: {"observedGeneration": 4}, B: None})
    assert "observedGeneration" not in (aggregate_status("apps", "Deployment", fresh) or {})


def test_conditions_true_beats_false_beats_unknown() -> None:
    merged = merge_conditions(
        [
            [cond("Available", "False", "MinimumReplicasUnavailable"), cond("Progressing", "Unknown")],
            [cond("Available", "True", "MinimumReplicasAvailable"), cond("Progressing", "False", "Stuck")],
        ]
    )
    by_type = {c["type"]: c for c in merged}
    assert by_type["Available"]["status"] == "True"
    assert by_type["Available"]["reason"] == "MinimumReplicasAvailable"
    assert by_type["Progressing"]["status"] == "False"


def test_job_complete_needs_every_target() -> None:
    o = obj(
        {
            A: {
                "succeeded": 1,
                "conditions": [cond("Complete", "True")],
                "startTime": "2024-01-01T00:00:05Z",
                "completionTime": "2024-01-01T00:01:00Z",
            },
            B: {"active": 1, "startTime": "2024-01-01T00:00:01Z"},
        }
    )
    status = aggregate_status("batch", "Job", o)
    assert status is not None
    assert status["succeeded"] == 1 and status["active"] == 1
    assert status["startTime"] == "2024-01-01T00:00:01Z"
    assert "completionTime" not in status
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["status"] == "False" and "1 of 2" in complete["message"]


def test_job_failed_on_any_target() -> None:
    o = obj({A: {"failed": 6, "conditions": [cond("Failed", "True", "BackoffLimitExceeded")]}, B: {"succeeded": 1}})
    status = aggregate_status("batch", "Job", o) or {}
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Failed": "True"}


def test_targets_being_removed_do_not_count() -> None:
    o = obj(
        {A: {"replicas": 2, "observedGeneration": 4}, B: {"replicas": 5, "observedGeneration": 1}},
        annotations={f"deletion.internal.workload.kcp.io/{B}": "2024-01-01T00:00:00Z"},
    )
    assert current_targets(o) == [A]
    assert aggregate_status("apps", "Deployment", o) == {"replicas": 2, "observedGeneration": 4}


def test_single_target_status_is_promoted_for_other_kinds() -> None:
    lb = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    assert aggregate_status("", "Service", obj({A: lb})) == lb
    assert aggregate_status("example.com", "Widget", obj({A: {"phase": "Ready"}})) == {"phase": "Ready"}


def test_services_union_load_balancers_across_targets() -> None:
    o = obj(
        {A: {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}, B: {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}]}}}
    )
    status = aggregate_status("", "Service", o) or {}
    assert {i["ip"] for i in status["loadBalancer"]["ingress"]} == {"10.0.0.1", "10.0.0.2"}


def test_other_kinds_with_several_targets_are_left_alone() -> None:
    assert aggregate_status("example.com", "Widget", obj({A: {"phase": "Ready"}, B: {"phase": "Failed"}})) is None


def test_objects_outside_the_protocol_are_left_alone() -> None:
    plain = {"metadata": {"name": "x", "labels": {"app": "x"}}, "status": {"replicas": 1}}
    assert aggregate_status("apps", "Deployment", plain) is None
    unassigned = obj({})
    unassigned["metadata"]["annotations"][f"diff.syncer.internal.kcp.io/{C}"] = '{"status":{"replicas":1}}'
    assert aggregate_status("apps", "Deployment", unassigned) is None


def test_targets_that_are_not_ready_do_not_count() -> None:
    o = obj(
        {
            A: {"replicas": 3, "readyReplicas": 3, "observedGeneration": 4},
            B: {"replicas": 2, "readyReplicas": 2, "observedGeneration": 3},
        },
        status={"replicas": 5, "readyReplicas": 5, "observedGeneration": 3},
    )
    # B's cluster went silent: its last report is stale, so the sums and observedGeneration are A's alone.
    assert aggregate_status("apps", "Deployment", o, unready={B}) == {
        "replicas": 3,
        "readyReplicas": 3,
        "observedGeneration": 4,
    }
    # No target to vouch for anything: nothing counts as ready, observedGeneration stays where it was.
    assert aggregate_status("apps", "Deployment", o, unready={A, B}) == {"observedGeneration": 3}
    # Kinds that are copied, not summed, keep their status.
    assert aggregate_status("example.com", "Widget", obj({A: {"phase": "Ready"}}), unready={A}) is None
