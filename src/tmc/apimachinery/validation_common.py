"""Field-error causes and the name/label/metadata rules every kind shares, worded as upstream words them.

A cause is `{"type", "message", "field"}` exactly as kube-apiserver puts it in `Status.details.causes`:
`message` is the error body (`Invalid value: "Foo": a lowercase RFC 1123 ...`), `field` the dotted path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

Cause = dict[str, str]
NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE = 256 * 1024
IMMUTABLE = "field is immutable"

# --- causes -------------------------------------------------------------------------------------------------


def fmt_value(value: Any) -> str:
    """A value as upstream prints it in `Invalid value: X` (Go %q for strings, %v for numbers, JSON otherwise)."""
    if value is None:
        return '"null"'
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def required(field: str, detail: str = "") -> Cause:
    return {"type": "FieldValueRequired", "message": _body("Required value", detail), "field": field}


def invalid(field: str, value: Any, detail: str = "") -> Cause:
    return {"type": "FieldValueInvalid", "message": _body(f"Invalid value: {fmt_value(value)}", detail), "field": field}


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return {
        "type": "FieldValueTypeInvalid",
        "message": _body(f"Invalid value: {fmt_value(value)}", detail),
        "field": field,
    }


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    values = ", ".join(orjson.dumps(s).decode() for s in supported)
    body = f"Unsupported value: {fmt_value(value)}" + (f": supported values: {values}" if values else "")
    return {"type": "FieldValueNotSupported", "message": body, "field": field}


def forbidden(field: str, detail: str = "") -> Cause:
    return {"type": "FieldValueForbidden", "message": _body("Forbidden", detail), "field": field}


def duplicate(field: str, value: Any) -> Cause:
    return {"type": "FieldValueDuplicate", "message": f"Duplicate value: {fmt_value(value)}", "field": field}


def not_found(field: str, value: Any) -> Cause:
    return {"type": "FieldValueNotFound", "message": f"Not found: {fmt_value(value)}", "field": field}


def too_long(field: str, max_len: int) -> Cause:
    unit = "byte" if max_len == 1 else "bytes"
    return {"type": "FieldValueTooLong", "message": f"Too long: may not be more than {max_len} {unit}", "field": field}


def too_many(field: str, actual: int, max_items: int) -> Cause:
    body = f"Too many: {actual}: must have at most {max_items} items"
    return {"type": "FieldValueTooMany", "message": body, "field": field}


def _body(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def join(path: str, child: str) -> str:
    return f"{path}.{child}" if path else child


# --- names ----------------------------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_PORT_NAME = re.compile(r"[-a-z0-9]+")
_HAS_LETTER = re.compile(r"[a-z]")

_MSG_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_MSG_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
    "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_MSG_QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_MSG_QUALIFIED_SLASH = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
    "(e.g. 'example.com/MyName')"
)
_MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_MSG_CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _max_len(value: str, limit: int) -> list[str]:
    return [f"must be no more than {limit} characters"] if len(value) > limit else []


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = _max_len(value, 253)
    return errs if _DNS1123_SUBDOMAIN.fullmatch(value) else [*errs, _MSG_SUBDOMAIN]


def is_dns1123_label(value: str) -> list[str]:
    errs = _max_len(value, 63)
    return errs if _DNS1123_LABEL.fullmatch(value) else [*errs, _MSG_LABEL]


def is_dns1035_label(value: str) -> list[str]:
    errs = _max_len(value, 63)
    return errs if _DNS1035_LABEL.fullmatch(value) else [*errs, _MSG_DNS1035]


def is_qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        errs = [f"prefix part {m}" for m in is_dns1123_subdomain(prefix)]
        if errs:
            return errs
    else:
        return [_MSG_QUALIFIED_SLASH]
    if not name:
        return ["name part must be non-empty"]
    errs = ["name part must be no more than 63 characters"] if len(name) > 63 else []
    return errs if _QUALIFIED_NAME.fullmatch(name) else [*errs, _MSG_QUALIFIED]


def is_label_value(value: str) -> list[str]:
    errs = _max_len(value, 63)
    return errs if _LABEL_VALUE.fullmatch(value) else [*errs, _MSG_LABEL_VALUE]


def is_config_key(value: str) -> list[str]:
    errs = _max_len(value, 253)
    if not _CONFIG_KEY.fullmatch(value):
        errs.append(_MSG_CONFIG_KEY)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_port_name(value: str) -> list[str]:
    """IANA_SVC_NAME, as container and service port names must be."""
    errs = ["must be no more than 15 characters"] if len(value) > 15 else []
    if not _PORT_NAME.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if not _HAS_LETTER.search(value):
        errs.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _prefix_masked(fn: Callable[[str], list[str]]) -> NameFn:
    # generateName is a prefix: a trailing '-' is fine there, as upstream's maskTrailingDash allows.
    def check(name: str, prefix: bool) -> list[str]:
        if prefix and len(name) > 1 and name.endswith("-"):
            name = name[:-1] + "a"
        return fn(name)

    return check


name_is_dns_subdomain: NameFn = _prefix_masked(is_dns1123_subdomain)
name_is_dns_label: NameFn = _prefix_masked(is_dns1123_label)
name_is_dns1035_label: NameFn = _prefix_masked(is_dns1035_label)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """RBAC objects may be named anything that is a valid URL path segment."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# --- labels, annotations, selectors -------------------------------------------------------------------------------


def validate_labels(labels: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        for msg in is_qualified_name(key):
            out.append(invalid(path, key, msg))
        if isinstance(value, str):
            for msg in is_label_value(value):
                out.append(invalid(path, value, msg))


def validate_annotations(annotations: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(annotations, dict):
        return
    chars = 0
    for key, value in annotations.items():
        for msg in is_qualified_name(key.lower()):
            out.append(invalid(path, key, msg))
        chars += len(key) + len(value if isinstance(value, str) else "")
    # The limit is in bytes; only count them when characters alone (up to 4 bytes each) could reach it.
    if chars * 4 > TOTAL_ANNOTATION_SIZE:
        size = sum(len(k.encode()) + len(v.encode() if isinstance(v, str) else b"") for k, v in annotations.items())
        if size > TOTAL_ANNOTATION_SIZE:
            out.append(too_long(path, TOTAL_ANNOTATION_SIZE))


_SELECTOR_OPS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(selector, dict):
        return
    validate_labels(selector.get("matchLabels"), f"{path}.matchLabels", out)
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator", "")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                out.append(required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                out.append(
                    forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
                )
        else:
            out.append(invalid(f"{p}.operator", op, "not a valid selector operator"))
        for msg in is_qualified_name(str(expr.get("key", ""))):
            out.append(invalid(f"{p}.key", expr.get("key", ""), msg))


def selector_is_empty(selector: Any) -> bool:
    return not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions"))


def selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and not (present and labels[key] in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


# --- object metadata ----------------------------------------------------------------------------------------------


def validate_object_meta(
    meta: Any,
    out: list[Cause],
    *,
    namespaced: bool | None,
    name_fn: NameFn = name_is_dns_subdomain,
    path: str = "metadata",
    require_name: bool = True,
) -> None:
    """ValidateObjectMeta: name/generateName, namespace (None: not checked), labels, annotations, owners."""
    if not isinstance(meta, dict):
        if require_name:
            out.append(required(f"{path}.name", "name or generateName is required"))
        return
    name = meta.get("name") or ""
    generate = meta.get("generateName") or ""
    if generate:
        out.extend(invalid(f"{path}.generateName", generate, m) for m in name_fn(generate, True))
    if name:
        out.extend(invalid(f"{path}.name", name, m) for m in name_fn(name, False))
    elif require_name and not generate:
        out.append(required(f"{path}.name", "name or generateName is required"))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            out.append(required(f"{path}.namespace"))
        else:
            out.extend(invalid(f"{path}.namespace", namespace, m) for m in is_dns1123_label(namespace))
    elif namespaced is False and namespace:
        out.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        out.append(invalid(f"{path}.generation", generation, "must be greater than or equal to 0"))
    validate_labels(meta.get("labels"), f"{path}.labels", out)
    validate_annotations(meta.get("annotations"), f"{path}.annotations", out)
    for finalizer in meta.get("finalizers") or []:
        out.extend(invalid(f"{path}.finalizers", finalizer, m) for m in is_qualified_name(str(finalizer)))
    _validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences", out)


def _validate_owner_references(refs: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(refs, list):
        return
    controllers: list[str] = []
    for ref in refs:
        if not isinstance(ref, dict):
            continue
        version = str(ref.get("apiVersion") or "").rsplit("/", 1)[-1]
        if not version:
            out.append(invalid(f"{path}.apiVersion", version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                out.append(invalid(f"{path}.{key}", "", f"{key} must not be empty"))
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        detail = 'Only one reference can have Controller set to true. Found "true" in references for ' + " and ".join(
            controllers
        )
        out.append(invalid(path, refs, detail))


def validate_object_meta_update(new: Any, old: Any, out: list[Cause], path: str = "metadata") -> None:
    """ValidateObjectMetaUpdate. System fields absent from `new` count as unchanged: the API layer carries
    uid/creationTimestamp/deletionTimestamp over from the stored object, as upstream's BeforeUpdate does."""
    new = new if isinstance(new, dict) else {}
    old = old if isinstance(old, dict) else {}
    for key in ("name", "namespace"):
        if (new.get(key) or "") != (old.get(key) or ""):
            out.append(invalid(f"{path}.{key}", new.get(key) or "", IMMUTABLE))
    for key in ("uid", "creationTimestamp", "deletionTimestamp"):
        if new.get(key) and new.get(key) != old.get(key):
            out.append(invalid(f"{path}.{key}", new.get(key), IMMUTABLE))
    if old.get("deletionTimestamp"):
        added = [f for f in new.get("finalizers") or [] if f not in (old.get("finalizers") or [])]
        if added:
            detail = f"no new finalizers can be added if the object is being deleted, found new finalizers {added}"
            out.append(forbidden(f"{path}.finalizers", detail.replace("'", '"')))


def immutable(out: list[Cause], field: str, new: Any, old: Any) -> None:
    if new != old:
        out.append(invalid(field, new, IMMUTABLE))


def non_negative(obj: dict[str, Any], key: str, path: str, out: list[Cause]) -> None:
    value = obj.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        out.append(invalid(join(path, key), value, "must be greater than or equal to 0"))


def in_port_range(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


PORT_RANGE = "must be between 1 and 65535, inclusive"
