"""Admission for every write: field validation (prune or reject unknown fields), CR defaulting, semantic rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tmc.api.validation import validate_tmc
from tmc.apimachinery import errors
from tmc.apimachinery.validation import StructuralSchema, check_fields, validate_builtin, validate_custom_resource

if TYPE_CHECKING:
    from tmc.apimachinery.resources import ResourceInfo
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


def admit(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None, opts: WriteOptions) -> None:
    """Prune/check fields per `fieldValidation`, default, then validate; raises 400 or 422, adds warnings."""
    if info.crd:
        structural = structural_schema(info)
        if structural is not None:
            opts.warnings.extend(
                check_fields(obj, structural, opts.field_validation, kind=info.kind, version=info.version)
            )
            structural.apply_defaults(obj)
        causes = validate_custom_resource(info, structural, obj, old)
    else:
        if info.schema is not None:
            opts.warnings.extend(
                check_fields(obj, info.schema, opts.field_validation, kind=info.kind, version=info.version)
            )
        causes = validate_builtin(info, obj, old) + validate_tmc(info, obj, old)
    if causes:
        raise errors.invalid(info.kind, str(obj.get("metadata", {}).get("name", "")), causes, info.group)
