"""Apply's rules without a server: merge by schema, ownership, pruning, conflicts and Update bookkeeping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tmc.apimachinery import errors
from tmc.apimachinery.apply import compare, merge
from tmc.apimachinery.fieldpath import object_type
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.registry import managedfields

DEPLOY = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")
T = object_type(DEPLOY.schema)


def config(*containers: dict[str, Any], replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers)}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}


def applied(live: dict[str, Any] | None, cfg: dict[str, Any], manager: str, force: bool = False) -> dict[str, Any]:
    done = managedfields.apply(DEPLOY, T, live, copy.deepcopy(cfg), manager, "", force)
    managedfields.set_entries(done.obj, done.entries)
    return done.obj


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def names(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]


A = {"name": "a", "image": "nginx"}
B = {"name": "b", "image": "busybox"}
C = {"name": "c", "image": "redis"}


def test_merge_keyed_lists_by_key_keeping_live_fields() -> None:
    live = config({"name": "a", "image": "old", "imagePullPolicy": "Always"}, B)
    out = merge(live, config({"name": "a", "image": "new"}, C), T)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "a", "image": "new", "imagePullPolicy": "Always"}, B, C]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "old"  # the live object is untouched


def test_merge_places_configured_items_before_the_live_items_they_precede() -> None:
    out = merge(config(A, B), config(C, B), T)
    assert names(out) == ["a", "c", "b"]


def test_atomic_maps_are_replaced_whole() -> None:
    live = config(A)
    live["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    out = merge(live, {"spec": {"selector": {"matchLabels": {"app": "web"}}}}, T)
    assert out["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_compare_reports_added_modified_and_removed() -> None:
    old = config(A, B, replicas=1)
    new = config({"name": "a", "image": "other"}, replicas=2)
    changed, removed = compare(old, new, T)
    assert changed == {
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"a"}': {"f:image": {}}}}},
        }
    }
    assert removed == {
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"b"}': {".": {}, "f:name": {}, "f:image": {}}}}}
        }
    }


def test_apply_creates_and_owns_exactly_its_configuration() -> None:
    obj = applied(None, config(A, replicas=2), "alice")
    entry = obj["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "alice",
        "Apply",
        "apps/v1",
        "FieldsV1",
    )
    assert entry["fieldsV1"]["f:spec"]["f:replicas"] == {}


def test_a_conflicting_value_is_a_409_naming_manager_and_field() -> None:
    obj = applied(None, config(A, replicas=2), "alice")
    with pytest.raises(errors.StatusError) as caught:
        applied(obj, config(A, replicas=5), "bob")
    err = caught.value
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert err.details == {
        "causes": [{"type": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.replicas"}]
    }


def test_several_conflicts_are_listed_by_manager() -> None:
    obj = applied(None, config(A, replicas=2), "alice")
    with pytest.raises(errors.StatusError) as caught:
        applied(obj, config({"name": "a", "image": "x"}, replicas=5), "bob")
    assert caught.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="a"].image'
    )


def test_the_same_value_is_shared_ownership_and_force_takes_a_field() -> None:
    obj = applied(None, config(A, replicas=2), "alice")
    shared = applied(obj, config(A, replicas=2), "bob")
    assert "f:replicas" in managers(shared)["alice"]["f:spec"]
    assert "f:replicas" in managers(shared)["bob"]["f:spec"]
    forced = applied(shared, config(A, replicas=7), "bob", force=True)
    assert forced["spec"]["replicas"] == 7
    assert "f:replicas" not in managers(forced)["alice"]["f:spec"]


def test_fields_no_longer_applied_are_removed_unless_someone_else_owns_them() -> None:
    obj = applied(None, config(A, B), "alice")
    obj = applied(obj, config(A), "alice")
    assert names(obj) == ["a"]
    both = applied(applied(None, config(A, B), "alice"), config(B), "bob")
    after = applied(both, config(A), "alice")
    assert names(after) == ["a", "b"]  # bob still applies b: alice only lets go of it
    assert 'k:{"name":"b"}' not in managers(after)["alice"]["f:spec"]["f:template"]["f:spec"]["f:containers"]


def test_an_update_owns_what_it_changed_and_takes_it_from_others() -> None:
    obj = applied(None, config(A, replicas=2), "alice")
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 3
    entries = managedfields.record_update(DEPLOY, T, obj, new, "hpa", "", managedfields.live_entries(obj))
    by_name = {e["manager"]: e for e in entries}
    assert by_name["hpa"]["operation"] == "Update"
    assert by_name["hpa"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in by_name["alice"]["fieldsV1"]["f:spec"]
    assert [e["operation"] for e in entries] == ["Apply", "Update"]


def test_an_update_that_changes_nothing_keeps_the_entries() -> None:
    obj = applied(None, config(A), "alice")
    entries = managedfields.live_entries(obj)
    assert managedfields.record_update(DEPLOY, T, obj, copy.deepcopy(obj), "x", "", entries) is entries


def test_reapplying_unchanged_keeps_the_entry_and_its_time() -> None:
    obj = applied(None, config(A), "alice")
    again = managedfields.apply(DEPLOY, T, obj, config(A), "alice", "", False)
    assert again.entries == obj["metadata"]["managedFields"]
    assert again.entries[0] is obj["metadata"]["managedFields"][0]


@pytest.mark.parametrize(
    ("requested", "reset"),
    [([], True), ([{}], True), ("garbage", False), ([{"manager": "m", "operation": "Bogus"}], False)],
)
def test_requested_managed_fields(requested: Any, reset: bool) -> None:
    live = [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]
    assert managedfields.requested_entries(requested, live) == ([] if reset else live)


def test_valid_requested_managed_fields_replace_the_live_ones() -> None:
    live = [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]
    wanted = [{"manager": "n", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]
    assert managedfields.requested_entries(wanted, live)[0]["manager"] == "n"


def test_more_than_ten_update_managers_fold_the_oldest_into_ancient_changes() -> None:
    obj = applied(None, config(A), "alice")
    for i in range(12):
        new = copy.deepcopy(obj)
        new["metadata"]["labels"] = {**(new["metadata"].get("labels") or {}), f"l{i}": "x"}
        entries = managedfields.record_update(DEPLOY, T, obj, new, f"m{i:02d}", "", managedfields.live_entries(obj))
        for n, e in enumerate(entries):
            e["time"] = f"2026-01-01T00:00:{n:02d}Z" if e["manager"].startswith("m") else e["time"]
        managedfields.set_entries(new, entries)
        obj = new
    updates = [e for e in obj["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert len(updates) == 10
    ancient = next(e for e in updates if e["manager"] == "ancient-changes")
    assert set(ancient["fieldsV1"]["f:metadata"]["f:labels"]) >= {"f:l0", "f:l1"}
    assert any(e["manager"] == "alice" for e in obj["metadata"]["managedFields"])  # Apply entries are not capped
