"""Real-world-sized CRDs for install tests, generated rather than kept in the repository.

Operators' CRDs are big because their workload specs inline a whole PodTemplateSpec (Argo Rollouts' `Rollout`,
about 300 KB after controller-gen): every field of PodSpec and Container with its description, list types and
int-or-string markers. `inline_schema` does what controller-gen does to the built-in Kubernetes definitions: $refs
inlined, nullable type lists collapsed, IntOrString and Quantity as `x-kubernetes-int-or-string`, times as date-time
strings, list-map keys kept (with `protocol` defaulted to TCP, as the generated CRDs have it). `rollout_crd` wraps it
in a Rollout-like CRD with CEL rules of the kinds real CRDs carry.
"""

from __future__ import annotations

from typing import Any

from tmc.apimachinery.schemas import builtin_definitions, ref_name

GROUP = "rollouts.example.io"
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
_SPECIAL: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        **INT_OR_STRING,
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
        r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
    },
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"type": "string", "format": "date-time"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": {"type": "string", "format": "date-time"},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    # A template's metadata, as controller-gen writes it for an embedded ObjectMeta.
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
        "type": "object",
        "properties": {
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}
_KEPT = ("description", "format", "enum", "required", "x-kubernetes-list-type", "x-kubernetes-map-type")


def inline_schema(definition: str) -> dict[str, Any]:
    return _convert(builtin_definitions()[definition], depth=0)


def _convert(node: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > 40:
        raise ValueError("schema nested too deeply")
    if "$ref" in node:
        name = ref_name(node["$ref"])
        out = dict(_SPECIAL.get(name) or _convert(builtin_definitions()[name], depth + 1))
        if node.get("description"):
            out["description"] = node["description"]
        return out
    if "oneOf" in node:  # the strict variant's spelling of the int-or-string types above
        return dict(INT_OR_STRING)
    out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), None)
    if kind:
        out["type"] = kind
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: _convert(v, depth + 1) for k, v in node["properties"].items()}
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["type"] = "object"
        out["additionalProperties"] = _convert(extra, depth + 1)
    if "items" in node:
        out["type"] = "array"
        out["items"] = _convert(node["items"], depth + 1)
        keys = node.get("x-kubernetes-list-map-keys")
        if keys:
            out["x-kubernetes-list-map-keys"] = keys
            _key_fields_present(out["items"], keys)
    return out


def _key_fields_present(items: dict[str, Any], keys: list[str]) -> None:
    """A list-map key must be required or defaulted (the API server refuses the CRD otherwise)."""
    required = items.setdefault("required", [])
    for key in keys:
        if key in required:
            continue
        prop = items.get("properties", {}).get(key)
        if key == "protocol" and prop is not None:
            prop["default"] = "TCP"
        else:
            required.append(key)


def rollout_crd(plural: str = "rollouts", kind: str = "Rollout") -> dict[str, Any]:
    """A Rollout-like CRD: replicas, a selector, a whole pod template and a strategy, with CEL rules (a plain one
    with a message, one with a messageExpression and fieldPath, and a transition rule keeping a field immutable)."""
    spec: dict[str, Any] = {
        "type": "object",
        "required": ["selector", "template"],
        "properties": {
            "replicas": {"type": "integer", "format": "int32", "minimum": 0},
            "minReadySeconds": {"type": "integer", "format": "int32"},
            "progressDeadlineSeconds": {"type": "integer", "format": "int32"},
            "selector": inline_schema("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
            "template": inline_schema("io.k8s.api.core.v1.PodTemplateSpec"),
            "workloadRef": {
                "type": "object",
                "description": "The workload this rollout takes over; it cannot be changed once set.",
                "properties": {"kind": {"type": "string"}, "name": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "workloadRef is immutable"}],
            },
            "strategy": {
                "type": "object",
                "properties": {
                    "canary": {
                        "type": "object",
                        "properties": {
                            "steps": {
                                "type": "array",
                                "maxItems": 50,
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "setWeight": {"type": "integer", "format": "int32"},
                                        "pause": {
                                            "type": "object",
                                            "properties": {"duration": INT_OR_STRING},
                                        },
                                    },
                                },
                            },
                            "maxSurge": INT_OR_STRING,
                        },
                        "x-kubernetes-validations": [
                            {
                                "rule": "!has(self.steps) || self.steps.all(s, !has(s.setWeight) || "
                                "(s.setWeight >= 0 && s.setWeight <= 100))",
                                "messageExpression": "'every setWeight must be between 0 and 100'",
                                "fieldPath": ".steps",
                            }
                        ],
                    },
                },
            },
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.minReadySeconds) || !has(self.progressDeadlineSeconds) || "
                "self.progressDeadlineSeconds > self.minReadySeconds",
                "message": "progressDeadlineSeconds must be greater than minReadySeconds",
            }
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


def gadget_crd(group: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    """A small namespaced `Gadget` CRD (v1) of `group` whose spec (and status, then a subresource) has the given
    schemas: what the apply, CEL and client tests each vary."""
    properties = {"spec": spec, **({"status": status} if status is not None else {})}
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
    }
    if status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [version],
        },
    }
