"""Admission for every write: field validation (prune or reject unknown fields), CR defaulting, semantic rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmc.api.validation import validate_tmc
from tmc.apimachinery import errors
from tmc.apimachinery.validation import StructuralSchema, check_fields, validate_builtin, validate_custom_resource
from tmc.registry.bodies import read_path

if TYPE_CHECKING:
    from tmc.apimachinery.resources import ResourceInfo
    from tmc.apimachinery.schemas import Schema
    from tmc.registry.service import WriteOptions

# Compiled CR schemas, keyed by the identity of the CRD version's schema dict (kept alive by the entry itself).
_structural: dict[int, tuple[dict[str, Any], StructuralSchema]] = {}


def structural_schema(info: ResourceInfo) -> StructuralSchema | None:
    if info.schema is None:
        return None
    raw = info.schema.raw
    hit = _structural.get(id(raw))
    if hit is None or hit[0] is not raw:
        if len(_structural) > 1024:
            _structural.clear()
        hit = (raw, StructuralSchema(raw))
        _structural[id(raw)] = hit
    return hit[1]


def field_decoder(info: ResourceInfo) -> Schema | StructuralSchema | None:
    return structural_schema(info) if info.crd else info.schema


def decode(info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions) -> None:
    """What the upstream decoder does to a body: wrong JSON types are 400, unknown fields pruned or rejected per
    `fieldValidation`. Runs before defaulting, which assumes every part has its declared type."""
    decoder = field_decoder(info)
    if decoder is not None:
        opts.warnings.extend(check_fields(obj, decoder, opts.field_validation, kind=info.kind, version=info.version))


def admit(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None, opts: WriteOptions) -> None:
    """Default custom resources, then validate; raises 422. `decode` has checked the body's shape already."""
    if info.crd:
        structural = structural_schema(info)
        if structural is not None:
            structural.apply_defaults(obj)
        causes = validate_custom_resource(info, structural, obj, old) + _scale_causes(info, obj)
    else:
        causes = validate_builtin(info, obj, old) + validate_tmc(info, obj, old)
    if causes:
        raise errors.invalid(info.kind, str(obj.get("metadata", {}).get("name", "")), causes, info.group)


_MAX_INT32 = 2**31 - 1
_GO_TYPES = {str: "string", bool: "bool", float: "float64", list: "[]interface {}", dict: "map[string]interface {}"}


def _scale_causes(info: ResourceInfo, obj: dict[str, Any]) -> list[dict[str, str]]:
    """The scale subresource reads replicas and the selector from the CR, so the values at its paths must have the
    types the Scale object has (upstream's ValidateScaleSpec and ValidateScaleStatus): a CR that could be stored but
    not scaled is refused when it is written, not when /scale is read."""
    if "scale" not in info.subresources:
        return []
    paths = info.scale_paths
    causes = []
    for key, default in (("specReplicasPath", ".spec.replicas"), ("statusReplicasPath", ".status.replicas")):
        path = paths.get(key, default)
        value = read_path(obj, path)
        if value is None:
            continue
        if type(value) is not int:
            message = f"{path} accessor error: {value} is of the type {_GO_TYPES.get(type(value), 'unknown')}"
            causes.append(_invalid(path, value, f"{message}, expected int64"))
        elif value < 0:
            causes.append(_invalid(path, value, "should be a non-negative integer"))
        elif value > _MAX_INT32:
            causes.append(_invalid(path, value, f"should be less than or equal to {_MAX_INT32}"))
    selector_path = paths.get("labelSelectorPath", "")
    selector = read_path(obj, selector_path) if selector_path else None
    if selector is not None and type(selector) is not str:
        kind = _GO_TYPES.get(type(selector), "unknown")
        causes.append(
            _invalid(
                selector_path,
                selector,
                f"{selector_path} accessor error: {selector} is of the type {kind}, expected string",
            )
        )
    return causes


def _invalid(path: str, value: Any, message: str) -> dict[str, str]:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return {"type": "FieldValueInvalid", "field": path, "message": f"Invalid value: {shown}: {message}"}
