"""Sync control's pure parts: pause values, force tokens, what the virtual workspace lets a syncer write and shows
it, and that no control annotation travels downstream."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tmc.api.workload import (
    SYNC_PAUSED_ANNOTATION,
    parse_paused,
    state_label,
    sync_error_annotation,
    sync_force_annotation,
    sync_forced_annotation,
    sync_last_sync_annotation,
    sync_state_annotation,
    syncer_finalizer,
)
from tmc.client import KubeClient
from tmc.protocol.keys import sync_target_key
from tmc.protocol.view import apply_write, to_view
from tmc.syncer.control import SyncControl
from tmc.syncer.namespaces import TargetIdentity
from tmc.syncer.transform import downstream_object

KEY = sync_target_key("root", "eu-1")
OTHER = sync_target_key("root", "us-1")


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("true", (True, frozenset())),
        ("TRUE", (True, frozenset())),
        ("", (False, frozenset())),
        ("false", (False, frozenset())),
        ("eu-1", (False, frozenset({"eu-1"}))),
        (" eu-1 , us-1 ", (False, frozenset({"eu-1", "us-1"}))),
        ("eu-1,,us-1", None),
        ("Not A Name!", None),
    ],
)
def test_parse_paused(value: str, parsed: tuple[bool, frozenset[str]] | None) -> None:
    assert parse_paused(value) == parsed


def control(name: str = "eu-1") -> SyncControl:
    target = TargetIdentity("root", name, "uid", sync_target_key("root", name))
    return SyncControl(target, KubeClient.__new__(KubeClient))


def obj(annotations: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "ns", "annotations": annotations or {}, **extra}}


def test_pause_scopes_and_malformed_values_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    c = control()
    assert c.object_paused("root", obj({SYNC_PAUSED_ANNOTATION: "true"}))
    assert c.object_paused("root", obj({SYNC_PAUSED_ANNOTATION: "us-1,eu-1"}))
    assert not c.object_paused("root", obj({SYNC_PAUSED_ANNOTATION: "us-1"}))
    assert not c.object_paused("root", obj())
    with caplog.at_level(logging.WARNING, "tmc.syncer.control"):
        assert not c.object_paused("root", obj({SYNC_PAUSED_ANNOTATION: "eu 1!"}))
        assert not c.object_paused("root", obj({SYNC_PAUSED_ANNOTATION: "eu 1!"}))
    assert len([r for r in caplog.records if "malformed pause" in r.getMessage()]) == 1  # once per value

    assert c.observe_namespace("root", "ns", obj({SYNC_PAUSED_ANNOTATION: "eu-1"}))
    assert c.scope_paused("root", "ns") and not c.scope_paused("root", "other")
    assert not c.observe_namespace("root", "ns", obj({SYNC_PAUSED_ANNOTATION: "true"}))  # still paused: no change
    assert c.observe_namespace("root", "ns", None)
    assert not c.scope_paused("root", "ns")

    # On a SyncTarget only "true" means anything (a list of names would name itself or nothing).
    assert c.observe_target(obj({SYNC_PAUSED_ANNOTATION: "true"}))
    assert c.scope_paused("root", "any") and c.scope_of("root", "any") == "SyncTarget eu-1"
    assert c.observe_target(obj({SYNC_PAUSED_ANNOTATION: "eu-1"}))
    assert not c.target_paused


def test_force_token_is_pending_until_acknowledged() -> None:
    c = control()
    assert c.force_token({}) is None
    assert c.force_token({sync_force_annotation(KEY): "t1"}) == "t1"
    assert c.force_token({sync_force_annotation(KEY): "t1", sync_forced_annotation(KEY): "t1"}) is None
    assert c.force_token({sync_force_annotation(KEY): "t2", sync_forced_annotation(KEY): "t1"}) == "t2"
    assert c.force_token({sync_force_annotation(OTHER): "t1"}) is None
    assert not c.needs_attention({SYNC_PAUSED_ANNOTATION: "true", "app": "x"})
    assert c.needs_attention({sync_state_annotation(KEY): "Paused"})
    assert c.needs_attention({sync_error_annotation(KEY): "boom"})


def hub_object(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "labels": {state_label(KEY): "Sync", state_label(OTHER): "Sync"},
            "annotations": annotations,
            "finalizers": [syncer_finalizer(KEY)],
        },
        "spec": {"replicas": 1},
    }


def test_the_view_shows_own_control_annotations_and_takes_only_the_syncers_own_reports() -> None:
    current = hub_object(
        {
            SYNC_PAUSED_ANNOTATION: "true",
            sync_force_annotation(KEY): "t1",
            sync_force_annotation(OTHER): "t9",
            sync_forced_annotation(OTHER): "t9",
        }
    )
    view = to_view(current, KEY, "root")
    annotations = view["metadata"]["annotations"]
    assert annotations[SYNC_PAUSED_ANNOTATION] == "true" and annotations[sync_force_annotation(KEY)] == "t1"
    assert sync_force_annotation(OTHER) not in annotations and sync_forced_annotation(OTHER) not in annotations

    written = dict(view)
    written["metadata"] = {
        **view["metadata"],
        "annotations": {
            **annotations,
            sync_forced_annotation(KEY): "t1",
            sync_state_annotation(KEY): "Paused",
            sync_last_sync_annotation(KEY): "2026-01-01T00:00:00Z",
            sync_force_annotation(KEY): "forged",  # a syncer cannot change the request
            sync_forced_annotation(OTHER): "forged",  # nor another target's report
            SYNC_PAUSED_ANNOTATION: "false",
        },
    }
    new = apply_write(current, written, KEY, "")
    assert new is not None
    after = new["metadata"]["annotations"]
    assert after[sync_forced_annotation(KEY)] == "t1" and after[sync_state_annotation(KEY)] == "Paused"
    assert after[sync_force_annotation(KEY)] == "t1" and after[SYNC_PAUSED_ANNOTATION] == "true"
    assert after[sync_forced_annotation(OTHER)] == "t9"

    # Removing a report (merge patch null: the key is absent from the view written back).
    cleared = to_view(new, KEY, "root")
    del cleared["metadata"]["annotations"][sync_state_annotation(KEY)]
    again = apply_write(new, cleared, KEY, "")
    assert again is not None and sync_state_annotation(KEY) not in again["metadata"]["annotations"]


def test_no_control_annotation_is_copied_downstream() -> None:
    view = to_view(
        hub_object(
            {
                SYNC_PAUSED_ANNOTATION: "eu-1",
                sync_force_annotation(KEY): "t1",
                sync_forced_annotation(KEY): "t1",
                sync_state_annotation(KEY): "Paused",
                sync_error_annotation(KEY): "x",
                "team": "a",
            }
        ),
        KEY,
        "root",
    )
    down = downstream_object(view, "deployments", KEY, "kcp-x")
    assert {k for k in down["metadata"]["annotations"] if k.startswith("sync.tmc.kcp.io/")} == set()
    assert down["metadata"]["annotations"]["team"] == "a"
