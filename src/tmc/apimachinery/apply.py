"""Server-side apply's object rules, as structured-merge-diff defines them: compare, merge, prune, conflicts.

* `compare(old, new)`: the fields an update added or modified, and the fields it removed. Equal subtrees are
  skipped with one C-level `==`, so an update that touches one field costs a walk down that field's path only.
* `merge(live, config)`: the applied configuration merged into the live object by schema: granular maps by key,
  keyed lists by their keys (order: the live order, with the configuration's items placed where it puts them),
  sets by value, atomic values replaced whole.
* `prune(obj, candidates, keep)`: removes the fields an applier applied before and no longer applies, unless
  another manager (or the applier's new configuration) still owns them or something below them.
* `conflict_error`: the 409 kube-apiserver returns when an apply would change fields other managers own.

All functions take the object's `FieldType` (fieldpath.object_type) and never modify the live object.
"""

from __future__ import annotations

from typing import Any

import orjson

from tmc.apimachinery import errors
from tmc.apimachinery.fieldpath import (
    GRANULAR_MAPS,
    LIST_MAP,
    LIST_SET,
    MEMBER,
    ROOT_SKIPPED,
    STRIPPED_METADATA,
    FieldSet,
    FieldType,
    is_member,
    path_string,
    paths,
    value_element,
    value_set,
)

_MISSING: Any = object()


# ---------------------------------------------------------------- compare


def compare(old: dict[str, Any], new: dict[str, Any], t: FieldType) -> tuple[FieldSet, FieldSet]:
    """(added or modified, removed) between two whole objects; server-owned metadata is not compared."""
    changed: FieldSet = {}
    removed: FieldSet = {}
    for key, nv in new.items():
        if key in ROOT_SKIPPED:
            continue
        ov = old.get(key, _MISSING)
        if ov is nv or ov == nv:
            continue
        if key == "metadata":
            ov = _owned_metadata(ov)
            nv = _owned_metadata(nv)
        child = t.child(key)
        if ov is _MISSING or ov is None:
            c: FieldSet | None = value_set(nv, child, True, key in t.required) if nv is not None else None
            r = None
        else:
            c, r = _diff(ov, nv, child)
        if c is not None and (c or key != "metadata"):
            changed["f:" + key] = c
        if r is not None and (r or key != "metadata"):
            removed["f:" + key] = r
    for key, ov in old.items():
        if key not in new and key not in ROOT_SKIPPED and ov is not None:
            if key == "metadata":
                ov = _owned_metadata(ov)
            removed["f:" + key] = value_set(ov, t.child(key), True, key in t.required)
    return changed, removed


def _owned_metadata(md: Any) -> Any:
    if not isinstance(md, dict):
        return {}
    return {k: v for k, v in md.items() if k not in STRIPPED_METADATA}


def _diff(ov: Any, nv: Any, t: FieldType) -> tuple[FieldSet | None, FieldSet | None]:
    """Sets under one value that differs between old and new (both present)."""
    kind = t.kind
    if kind in GRANULAR_MAPS and isinstance(ov, dict) and isinstance(nv, dict):
        changed: FieldSet = {}
        removed: FieldSet = {}
        for key, v in nv.items():
            o = ov.get(key, _MISSING)
            if o is v or o == v:
                continue
            child = t.child(key)
            if o is _MISSING:
                changed["f:" + key] = value_set(v, child, True, key in t.required)
                continue
            c, r = _diff(o, v, child)
            if c is not None:
                changed["f:" + key] = c
            if r is not None:
                removed["f:" + key] = r
        for key, o in ov.items():
            if key not in nv:
                removed["f:" + key] = value_set(o, t.child(key), True, key in t.required)
        return changed or None, removed or None
    if kind == LIST_MAP and isinstance(ov, list) and isinstance(nv, list):
        old_items = _index(ov, t)
        new_items = _index(nv, t)
        if old_items is None or new_items is None:
            return {}, None
        elem = t.elem()
        changed = {}
        removed = {}
        for pe, item in new_items.items():
            o = old_items.get(pe, _MISSING)
            if o is _MISSING:
                changed[pe] = _item_set(item, elem)
            elif o is not item and o != item:
                c, r = _diff(o, item, elem)
                if c is not None:
                    changed[pe] = c
                if r is not None:
                    removed[pe] = r
        for pe, o in old_items.items():
            if pe not in new_items:
                removed[pe] = _item_set(o, elem)
        return changed or None, removed or None
    if kind == LIST_SET and isinstance(ov, list) and isinstance(nv, list):
        try:
            olds = {value_element(v) for v in ov}
            news = {value_element(v) for v in nv}
        except TypeError:
            return {}, None
        return ({pe: {} for pe in news - olds} or None), ({pe: {} for pe in olds - news} or None)
    return {}, None  # a leaf or an atomic value changed


def _item_set(item: Any, elem: FieldType) -> FieldSet:
    return {MEMBER: {}, **value_set(item, elem, True)}


def _index(items: list[Any], t: FieldType) -> dict[str, Any] | None:
    """Keyed list items by path element; None when an item has no key or two share one (then it is atomic)."""
    out: dict[str, Any] = {}
    for item in items:
        pe = t.key_of(item)
        if pe is None or pe in out:
            return None
        out[pe] = item
    return out


# ---------------------------------------------------------------- merge


def merge(live: dict[str, Any], config: dict[str, Any], t: FieldType) -> dict[str, Any]:
    """The live object with the configuration applied. The result shares nothing with `live`; it takes over
    the configuration's values (the caller hands the configuration over)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(live)) if live else {}
    merged = _merge(out, config, t)
    assert isinstance(merged, dict)
    return merged


def _merge(lv: Any, cv: Any, t: FieldType) -> Any:
    kind = t.kind
    if kind in GRANULAR_MAPS and isinstance(lv, dict) and isinstance(cv, dict):
        for key, v in cv.items():
            if v is None:
                lv.pop(key, None)
            elif key in lv:
                lv[key] = _merge(lv[key], v, t.child(key))
            else:
                lv[key] = v
        return lv
    if kind == LIST_MAP and isinstance(lv, list) and isinstance(cv, list):
        return _merge_list(lv, cv, t)
    if kind == LIST_SET and isinstance(lv, list) and isinstance(cv, list):
        try:
            return _merge_ordered(lv, cv, [value_element(v) for v in lv], [value_element(v) for v in cv], None)
        except TypeError:
            return cv
    return cv


def _merge_list(lv: list[Any], cv: list[Any], t: FieldType) -> list[Any]:
    lkeys = [t.key_of(item) for item in lv]
    ckeys = [t.key_of(item) for item in cv]
    if None in lkeys or None in ckeys or len(set(lkeys)) < len(lkeys) or len(set(ckeys)) < len(ckeys):
        return cv  # not a well-keyed list on one side: the configuration replaces it
    return _merge_ordered(lv, cv, lkeys, ckeys, t.elem())  # type: ignore[arg-type]


def _merge_ordered(
    lv: list[Any], cv: list[Any], lkeys: list[str], ckeys: list[str], elem: FieldType | None
) -> list[Any]:
    """Live items in live order; a configured item comes out no later than the live items it precedes."""
    cpos = {k: i for i, k in enumerate(ckeys)}
    lpos = {k: i for i, k in enumerate(lkeys)}
    out: list[Any] = []
    ci = 0

    def emit(i: int) -> None:
        item = cv[i]
        j = lpos.get(ckeys[i])
        if j is not None and elem is not None:
            item = _merge(lv[j], item, elem)
        out.append(item)

    for li, key in enumerate(lkeys):
        target = cpos.get(key)
        if target is None:
            out.append(lv[li])
            continue
        while ci <= target:
            emit(ci)
            ci += 1
    while ci < len(cv):
        emit(ci)
        ci += 1
    return out


# ---------------------------------------------------------------- prune


def prune(obj: dict[str, Any], candidates: FieldSet, keep: FieldSet, t: FieldType) -> None:
    """Remove, in place, the candidate fields nobody in `keep` owns (at or below them)."""
    _prune(obj, candidates, keep, t)


def _prune(value: Any, cand: FieldSet, keep: FieldSet | None, t: FieldType) -> None:
    kind = t.kind
    if kind in GRANULAR_MAPS and isinstance(value, dict):
        for pe, cnode in cand.items():
            if pe[:2] != "f:":
                continue
            name = pe[2:]
            if name not in value:
                continue
            knode = keep.get(pe) if keep else None
            if knode is None and is_member(cnode):
                del value[name]
                continue
            if cnode:
                sub = value[name]
                had = bool(sub)
                _prune(sub, cnode, knode, t.child(name))
                if knode is None and had and isinstance(sub, dict | list) and not sub:
                    del value[name]  # emptied by pruning: the struct or map goes too
        return
    if kind == LIST_MAP and isinstance(value, list):
        elem = t.elem()
        drop: set[int] = set()
        for i, item in enumerate(value):
            key = t.key_of(item)
            cnode = cand.get(key) if key is not None else None
            if cnode is None or key is None:
                continue
            knode = keep.get(key) if keep else None
            if knode is None and is_member(cnode):
                drop.add(i)
            elif cnode:
                _prune(item, cnode, knode, elem)
        if drop:
            value[:] = [item for i, item in enumerate(value) if i not in drop]
        return
    if kind == LIST_SET and isinstance(value, list):
        try:
            value[:] = [v for v in value if (pe := value_element(v)) not in cand or (keep is not None and pe in keep)]
        except TypeError:
            return


# ---------------------------------------------------------------- conflicts


def manager_label(entry: dict[str, Any]) -> str:
    """How kube-apiserver names a manager in a conflict: `"name"`, with its subresource and, for an Update,
    the API version it wrote with."""
    label = orjson.dumps(str(entry.get("manager", ""))).decode()
    if entry.get("subresource"):
        label += f" with subresource {orjson.dumps(str(entry['subresource'])).decode()}"
    if entry.get("operation") == "Update":
        label += f" using {entry.get('apiVersion', '')}"
    return label


def conflict_error(conflicts: list[tuple[dict[str, Any], FieldSet]]) -> errors.StatusError:
    """409 Conflict with one `FieldManagerConflict` cause per conflicting field, worded as upstream."""
    found = [(manager_label(entry), path_string(path)) for entry, s in conflicts for path in paths(s)]
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {m}", "field": p} for m, p in found]
    if len(found) == 1:
        message = f"Apply failed with 1 conflict: conflict with {found[0][0]}: {found[0][1]}"
    else:
        by_manager: dict[str, list[str]] = {}
        for m, p in found:
            by_manager.setdefault(m, []).append(p)
        lines = []
        for m in sorted(by_manager):
            lines.append(f"conflicts with {m}:")
            lines.extend(f"- {p}" for p in by_manager[m])
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, {"causes": causes})
