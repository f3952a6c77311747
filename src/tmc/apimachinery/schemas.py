"""Built-in Kubernetes schemas (from the kubernetes-validate package) as navigable nodes.

The package ships the Kubernetes OpenAPI definitions as JSON Schema, with the patch metadata
(`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, list types) that strategic merge patch,
strict field validation and the served OpenAPI documents all need. Custom resources get the same node type
built from their CRD's `openAPIV3Schema`, so every consumer walks one kind of tree.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import orjson

KUBERNETES_SCHEMA_VERSION = "1.32.0"
_REF_PREFIXES = ("#/$defs/", "#/components/schemas/", "#/definitions/")


@functools.cache
def builtin_definitions() -> dict[str, dict[str, Any]]:
    """Every built-in definition by its OpenAPI name (`io.k8s.api.apps.v1.Deployment`), strict variant."""
    # Only the package's data files are used: locating it without importing it saves ~100 ms (jsonschema and
    # friends) at every start of every tmc process.
    spec = importlib.util.find_spec("kubernetes_validate")
    assert spec is not None and spec.origin is not None, "kubernetes-validate is a dependency"
    base = os.path.join(os.path.dirname(spec.origin), "kubernetes-json-schema")
    path = os.path.join(base, f"v{KUBERNETES_SCHEMA_VERSION}-local-strict", "_definitions.json")
    with open(path, "rb") as f:
        defs: dict[str, dict[str, Any]] = orjson.loads(f.read())["$defs"]
    return defs


@functools.cache
def builtin_gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from `x-kubernetes-group-version-kind`."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in builtin_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name
    return index


def ref_name(ref: str) -> str:
    for prefix in _REF_PREFIXES:
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


@dataclass(frozen=True)
class Schema:
    """One node of a schema tree; `$ref`s are followed lazily through `definitions`."""

    raw: dict[str, Any]
    definitions: dict[str, dict[str, Any]]

    def _resolved(self) -> dict[str, Any]:
        node = self.raw
        seen = 0
        while "$ref" in node and seen < 32:
            merged = dict(self.definitions.get(ref_name(node["$ref"]), {}))
            # A $ref sibling (description, patch metadata) refines the referenced schema.
            merged.update({k: v for k, v in node.items() if k != "$ref"})
            node = merged
            seen += 1
        return node

    @property
    def node(self) -> dict[str, Any]:
        return self._resolved()

    @property
    def types(self) -> set[str]:
        """Declared JSON types, without "null"; empty when any type is allowed (int-or-string, quantity, ...)."""
        t = self.node.get("type")
        if t is None:
            return set()
        values = {t} if isinstance(t, str) else set(t)
        return values - {"null"}

    @property
    def preserves_unknown_fields(self) -> bool:
        node = self.node
        return bool(node.get("x-kubernetes-preserve-unknown-fields")) or (
            "object" in self.types and "properties" not in node and "additionalProperties" not in node
        )

    def field(self, name: str) -> Schema | None:
        """Schema of property `name` (or of map values), or None when the field is unknown."""
        node = self.node
        props = node.get("properties")
        if props and name in props:
            return Schema(props[name], self.definitions)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return Schema(extra, self.definitions)
        return None

    def items(self) -> Schema | None:
        items = self.node.get("items")
        return Schema(items, self.definitions) if isinstance(items, dict) else None

    @property
    def patch_strategy(self) -> str:
        """`merge`, `replace`, `retainKeys`, `merge,retainKeys` or "" (lists default to replace)."""
        return str(self.node.get("x-kubernetes-patch-strategy", ""))

    @property
    def patch_merge_key(self) -> str:
        return str(self.node.get("x-kubernetes-patch-merge-key", ""))

    @property
    def list_type(self) -> str:
        return str(self.node.get("x-kubernetes-list-type", ""))

    @property
    def list_map_keys(self) -> list[str]:
        return list(self.node.get("x-kubernetes-list-map-keys", []))


def builtin_schema(group: str, version: str, kind: str) -> Schema | None:
    name = builtin_gvk_index().get((group, version, kind))
    if name is None:
        return None
    defs = builtin_definitions()
    return Schema(defs[name], defs)


def builtin_definition_name(group: str, version: str, kind: str) -> str | None:
    return builtin_gvk_index().get((group, version, kind))
