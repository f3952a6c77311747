"""Admission for every write: field validation (prune or reject unknown fields), CR defaulting, semantic rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmc.api.validation import validate_tmc
from tmc.apimachinery import errors
from tmc.apimachinery.validation import StructuralSchema, check_fields, validate_builtin, validate_custom_resource

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
        causes = validate_custom_resource(info, structural, obj, old)
    else:
        causes = validate_builtin(info, obj, old) + validate_tmc(info, obj, old)
    if causes:
        raise errors.invalid(info.kind, str(obj.get("metadata", {}).get("name", "")), causes, info.group)
