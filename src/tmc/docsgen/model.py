"""An OpenAPI v3 group-version document, read as a reference: its kinds, and one section per object type with a row
per field (type, required, default, validation, description).

Only the document is read, never the Python types, so a reference built offline and one fetched from a running hub
(CRDs included) come out of the same code. Nested objects written inline (as TMC's own schemas are) become sections
titled by their path, e.g. `SyncTarget.spec.resourceFilter`; named components of the document become sections
titled by their short name; Kubernetes' own types link to the upstream API reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REF_PREFIX = "#/components/schemas/"
# Kubernetes' own types (ObjectMeta, LabelSelector, ...) are documented upstream; the pages link there.
_K8S_REFERENCE = "https://kubernetes.io/docs/reference/generated/kubernetes-api/v1.{minor}/#{anchor}"
_VALIDATION_KEYS = (
    ("minimum", "minimum"),
    ("maximum", "maximum"),
    ("exclusiveMinimum", "exclusive minimum"),
    ("exclusiveMaximum", "exclusive maximum"),
    ("minLength", "min length"),
    ("maxLength", "max length"),
    ("minItems", "min items"),
    ("maxItems", "max items"),
    ("minProperties", "min properties"),
    ("maxProperties", "max properties"),
    ("pattern", "pattern"),
)


@dataclass(frozen=True)
class TypeRef:
    """How a field's type is shown: its text, and where its own section is (an anchor on the page, or a URL)."""

    text: str
    anchor: str = ""
    url: str = ""


@dataclass(frozen=True)
class Field:
    name: str
    type: TypeRef
    required: bool
    default: Any  # None when the schema declares none
    description: str
    validation: tuple[str, ...]
    path: str  # dotted path from the kind, e.g. spec.resourceFilter.resourceTypes (what kubectl explain takes)


@dataclass
class Section:
    """One object type: a kind's top level, a nested object, or a named component."""

    title: str
    anchor: str
    description: str
    path: str  # where the kind first holds this type ("" for the kind itself), as kubectl explain takes it
    fields: list[Field] = field(default_factory=list)


@dataclass
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    description: str
    sections: list[Section] = field(default_factory=list)  # the kind's own section first

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def anchor(self) -> str:
        return self.sections[0].anchor


@dataclass
class GroupVersion:
    group: str
    version: str
    kinds: list[Kind]
    document: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The page and file stem: `workload.kcp.io-v1alpha1`, `core-v1`."""
        return f"{self.group or 'core'}-{self.version}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than `-` and `_` dropped, spaces to hyphens. The HTML
    renderer uses the same function, so one link works on both."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def _short(component: str) -> str:
    return component.rsplit(".", 1)[-1]


def upstream_link(component: str, kube_minor: str) -> str:
    """The Kubernetes API reference URL of a built-in type, or "" for one it has no anchor for."""
    parts = component.split(".")
    if component.startswith("io.k8s.apimachinery.pkg.apis.meta.") and len(parts) == 8:
        anchor = f"{parts[-1].lower()}-{parts[-2]}-meta"
    elif component.startswith("io.k8s.api.") and len(parts) == 6:
        anchor = f"{parts[-1].lower()}-{parts[-2]}-{parts[3]}"
    else:
        return ""
    return _K8S_REFERENCE.format(minor=kube_minor, anchor=anchor)


def _validation(schema: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    if isinstance(schema.get("enum"), list):
        out.append("one of: " + ", ".join(str(v) for v in schema["enum"]))
    for key, label in _VALIDATION_KEYS:
        if key in schema and not isinstance(schema[key], bool):
            out.append(f"{label}: {schema[key]}")
    if schema.get("uniqueItems") is True:
        out.append("items unique")
    if schema.get("x-kubernetes-list-type") in ("set", "map"):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        out.append(f"list type: {schema['x-kubernetes-list-type']}" + (f" (keys: {', '.join(keys)})" if keys else ""))
    for rule in schema.get("x-kubernetes-validations") or ():
        if isinstance(rule, Mapping) and rule.get("rule"):
            message = f" ({rule['message']})" if rule.get("message") else ""
            out.append(f"rule: {rule['rule']}{message}")
    return tuple(out)


class _Reader:
    """Walks one kind's schema, collecting sections in the order a reader meets them (depth first)."""

    def __init__(self, components: Mapping[str, Any], kube_minor: str, named: set[str]) -> None:
        self.components = components
        self.kube_minor = kube_minor
        self.sections: list[Section] = []
        # Named components already given a section on this page (by any kind): one section each.
        self._named = named

    def resolve(self, schema: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
        """(component name, schema) through a `$ref` or an `allOf` of one ref (upstream's v3 form); name "" inline."""
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                ref = all_of[0].get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            name = ref[len(REF_PREFIX) :]
            return name, self.components.get(name) or {}
        return "", schema

    def type_of(self, schema: Mapping[str, Any], title: str, path: str) -> TypeRef:
        """The type text of `schema`, opening a section for it when it is an object with fields."""
        name, target = self.resolve(schema)
        if name:
            if name.startswith("io.k8s."):
                return TypeRef(_short(name), url=upstream_link(name, self.kube_minor))
            anchor = slug(_short(name))
            if name not in self._named:
                self._named.add(name)
                self.add_section(_short(name), target, path)
            return TypeRef(_short(name), anchor=anchor)
        if target.get("x-kubernetes-int-or-string"):
            return TypeRef("int-or-string")
        kind = target.get("type")
        if kind == "array":
            items = target.get("items")
            inner = self.type_of(items, title + "[]", path) if isinstance(items, Mapping) else TypeRef("any")
            return TypeRef("[]" + inner.text, inner.anchor, inner.url)
        if kind == "object" or "properties" in target:
            if isinstance(target.get("properties"), Mapping) and target["properties"]:
                self.add_section(title, target, path)
                return TypeRef("object", anchor=slug(title))
            extra = target.get("additionalProperties")
            if isinstance(extra, Mapping):
                inner = self.type_of(extra, title + "{}", path)
                return TypeRef("map[string]" + inner.text, inner.anchor, inner.url)
            return TypeRef("object")
        text = str(kind) if kind else "any"
        if target.get("format"):
            text += f" ({target['format']})"
        return TypeRef(text)

    def add_section(self, title: str, schema: Mapping[str, Any], path: str) -> Section:
        section = Section(title, slug(title), str(schema.get("description") or ""), path)
        self.sections.append(section)
        required = set(schema.get("required") or ())
        for name, sub in sorted((schema.get("properties") or {}).items()):
            if not isinstance(sub, Mapping):
                continue
            sub_path = f"{path}.{name}" if path else name
            _, target = self.resolve(sub)
            # A ref's own description (beside it or in the allOf wrapper) wins over the referenced type's.
            description = sub.get("description") or target.get("description") or ""
            field_type = self.type_of(sub, f"{title}.{name}", sub_path)
            section.fields.append(
                Field(
                    name=name,
                    type=field_type,
                    required=name in required,
                    default=sub.get("default", target.get("default")),
                    description=str(description),
                    validation=_validation(sub) or _validation(target),
                    path=sub_path,
                )
            )
        return section


def _kinds_in_paths(document: Mapping[str, Any]) -> dict[tuple[str, str, str], tuple[str, bool]]:
    """(group, version, kind) -> (plural, namespaced), from the create operations of the document's paths."""
    found: dict[tuple[str, str, str], tuple[str, bool]] = {}
    for path, ops in (document.get("paths") or {}).items():
        post = ops.get("post") if isinstance(ops, Mapping) else None
        if not isinstance(post, Mapping):
            continue
        gvk = post.get("x-kubernetes-group-version-kind") or {}
        key = (str(gvk.get("group", "")), str(gvk.get("version", "")), str(gvk.get("kind", "")))
        found[key] = (path.rstrip("/").rsplit("/", 1)[-1], "/namespaces/{namespace}/" in path)
    return found


def read_group_version(group: str, version: str, document: Mapping[str, Any], kube_minor: str) -> GroupVersion:
    """The kinds of one group-version document, in name order."""
    components: Mapping[str, Any] = (document.get("components") or {}).get("schemas") or {}
    served = _kinds_in_paths(document)
    kinds: list[Kind] = []
    named: set[str] = set()
    for name, schema in sorted(components.items()):
        gvks = schema.get("x-kubernetes-group-version-kind") if isinstance(schema, Mapping) else None
        for gvk in gvks or ():
            key = (str(gvk.get("group", "")), str(gvk.get("version", "")), str(gvk.get("kind", "")))
            if key[:2] != (group, version) or key not in served:
                continue
            named.add(name)
            reader = _Reader(components, kube_minor, named)
            reader.add_section(key[2], schema, "")
            plural, namespaced = served[key]
            kinds.append(
                Kind(group, version, key[2], plural, namespaced, str(schema.get("description") or ""), reader.sections)
            )
    kinds.sort(key=lambda k: k.kind)
    return GroupVersion(group, version, kinds, document)


def undocumented(gv: GroupVersion) -> list[str]:
    """`Kind.path` of every field without a description: the reference must leave none."""
    return [f"{k.kind}.{f.path}" for k in gv.kinds for s in k.sections for f in s.fields if not f.description.strip()]
