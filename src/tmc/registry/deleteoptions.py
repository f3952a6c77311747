"""DeleteOptions as kube-apiserver decodes and checks them, and the namespaces no delete may remove.

A field of the wrong JSON type is 400 BadRequest from the decoder; an unsupported value is 422 Invalid on the
options object; deleting a protected namespace is 403 Forbidden, as the NamespaceLifecycle admission plugin answers.
"""

from __future__ import annotations

from typing import Any

from tmc.apimachinery import errors

# kube-apiserver's immortal namespaces; every workspace and simulated member cluster has the same three.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
PROPAGATION_POLICIES = ("Background", "Foreground", "Orphan")

# field -> (accepted Python types, Go type named in the decoder's message)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": ((str,), "string"),
    "apiVersion": ((str,), "string"),
    "gracePeriodSeconds": ((int,), "int64"),
    "orphanDependents": ((bool,), "bool"),
    "propagationPolicy": ((str,), "v1.DeletionPropagation"),
    "dryRun": ((list,), "[]string"),
    "preconditions": ((dict,), "v1.Preconditions"),
}
_PRECONDITIONS: dict[str, str] = {"uid": "types.UID", "resourceVersion": "string"}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}" if isinstance(value, float) else "number"
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"


def _decode_error(value: Any, struct: str, field: str, go_type: str) -> errors.StatusError:
    return errors.bad_request(
        'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: json: cannot unmarshal '
        f"{_json_kind(value)} into Go struct field {struct}.{field} of type {go_type}"
    )


def _is(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int in Python, not in JSON
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def check_delete_options(options: dict[str, Any]) -> None:
    """400 for a field of the wrong JSON type (unknown fields are ignored, as upstream); 422 for a bad value."""
    for key, (types, go_type) in _FIELDS.items():
        value = options.get(key)
        if value is not None and not _is(value, types):
            raise _decode_error(value, "DeleteOptions", key, go_type)
    for item in options.get("dryRun") or ():
        if not isinstance(item, str):
            raise _decode_error(item, "DeleteOptions", "dryRun", "string")
    for key, go_type in _PRECONDITIONS.items():
        value = (options.get("preconditions") or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise _decode_error(value, "Preconditions", f"preconditions.{key}", go_type)
    policy = options.get("propagationPolicy")
    if policy is not None and options.get("orphanDependents") is not None:
        cause = {
            "type": "FieldValueInvalid",
            "field": "propagationPolicy",
            "message": f'Invalid value: "{policy}": orphanDependents and deletionPropagation cannot be both set',
        }
        raise errors.invalid("DeleteOptions", "", [cause], "meta.k8s.io")
    if policy and policy not in PROPAGATION_POLICIES:
        supported = ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)
        cause = {
            "type": "FieldValueNotSupported",
            "field": "propagationPolicy",
            "message": f'Unsupported value: "{policy}": supported values: {supported}',
        }
        raise errors.invalid("DeleteOptions", "", [cause], "meta.k8s.io")


def check_deletable_namespace(name: str) -> None:
    if name in PROTECTED_NAMESPACES:
        raise errors.StatusError(
            403,
            "Forbidden",
            f'namespaces "{name}" is forbidden: this namespace may not be deleted',
            {"name": name, "kind": "namespaces"},
        )
