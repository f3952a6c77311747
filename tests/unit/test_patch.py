"""JSON patch, JSON merge patch and strategic merge patch, checked against kube-apiserver's behaviour.

The strategic merge patch tables follow the shape of the upstream strategicpatch test cases: a small
`MergeItem` schema with one field per patch strategy, then the same behaviour on real built-in schemas.
Every case also asserts that neither the object nor the patch was modified.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tmc.apimachinery.errors import StatusError
from tmc.apimachinery.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from tmc.apimachinery.schemas import Schema, builtin_schema

_ITEM_REF = {"$ref": "#/$defs/MergeItem"}
_DEFS: dict[str, dict[str, Any]] = {
    "MergeItem": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "mergingList": {
                "type": "array",
                "items": _ITEM_REF,
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            },
            "nonMergingList": {"type": "array", "items": _ITEM_REF},
            "mergingIntList": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
            "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
            "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
            "replacingItem": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-patch-strategy": "replace",
            },
            "retainKeysMap": {"$ref": "#/$defs/RetainKeysMergeItem", "x-kubernetes-patch-strategy": "retainKeys"},
            "retainKeysMergingList": {
                "type": "array",
                "items": _ITEM_REF,
                "x-kubernetes-patch-strategy": "merge,retainKeys",
                "x-kubernetes-patch-merge-key": "name",
            },
        },
    },
    "RetainKeysMergeItem": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "value": {"type": "string"},
            "other": {"type": "string"},
            "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
            "mergingIntList": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-patch-strategy": "merge"},
        },
    },
}
MERGE_ITEM = Schema(_ITEM_REF, _DEFS)


def smp(original: dict[str, Any], patch: Any, schema: Schema | None = MERGE_ITEM) -> dict[str, Any]:
    """Apply a strategic merge patch and check that neither input was touched."""
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    result = apply_strategic_merge_patch(original, patch, schema)
    assert original == original_before
    assert patch == patch_before
    return result


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [item["name"] for item in items]


# --------------------------------------------------------------------------------------------- maps

MAP_CASES = [
    pytest.param({"name": 1}, {"value": 1}, {"name": 1, "value": 1}, id="add field"),
    pytest.param({"name": 1}, {"name": None, "value": 1}, {"value": 1}, id="add and delete field"),
    pytest.param({"name": 1, "value": 1}, {"name": None, "value": None}, {}, id="delete all fields"),
    pytest.param({"name": 1}, {"other": None}, {"name": 1}, id="null for a missing field is dropped"),
    pytest.param(
        {"simpleMap": {"key1": "1", "key2": "1"}},
        {"simpleMap": {"key2": None, "key3": "3"}},
        {"simpleMap": {"key1": "1", "key3": "3"}},
        id="nested map merges key-wise and null deletes",
    ),
    pytest.param(
        {"name": 1},
        {"simpleMap": {"a": "x", "b": None}},
        {"name": 1, "simpleMap": {"a": "x"}},
        id="nulls inside a new map are dropped",
    ),
    pytest.param(
        {"simpleMap": {"key1": "1"}}, {"simpleMap": {"$patch": "delete"}}, {"simpleMap": {}}, id="$patch delete map"
    ),
    pytest.param({"name": 1, "value": 1}, {"$patch": "replace"}, {}, id="$patch replace with nothing"),
    pytest.param({"name": 1, "value": 1}, {"other": "a", "$patch": "replace"}, {"other": "a"}, id="$patch replace"),
    pytest.param(
        {"simpleMap": {"a": "1", "b": "2"}},
        {"simpleMap": {"$patch": "replace", "c": "3"}},
        {"simpleMap": {"c": "3"}},
        id="$patch replace nested map",
    ),
    pytest.param(
        {"simpleMap": {"a": "1"}},
        {"simpleMap": {"$patch": "merge", "b": "2"}},
        {"simpleMap": {"a": "1", "b": "2"}},
        id="$patch merge is the default",
    ),
    pytest.param(
        {"replacingItem": {"a": 1, "b": {"c": 2}}},
        {"replacingItem": {"b": {"d": 3}}},
        {"replacingItem": {"b": {"d": 3}}},
        id="replace strategy map is replaced whole",
    ),
    pytest.param({"name": "a"}, {"name": {"x": 1}}, {"name": {"x": 1}}, id="map replaces a scalar"),
    pytest.param({"simpleMap": {"a": "1"}}, {"simpleMap": "s"}, {"simpleMap": "s"}, id="scalar replaces a map"),
    pytest.param({"name": 1}, {}, {"name": 1}, id="empty patch"),
]


@pytest.mark.parametrize(("original", "patch", "expected"), MAP_CASES)
def test_smp_maps(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert smp(original, patch) == expected


# -------------------------------------------------------------------------------------------- lists

LIST_CASES = [
    pytest.param(
        {"nonMergingIntList": [1, 2]}, {"nonMergingIntList": [2, 3]}, {"nonMergingIntList": [2, 3]}, id="replace ints"
    ),
    pytest.param(
        {"nonMergingList": [{"name": 1, "value": "a"}]},
        {"nonMergingList": [{"name": 2}]},
        {"nonMergingList": [{"name": 2}]},
        id="replace list of maps without strategy",
    ),
    pytest.param(
        {"mergingIntList": [1, 2]}, {"mergingIntList": [2, 3]}, {"mergingIntList": [1, 2, 3]}, id="unique scalars"
    ),
    pytest.param(
        {"mergingIntList": [1, 2]}, {"mergingIntList": [3]}, {"mergingIntList": [3, 1, 2]}, id="new scalar goes first"
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3]},
        {"mergingIntList": [3, 1]},
        {"mergingIntList": [2, 3, 1]},
        id="scalar order from the patch",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
        {"mergingList": [{"name": 1, "value": 1}]},
        {"mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
        id="merge element by key",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
        {"mergingList": [{"name": 3, "value": 3}]},
        {"mergingList": [{"name": 3, "value": 3}, {"name": 1}, {"name": 2, "value": 2}]},
        id="new element goes ahead of server elements",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]},
        {
            "mergingList": [
                {"name": 3, "value": "c"},
                {"name": 1, "value": "a"},
                {"name": 2, "value": "b", "other": "x"},
            ]
        },
        id="order from the patch",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]},
        {"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
        {"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]},
        id="server element keeps its place before patched ones",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "value": 1, "other": "a"}]},
        {"mergingList": [{"name": 1, "value": None}]},
        {"mergingList": [{"name": 1, "other": "a"}]},
        id="null deletes a field of an element",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"mergingList": [{"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2}]},
        id="$patch delete element",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]},
        {"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]},
        {"mergingList": [{"name": 2, "value": "a"}]},
        id="$patch delete removes duplicates",
    ),
    pytest.param(
        {"mergingList": [{"name": 2}]},
        {"mergingList": [{"name": 9, "$patch": "delete"}]},
        {"mergingList": [{"name": 2}]},
        id="$patch delete of a missing element",
    ),
    pytest.param(
        {"name": "hi"},
        {"mergingList": [{"name": "hello"}, {"$patch": "delete", "name": "doesntexist"}]},
        {"name": "hi", "mergingList": [{"name": "hello"}]},
        id="directives in a new list are applied, not stored",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2}]},
        {"mergingList": [{"$patch": "replace"}]},
        {"mergingList": []},
        id="$patch replace empties a list",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "value": "a"}, {"name": 2}]},
        {"mergingList": [{"name": 3}, {"$patch": "replace"}, {"name": 1}]},
        {"mergingList": [{"name": 3}, {"name": 1}]},
        id="$patch replace list",
    ),
    pytest.param({"mergingList": []}, {"mergingList": []}, {"mergingList": []}, id="merge empty lists"),
    pytest.param(
        {"mergingList": [{"name": {"k": [1]}, "value": "a"}, {"name": "1"}]},
        {"mergingList": [{"name": {"k": [1]}, "other": "b"}, {"name": 1}]},
        {"mergingList": [{"name": {"k": [1]}, "value": "a", "other": "b"}, {"name": 1}, {"name": "1"}]},
        id="merge key values compare as JSON values",
    ),
    pytest.param({"mergingList": [{"name": 1}]}, {"mergingList": None}, {}, id="null deletes a whole list"),
    pytest.param(
        {"mergingList": [{"name": 1, "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {"mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]},
        {"mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}, {"name": 2}]},
        id="non-merging list nested in merging list is replaced",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "mergingList": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {"mergingList": [{"name": 1, "mergingList": [{"name": 2, "other": "x"}, {"name": 1, "value": 1}]}]},
        {
            "mergingList": [
                {"name": 1, "mergingList": [{"name": 2, "value": 2, "other": "x"}, {"name": 1, "value": 1}]},
                {"name": 2},
            ]
        },
        id="merging list nested in merging list",
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), LIST_CASES)
def test_smp_lists(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert smp(original, patch) == expected


# ---------------------------------------------------------------------------------- list directives

DIRECTIVE_CASES = [
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 3, "value": 3}, {"name": 4, "value": 4}, {"name": 2, "value": 2}]},
        {"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}]},
        {"mergingList": [{"name": 4, "value": 4}, {"name": 2, "value": 2}, {"name": 3, "value": 3}, {"name": 1}]},
        id="setElementOrder alone reorders",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]},
        {
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}],
        },
        {
            "mergingList": [
                {"name": 4, "value": 4},
                {"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"},
                {"name": 3, "value": 3},
            ]
        },
        id="setElementOrder places new elements",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]},
        id="setElementOrder with add, delete and a server-only element",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 4, "other": "c"}]},
        {
            "$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
            "mergingList": [{"name": 2}, {"name": 3}, {"name": 1, "$patch": "delete"}],
        },
        {"mergingList": [{"name": 4, "other": "c"}, {"name": 2}, {"name": 3}]},
        id="setElementOrder server-only element ahead of reused slots",
    ),
    pytest.param(
        {"mergingList": [{"name": 3, "other": "a"}]},
        {"$setElementOrder/mergingList": [{"name": 2}], "mergingList": [{"name": 2}, {"name": 1, "$patch": "delete"}]},
        {"mergingList": [{"name": 2}, {"name": 3, "other": "a"}]},
        id="setElementOrder deleting a missing element",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 3}]},
        {"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}], "mergingList": [{"name": 2}]},
        {"mergingList": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 3}]},
        id="setElementOrder keeps a trailing server-only element last",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 3}]},
        {
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
        {"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]},
        id="setElementOrder naming an absent element",
    ),
    pytest.param(
        {},
        {"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}], "mergingList": [{"name": 2}, {"name": 1}]},
        {"mergingList": [{"name": 2}, {"name": 1}]},
        id="setElementOrder for a new list",
    ),
    pytest.param(
        {"name": 1},
        {"$setElementOrder/mergingList": [{"name": 1}]},
        {"name": 1},
        id="setElementOrder for a list nobody has",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "mergingList": [{"name": 1}, {"name": 2, "value": 2}]}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [
                {
                    "$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                    "name": 1,
                    "mergingList": [{"name": 1, "value": 1}],
                }
            ],
        },
        {"mergingList": [{"name": 1, "mergingList": [{"name": 2, "value": 2}, {"name": 1, "value": 1}]}, {"name": 2}]},
        id="nested setElementOrder",
    ),
    pytest.param(
        {"mergingIntList": [1, 4, 2]},
        {"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]},
        {"mergingIntList": [3, 1, 4, 2]},
        id="setElementOrder of primitives with a server-only value",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 4]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]},
        {"mergingIntList": [1, 2, 3, 4]},
        id="setElementOrder of primitives appends",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3]},
        {"$setElementOrder/mergingIntList": [2, 1], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [2, 1]},
        id="setElementOrder with deleteFromPrimitiveList",
    ),
    pytest.param(
        {"mergingIntList": [1, 2, 3, 3, 4]},
        {"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2, 4]},
        id="deleteFromPrimitiveList removes duplicates",
    ),
    pytest.param(
        {"mergingIntList": [1, 2]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"mergingIntList": [1, 2]},
        id="deleteFromPrimitiveList of a missing value",
    ),
    pytest.param(
        {"foo": ["bar"]},
        {"$deleteFromPrimitiveList/mergingIntList": [3]},
        {"foo": ["bar"]},
        id="deleteFromPrimitiveList does not create the list",
    ),
    pytest.param(
        {"nonMergingIntList": [1, 2, 3]},
        {"$deleteFromPrimitiveList/nonMergingIntList": [2]},
        {"nonMergingIntList": [1, 3]},
        id="deleteFromPrimitiveList on a list without merge strategy",
    ),
    pytest.param(
        {"nonMergingList": [{"name": 1}, {"name": 2}]},
        {"$setElementOrder/nonMergingList": [{"name": 2}], "nonMergingList": [{"name": 2}]},
        {"nonMergingList": [{"name": 2}]},
        id="setElementOrder on a replace list is ignored",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "value": "a", "other": "b"}},
        {"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "c"}},
        {"retainKeysMap": {"name": "foo", "value": "c"}},
        id="retainKeys clears unlisted fields",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "value": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name"], "value": None}},
        {"retainKeysMap": {"name": "foo"}},
        id="retainKeys with a null for an unlisted field",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "foo", "value": "a"}},
        {"retainKeysMap": {"value": "b"}},
        {"retainKeysMap": {"name": "foo", "value": "b"}},
        id="retainKeys strategy without the directive merges",
    ),
    pytest.param(
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}]},
        {"retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "b"}]},
        {"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "b"}]},
        id="retainKeys in a merging list element",
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), DIRECTIVE_CASES)
def test_smp_directives(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert smp(original, patch) == expected


# ------------------------------------------------------------------------------------------- errors

ERROR_CASES = [
    pytest.param({}, ["a"], 400, "cannot unmarshal array", id="patch is not an object"),
    pytest.param({}, "x", 400, "cannot unmarshal string", id="patch is a string"),
    pytest.param({"name": 1}, {"$patch": "explode"}, 400, "unknown patch type: explode in map", id="bad map directive"),
    pytest.param(
        {"mergingList": [{"name": 1}]},
        {"mergingList": [{"name": 1, "$patch": "explode"}]},
        400,
        "unknown patch type: explode",
        id="bad list directive",
    ),
    pytest.param(
        {"mergingList": [{"name": 1, "value": "a"}]},
        {"mergingList": [{"value": "b"}]},
        400,
        "does not contain declared merge key: name",
        id="missing merge key",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}]},
        {"mergingList": [{"$patch": "delete"}]},
        400,
        "does not contain declared merge key",
        id="delete without merge key",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}]},
        {"mergingList": ["a"]},
        400,
        "list element types are not identical",
        id="mixed element types",
    ),
    pytest.param(
        {"mergingIntList": [1]}, {"mergingIntList": [[2]]}, 422, "lists of lists are not supported", id="list of lists"
    ),
    pytest.param(
        {"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]},
        {
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
        },
        400,
        "doesn't match $setElementOrder list",
        id="patch order contradicts setElementOrder",
    ),
    pytest.param(
        {"mergingIntList": [1, 3, 2]},
        {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]},
        400,
        "doesn't match",
        id="primitive order contradicts setElementOrder",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}]},
        {"$setElementOrder/mergingList": {"name": 1}},
        400,
        "invalid patch format of setElementOrder list",
        id="setElementOrder not a list",
    ),
    pytest.param(
        {"mergingList": [{"name": 1}]},
        {"$setElementOrder/mergingList": ["a"]},
        400,
        "expected a map",
        id="setElementOrder of scalars for a map list",
    ),
    pytest.param(
        {}, {"$setElementOrder": []}, 400, "invalid patch format of setElementOrder list", id="setElementOrder no field"
    ),
    pytest.param(
        {"mergingIntList": [1]},
        {"$deleteFromPrimitiveList/mergingIntList": 1},
        400,
        "invalid patch format of primitive list",
        id="deleteFromPrimitiveList not a list",
    ),
    pytest.param(
        {}, {"$deleteFromPrimitiveList": [1]}, 400, "invalid patch format of primitive list", id="delete list no field"
    ),
    pytest.param(
        {"retainKeysMap": {"name": "a"}},
        {"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}},
        400,
        "invalid patch format of retainKeys",
        id="patch sets a field retainKeys drops",
    ),
    pytest.param(
        {"retainKeysMap": {"name": "a"}},
        {"retainKeysMap": {"$retainKeys": "name"}},
        400,
        "invalid patch format of retainKeys",
        id="retainKeys not a list",
    ),
]


@pytest.mark.parametrize(("original", "patch", "code", "message"), ERROR_CASES)
def test_smp_errors(original: dict[str, Any], patch: Any, code: int, message: str) -> None:
    with pytest.raises(StatusError) as info:
        smp(original, patch)
    assert info.value.code == code
    details = info.value.details or {}
    assert message in info.value.message + "".join(c["message"] for c in details.get("causes", []))
    assert info.value.to_status()["reason"] == ("BadRequest" if code == 400 else "Invalid")


def test_smp_null_patch_is_a_no_op() -> None:
    assert smp({"name": 1}, None) == {"name": 1}


def test_smp_result_shares_nothing_with_inputs() -> None:
    original = {"simpleMap": {"a": "1"}, "mergingList": [{"name": 1, "simpleMap": {"x": "y"}}]}
    patch = {"mergingList": [{"name": 2, "simpleMap": {"p": "q"}}], "nonMergingList": [{"name": 5}]}
    result = smp(original, patch)
    result["simpleMap"]["a"] = "changed"
    result["mergingList"][0]["simpleMap"]["p"] = "changed"
    result["mergingList"][1]["simpleMap"]["x"] = "changed"
    result["nonMergingList"][0]["name"] = "changed"
    assert original == {"simpleMap": {"a": "1"}, "mergingList": [{"name": 1, "simpleMap": {"x": "y"}}]}
    assert patch == {"mergingList": [{"name": 2, "simpleMap": {"p": "q"}}], "nonMergingList": [{"name": 5}]}


# ------------------------------------------------------------------------- unknown and missing schemas

SCHEMALESS_CASES = [
    pytest.param({"a": {"b": 1, "c": 2}}, {"a": {"c": None, "d": 3}}, {"a": {"b": 1, "d": 3}}, id="maps merge"),
    pytest.param({"a": [{"name": 1}, {"name": 2}]}, {"a": [{"name": 3}]}, {"a": [{"name": 3}]}, id="lists replace"),
    pytest.param({"a": [1, 2]}, {"a": [2, 3]}, {"a": [2, 3]}, id="scalar lists replace"),
    pytest.param({"a": [1, 2]}, {"$setElementOrder/a": [2, 1]}, {"a": [1, 2]}, id="setElementOrder is ignored"),
    pytest.param({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 1}}, {"a": {"c": 1}}, id="map directives work"),
    pytest.param(
        {"a": {"$ref": "x"}}, {"a": {"$schema": "y"}}, {"a": {"$ref": "x", "$schema": "y"}}, id="$ keys are data"
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), SCHEMALESS_CASES)
def test_smp_without_schema(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert smp(original, patch, None) == expected


def test_smp_unknown_field_of_a_known_schema() -> None:
    # `extra` is not in MergeItem: merge-patch semantics for its map, replacement for its list.
    original = {"extra": {"a": 1, "l": [1, 2]}}
    assert smp(original, {"extra": {"b": 2, "l": [3]}}) == {"extra": {"a": 1, "b": 2, "l": [3]}}


# -------------------------------------------------------------------------------- built-in schemas


def deployment_schema() -> Schema:
    schema = builtin_schema("apps", "v1", "Deployment")
    assert schema is not None
    return schema


def live_deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["example.com/a", "example.com/b"],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1", "controller": True}
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            "args": ["--a", "--b"],
                        },
                        {"name": "b", "image": "redis:7"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                },
            },
        },
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def test_kubectl_apply_changing_one_image_keeps_both_containers() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                    "containers": [{"image": "nginx:1.26", "name": "a"}],
                }
            }
        },
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new": true}'}},
    }
    live = live_deployment()
    result = smp(live, patch, deployment_schema())
    expected = copy.deepcopy(live)
    pod_spec(expected)["containers"][0]["image"] = "nginx:1.26"
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = '{"new": true}'
    assert result == expected


def test_kubectl_apply_adding_and_removing_containers() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}],
                    "containers": [{"name": "c", "image": "busybox"}, {"name": "b", "$patch": "delete"}],
                }
            }
        }
    }
    result = smp(live_deployment(), patch, deployment_schema())
    assert [(c["name"], c["image"]) for c in pod_spec(result)["containers"]] == [("a", "nginx:1.25"), ("c", "busybox")]


def test_kubectl_patch_adding_a_container_puts_it_first() -> None:
    # As in the kubernetes.io "kubectl patch" walkthrough: without $setElementOrder the new element leads.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    result = smp(live_deployment(), patch, deployment_schema())
    assert names(pod_spec(result)["containers"]) == ["c", "a", "b"]


def test_nested_merge_keys_ports_env_and_volume_mounts() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                            "env": [{"name": "Y", "value": "changed"}, {"name": "X", "$patch": "delete"}],
                            "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                            "args": ["--c"],
                        }
                    ]
                }
            }
        }
    }
    container = pod_spec(smp(live_deployment(), patch, deployment_schema()))["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}]
    assert container["env"] == [{"name": "Y", "value": "changed"}]
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert container["args"] == ["--c"]  # atomic list: replaced


def test_volumes_merge_by_name_with_retain_keys() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "volumes": [
                        {"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cm"}},
                        {"name": "extra", "secret": {"secretName": "s"}},
                    ]
                }
            }
        }
    }
    volumes = pod_spec(smp(live_deployment(), patch, deployment_schema()))["volumes"]
    assert volumes == [{"name": "data", "configMap": {"name": "cm"}}, {"name": "extra", "secret": {"secretName": "s"}}]


def test_tolerations_have_no_strategy_and_are_replaced() -> None:
    patch = {"spec": {"template": {"spec": {"tolerations": [{"key": "k2", "operator": "Exists"}]}}}}
    result = smp(live_deployment(), patch, deployment_schema())
    assert pod_spec(result)["tolerations"] == [{"key": "k2", "operator": "Exists"}]


def test_deployment_strategy_retain_keys() -> None:
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert smp(live_deployment(), patch, deployment_schema())["spec"]["strategy"] == {"type": "Recreate"}


METADATA_CASES = [
    pytest.param(
        {"finalizers": ["example.com/c"]},
        {"finalizers": ["example.com/c", "example.com/a", "example.com/b"]},
        id="finalizers merge as a set",
    ),
    pytest.param(
        {"finalizers": ["example.com/b"]},
        {"finalizers": ["example.com/a", "example.com/b"]},
        id="finalizer already present",
    ),
    pytest.param(
        {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]},
        {"finalizers": ["example.com/b"]},
        id="finalizer removed",
    ),
    pytest.param({"finalizers": None}, {}, id="finalizers cleared"),
    pytest.param(
        {"ownerReferences": [{"uid": "u1", "controller": None, "blockOwnerDeletion": True}]},
        {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1", "blockOwnerDeletion": True}
            ]
        },
        id="ownerReferences merge by uid",
    ),
    pytest.param(
        {"ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u2"}]},
        {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u2"},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1", "controller": True},
            ]
        },
        id="ownerReference added",
    ),
    pytest.param(
        {"labels": {"tier": None, "new": "x"}, "annotations": {"a": "b"}},
        {
            "labels": {"app": "web", "new": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"},
        },
        id="labels and annotations merge key-wise",
    ),
]


@pytest.mark.parametrize(("metadata_patch", "expected"), METADATA_CASES)
def test_metadata_lists_and_maps(metadata_patch: dict[str, Any], expected: dict[str, Any]) -> None:
    result = smp(live_deployment(), {"metadata": metadata_patch}, deployment_schema())
    metadata = result["metadata"]
    for key in ("finalizers", "ownerReferences", "labels", "annotations"):
        if key in expected:
            assert metadata[key] == expected[key]
        elif key in metadata_patch:
            assert key not in metadata


def test_pdb_selector_is_replaced() -> None:
    schema = builtin_schema("policy", "v1", "PodDisruptionBudget")
    original = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    patch = {"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}}
    assert smp(original, patch, schema) == {
        "spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}, "minAvailable": 1}
    }


def test_service_account_secrets_merge_but_image_pull_secrets_are_atomic() -> None:
    # The 1.32 schema gives `secrets` merge-by-name but no strategy to `imagePullSecrets`.
    schema = builtin_schema("", "v1", "ServiceAccount")
    original = {"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "p"}]}
    patch = {"secrets": [{"name": "b"}, {"name": "a", "$patch": "delete"}], "imagePullSecrets": [{"name": "q"}]}
    assert smp(original, patch, schema) == {"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "q"}]}


def test_crd_schema_keys_starting_with_dollar_are_data() -> None:
    # JSONSchemaProps has `$ref` and `$schema` properties: they must not be taken for directives.
    schema = builtin_schema("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    props = {"type": "object", "$schema": "x", "properties": {"a": {"$ref": "#/y"}}}
    original = {"spec": {"group": "g", "versions": [{"name": "v1"}]}}
    patch = {"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": props}}]}}
    assert smp(original, patch, schema) == {"spec": {"group": "g", **patch["spec"]}}


# -------------------------------------------------------------------------------------- JSON patch

JSON_PATCH_CASES = [
    pytest.param({"a": 1}, [{"op": "add", "path": "/b", "value": 2}], {"a": 1, "b": 2}, id="add"),
    pytest.param({"a": [1, 3]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2, 3]}, id="add to list"),
    pytest.param({"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}], {"a": [1, 2]}, id="append"),
    pytest.param({"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}, id="remove"),
    pytest.param({"a": 1}, [{"op": "replace", "path": "/a", "value": {"x": None}}], {"a": {"x": None}}, id="replace"),
    pytest.param({"a": 1}, [{"op": "move", "from": "/a", "path": "/b"}], {"b": 1}, id="move"),
    pytest.param({"a": {"x": 1}}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": {"x": 1}, "b": {"x": 1}}),
    pytest.param(
        {"metadata": {"labels": {"a/b": "1"}}},
        [{"op": "test", "path": "/metadata/labels/a~1b", "value": "1"}, {"op": "remove", "path": "/metadata/labels"}],
        {"metadata": {}},
        id="test then remove with escaped path",
    ),
    pytest.param({"a": 1}, [], {"a": 1}, id="empty patch"),
    pytest.param(
        {},
        [{"op": "add", "path": "/b", "value": {}}, {"op": "add", "path": "/b/x", "value": 1}],
        {"b": {"x": 1}},
        id="later operation edits an added value",
    ),
]


@pytest.mark.parametrize(("obj", "ops", "expected"), JSON_PATCH_CASES)
def test_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    obj_before, ops_before = copy.deepcopy(obj), copy.deepcopy(ops)
    assert apply_json_patch(obj, ops) == expected
    assert obj == obj_before
    assert ops == ops_before


JSON_PATCH_ERRORS = [
    pytest.param({"op": "add", "path": "/a", "value": 1}, 400, "cannot unmarshal object", id="not a list"),
    pytest.param(["add"], 400, "cannot unmarshal string", id="operation not an object"),
    pytest.param([{"op": "frobnicate", "path": "/a"}], 422, "Unexpected kind: frobnicate", id="unknown op"),
    pytest.param([{"path": "/a"}], 422, "Unexpected kind", id="missing op"),
    pytest.param([{"op": ["add"], "path": "/a"}], 422, "Unexpected kind", id="op not a string"),
    pytest.param([{"op": "remove"}], 422, "missing path", id="missing path"),
    pytest.param([{"op": "add", "path": "/x/y", "value": 1}], 422, "doc is missing path", id="add under missing"),
    pytest.param([{"op": "remove", "path": "/nope"}], 422, "doc is missing path", id="remove missing"),
    pytest.param([{"op": "replace", "path": "/nope", "value": 1}], 422, "doc is missing path", id="replace missing"),
    pytest.param([{"op": "test", "path": "/a", "value": 2}], 422, "testing value /a failed", id="failed test"),
    pytest.param([{"op": "add", "path": "/b"}], 422, "'value'", id="add without value"),
    pytest.param([{"op": "move", "path": "/b"}], 422, "'from'", id="move without from"),
    pytest.param([{"op": "add", "path": "a", "value": 1}], 422, "", id="path without slash"),
    pytest.param([{"op": "replace", "path": "", "value": [1]}], 422, "not an object", id="root replaced by a list"),
]


@pytest.mark.parametrize(("ops", "code", "message"), JSON_PATCH_ERRORS)
def test_json_patch_errors(ops: Any, code: int, message: str) -> None:
    obj = {"a": 1}
    with pytest.raises(StatusError) as info:
        apply_json_patch(obj, ops)
    err = info.value
    assert err.code == code
    if code == 422:
        # kube-apiserver's generic 422 sentence, with the reason carried as the cause.
        assert err.reason == "Invalid"
        assert err.message == "the server rejected our request due to an error in our request"
        assert err.details is not None
        assert message in err.details["causes"][0]["message"]
    else:
        assert err.reason == "BadRequest"
        assert message in err.message
    assert obj == {"a": 1}


def test_json_patch_failure_leaves_object_untouched_midway() -> None:
    obj = {"a": 1}
    with pytest.raises(StatusError):
        apply_json_patch(obj, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}])
    assert obj == {"a": 1}


def test_json_patch_operation_limit() -> None:
    with pytest.raises(StatusError) as info:
        apply_json_patch({}, [{"op": "test", "path": "", "value": {}}] * 10001)
    assert info.value.code == 413


# -------------------------------------------------------------------------------- JSON merge patch

MERGE_PATCH_CASES = [
    pytest.param({"a": "b"}, {"a": "c"}, {"a": "c"}, id="replace value"),
    pytest.param({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}, id="add value"),
    pytest.param({"a": "b"}, {"a": None}, {}, id="null deletes"),
    pytest.param({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}, id="null deletes one"),
    pytest.param({"a": ["b"]}, {"a": "c"}, {"a": "c"}, id="scalar replaces list"),
    pytest.param({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}, id="list replaces scalar"),
    pytest.param({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}, id="nested merge"),
    pytest.param({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}, id="lists are replaced"),
    pytest.param({"e": None}, {"a": 1}, {"e": None, "a": 1}, id="existing null kept"),
    pytest.param({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}, id="nested nulls in new value pruned"),
    pytest.param({"a": 1}, {"a": [{"x": None, "y": 1}, None]}, {"a": [{"y": 1}, None]}, id="nulls pruned in lists"),
    pytest.param({"a": "foo"}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="object replaces scalar"),
]


@pytest.mark.parametrize(("obj", "patch", "expected"), MERGE_PATCH_CASES)
def test_merge_patch(obj: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    obj_before, patch_before = copy.deepcopy(obj), copy.deepcopy(patch)
    result = apply_merge_patch(obj, patch)
    assert result == expected
    assert obj == obj_before
    assert patch == patch_before


def test_merge_patch_result_is_independent_of_patch() -> None:
    patch = {"a": {"b": [1]}}
    result = apply_merge_patch({}, patch)
    result["a"]["b"].append(2)
    assert patch == {"a": {"b": [1]}}


@pytest.mark.parametrize("patch", [None, 5, "x", [1]], ids=["null", "number", "string", "list"])
def test_merge_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(StatusError) as info:
        apply_merge_patch({"a": 1}, patch)
    assert info.value.code == 400
    assert info.value.message == "Invalid JSON Patch"
