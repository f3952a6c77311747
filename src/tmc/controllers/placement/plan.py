"""How one object's per-target labels and annotations must change: the assignment protocol as a pure function.

kcp v0.11's protocol (https://github.com/kcp-dev/kcp/tree/v0.11.0/pkg/reconciler/workload/resource):
`state.workload.kcp.io/<key>=Sync` assigns; unassigning sets `deletion.internal.workload.kcp.io/<key>` when the target's
syncer holds its finalizer (it then deletes the downstream copy, drops the finalizer, and the syncer view strips the
label), and removes the label at once when it does not. Three TMC changes:
- a key that is wanted again loses a pending deletion annotation (kcp left it there:
  https://github.com/kcp-dev/kcp/issues/2287);
- the syncer finalizer is added with the label when the target's syncer has said it syncs the type
  (`status.syncedResources`): one hub write per assignment instead of one more per target, and the syncer can
  create the downstream copy at once;
- a key the caller says to hold stays untouched. The caller holds the old target's copy during a move until the
  new targets report the workload available, so a move never leaves no running copy.
Keys in state `Upsync` belong to their target and are never touched (kcp flipped them to Sync:
https://github.com/kcp-dev/kcp/issues/2530).

Spec diffs (`experimental.spec-diff.workload.kcp.io/<key>`) have more than one writer: the placement writes the replica
diffs of replica division, and the canary controller writes per-cluster weights on its routing objects. The placement
owns only the diffs it would write (a JSON Patch whose every operation targets `/replicas`): it removes those when it
no longer divides the object's replicas and leaves any other diff alone. A target that leaves loses all of its
per-target annotations, diffs included, since nothing remains to apply them to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tmc.api.workload import (
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    STATE_UPSYNC,
    deletion_annotation,
    soft_finalizers_annotation,
    spec_diff_annotation,
    state_label,
    status_diff_annotation,
    syncer_finalizer,
)
from tmc.apimachinery.meta import parse_time


def replicas_patch(replicas: int) -> str:
    """The spec-diff value that sets a target's replica count (JSON Patch rooted at .spec, as kcp's coordinator)."""
    return orjson.dumps([{"op": "replace", "path": "/replicas", "value": replicas}]).decode()


def placement_owns(diff: Any) -> bool:
    """Whether a spec diff is one the placement writes: a JSON Patch touching `/replicas` only."""
    try:
        ops = orjson.loads(diff)
    except (orjson.JSONDecodeError, TypeError):
        return False
    return (
        isinstance(ops, list)
        and bool(ops)
        and all(isinstance(op, dict) and op.get("path") == "/replicas" for op in ops)
    )


def state_keys(obj: Mapping[str, Any]) -> dict[str, str]:
    """key -> state for every per-target state label on the object."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {k[len(STATE_LABEL_PREFIX) :]: str(v) for k, v in labels.items() if k.startswith(STATE_LABEL_PREFIX)}


@dataclass
class Plan:
    labels: dict[str, str | None] = field(default_factory=dict)  # merge-patch: None deletes
    annotations: dict[str, str | None] = field(default_factory=dict)
    finalizers: list[str] | None = None  # a new list when finalizers must change
    added: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    removing: list[str] = field(default_factory=list)  # deletion annotation set: the syncer cleans up
    removed: list[str] = field(default_factory=list)  # label gone now
    # Keys the object carries, un-deleted, once the plan is applied (what holds its namespace's labels).
    live: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not self.labels and not self.annotations and self.finalizers is None

    def patch(self, resource_version: str | None = None) -> dict[str, Any]:
        md: dict[str, Any] = {}
        if self.labels:
            md["labels"] = self.labels
        if self.annotations:
            md["annotations"] = self.annotations
        if self.finalizers is not None:
            md["finalizers"] = self.finalizers
            # Finalizer lists are replaced whole by a merge patch: pin the version so a racing syncer write wins.
            md["resourceVersion"] = resource_version
        return {"metadata": md}


def plan_object(
    obj: Mapping[str, Any],
    desired: Collection[str],
    *,
    hold: Callable[[str], bool],
    known_targets: Collection[str],
    now: str,
    shares: Mapping[str, int] | None = None,
    finalize: Collection[str] = (),
) -> Plan:
    """The changes that make `obj` carry exactly `desired` (plus held keys).

    hold(key): keep an undesired key as it is for now.
    known_targets: keys of existing SyncTargets; a key without one is cleaned up at once, finalizer included,
        because no syncer is left to do it.
    shares: per-key replica counts when replicas are divided (spec-diff annotations), None when not.
    finalize: keys whose syncer finalizer is added together with the Sync label (targets whose syncer syncs this
        type), so that the syncer does not have to write it before it creates the downstream copy.
    """
    md = obj.get("metadata") or {}
    annotations = md.get("annotations") or {}
    finalizers = list(md.get("finalizers") or [])
    current = state_keys(obj)
    plan = Plan()
    for key in sorted(desired):
        state = current.get(key)
        if state == STATE_UPSYNC:
            continue
        if state is None:
            plan.labels[state_label(key)] = STATE_SYNC
            plan.added.append(key)
            if key in finalize and not md.get("deletionTimestamp") and syncer_finalizer(key) not in finalizers:
                finalizers.append(syncer_finalizer(key))
                plan.finalizers = finalizers
        if deletion_annotation(key) in annotations:
            plan.annotations[deletion_annotation(key)] = None
            if state is not None:
                plan.added.append(key)  # coming back to a target it was leaving
        diff = spec_diff_annotation(key)
        if shares is not None and key in shares:
            wanted = replicas_patch(shares[key])
            if annotations.get(diff) != wanted:
                plan.annotations[diff] = wanted
        elif diff in annotations and placement_owns(annotations[diff]):
            plan.annotations[diff] = None
        plan.live.add(key)
    for key, state in sorted(current.items()):
        if key in desired or state == STATE_UPSYNC:
            continue
        deleting = deletion_annotation(key) in annotations
        if key not in known_targets:
            _strip(plan, key, annotations)
            if syncer_finalizer(key) in finalizers:
                finalizers.remove(syncer_finalizer(key))
                plan.finalizers = finalizers
            plan.removed.append(key)
        elif deleting:
            continue  # already on its way out; the syncer finishes it
        elif hold(key):
            plan.held.append(key)
            plan.live.add(key)
        elif syncer_finalizer(key) in finalizers or annotations.get(soft_finalizers_annotation(key)):
            plan.annotations[deletion_annotation(key)] = now
            plan.removing.append(key)
        else:
            _strip(plan, key, annotations)
            plan.removed.append(key)
    return plan


def _strip(plan: Plan, key: str, annotations: Mapping[str, Any]) -> None:
    plan.labels[state_label(key)] = None
    for name in (deletion_annotation(key), spec_diff_annotation(key), status_diff_annotation(key)):
        if name in annotations:
            plan.annotations[name] = None


def plan_namespace(
    ns: Mapping[str, Any],
    desired: Collection[str],
    *,
    live: Collection[str],
    known_targets: Collection[str],
    now: float,
    now_text: str,
    grace: float,
) -> tuple[Plan, float | None]:
    """The namespace's changes, and how long to wait before looking again (None: nothing pending).

    A namespace keeps every key one of its objects still carries (`live`), even an undesired one: removing it would
    make the syncer delete the downstream namespace and the held copy with it. Other undesired keys follow kcp: the
    deletion annotation first, the label `grace` seconds later.
    """
    annotations = (ns.get("metadata") or {}).get("annotations") or {}
    current = state_keys(ns)
    plan = Plan()
    wait: float | None = None
    for key in sorted(desired):
        state = current.get(key)
        if state == STATE_UPSYNC:
            continue
        if state is None:
            plan.labels[state_label(key)] = STATE_SYNC
            plan.added.append(key)
        if deletion_annotation(key) in annotations:
            plan.annotations[deletion_annotation(key)] = None
        plan.live.add(key)
    for key, state in sorted(current.items()):
        if key in desired or state == STATE_UPSYNC:
            continue
        since = parse_time(annotations.get(deletion_annotation(key)))
        if key in live:
            if deletion_annotation(key) in annotations:
                plan.annotations[deletion_annotation(key)] = None  # an object is held there again: keep it all
            plan.held.append(key)
            plan.live.add(key)
        elif key not in known_targets or (since is not None and now - since >= grace):
            _strip(plan, key, annotations)
            plan.removed.append(key)
        elif since is None:
            plan.annotations[deletion_annotation(key)] = now_text
            plan.removing.append(key)
            wait = grace if wait is None else min(wait, grace)
        else:
            left = grace - (now - since) + 0.05
            wait = left if wait is None else min(wait, left)
    return plan, wait
