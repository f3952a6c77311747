"""The checks an apply request passes before any merge: its options and its configuration document.

kube-apiserver's answers, word for word where clients match on them: a missing fieldManager or a `force` on a
non-apply patch is 422 on PatchOptions; a body that is not YAML, names another version or kind, or carries
managedFields is 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import yaml

from tmc.apimachinery import errors
from tmc.apimachinery.limits import too_deep
from tmc.apimachinery.resources import ResourceInfo
from tmc.registry import bodies
from tmc.registry.admission import field_decoder

if TYPE_CHECKING:
    from tmc.registry.service import WriteOptions

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_options(opts: WriteOptions, apply: bool) -> None:
    if apply and not opts.field_manager:
        cause = {
            "type": "FieldValueRequired",
            "field": "fieldManager",
            "message": "Required value: is required for apply patch",
        }
        raise errors.invalid("PatchOptions", "", [cause], "meta.k8s.io")
    if not apply and opts.force is not None:
        cause = {
            "type": "FieldValueForbidden",
            "field": "force",
            "message": "Forbidden: may not be specified for non-apply patch",
        }
        raise errors.invalid("PatchOptions", "", [cause], "meta.k8s.io")


def decode_config(body: bytes) -> Any:
    """The apply body: JSON (what kubectl and most clients send) or YAML."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.load(body, Loader=_Loader)  # a safe loader (the C one when built)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error decoding YAML: {e}") from None


def check_config(
    info: ResourceInfo, body: bytes, namespace: str | None, name: str, opts: WriteOptions
) -> dict[str, Any]:
    """The applied configuration as an object of the resource, validated like an update body."""
    config = decode_config(body)
    if not isinstance(config, dict):
        raise errors.bad_request("error decoding YAML: the apply configuration must be an object")
    if too_deep(config):
        raise errors.bad_request("error decoding YAML: the apply configuration is nested too deeply")
    api_version, kind = config.get("apiVersion"), config.get("kind")
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        raise errors.bad_request(f"error decoding YAML: Object '{missing}' is missing in the apply configuration")
    if api_version != info.api_version:
        raise errors.bad_request(
            f"Incorrect version specified in apply patch. Specified patch version: {api_version}, "
            f"expected: {info.api_version}"
        )
    if kind != info.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({info.kind})")
    md = config.get("metadata")
    if md is None:
        md = config["metadata"] = {}
    if not isinstance(md, dict):
        raise errors.bad_request(f"{info.kind}.metadata must be an object")
    if md.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    if md.get("name") not in (None, "", name):
        raise errors.bad_request("the name of the object does not match the name on the URL")
    if info.namespaced and md.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    md["name"] = name
    if info.namespaced:
        md["namespace"] = namespace
    else:
        md.pop("namespace", None)
    checked = bodies.check_patched(
        field_decoder(info), config, config, opts, kind=info.kind, version=info.version, name=name, group=info.group
    )
    return checked
