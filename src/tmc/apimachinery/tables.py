"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`.

Built-in kinds get the columns kube-apiserver prints (printers.py); custom resources get their CRD's
additionalPrinterColumns evaluated with the JSONPath subset CRDs use; anything else gets upstream's default
Name / Created At. Like upstream, the server always fills the wide (priority 1) columns; kubectl hides them
unless asked for -o wide.
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import orjson

from tmc.apimachinery import errors
from tmc.apimachinery.jsonpath import jsonpath
from tmc.apimachinery.printers import (
    Row,
    RowFn,
    builtin_printer,
    column_description,
    name_column,
    name_of,
    parse_time,
    pod_conditions,
    since,
)
from tmc.apimachinery.resources import ResourceInfo

INCLUDE_OBJECT_VALUES = ("Metadata", "Object", "None")
_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


# ------------------------------------------------------------------------------------------------ CRD printer columns


def _go_text(value: Any) -> str:
    """How client-go's JSONPath printer renders one value: scalars as Go's %v would, maps and lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):
            return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
        if value == 0 or 1e-4 <= abs(value) < 1e6:
            return repr(value).removesuffix(".0")
        # %v switches to exponent form from 1e6 on, with the shortest mantissa and a two-digit exponent.
        mantissa, _, exponent = f"{decimal.Decimal(repr(value)).normalize():E}".partition("E")
        return f"{mantissa}e{int(exponent):+03d}"
    if isinstance(value, dict | list):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def _custom_cell(column: dict[str, Any], obj: dict[str, Any], now: datetime.datetime) -> Any:
    """apiextensions' cellForJSONValue: the first selected value, typed by the column; None prints as <none>."""
    try:
        values = jsonpath(str(column.get("jsonPath", "")), obj)
    except (ValueError, TypeError):
        return None
    if not values or values[0] is None:
        return None
    value, kind = values[0], column.get("type", "string")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return _go_text(value)
    if kind == "integer" and number:
        return int(value)
    if kind == "number" and number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return "<invalid>" if parse_time(value) is None else since(value, now)
    return None


def _custom_printer(info: ResourceInfo) -> tuple[list[dict[str, Any]], RowFn]:
    # A CRD version without additionalPrinterColumns is served with an Age column upstream.
    age = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    defined = list(info.printer_columns) or [{**age, "description": column_description(_META + ":creationTimestamp")}]
    columns = [name_column()]
    for c in defined:
        default = f"Custom resource definition column (in JSONPath format): {c.get('jsonPath', '')}"
        columns.append(
            {
                "name": str(c.get("name", "")),
                "type": str(c.get("type", "string")),
                "format": str(c.get("format", "")),
                "description": str(c.get("description") or default),
                "priority": int(c.get("priority", 0)),
            }
        )

    def row(o: dict[str, Any], now: datetime.datetime) -> Row:
        return [name_of(o), *(_custom_cell(c, o, now) for c in defined)]

    return columns, row


# ------------------------------------------------------------------------------------------------ tables


def printer(info: ResourceInfo) -> tuple[list[dict[str, Any]], RowFn]:
    """(column definitions, row function) for one resource."""
    if info.printer_columns or info.crd:
        return _custom_printer(info)
    return builtin_printer(info.group, info.kind)


def to_table(
    info: ResourceInfo,
    objects: list[dict[str, Any]],
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any],
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects`; each row carries PartialObjectMetadata, the object, or nothing.

    Ages are computed against `now` (default: the current time)."""
    include = include_object or "Metadata"
    if include not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(f'unrecognized includeObject value: "{include_object}"')
    columns, row_fn = printer(info)
    now = now or datetime.datetime.now(datetime.UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": row_fn(obj, now)}
        if info.group == "" and info.kind == "Pod" and (conditions := pod_conditions(obj)):
            row["conditions"] = conditions
        if include == "Object":
            row["object"] = obj
        elif include == "Metadata":
            # kubectl reads namespace, labels and name from here (-A, --show-labels, -L).
            partial = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
            row["object"] = partial
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
        "columnDefinitions": columns,
        "rows": rows,
    }


def watch_event_table(
    info: ResourceInfo, obj: dict[str, Any], *, include_object: str = "Metadata", now: datetime.datetime | None = None
) -> dict[str, Any]:
    """The one-row Table a `kubectl get -w` watch event carries (kubectl skips repeated identical headers)."""
    rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    return to_table(info, [obj], include_object=include_object, list_meta={"resourceVersion": rv}, now=now)
