"""The shape of request parts before any rule reads them: patch documents, patched objects and Scale bodies.

Upstream decodes every body into Go structs first, so a part of the wrong JSON type never reaches defaulting or a
merge: it is 400 BadRequest from the decoder (a body) or 422 Invalid on the field `patch` (an object a patch produced).
These checks give the same answers here, before the code that assumes the declared types runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from tmc.apimachinery import errors
from tmc.apimachinery.field_validation import FieldDecoder, builtin_decoder, check_fields
from tmc.apimachinery.limits import MAX_DEPTH, too_deep
from tmc.apimachinery.selectors import label_selector_to_string

if TYPE_CHECKING:
    from tmc.apimachinery.resources import ResourceInfo
    from tmc.apimachinery.schemas import Schema
    from tmc.registry.service import WriteOptions

_SCALE_DECODER: list[FieldDecoder] = []


def decode_patch(body: bytes, json_patch: bool) -> Any:
    """The patch document: JSON, a list for JSON patch and an object otherwise, at most MAX_DEPTH deep."""
    try:
        patch = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"error decoding patch: {e}") from None
    if not json_patch and not isinstance(patch, dict):
        raise errors.bad_request("error decoding patch: the patch must be a JSON object")
    if too_deep(patch):
        raise errors.bad_request(f"error decoding patch: exceeded max depth of {MAX_DEPTH}")
    return patch


def pinned_resource_version(patch: Any) -> str:
    """A merge or strategic patch's metadata.resourceVersion: the write must apply to that version."""
    md = patch.get("metadata") if isinstance(patch, dict) else None
    return str(md.get("resourceVersion") or "") if isinstance(md, dict) else ""


def patch_invalid(kind: str, name: str, group: str, patch: Any, detail: str) -> errors.StatusError:
    """Upstream's answer when a patched object does not decode: 422 Invalid on the field `patch`."""
    text = orjson.dumps(patch).decode()
    if len(text) > 256:
        text = text[:256] + "..."
    cause = {"type": "FieldValueInvalid", "field": "patch", "message": f"Invalid value: {text!r}: {detail}"}
    return errors.invalid(kind, name, [cause], group)


def check_patched(
    decoder: Schema | FieldDecoder | None,
    patched: Any,
    patch: Any,
    opts: WriteOptions,
    *,
    kind: str,
    version: str,
    name: str,
    group: str,
) -> dict[str, Any]:
    """Decode what a patch produced: wrong types are 422 on `patch`, unknown fields follow `fieldValidation`."""
    if not isinstance(patched, dict):
        raise patch_invalid(kind, name, group, patch, f"json: cannot unmarshal the patched document into a {kind}")
    if patched.get("metadata") is None:
        patched["metadata"] = {}  # removed by the patch: an empty ObjectMeta, as a Go decoder leaves it
    if decoder is not None:
        opts.warnings.extend(
            check_fields(
                patched,
                decoder,
                opts.field_validation,
                kind=kind,
                version=version,
                type_error=lambda err: patch_invalid(kind, name, group, patch, err),
            )
        )
    elif not isinstance(patched["metadata"], dict):
        raise patch_invalid(kind, name, group, patch, f"json: cannot unmarshal into Go struct field {kind}.metadata")
    return patched


def scale_decoder() -> FieldDecoder:
    if not _SCALE_DECODER:
        _SCALE_DECODER.append(builtin_decoder("io.k8s.api.autoscaling.v1.Scale"))
    return _SCALE_DECODER[0]


def decode_scale(body: Any, opts: WriteOptions) -> dict[str, Any]:
    """An autoscaling/v1 Scale request body, decoded as upstream: 400 for a non-object or a wrong JSON type."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be an autoscaling/v1 Scale object")
    opts.warnings.extend(check_fields(body, scale_decoder(), opts.field_validation, kind="Scale", version="v1"))
    return body


def check_patched_scale(patched: Any, patch: Any, opts: WriteOptions, name: str) -> dict[str, Any]:
    return check_patched(
        scale_decoder(), patched, patch, opts, kind="Scale", version="v1", name=name, group="autoscaling"
    )


def read_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a CRD scale path such as `.spec.replicas`, or None."""
    cur: Any = obj
    for part in path.strip(".").split("."):
        if not part:
            continue
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def write_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = [p for p in path.strip(".").split(".") if p]
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def scale_of(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale of an object: replicas and selector from the fixed built-in paths or the CRD's."""
    md = obj["metadata"]
    if info.crd:
        paths = info.scale_paths
        replicas = read_path(obj, paths.get("specReplicasPath", ".spec.replicas"))
        status_replicas = read_path(obj, paths.get("statusReplicasPath", ".status.replicas"))
        selector_path = paths.get("labelSelectorPath", "")
        selector = read_path(obj, selector_path) if selector_path else ""
    else:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        status_replicas = (obj.get("status") or {}).get("replicas", 0)
        sel = (obj.get("spec") or {}).get("selector")
        selector = label_selector_to_string(sel) if isinstance(sel, dict) else ""
    scale_md = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in md}
    status: dict[str, Any] = {"replicas": int(status_replicas or 0)}
    if selector:
        status["selector"] = str(selector)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_md,
        "spec": {"replicas": int(replicas or 0)},
        "status": status,
    }
