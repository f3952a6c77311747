"""What one SyncTarget's syncer sees of a hub object, and how its writes land on the hub object (kcp v0.11 protocol).

Pure functions over plain dicts, no I/O, so the HTTP layer (`syncer.py`) stays thin and the rules are unit-testable.

Read path (`to_view`): the syncer must not see other targets' bookkeeping, so their finalizers, labels and
annotations are dropped; the per-target spec diff is applied; `.status` is this target's own last report (the
`diff.syncer.internal.kcp.io/<key>` annotation) or absent; a per-target deletion shows up as
`metadata.deletionTimestamp`.

Write path (`apply_write`): a status write records the status in this target's status-diff annotation and never in
the real `.status`: the hub's status aggregation controller owns `.status` for every kind (it sums the counters of
replicated workloads and promotes a lone target's status otherwise), so the rule is the same whether one or many
targets report. A main-resource write may only add or remove this target's syncer finalizer and set or remove this
target's own `sync.tmc.kcp.io/{forced,state,last-sync,error}.<key>` annotations; everything else in the body is
ignored, as kcp does. When a deletion is pending and the finalizer goes, the target's state label, deletion
and status annotations go with it (as in kcp), which takes the object out of the syncer's view and lets
an upstream deletion complete.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from tmc.api.workload import (
    CLUSTER_ANNOTATION,
    DELETION_ANNOTATION_PREFIX,
    SOFT_FINALIZERS_ANNOTATION_PREFIX,
    SPEC_DIFF_ANNOTATION_PREFIX,
    STATE_LABEL_PREFIX,
    STATE_SYNC,
    STATUS_DIFF_ANNOTATION_PREFIX,
    SYNC_TARGET_ANNOTATION_PREFIXES,
    SYNCER_WRITTEN_ANNOTATION_PREFIXES,
    deletion_annotation,
    soft_finalizers_annotation,
    spec_diff_annotation,
    state_label,
    status_diff_annotation,
    syncer_finalizer,
    target_key_of,
)
from tmc.apimachinery import errors
from tmc.apimachinery.patch import apply_json_patch

log = logging.getLogger("tmc.virtual.syncer")

# Per-target keys of *other* targets are hidden from a syncer; its own keys are kept (except the diff
# annotations, whose content the view already folds into .spec and .status).
_PER_TARGET_ANNOTATIONS = (DELETION_ANNOTATION_PREFIX, SOFT_FINALIZERS_ANNOTATION_PREFIX)
_FOLDED_ANNOTATIONS = (SPEC_DIFF_ANNOTATION_PREFIX, STATUS_DIFF_ANNOTATION_PREFIX)


def _other_targets_control(name: str, key: str) -> bool:
    """A sync-control annotation (`sync.tmc.kcp.io/force.<key>` and the syncer's reports) of another target."""
    for prefix in SYNC_TARGET_ANNOTATION_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :] != key
    return False


def is_assigned(obj: dict[str, Any], key: str) -> bool:
    """Whether the object is in this target's view: it carries `state.workload.kcp.io/<key>=Sync`."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(state_label(key)) == STATE_SYNC)


def pending_deletion(obj: dict[str, Any], key: str) -> str:
    """The deletion timestamp this target's syncer sees ("" for none): the per-target deletion annotation, else
    the object's own deletionTimestamp; hidden while coordinators hold soft finalizers for this target."""
    md = obj.get("metadata") or {}
    annotations = md.get("annotations") or {}
    if str(annotations.get(soft_finalizers_annotation(key)) or "").strip():
        return ""
    return str(annotations.get(deletion_annotation(key)) or md.get("deletionTimestamp") or "")


def target_status(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    """This target's last reported status from its status-diff annotation, or None."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(status_diff_annotation(key))
    return decode_status_diff(raw)


def decode_status_diff(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        diff = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    # kcp's "##promoted##" marker (a string) means "see .status"; this hub never promotes, so it reads as no report.
    status = diff.get("status") if isinstance(diff, dict) else None
    return status if isinstance(status, dict) else None


def encode_status_diff(status: dict[str, Any]) -> str:
    return orjson.dumps({"status": status}, option=orjson.OPT_SORT_KEYS).decode()


def to_view(obj: dict[str, Any], key: str, cluster: str) -> dict[str, Any]:
    """The object as target `key`'s syncer sees it. Copies what it changes; `obj` (shared) is never mutated."""
    out = dict(obj)
    md = dict(obj.get("metadata") or {})
    out["metadata"] = md
    own_finalizer = syncer_finalizer(key)
    if own_finalizer in (md.get("finalizers") or ()):
        md["finalizers"] = [own_finalizer]
    else:
        md.pop("finalizers", None)
    deletion = pending_deletion(obj, key)
    md.pop("deletionGracePeriodSeconds", None)
    md.pop("managedFields", None)  # the hub's field ownership; the syncer never writes it and would only ship it
    if deletion:
        md["deletionTimestamp"] = deletion
    else:
        md.pop("deletionTimestamp", None)
    labels = md.get("labels")
    if labels:
        own_label = state_label(key)
        md["labels"] = {k: v for k, v in labels.items() if not k.startswith(STATE_LABEL_PREFIX) or k == own_label}
    annotations = dict(md.get("annotations") or {})
    spec_diff = annotations.get(spec_diff_annotation(key))
    for name in list(annotations):
        if (
            name.startswith(_FOLDED_ANNOTATIONS)
            or (name.startswith(_PER_TARGET_ANNOTATIONS) and target_key_of(name) != key)
            or _other_targets_control(name, key)
        ):
            del annotations[name]
    annotations[CLUSTER_ANNOTATION] = cluster
    md["annotations"] = annotations
    if spec_diff:
        patched = apply_spec_diff(obj.get("spec"), spec_diff)
        if patched is not None:
            out["spec"] = patched
    status = target_status(obj, key)
    if status is None:
        out.pop("status", None)
    else:
        out["status"] = status
    return out


def apply_spec_diff(spec: Any, diff: str) -> dict[str, Any] | None:
    """Apply a per-target spec diff (RFC 6902 rooted at .spec). A diff that does not parse or apply is ignored
    (the unpatched spec is served) and logged: failing the whole list or watch would stop the target syncing
    every other object over one bad annotation."""
    try:
        ops = orjson.loads(diff)
        return apply_json_patch(spec if isinstance(spec, dict) else {}, ops)
    except (orjson.JSONDecodeError, errors.StatusError) as e:
        log.warning("ignoring a spec diff that does not apply", extra={"error": str(e)})
        return None


def apply_write(current: dict[str, Any], new_view: dict[str, Any], key: str, subresource: str) -> dict[str, Any] | None:
    """The hub object after target `key`'s syncer wrote `new_view` (to the main resource, or to `status`).

    Returns None when the write changes nothing. Raises 400 for a body that is not an object.
    """
    if not isinstance(new_view, dict):
        raise errors.bad_request("the body of the request must be an object")
    md = dict(current.get("metadata") or {})
    labels = dict(md.get("labels") or {})
    annotations = dict(md.get("annotations") or {})
    finalizers = list(md.get("finalizers") or [])
    own_finalizer = syncer_finalizer(key)
    if subresource == "status":
        status = new_view.get("status")
        name = status_diff_annotation(key)
        if isinstance(status, dict) and status:
            if decode_status_diff(annotations.get(name)) != status:  # the same report in another key order is no change
                annotations[name] = encode_status_diff(status)
        else:
            annotations.pop(name, None)
    else:
        # The syncer's own reports (forced token, Paused state, last sync, last error) are the one other thing it
        # may write, for its own key only.
        written = (new_view.get("metadata") or {}).get("annotations") or {}
        for prefix in SYNCER_WRITTEN_ANNOTATION_PREFIXES:
            name = prefix + key
            value = written.get(name) if isinstance(written, dict) else None
            if isinstance(value, str):
                annotations[name] = value
            else:
                annotations.pop(name, None)
        wanted = own_finalizer in ((new_view.get("metadata") or {}).get("finalizers") or ())
        if wanted and own_finalizer not in finalizers:
            finalizers.append(own_finalizer)
        elif not wanted:
            finalizers = [f for f in finalizers if f != own_finalizer]
            if pending_deletion(current, key):
                # The syncer has removed the downstream copy: the target lets go of the object entirely. This runs
                # even when the finalizer was never added (the object was never synced), so such objects leave the
                # view instead of showing a deletion forever.
                labels.pop(state_label(key), None)
                for name in (deletion_annotation(key), status_diff_annotation(key)):
                    annotations.pop(name, None)
                for prefix in SYNCER_WRITTEN_ANNOTATION_PREFIXES:
                    annotations.pop(prefix + key, None)
    unchanged = (
        labels == (md.get("labels") or {})
        and annotations == (md.get("annotations") or {})
        and finalizers == list(md.get("finalizers") or [])
    )
    if unchanged:
        return None
    out = dict(current)
    out["metadata"] = md
    _set_or_drop(md, "labels", labels)
    _set_or_drop(md, "annotations", annotations)
    _set_or_drop(md, "finalizers", finalizers)
    return out


def _set_or_drop(md: dict[str, Any], name: str, value: Any) -> None:
    if value:
        md[name] = value
    else:
        md.pop(name, None)
