"""CustomResourceDefinition (apiextensions.k8s.io/v1): create-time defaults and validation.

Checks the rules a CRD author hits: names, group, scope, versions (one storage version), structural
`openAPIV3Schema` (a type at every level, no unsupported keywords, valid list/map markers, valid defaults),
printer columns and scale paths, and CEL rules (`x-kubernetes-validations`: compiled, costed; `cel/check.py`).
"""

from __future__ import annotations

import re
from typing import Any

from tmc.apimachinery.cel import check_rules
from tmc.apimachinery.crd_schema import StructuralSchema
from tmc.apimachinery.validation_common import (
    IMMUTABLE,
    Cause,
    duplicate,
    forbidden,
    invalid,
    is_dns1035_label,
    is_dns1123_subdomain,
    not_supported,
    required,
    too_long,
)

_SCHEMA_TYPES = ("array", "boolean", "integer", "number", "object", "string")
_UNSUPPORTED = {
    "$ref": "$ref is not supported",
    "definitions": "definitions is not supported",
    "dependencies": "dependencies is not supported",
    "id": "id is not supported",
    "patternProperties": "patternProperties is not supported",
    "additionalItems": "additionalItems is not supported",
}
_NOT_IN_JUNCTORS = ("type", "default", "additionalProperties", "nullable", "description")
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _storage_version(spec: dict[str, Any]) -> str | None:
    for version in spec.get("versions") or []:
        if isinstance(version, dict) and version.get("storage"):
            return str(version.get("name") or "")
    return None


def crd_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """Fill what the apiserver defaults on a CRD (in place; returns `obj`): names.singular/listKind, conversion
    strategy None, webhook service port 443, and the storage version recorded in status.storedVersions."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return obj
    names = spec.setdefault("names", {})
    kind = names.get("kind") if isinstance(names, dict) else None
    if isinstance(kind, str) and kind:
        names.setdefault("singular", kind.lower())
        names["singular"] = names["singular"] or kind.lower()
        names["listKind"] = names.get("listKind") or f"{kind}List"
    conversion = spec.setdefault("conversion", {})
    if isinstance(conversion, dict):
        conversion["strategy"] = conversion.get("strategy") or "None"
        service = _dict(_dict(_dict(conversion.get("webhook")).get("clientConfig")).get("service"))
        if service and service.get("port") is None:
            service["port"] = 443
    storage = _storage_version(spec)
    if storage:
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            stored = status.setdefault("storedVersions", [])
            if isinstance(stored, list) and storage not in stored:
                stored.append(storage)
    return obj


def validate_crd(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """CRD-specific rules (metadata rules run in validate_builtin); call after `crd_defaults`."""
    out: list[Cause] = []
    spec = _dict(obj.get("spec"))
    group = str(spec.get("group") or "")
    names = _dict(spec.get("names"))
    name = str(_dict(obj.get("metadata")).get("name") or "")
    if name and name != f"{names.get('plural') or ''}.{group}":
        out.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    if not group:
        out.append(required("spec.group"))
    else:
        out.extend(invalid("spec.group", group, m) for m in is_dns1123_subdomain(group))
        if "." not in group:
            out.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    _validate_names(names, out)
    scope = spec.get("scope")
    if not scope:
        out.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(not_supported("spec.scope", scope, ("Cluster", "Namespaced")))
    if spec.get("preserveUnknownFields"):
        detail = (
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"
        )
        out.append(invalid("spec.preserveUnknownFields", True, detail))
    _validate_versions(spec, out)
    _validate_conversion(_dict(spec.get("conversion")), out)
    _validate_stored_versions(obj, spec, out)
    if old is not None:
        old_spec = _dict(old.get("spec"))
        for key in ("scope", "group"):
            if spec.get(key) != old_spec.get(key):
                out.append(invalid(f"spec.{key}", spec.get(key), IMMUTABLE))
    return out


def _validate_names(names: dict[str, Any], out: list[Cause]) -> None:
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            out.append(required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        value = str(names.get(key) or "")
        if value and (errs := is_dns1035_label(value)):
            out.append(invalid(f"spec.names.{key}", value, ",".join(errs)))
    for key in ("kind", "listKind"):
        value = str(names.get(key) or "")
        if value and (errs := is_dns1035_label(value.lower())):
            out.append(
                invalid(
                    f"spec.names.{key}", value, "may have mixed case, but should otherwise match: " + ",".join(errs)
                )
            )
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(invalid("spec.names.listKind", names["listKind"], "kind and listKind may not be the same"))
    for key in ("shortNames", "categories"):
        for i, value in enumerate(names.get(key) or []):
            if errs := is_dns1035_label(str(value)):
                out.append(invalid(f"spec.names.{key}[{i}]", value, ",".join(errs)))


def _validate_versions(spec: dict[str, Any], out: list[Cause]) -> None:
    versions = spec.get("versions") or []
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage"))
    if storage != 1:
        names = [_dict(v).get("name") for v in versions]  # the names, not the whole (schema-sized) list
        out.append(invalid("spec.versions", names, "must have exactly one version marked as storage version"))
    seen: set[str] = set()
    for i, version in enumerate(versions):
        vp = f"spec.versions[{i}]"
        version = _dict(version)
        name = str(version.get("name") or "")
        if not name:
            out.append(required(f"{vp}.name"))
        elif errs := is_dns1035_label(name):
            out.append(invalid(f"{vp}.name", name, ",".join(errs)))
        if name in seen:
            out.append(invalid(f"{vp}.name", name, "must be unique"))
        seen.add(name)
        warning = version.get("deprecationWarning")
        if isinstance(warning, str) and len(warning) > 256:
            out.append(too_long(f"{vp}.deprecationWarning", 256))
        schema = _dict(version.get("schema")).get("openAPIV3Schema")
        if schema is None:
            out.append(required(f"{vp}.schema.openAPIV3Schema", "schemas are required"))
        else:
            found: list[Cause] = []
            _check_schema(schema, f"{vp}.schema.openAPIV3Schema", found, "root")
            out.extend(found)
            if not found and isinstance(schema, dict):
                # Rules are compiled against a structural schema only, as upstream.
                out.extend(check_rules(schema, f"{vp}.schema.openAPIV3Schema")[0])
        _validate_columns(version.get("additionalPrinterColumns") or [], f"{vp}.additionalPrinterColumns", out)
        scale = _dict(version.get("subresources")).get("scale")
        if isinstance(scale, dict):
            _validate_scale(scale, f"{vp}.subresources.scale", out)


def _validate_conversion(conversion: dict[str, Any], out: list[Cause]) -> None:
    strategy = conversion.get("strategy")
    webhook = conversion.get("webhook")
    if not strategy:
        out.append(required("spec.conversion.strategy"))
    elif strategy not in ("None", "Webhook"):
        out.append(not_supported("spec.conversion.strategy", strategy, ("None", "Webhook")))
    if strategy == "Webhook":
        if not isinstance(webhook, dict):
            out.append(required("spec.conversion.webhook", "required when strategy is set to Webhook"))
            return
        config = _dict(webhook.get("clientConfig"))
        if bool(config.get("url")) == bool(config.get("service")):
            out.append(required("spec.conversion.webhook.clientConfig", "exactly one of url or service is required"))
        if not webhook.get("conversionReviewVersions"):
            out.append(
                required("spec.conversion.webhook.conversionReviewVersions", "must include at least one of v1, v1beta1")
            )
    elif webhook is not None:
        out.append(forbidden("spec.conversion.webhook", "should not be set when strategy is not set to Webhook"))


def _validate_stored_versions(obj: dict[str, Any], spec: dict[str, Any], out: list[Cause]) -> None:
    stored = _dict(obj.get("status")).get("storedVersions")
    if not isinstance(stored, list) or not stored:
        return
    served = {str(_dict(v).get("name")) for v in spec.get("versions") or []}
    for i, version in enumerate(stored):
        if version not in served:
            out.append(invalid(f"status.storedVersions[{i}]", version, "must appear in spec.versions"))
    storage = _storage_version(spec)
    if storage and storage not in stored:
        out.append(invalid("status.storedVersions", stored, f"must have the storage version {storage}"))


_BRACKETS = {"]": "[", "}": "{", ")": "("}


def _json_path_error(path: str) -> str | None:
    if not path.startswith("."):
        return "must be a simple json path starting with ."
    stack: list[str] = []
    for ch in path:
        if ch in "[{(":
            stack.append(ch)
        elif ch in _BRACKETS and (not stack or stack.pop() != _BRACKETS[ch]):
            return "must be a valid JSONPath expression"
    return "must be a valid JSONPath expression" if stack else None


def _validate_columns(columns: list[Any], path: str, out: list[Cause]) -> None:
    names: set[str] = set()
    for i, col in enumerate(columns):
        cp = f"{path}[{i}]"
        col = _dict(col)
        name = col.get("name")
        if not name:
            out.append(required(f"{cp}.name"))
        elif name in names:
            out.append(duplicate(f"{cp}.name", name))
        names.add(str(name))
        ctype = col.get("type")
        if not ctype:
            out.append(required(f"{cp}.type"))
        elif ctype not in _COLUMN_TYPES:
            out.append(not_supported(f"{cp}.type", ctype, _COLUMN_TYPES))
        fmt = col.get("format")
        if fmt and fmt not in _COLUMN_FORMATS:
            out.append(not_supported(f"{cp}.format", fmt, _COLUMN_FORMATS))
        json_path = col.get("jsonPath")
        if not json_path:
            out.append(required(f"{cp}.jsonPath"))
        elif err := _json_path_error(str(json_path)):
            out.append(invalid(f"{cp}.jsonPath", json_path, err))
        priority = col.get("priority")
        if isinstance(priority, int) and priority < 0:
            out.append(invalid(f"{cp}.priority", priority, "must be greater than or equal to 0"))


def _validate_scale(scale: dict[str, Any], path: str, out: list[Cause]) -> None:
    rules = (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec", True),
        ("statusReplicasPath", (".status.",), "should be a json path under .status", True),
        ("labelSelectorPath", (".spec.", ".status."), "should be a json path under either .spec or .status", False),
    )
    for key, prefixes, detail, needed in rules:
        value = scale.get(key)
        if not value:
            if needed:
                out.append(required(f"{path}.{key}"))
            continue
        if err := _json_path_error(str(value)):
            out.append(invalid(f"{path}.{key}", value, err))
        elif not str(value).startswith(prefixes):
            out.append(invalid(f"{path}.{key}", value, detail))


def _check_schema(
    raw: Any, path: str, out: list[Cause], where: str, junctor: bool = False, int_or_string: bool = False
) -> None:
    """Structural-schema rules; `where` is "root", "object fields", "array items" or "" (no type needed).
    `int_or_string`: a direct branch of an int-or-string node, which may say `type: integer|string`."""
    if not isinstance(raw, dict):
        out.append(invalid(path, raw, "must be a schema object"))
        return
    for key, detail in _UNSUPPORTED.items():
        if key in raw:
            out.append(forbidden(f"{path}.{key}", detail))
    stype = raw.get("type") or ""
    if stype and stype not in _SCHEMA_TYPES:
        out.append(not_supported(f"{path}.type", stype, _SCHEMA_TYPES))
    if junctor:
        for key in _NOT_IN_JUNCTORS:
            if key in raw and not (key == "type" and int_or_string and stype in ("integer", "string")):
                out.append(forbidden(f"{path}.{key}", "must be empty to be structural"))
    else:
        _check_structural_node(raw, stype, path, out, where)
    props = raw.get("properties")
    if isinstance(props, dict):
        for key, sub in props.items():
            _check_schema(sub, f"{path}.properties[{key}]", out, "object fields", junctor)
        if where == "root" and isinstance(props.get("metadata"), dict):
            _check_root_metadata(props["metadata"], f"{path}.properties[metadata]", out)
    extra = raw.get("additionalProperties")
    if isinstance(extra, dict):
        _check_schema(extra, f"{path}.additionalProperties", out, "object fields", junctor)
    items = raw.get("items")
    if isinstance(items, dict):
        _check_schema(items, f"{path}.items", out, "array items", junctor)
    elif isinstance(items, list):
        out.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    branches = [(f"{path}.{key}[{i}]", sub) for key in _JUNCTORS for i, sub in enumerate(raw.get(key) or [])]
    if raw.get("not") is not None:
        branches.append((f"{path}.not", raw["not"]))
    ios = bool(raw.get("x-kubernetes-int-or-string"))
    for branch_path, sub in branches:
        _check_schema(sub, branch_path, out, "", True, ios)
        _check_declared_outside(raw, sub, path, branch_path, out)


def _check_declared_outside(raw: dict[str, Any], branch: Any, path: str, branch_path: str, out: list[Cause]) -> None:
    """Fields and items a junctor branch constrains must also be declared by the node itself."""
    if not isinstance(branch, dict):
        return
    declared = _dict(raw.get("properties"))
    for key in _dict(branch.get("properties")):
        if key not in declared and not isinstance(raw.get("additionalProperties"), dict):
            detail = f"because it is defined in {branch_path}.properties[{key}]"
            out.append(required(f"{path}.properties[{key}]", detail))
    if isinstance(branch.get("items"), dict) and not isinstance(raw.get("items"), dict):
        out.append(required(f"{path}.items", f"because it is defined in {branch_path}.items"))


def _check_structural_node(raw: dict[str, Any], stype: str, path: str, out: list[Cause], where: str) -> None:
    preserve = raw.get("x-kubernetes-preserve-unknown-fields")
    int_or_string = raw.get("x-kubernetes-int-or-string")
    embedded = raw.get("x-kubernetes-embedded-resource")
    if preserve is False:
        out.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"))
    if where == "root":
        if not stype:
            out.append(required(f"{path}.type", "must not be empty at the root"))
        elif stype != "object":
            out.append(invalid(f"{path}.type", stype, "must be object at the root"))
    elif where and not stype and not int_or_string and not preserve:
        out.append(required(f"{path}.type", f"must not be empty for specified {where}"))
    if int_or_string and stype:
        out.append(invalid(f"{path}.type", stype, "must be empty if x-kubernetes-int-or-string is true"))
    if embedded:
        if stype != "object":
            out.append(invalid(f"{path}.type", stype, "must be object if x-kubernetes-embedded-resource is true"))
        if not raw.get("properties") and not preserve:
            detail = (
                "must not be empty if x-kubernetes-embedded-resource is true without "
                "x-kubernetes-preserve-unknown-fields"
            )
            out.append(required(f"{path}.properties", detail))
    extra = raw.get("additionalProperties")
    if extra is False:
        out.append(forbidden(f"{path}.additionalProperties", "additionalProperties cannot be set to false"))
    elif extra is not None and raw.get("properties") is not None:
        out.append(
            forbidden(f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive")
        )
    if stype == "array" and "items" not in raw:
        out.append(required(f"{path}.items", "must be specified"))
    if raw.get("uniqueItems"):
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        out.append(forbidden(f"{path}.uniqueItems", detail))
    _check_markers(raw, stype, path, out)
    pattern = raw.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as exc:
            out.append(invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {exc}"))
    if "default" in raw:
        _check_default(raw, path, out)


def _check_markers(raw: dict[str, Any], stype: str, path: str, out: list[Cause]) -> None:
    list_type = raw.get("x-kubernetes-list-type")
    keys = raw.get("x-kubernetes-list-map-keys")
    if list_type is not None:
        if list_type not in ("atomic", "set", "map"):
            out.append(not_supported(f"{path}.x-kubernetes-list-type", list_type, ("atomic", "map", "set")))
        elif stype != "array":
            out.append(invalid(f"{path}.x-kubernetes-list-type", list_type, "must only be used on type=array"))
        item_type = _dict(raw.get("items")).get("type")
        if list_type == "map":
            if not keys:
                detail = "must not be empty if x-kubernetes-list-type is map"
                out.append(required(f"{path}.x-kubernetes-list-map-keys", detail))
            if item_type != "object":
                out.append(
                    invalid(
                        f"{path}.items.type",
                        item_type or "",
                        "must be object if parent array's x-kubernetes-list-type is map",
                    )
                )
        elif (
            list_type == "set"
            and item_type == "object"
            and _dict(raw.get("items")).get("x-kubernetes-map-type") != "atomic"
        ):
            out.append(
                invalid(
                    f"{path}.items.x-kubernetes-map-type",
                    None,
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
    if keys and list_type != "map":
        out.append(
            forbidden(f"{path}.x-kubernetes-list-map-keys", "must only be used if x-kubernetes-list-type is map")
        )
    map_type = raw.get("x-kubernetes-map-type")
    if map_type is not None and map_type not in ("granular", "atomic"):
        out.append(not_supported(f"{path}.x-kubernetes-map-type", map_type, ("atomic", "granular")))


def _check_default(raw: dict[str, Any], path: str, out: list[Cause]) -> None:
    default = raw["default"]
    schema = StructuralSchema(raw)
    if default is None and not raw.get("nullable"):
        out.append(invalid(f"{path}.default", None, "must not be null for non-nullable fields"))
        return
    out.extend(schema.validate_value(default, f"{path}.default"))
    if isinstance(default, dict):
        probe = {"spec": default}  # wrapped so the root's apiVersion/kind/metadata allowance does not apply
        unknown = StructuralSchema({"type": "object", "properties": {"spec": raw}}).unknown_paths(probe)
        if unknown:
            found = ", ".join(p.removeprefix("spec.") for p in unknown)
            out.append(invalid(f"{path}.default", default, f"must not have unknown fields, found: {found}"))


def _check_root_metadata(meta: dict[str, Any], path: str, out: list[Cause]) -> None:
    extra = set(_dict(meta.get("properties"))) - {"name", "generateName"}
    if extra or meta.get("type") not in (None, "object"):
        detail = "must not specify anything other than name and generateName, but metadata is implicitly specified"
        out.append(forbidden(path, detail))
