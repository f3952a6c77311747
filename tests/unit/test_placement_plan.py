"""The assignment protocol as pure functions: per-object plans, the namespace grace period, pod-template references
and per-target availability."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tmc.api.workload import (
    deletion_annotation,
    soft_finalizers_annotation,
    spec_diff_annotation,
    state_label,
    status_diff_annotation,
    syncer_finalizer,
)
from tmc.controllers.placement.assignment import grow_before_shrink
from tmc.controllers.placement.plan import plan_namespace, plan_object, replicas_patch
from tmc.protocol.workloads import available_on, references

NOW = "2026-01-01T00:00:00Z"
KNOWN = {"a", "b", "c"}


def obj(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **md: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "labels": labels or {}, "annotations": annotations or {}, **md}}


def plan(o: dict[str, Any], desired: set[str], held: frozenset[str] = frozenset(), **kw: Any) -> Any:
    return plan_object(o, desired, hold=lambda k: k in held, known_targets=KNOWN, now=NOW, **kw)


def test_assigns_and_keeps_existing() -> None:
    p = plan(obj({state_label("a"): "Sync"}), {"a", "b"})
    assert p.labels == {state_label("b"): "Sync"}
    assert p.added == ["b"] and p.live == {"a", "b"}


def test_the_finalizer_comes_with_the_label_for_finalized_keys() -> None:
    p = plan(obj({state_label("a"): "Sync"}, finalizers=["other"]), {"a", "b", "c"}, finalize={"a", "b"})
    assert p.labels == {state_label("b"): "Sync", state_label("c"): "Sync"}
    assert p.finalizers == ["other", syncer_finalizer("b")]  # not a: it is already assigned
    assert p.patch("7")["metadata"]["resourceVersion"] == "7"  # a list replaced whole is pinned
    deleting = obj(deletionTimestamp=NOW)
    assert plan(deleting, {"a"}, finalize={"a"}).finalizers is None  # no new finalizer on an object being deleted


def test_unassign_without_finalizer_removes_at_once() -> None:
    o = obj({state_label("a"): "Sync"}, {status_diff_annotation("a"): "{}", spec_diff_annotation("a"): "[]"})
    p = plan(o, set())
    assert p.labels == {state_label("a"): None}
    assert p.annotations == {status_diff_annotation("a"): None, spec_diff_annotation("a"): None}
    assert p.removed == ["a"] and not p.live


@pytest.mark.parametrize(
    "extra",
    [{"finalizers": [syncer_finalizer("a")]}, {"annotations": {soft_finalizers_annotation("a"): "coordinator"}}],
)
def test_unassign_with_a_finalizer_sets_the_deletion_annotation(extra: dict[str, Any]) -> None:
    o = obj({state_label("a"): "Sync"}, extra.pop("annotations", None), **extra)
    p = plan(o, set())
    assert p.labels == {}
    assert p.annotations == {deletion_annotation("a"): NOW}
    assert p.removing == ["a"]
    # Once set, nothing more happens until the syncer has finished.
    o["metadata"]["annotations"][deletion_annotation("a")] = NOW
    assert plan(o, set()).empty


def test_rescheduled_back_clears_the_deletion_annotation_kcp_2287() -> None:
    o = obj({state_label("a"): "Sync"}, {deletion_annotation("a"): NOW}, finalizers=[syncer_finalizer("a")])
    p = plan(o, {"a"})
    assert p.annotations == {deletion_annotation("a"): None}
    assert p.labels == {} and p.added == ["a"]


def test_held_keys_stay_untouched() -> None:
    p = plan(obj({state_label("a"): "Sync"}), {"b"}, held=frozenset({"a"}))
    assert p.labels == {state_label("b"): "Sync"}
    assert p.held == ["a"] and p.live == {"a", "b"}


def test_upsync_keys_are_never_touched_kcp_2530() -> None:
    assert plan(obj({state_label("a"): "Upsync"}), set()).empty
    assert plan(obj({state_label("a"): "Upsync"}), {"a"}).empty


def test_vanished_target_is_cleaned_up_with_its_finalizer() -> None:
    o = obj(
        {state_label("gone"): "Sync"}, {deletion_annotation("gone"): NOW}, finalizers=[syncer_finalizer("gone"), "x"]
    )
    p = plan(o, set(), held=frozenset({"gone"}))
    assert p.labels == {state_label("gone"): None}
    assert p.finalizers == ["x"]
    assert p.patch("42")["metadata"]["resourceVersion"] == "42"


def test_spec_diff_for_divided_replicas() -> None:
    o = obj({state_label("a"): "Sync"}, {spec_diff_annotation("b"): replicas_patch(9)})
    p = plan(o, {"a", "b"}, shares={"a": 3, "b": 2})
    assert orjson.loads(p.annotations[spec_diff_annotation("a")]) == [
        {"op": "replace", "path": "/replicas", "value": 3}
    ]
    assert p.annotations[spec_diff_annotation("b")] == replicas_patch(2)
    back = plan(obj({state_label("a"): "Sync"}, {spec_diff_annotation("a"): replicas_patch(3)}), {"a"})
    assert back.annotations == {spec_diff_annotation("a"): None}


def test_the_placement_removes_only_the_spec_diffs_it_owns() -> None:
    weights = '[{"op":"replace","path":"/http/0/route","value":[]}]'  # a canary's per-cluster weight
    o = obj(
        {state_label("a"): "Sync", state_label("b"): "Sync"},
        {spec_diff_annotation("a"): weights, spec_diff_annotation("b"): replicas_patch(2)},
    )
    kept = plan(o, {"a", "b"})  # replicas no longer divided: its own replica diff goes, the canary's stays
    assert kept.annotations == {spec_diff_annotation("b"): None}
    assert plan(obj({state_label("a"): "Sync"}, {spec_diff_annotation("a"): "not json"}), {"a"}).empty
    leaving = plan(o, {"b"})  # a target that leaves loses every per-target annotation, whoever wrote it
    assert leaving.annotations[spec_diff_annotation("a")] is None


def test_namespace_grace_then_removal() -> None:
    ns = obj({state_label("a"): "Sync", state_label("b"): "Sync"})
    first, wait = plan_namespace(ns, {"b"}, live=set(), known_targets=KNOWN, now=1000.0, now_text=NOW, grace=5.0)
    assert first.annotations == {deletion_annotation("a"): NOW} and first.labels == {} and wait == 5.0
    ns["metadata"]["annotations"][deletion_annotation("a")] = "1970-01-01T00:16:40Z"  # 1000.0
    early, wait = plan_namespace(ns, {"b"}, live=set(), known_targets=KNOWN, now=1002.0, now_text=NOW, grace=5.0)
    assert early.empty and wait == pytest.approx(3.05)
    late, wait = plan_namespace(ns, {"b"}, live=set(), known_targets=KNOWN, now=1006.0, now_text=NOW, grace=5.0)
    assert late.labels == {state_label("a"): None} and wait is None
    kept, _ = plan_namespace(ns, {"b"}, live={"a"}, known_targets=KNOWN, now=1006.0, now_text=NOW, grace=5.0)
    assert kept.annotations == {deletion_annotation("a"): None} and kept.held == ["a"]


def test_references_of_a_pod_template() -> None:
    deployment = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "runner",
                    "imagePullSecrets": [{"name": "registry"}],
                    "volumes": [
                        {"name": "a", "configMap": {"name": "cm-vol"}},
                        {"name": "b", "secret": {"secretName": "sec-vol"}},
                        {
                            "name": "c",
                            "projected": {
                                "sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "sec-proj"}}]
                            },
                        },
                    ],
                    "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "sec-envfrom"}}]}],
                    "containers": [
                        {
                            "name": "c",
                            "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}],
                            "env": [
                                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "k"}}},
                                {"name": "C", "value": "plain"},
                            ],
                        }
                    ],
                }
            }
        },
    }
    assert references(deployment) == {
        ("configmaps", "cm-vol"),
        ("configmaps", "cm-proj"),
        ("configmaps", "cm-envfrom"),
        ("configmaps", "cm-env"),
        ("secrets", "sec-vol"),
        ("secrets", "sec-proj"),
        ("secrets", "sec-envfrom"),
        ("secrets", "sec-env"),
        ("secrets", "registry"),
        ("serviceaccounts", "runner"),
    }
    cron = {
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {"spec": {"template": {"spec": {"volumes": [{"name": "v", "configMap": {"name": "cj"}}]}}}}
        },
    }
    assert references(cron) == {("configmaps", "cj")}


def _with_view(o: dict[str, Any], key: str, view: Any) -> dict[str, Any]:
    o["metadata"].setdefault("annotations", {})[status_diff_annotation(key)] = orjson.dumps(view).decode()
    return o


@pytest.mark.parametrize(
    ("view", "spec_diff", "available"),
    [
        (None, None, False),
        ({"status": {"availableReplicas": 3}}, None, True),
        ({"status": {"availableReplicas": 2}}, None, False),
        ({"status": {"readyReplicas": 3}}, None, True),
        ({"status": {"availableReplicas": 1}}, 1, True),
        ({"status": {"availableReplicas": 0}}, 0, True),
        ({"status": {"availableReplicas": 3, "conditions": [{"type": "Available", "status": "False"}]}}, None, False),
        ({"status": "##promoted##"}, None, True),
    ],
)
def test_available_on(view: Any, spec_diff: int | None, available: bool) -> None:
    o: dict[str, Any] = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"annotations": {}},
        "spec": {"replicas": 3},
        "status": {"availableReplicas": 3},
    }
    if view is not None:
        _with_view(o, "a", view)
    if spec_diff is not None:
        o["metadata"]["annotations"][spec_diff_annotation("a")] = replicas_patch(spec_diff)
    assert available_on(o, "a") is available


def test_available_on_judges_the_share_being_given_and_the_current_generation() -> None:
    o: dict[str, Any] = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"generation": 2, "annotations": {spec_diff_annotation("a"): replicas_patch(2)}},
        "spec": {"replicas": 6},
    }
    _with_view(o, "a", {"status": {"availableReplicas": 2, "observedGeneration": 2}})
    assert available_on(o, "a")
    # The share is about to grow to 3: 2 available is not enough yet.
    assert not available_on(o, "a", 3)
    # A report about an older spec says nothing about this one.
    _with_view(o, "a", {"status": {"availableReplicas": 2, "observedGeneration": 1}})
    assert not available_on(o, "a")


def _divided(shares: dict[str, int], available: dict[str, int]) -> dict[str, Any]:
    annotations = {spec_diff_annotation(k): replicas_patch(n) for k, n in shares.items()}
    for k, n in available.items():
        annotations[status_diff_annotation(k)] = orjson.dumps({"status": {"availableReplicas": n}}).decode()
    return {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"annotations": annotations}, "spec": {}}


def test_grow_before_shrink() -> None:
    # a and b ran 3 each; c joins and the split becomes 2/2/2.
    o = _divided({"a": 3, "b": 3}, {"a": 3, "b": 3})
    new = {"a": 2, "b": 2, "c": 2}
    assert grow_before_shrink(o, new, {"a", "b"}) == ({"a": 3, "b": 3, "c": 2}, True)
    o = _divided({"a": 3, "b": 3, "c": 2}, {"a": 3, "b": 3, "c": 1})
    assert grow_before_shrink(o, new, {"a", "b", "c"}) == ({"a": 3, "b": 3, "c": 2}, True)
    o = _divided({"a": 3, "b": 3, "c": 2}, {"a": 3, "b": 3, "c": 2})
    assert grow_before_shrink(o, new, {"a", "b", "c"}) == (new, False)
    # Scaling down shrinks every target at once: nobody else has to grow first.
    o = _divided({"a": 3, "b": 3}, {"a": 3, "b": 3})
    assert grow_before_shrink(o, {"a": 1, "b": 1}, {"a", "b"}) == ({"a": 1, "b": 1}, False)
    # Growing only (a target left): nothing to keep.
    o = _divided({"a": 2, "b": 2}, {"a": 2, "b": 2})
    assert grow_before_shrink(o, {"a": 3, "b": 3}, {"a", "b", "c"}) == ({"a": 3, "b": 3}, False)
