"""The three PATCH body formats kube-apiserver accepts besides server-side apply.

* JSON patch (RFC 6902) through the `jsonpatch` library, with the apiserver's split between 400 (the body is
  not a patch document) and 422 (the document cannot be applied).
* JSON merge patch (RFC 7386) as evanphx/json-patch does it: nulls delete, and nulls nested in replaced values
  are pruned.
* Strategic merge patch as k8s.io/apimachinery/pkg/util/strategicpatch applies a patch onto an original,
  driven by the `x-kubernetes-patch-*` metadata of the built-in schemas rather than Go struct tags.

Every function works on copies: neither the object nor the patch passed in is ever modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from tmc.apimachinery import errors
from tmc.apimachinery.schemas import Schema

MAX_JSON_PATCH_OPERATIONS = 10000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList"
_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})

# The apimachinery `mergepatch` sentinel errors, word for word, so clients see the messages they know.
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"
_LIST_OF_LISTS = "lists of lists are not supported"

Ident = Callable[[Any], Any]


def unprocessable(detail: str) -> errors.StatusError:
    """The 422 kube-apiserver returns for a patch it cannot apply (`NewGenericServerResponse(422, ...)`).

    The apiserver's message is this generic sentence; the reason why is carried as the single cause.
    """
    return errors.StatusError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
    )


def _go(value: Any) -> str:
    """Render a JSON value the way Go's `%v` prints decoded JSON, as the upstream error messages do."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _strip_nulls(value: Any) -> Any:
    """A fresh copy of `value` without null map members (maps nested in lists included; null list items stay)."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- JSON patch


def apply_json_patch(obj: dict[str, Any], patch_ops: Any) -> dict[str, Any]:
    """Apply an RFC 6902 patch: 400 when the body is not a list of operation objects, 413 past the
    apiserver's operation limit, 422 when an operation fails (unknown op, missing path, failed `test`)."""
    if not isinstance(patch_ops, list):
        raise errors.bad_request(
            f"json: cannot unmarshal {_json_kind(patch_ops)} into Go value of type jsonpatch.Patch"
        )
    for op in patch_ops:
        if not isinstance(op, dict):
            raise errors.bad_request(
                f"json: cannot unmarshal {_json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(patch_ops) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.too_large(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(patch_ops)}"
        )
    doc: Any = copy.deepcopy(obj)
    for op in patch_ops:
        kind, path = op.get("op"), op.get("path")
        if not isinstance(kind, str) or kind not in _JSON_PATCH_OPS:
            raise unprocessable(f"Unexpected kind: {_go(kind)}")
        if not isinstance(path, str):
            raise unprocessable("operation missing path field")
        try:
            # One operation at a time so a failure names the operation that failed, as evanphx does.
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise unprocessable(f"testing value {path} failed: test failed") from None
        except jsonpatch.InvalidJsonPatch as exc:
            raise unprocessable(str(exc)) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, LookupError, TypeError) as exc:
            raise unprocessable(f'{kind} operation does not apply: doc is missing path: "{path}": {exc}') from None
    if not isinstance(doc, dict):
        raise unprocessable(f"json patch result is a JSON {_json_kind(doc)}, not an object")
    return doc


# ---------------------------------------------------------------------------------------- JSON merge patch


def apply_merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch. A patch that is not an object cannot yield an object: 400, as
    evanphx's `ErrBadJSONPatch` is for null and scalar patches."""
    if not isinstance(patch, dict):
        raise errors.bad_request("Invalid JSON Patch")
    return _merge_patch(copy.deepcopy(obj), patch)


def _merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = _merge_patch(target[key], value)
        else:
            target[key] = _strip_nulls(value)
    return target


# ----------------------------------------------------------------------------------- strategic merge patch


def apply_strategic_merge_patch(obj: dict[str, Any], patch: Any, schema: Schema | None) -> dict[str, Any]:
    """Apply a strategic merge patch the way kube-apiserver does (`StrategicMergeMapPatch`).

    `schema` is the object's schema; its patch metadata decides how each list merges. Where the schema is
    unknown (None, or a field it does not describe) maps merge like a merge patch and lists are replaced.
    Malformed patches raise 400; a list of lists raises 422, as `interpretStrategicMergePatchError` maps it.
    """
    if patch is None:
        # A JSON null decodes into a nil map upstream, which patches nothing.
        return copy.deepcopy(obj)
    if not isinstance(patch, dict):
        raise errors.bad_request(
            f"json: cannot unmarshal {_json_kind(patch)} into Go value of type map[string]interface {{}}"
        )
    return _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), schema)


def _field_meta(parent: Schema | None, name: str) -> tuple[Schema | None, str, str]:
    """(field schema, patch strategy without retainKeys, merge key) of field `name` of `parent`."""
    field = parent.field(name) if parent is not None else None
    if field is None:
        return None, "", ""
    strategies = [s for s in field.patch_strategy.split(",") if s and s != "retainKeys"]
    if len(strategies) > 1:
        # A schema defect rather than a bad request; upstream fails the same way.
        raise errors.internal_error(f"unexpected patch strategy: {_go(field.patch_strategy.split(','))}")
    return field, strategies[0] if strategies else "", field.patch_merge_key


def _directive_field(key: str, prefix: str, message: str) -> str:
    head, sep, field = key.partition("/")
    if head != prefix or not sep:
        raise errors.bad_request(message)
    return field


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    """Merge `patch` into `original`; both are private copies and may be consumed."""
    if _DIRECTIVE in patch:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            # Upstream returns the patch itself; merging it into {} also resolves its nested directives.
            del patch[_DIRECTIVE]
            return _merge_map({}, patch, schema)
        if directive == "delete":
            # Upstream yields an empty map here, not an absent key.
            return {}
        if directive != "merge":
            raise errors.bad_request(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")
        del patch[_DIRECTIVE]

    _apply_retain_keys(original, patch)
    _apply_element_orders(original, patch, schema)

    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVES):
            field = _directive_field(key, _DELETE_PRIMITIVES, _BAD_PRIMITIVE_LIST)
            if not isinstance(value, list):
                raise errors.bad_request(_BAD_PRIMITIVE_LIST)
            current = original.get(field)
            if isinstance(current, list):
                doomed = {_hashable(v) for v in value}
                original[field] = [item for item in current if _hashable(item) not in doomed]
            continue
        if key.startswith(_SET_ORDER + "/"):
            continue  # an order for a list with no merge strategy: nothing to reorder
        if value is None:
            original.pop(key, None)
            continue
        original[key] = _merge_value(original.get(key), value, schema, key)
    return original


def _merge_value(current: Any, value: Any, parent: Schema | None, key: str) -> Any:
    field, strategy, merge_key = _field_meta(parent, key)
    if isinstance(value, dict):
        return _merge_map(current if isinstance(current, dict) and strategy != "replace" else {}, value, field)
    if isinstance(value, list):
        if strategy != "merge":
            return _strip_nulls(value)
        items = field.items() if field else None
        return _merge_list(current if isinstance(current, list) else [], value, items, merge_key)[0]
    return value


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """`$retainKeys`: drop every original key not listed; every key the patch sets must be listed."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise errors.bad_request(_BAD_RETAIN_KEYS)
    for key, value in patch.items():
        if value is None or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES)):
            continue
        if key not in retain:
            raise errors.bad_request(_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in retain]:
        del original[key]


def _hashable(value: Any) -> Any:
    """A hashable stand-in for a JSON value, so element lookups can use dicts instead of scans."""
    if isinstance(value, dict | list):
        return ("$json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    return value


def _identity(merge_key: str) -> Ident:
    """What identifies a list element: its merge key value for maps, the value itself for primitives."""
    if not merge_key:
        return _hashable
    return lambda item: _hashable(item.get(merge_key)) if isinstance(item, dict) else None


def _require_merge_key(items: list[Any], merge_key: str) -> None:
    for item in items:
        if not isinstance(item, dict):
            raise errors.bad_request(f"expected a map, but received a {_json_kind(item)}")
        if merge_key not in item:
            raise errors.bad_request(f"map: {_go(item)} does not contain declared merge key: {merge_key}")


def _is_directive(item: Any) -> bool:
    return isinstance(item, dict) and _DIRECTIVE in item


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], schema: Schema | None) -> None:
    """`$setElementOrder/<list>`: merge that list now, then order it as the directive says.

    Elements the order names come in its order; the others (only on the server) keep their place relative
    to the named elements they followed in the original list, as upstream's `normalizeElementOrder` does.
    """
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        name = _directive_field(key, _SET_ORDER, _BAD_SET_ORDER)
        field, strategy, merge_key = _field_meta(schema, name)
        if strategy != "merge":
            continue  # the main loop skips the directive and replaces the list as usual
        order = patch.pop(key)
        if not isinstance(order, list):
            raise errors.bad_request(_BAD_SET_ORDER)
        if (name in patch and patch[name] is None) or (name not in patch and name not in original):
            continue  # the list is being deleted, or there is nothing to order
        patch_list = patch.pop(name, [])
        if not isinstance(patch_list, list):
            raise errors.bad_request(_BAD_SET_ORDER)
        server = original.get(name)
        server_list = server if isinstance(server, list) else []
        ident = _identity(merge_key)
        if merge_key:
            _require_merge_key(order, merge_key)
            _require_merge_key([p for p in patch_list if not _is_directive(p)], merge_key)
        _check_patch_follows_order(patch_list, order, ident)
        merged, view = _merge_list(server_list, patch_list, field.items() if field else None, merge_key)
        original[name] = _normalize_order(merged, [ident(o) for o in order], [ident(v) for v in view], ident)


def _check_patch_follows_order(patch_list: list[Any], order: list[Any], ident: Ident) -> None:
    """The patch's elements must appear in the order list, in the same relative order."""
    remaining: Iterator[Any] = iter([ident(o) for o in order])
    for item in patch_list:
        if _is_directive(item):
            continue
        wanted = ident(item)
        if not any(wanted == o for o in remaining):
            raise errors.bad_request(
                f"The order in patch list:\n{_go(patch_list)}\n doesn't match {_SET_ORDER} list:\n{_go(order)}\n"
            )


def _element_kind(*lists: list[Any]) -> str:
    """The kind ("map" or "scalar") shared by the elements of `lists`; mixed lists are rejected as upstream does."""
    kinds = set()
    for items in lists:
        for item in items:
            if isinstance(item, list):
                raise unprocessable(_LIST_OF_LISTS)
            kinds.add("map" if isinstance(item, dict) else "scalar")
    if len(kinds) > 1:
        raise errors.bad_request(f"list element types are not identical: {_go(list(lists))}")
    return kinds.pop() if kinds else "scalar"


def _merge_list(
    original: list[Any], patch: list[Any], items: Schema | None, merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Merge a patch list into a list whose strategy is `merge` (keyed maps, or primitives as a set).

    Returns the merged list and, second, what upstream's caller still sees in its slice of `original`
    afterwards: Go deletes by shifting elements left in the shared backing array and appends new elements
    into the freed slots, and `$setElementOrder` then orders by that aliased view. Reproducing it keeps
    server-only elements exactly where kube-apiserver puts them.
    """
    current, view = list(original), list(original)
    tracking = True
    entries = []
    for element in patch:
        if not _is_directive(element):
            entries.append(element)
            continue
        directive = element[_DIRECTIVE]
        if directive == "replace":
            tracking = False  # the list becomes the patch's other elements, held in a new backing array
        elif directive == "delete":
            if not merge_key or merge_key not in element:
                raise errors.bad_request(f"map: {_go(element)} does not contain declared merge key: {merge_key}")
            while (doomed := _find(current, merge_key, element[merge_key])) >= 0:
                del current[doomed]
                view[: len(current)] = current
        elif directive != "merge":
            raise errors.bad_request(f"unknown patch type: {_go(directive)} in map: {_go(element)}")
    if not tracking:
        current = []
    if not current and not entries:
        return [], view

    ident = _identity(merge_key)
    server_ids = [ident(c) for c in current]
    if _element_kind(current, entries) == "scalar":
        seen: set[Any] = set()
        scalars = []
        for value in [*current, *entries]:
            if ident(value) not in seen:
                seen.add(ident(value))
                scalars.append(value)
        current = scalars
    else:
        if not merge_key:
            raise errors.bad_request("cannot merge lists without merge key for type map")
        _require_merge_key(entries, merge_key)
        where: dict[Any, int] = {}
        for i, element in enumerate(current):
            if isinstance(element, dict) and merge_key in element:
                where.setdefault(ident(element), i)
        for entry in entries:
            match = where.get(ident(entry), -1)
            if match >= 0:
                current[match] = _merge_map(current[match], entry, items)
                continue
            if tracking and len(current) < len(view):
                view[len(current)] = entry
            where[ident(entry)] = len(current)
            current.append(_merge_map({}, entry, items))
    return _normalize_order(current, [ident(e) for e in entries], server_ids, ident), view


def _find(items: list[Any], merge_key: str, value: Any) -> int:
    return next(
        (i for i, m in enumerate(items) if isinstance(m, dict) and merge_key in m and m[merge_key] == value), -1
    )


def _positions(ids: list[Any]) -> Callable[[Any], int]:
    """Index of the first occurrence of an id in `ids`, or -1."""
    table: dict[Any, int] = {}
    for i, value in enumerate(ids):
        table.setdefault(value, i)
    return lambda wanted: table.get(wanted, -1)


def _normalize_order(merged: list[Any], patch_ids: list[Any], server_ids: list[Any], ident: Ident) -> list[Any]:
    """Upstream's ordering of a merged list.

    Elements named by the patch follow the patch's order; server-only elements keep the original order and
    are interleaved before a patch element only when they preceded it in the original list. A patch element
    the server did not have therefore goes ahead of the server-only elements still pending, which is why
    SMP-added list items show up first in kube-apiserver's output.
    """
    in_patch, in_server = _positions(patch_ids), _positions(server_ids)
    named = sorted((m for m in merged if in_patch(ident(m)) >= 0), key=lambda m: in_patch(ident(m)))
    # Server-only elements are all in server_ids; anything else (after a `$patch: replace`) sorts last.
    server_only = sorted(
        (m for m in merged if in_patch(ident(m)) < 0),
        key=lambda m: in_server(ident(m)) % (len(server_ids) + 1),
    )
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(named):
        if j < len(named) and i < len(server_only):
            left, right = in_server(ident(server_only[i])), in_server(ident(named[j]))
            take_server = 0 <= left < right
        else:
            take_server = j >= len(named)
        if take_server:
            result.append(server_only[i])
            i += 1
        else:
            result.append(named[j])
            j += 1
    return result
