"""`metadata.managedFields` bookkeeping: who owns which fields after a create, an update or an apply.

Entries are kept as the API serves them (a manager, an operation, the API version, a time, the `FieldsV1` set,
the subresource). A manager is identified as upstream does: by name, operation and subresource, and for an Update
also by the API version it wrote with; consecutive writes by one manager merge into its entry.

* Update operations (create, update, patch, scale, status) give the writer the fields it added or modified and
  take them from every other manager; fields a write removes leave every manager.
* Apply gives the applier exactly the fields of its configuration, removes the fields it applied before and no
  longer applies (unless someone else owns them), and fails with 409 when it would change another manager's
  field, unless forced, in which case that manager loses the field.
* An entry's time changes only when its manager took fields, so a write that changes nothing stays a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tmc.apimachinery import apply as smd
from tmc.apimachinery import meta
from tmc.apimachinery.fieldpath import (
    FieldSet,
    FieldType,
    applied_set,
    difference,
    intersection,
    object_set,
    union,
    valid_set,
)
from tmc.apimachinery.resources import ResourceInfo

APPLY = "Apply"
# Upstream's cap: beyond ten Update entries the oldest fold into one "ancient-changes" entry per API version, so
# objects written by ever new managers (or user agents) keep a bounded managedFields.
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
UPDATE = "Update"
_ABSENT: Any = object()
_ENTRY_FIELDS = frozenset({"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"})


@dataclass
class Applied:
    """The outcome of an apply: the object to write and its managedFields."""

    obj: dict[str, Any]
    entries: list[dict[str, Any]]


def _identity(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    op = str(entry.get("operation", ""))
    version = str(entry.get("apiVersion", "")) if op == UPDATE else ""
    return (str(entry.get("manager", "")), op, str(entry.get("subresource", "")), version)


def _sort_key(entry: dict[str, Any]) -> tuple[str, str, str, str, str]:
    # Upstream's order: operation (Apply first), time, manager, API version, subresource.
    return (
        str(entry.get("operation", "")),
        str(entry.get("time", "")),
        str(entry.get("manager", "")),
        str(entry.get("apiVersion", "")),
        str(entry.get("subresource", "")),
    )


def _entry(
    manager: str, op: str, api_version: str, fields: FieldSet, subresource: str, now: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": op,
        "apiVersion": api_version,
        "time": now or meta.now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def live_entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    if obj is None:
        return []
    entries = (obj.get("metadata") or {}).get("managedFields")
    return entries if isinstance(entries, list) else []


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict) or not set(entry) <= _ENTRY_FIELDS:
        return False
    if entry.get("operation") not in (APPLY, UPDATE) or not isinstance(entry.get("manager", ""), str):
        return False
    if entry.get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(entry.get("apiVersion", ""), str):
        return False
    if not isinstance(entry.get("subresource", ""), str) or not isinstance(entry.get("time", ""), str | None):
        return False
    return valid_set(entry.get("fieldsV1", {}))


def requested_entries(requested: Any, live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The managedFields a write starts from (upstream's decodeLiveOrNew): the live ones unless the client sent
    a valid non-empty list; `[]` (or `[{}]`) resets them; anything malformed is ignored."""
    if requested is _ABSENT or requested is None or requested is live:
        return live
    if not isinstance(requested, list):
        return live
    if requested == [] or requested == [{}]:
        return []
    if requested == live:
        return live
    if not all(_valid_entry(e) for e in requested):
        return live
    out = []
    for e in requested:
        entry = {k: e[k] for k in ("manager", "operation", "apiVersion", "time") if e.get(k) is not None}
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = e.get("fieldsV1") or {}
        if e.get("subresource"):
            entry["subresource"] = e["subresource"]
        out.append(entry)
    return out


def _scope(fields: FieldSet, info: ResourceInfo, subresource: str) -> FieldSet:
    """Status belongs to the status subresource where there is one (upstream's reset fields)."""
    if subresource == "status":
        status = fields.get("f:status")
        return {"f:status": status} if status is not None else {}
    if "f:status" in fields and "status" in info.subresources:
        return {k: v for k, v in fields.items() if k != "f:status"}
    return fields


def record_update(
    info: ResourceInfo,
    t: FieldType,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    subresource: str,
    base: list[dict[str, Any]],
    now: str = "",
) -> list[dict[str, Any]]:
    """The managedFields after an Update-type write of `new` over `old` (None for a create). `now`: the time to
    record, when the caller has it already (a create's creationTimestamp)."""
    if old is None:
        changed: FieldSet = object_set(new, t)
        removed: FieldSet = {}
    else:
        changed, removed = smd.compare(old, new, t)
    if not changed and not removed:
        return base
    out: list[dict[str, Any]] = []
    own: dict[str, Any] | None = None
    me = (manager, UPDATE, subresource, info.api_version)
    for entry in base:
        if own is None and _identity(entry) == me:
            own = entry
            continue
        _keep(out, entry, removed, changed)
    if changed:
        mine = union(difference(own["fieldsV1"], removed) if own else {}, changed)
        out.append(_entry(manager, UPDATE, info.api_version, mine, subresource, now))
    elif own is not None:
        _keep(out, own, removed, {})
    return _capped(out)


def _capped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries in upstream's order, with the oldest Update entries folded once there are too many."""
    updates = [e for e in entries if e.get("operation") == UPDATE]
    if len(updates) > MAX_UPDATE_MANAGERS:
        updates.sort(key=lambda e: str(e.get("time", "")))
        buckets: dict[str, dict[str, Any]] = {}
        first: dict[str, dict[str, Any]] = {}
        folded: set[int] = set()
        count = len(updates)
        for entry in updates:
            if count <= MAX_UPDATE_MANAGERS:
                break
            version = str(entry.get("apiVersion", ""))
            if version not in first:
                first[version] = entry  # folded only when a second entry of its version is
                continue
            bucket = buckets.get(version)
            if bucket is None:
                seed = first[version]
                folded.add(id(seed))
                bucket = _entry(ANCIENT_CHANGES, UPDATE, version, seed.get("fieldsV1") or {}, "")
                buckets[version] = bucket
            bucket["fieldsV1"] = union(bucket["fieldsV1"], entry.get("fieldsV1") or {})
            bucket["time"] = entry.get("time", bucket["time"])  # the newer of the two, as upstream
            folded.add(id(entry))
            count -= 1
        entries = [e for e in entries if id(e) not in folded] + list(buckets.values())
    entries.sort(key=_sort_key)
    return entries


def _keep(out: list[dict[str, Any]], entry: dict[str, Any], removed: FieldSet, taken: FieldSet) -> None:
    """Append `entry` minus the fields the write removed or took; a manager left with nothing is dropped."""
    fields = entry.get("fieldsV1") or {}
    rest = difference(difference(fields, taken), removed)
    if rest is fields:
        out.append(entry)
    elif rest:
        out.append({**entry, "fieldsV1": rest})


def apply(
    info: ResourceInfo,
    t: FieldType,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    subresource: str,
    force: bool,
) -> Applied:
    """Merge an applied configuration into the live object (None: it does not exist yet) and work out the
    managers; raises the 409 conflict error unless forced."""
    base = live_entries(live)
    applied = _scope(applied_set(config, t), info, subresource)
    last_applied = _last_applied(live, config, manager)
    merged = smd.merge(live or {}, config, t)
    if live is not None:
        merged.setdefault("metadata", {})["managedFields"] = base
    me = (manager, APPLY, subresource, "")
    own = next((e for e in base if _identity(e) == me), None)
    others = [e for e in base if e is not own]
    last: FieldSet = own["fieldsV1"] if own else {}
    if last:
        candidates = difference(last, applied)
        if candidates:
            keep = applied
            for entry in others:
                keep = union(keep, entry.get("fieldsV1") or {})
            smd.prune(merged, candidates, keep, t)
    changed, removed = smd.compare(live or {}, merged, t) if live is not None else (object_set(merged, t), {})
    # What the write will not change (status on the main resource, the rest on status) conflicts with nobody.
    changed, removed = _scope(changed, info, subresource), _scope(removed, info, subresource)
    conflicts = []
    for entry in others:
        both = intersection(entry.get("fieldsV1") or {}, changed)
        if both:
            conflicts.append((entry, both))
    if conflicts and not force:
        raise smd.conflict_error(conflicts)
    out: list[dict[str, Any]] = []
    taken = {id(entry): both for entry, both in conflicts}
    for entry in others:
        _keep(out, entry, removed, taken.get(id(entry), {}))
    unchanged = not changed and not removed
    if unchanged and own is not None and own["fieldsV1"] == applied and own.get("apiVersion") == info.api_version:
        out.append(own)  # a no-op apply keeps its entry, time included
    elif applied:
        out.append(_entry(manager, APPLY, info.api_version, applied, subresource))
    out = _capped(out)
    if last_applied is not None:
        # Set after the conflict check, as upstream's lastAppliedUpdater does: nobody owns the annotation's change.
        merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = last_applied
    return Applied(merged, out)


def _last_applied(live: dict[str, Any] | None, config: dict[str, Any], manager: str) -> str | None:
    """kubectl's server-side apply keeps client-side apply's annotation in step when the object has one, so a
    later client-side `kubectl apply` computes its three-way patch from what was really applied."""
    if manager != "kubectl" or live is None:
        return None
    if LAST_APPLIED not in ((live.get("metadata") or {}).get("annotations") or {}):
        return None
    md = dict(config.get("metadata") or {})
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    return orjson.dumps({**config, "metadata": md}).decode()


def set_entries(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    md = obj["metadata"]
    if entries:
        md["managedFields"] = entries
    else:
        md.pop("managedFields", None)


def requested_from(md: dict[str, Any]) -> Any:
    return md.get("managedFields", _ABSENT)
