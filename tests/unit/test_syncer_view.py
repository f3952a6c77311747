"""The syncer virtual workspace's read and write transformations (kcp v0.11 protocol)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from tmc.apimachinery import errors
from tmc.protocol.keys import sync_target_key
from tmc.protocol.view import apply_write, is_assigned, pending_deletion, to_view

A = sync_target_key("root", "a")
B = sync_target_key("root", "b")


def hub_object(**metadata: Any) -> dict[str, Any]:
    md: dict[str, Any] = {
        "name": "web",
        "namespace": "default",
        "uid": "u1",
        "resourceVersion": "7",
        "generation": 3,
        "labels": {"app": "web", f"state.workload.kcp.io/{A}": "Sync", f"state.workload.kcp.io/{B}": "Sync"},
        "annotations": {
            f"experimental.spec-diff.workload.kcp.io/{A}": '[{"op":"replace","path":"/replicas","value":1}]',
            f"experimental.spec-diff.workload.kcp.io/{B}": '[{"op":"replace","path":"/replicas","value":2}]',
            f"diff.syncer.internal.kcp.io/{A}": '{"status":{"replicas":1,"readyReplicas":1}}',
            f"diff.syncer.internal.kcp.io/{B}": '{"status":{"replicas":2}}',
            f"deletion.internal.workload.kcp.io/{B}": "2024-01-01T00:00:00Z",
            "user": "kept",
        },
        "finalizers": [f"workload.kcp.io/syncer-{A}", f"workload.kcp.io/syncer-{B}", "example.com/other"],
    }
    md.update(metadata)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": md,
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 3},
    }


def test_view_keeps_only_this_targets_bookkeeping() -> None:
    obj = hub_object()
    original = copy.deepcopy(obj)
    view = to_view(obj, A, "root:team")
    md = view["metadata"]
    assert md["finalizers"] == [f"workload.kcp.io/syncer-{A}"]
    assert md["labels"] == {"app": "web", f"state.workload.kcp.io/{A}": "Sync"}
    assert md["annotations"] == {"user": "kept", "kcp.io/cluster": "root:team"}
    assert "deletionTimestamp" not in md
    assert obj == original, "the stored object must never be mutated"


def test_view_applies_spec_diff_and_own_status() -> None:
    view = to_view(hub_object(), A, "root")
    assert view["spec"]["replicas"] == 1
    assert view["spec"]["template"] == hub_object()["spec"]["template"]
    assert view["status"] == {"replicas": 1, "readyReplicas": 1}


def test_view_without_a_report_has_no_status() -> None:
    obj = hub_object()
    del obj["metadata"]["annotations"][f"diff.syncer.internal.kcp.io/{A}"]
    assert "status" not in to_view(obj, A, "root")


def test_view_exposes_per_target_deletion() -> None:
    view = to_view(hub_object(), B, "root")
    assert view["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:00Z"
    assert view["metadata"]["annotations"][f"deletion.internal.workload.kcp.io/{B}"] == "2024-01-01T00:00:00Z"
    assert (
        to_view(hub_object(deletionTimestamp="2025-02-02T00:00:00Z"), A, "root")["metadata"]["deletionTimestamp"]
        == "2025-02-02T00:00:00Z"
    )


def test_soft_finalizers_hide_the_deletion() -> None:
    obj = hub_object()
    obj["metadata"]["annotations"][f"finalizers.workload.kcp.io/{B}"] = "coordinator"
    assert pending_deletion(obj, B) == ""
    assert "deletionTimestamp" not in to_view(obj, B, "root")["metadata"]


def test_bad_spec_diff_is_ignored() -> None:
    obj = hub_object()
    obj["metadata"]["annotations"][f"experimental.spec-diff.workload.kcp.io/{A}"] = (
        '[{"op":"replace","path":"/nope/x"}]'
    )
    assert to_view(obj, A, "root")["spec"]["replicas"] == 3


def test_is_assigned() -> None:
    assert is_assigned(hub_object(), A)
    assert not is_assigned(hub_object(), sync_target_key("root", "c"))


def test_status_write_records_the_target_report_only() -> None:
    obj = hub_object()
    view = to_view(obj, A, "root")
    view["status"] = {"replicas": 1, "readyReplicas": 0}
    view["spec"]["replicas"] = 99  # ignored: a status write carries only status
    out = apply_write(obj, view, A, "status")
    assert out is not None
    assert orjson.loads(out["metadata"]["annotations"][f"diff.syncer.internal.kcp.io/{A}"]) == {
        "status": {"replicas": 1, "readyReplicas": 0}
    }
    assert out["status"] == obj["status"] and out["spec"] == obj["spec"]
    assert out["metadata"]["annotations"][f"diff.syncer.internal.kcp.io/{B}"] == '{"status":{"replicas":2}}'


def test_unchanged_status_write_is_a_no_op() -> None:
    obj = hub_object()
    assert apply_write(obj, to_view(obj, A, "root"), A, "status") is None


def test_main_write_may_only_toggle_own_finalizer() -> None:
    obj = hub_object()
    obj["metadata"]["finalizers"] = ["example.com/other"]
    view = to_view(obj, A, "root")
    view["spec"]["replicas"] = 42
    view["metadata"]["labels"]["sneaky"] = "x"
    view["metadata"]["finalizers"] = [f"workload.kcp.io/syncer-{A}", "example.com/injected"]
    out = apply_write(obj, view, A, "")
    assert out is not None
    assert out["metadata"]["finalizers"] == ["example.com/other", f"workload.kcp.io/syncer-{A}"]
    assert out["spec"] == obj["spec"] and out["metadata"]["labels"] == obj["metadata"]["labels"]
    # Writing it back unchanged does nothing.
    assert apply_write(out, to_view(out, A, "root"), A, "") is None


def test_finalizer_removal_without_deletion_keeps_the_assignment() -> None:
    obj = hub_object()
    view = to_view(obj, A, "root")
    view["metadata"]["finalizers"] = []
    out = apply_write(obj, view, A, "")
    assert out is not None
    assert f"workload.kcp.io/syncer-{A}" not in out["metadata"]["finalizers"]
    assert out["metadata"]["labels"][f"state.workload.kcp.io/{A}"] == "Sync"


def test_finalizer_removal_during_deletion_releases_the_object() -> None:
    obj = hub_object()
    view = to_view(obj, B, "root")
    view["metadata"]["finalizers"] = []
    out = apply_write(obj, view, B, "")
    assert out is not None
    md = out["metadata"]
    assert f"state.workload.kcp.io/{B}" not in md["labels"]
    assert f"deletion.internal.workload.kcp.io/{B}" not in md["annotations"]
    assert f"diff.syncer.internal.kcp.io/{B}" not in md["annotations"]
    assert md["finalizers"] == [f"workload.kcp.io/syncer-{A}", "example.com/other"]
    # The other target keeps everything of its own.
    assert md["labels"][f"state.workload.kcp.io/{A}"] == "Sync"
    assert f"diff.syncer.internal.kcp.io/{A}" in md["annotations"]
    assert not is_assigned(out, B)


def test_release_without_a_finalizer_still_releases() -> None:
    """An object deleted before the syncer ever added its finalizer must still leave the view."""
    obj = hub_object(finalizers=[])
    view = to_view(obj, B, "root")
    out = apply_write(obj, view, B, "")
    assert out is not None and not is_assigned(out, B)


def test_write_body_must_be_an_object() -> None:
    with pytest.raises(errors.StatusError) as e:
        apply_write(hub_object(), [], A, "")  # type: ignore[arg-type]
    assert e.value.code == 400


def test_view_leaves_out_the_hubs_managed_fields() -> None:
    entries = [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
    obj = hub_object(managedFields=entries)
    assert "managedFields" not in to_view(obj, A, "root:team")["metadata"]
    assert obj["metadata"]["managedFields"] == entries
