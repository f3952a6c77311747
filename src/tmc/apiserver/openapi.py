"""OpenAPI v3: the `/openapi/v3` index and one OpenAPI 3.0 document per served group-version.

kubectl reads these documents for three things: whether a kind's PATCH operation declares `fieldValidation` (then it
relies on server-side validation), whether it lists `application/strategic-merge-patch+json` (then `kubectl apply`
computes a strategic merge patch from the schema's patch extensions), and `kubectl explain`. It locates a kind by the
`x-kubernetes-group-version-kind` extension, on operations (one object) and on component schemas (a list).

Built-in schemas come from the kubernetes-validate definitions (JSON Schema) and are converted to the form upstream
publishes; custom resources use their CRD version's openAPIV3Schema. Documents are deterministic functions of the
served resources, so identical group-versions in different workspaces share one memoised build.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.schemas import builtin_definitions, builtin_gvk_index, ref_name
from tmc.apiserver.discovery import group_versions, subresource_kind, version_info

REF_PREFIX = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Always published, whether or not a path refers to them (clients and tools look them up by name).
_META_TYPES = (OBJECT_META, LIST_META, STATUS, DELETE_OPTIONS, META + "WatchEvent", PATCH, META + "APIResourceList")

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

# kubernetes-validate has no text for these two and models them as nullable oneOf; publish upstream's v3 form.
_SPECIAL_COMPONENTS: dict[str, dict[str, Any]] = {
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
        "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for "
        "example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number. It provides convenient "
        "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\n"
        "The serialization format is:\n\n<quantity> ::= <signedNumber><suffix>\n\n(Note that <suffix> may be "
        'empty, from the "" case in <decimalSI>.)\n\nExamples: 100m (0.1 cores), 64Mi, 2, 1.5Gi.',
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
}

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this from "
    "the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_OBJECT_META_DOC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_META_DOC = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)


# ------------------------------------------------------------------------------------------------ schema conversion


def _convert(node: Any, builtin: bool) -> Any:
    """JSON Schema node -> OpenAPI 3.0 schema: refs into components, nullable type arrays collapsed, and the
    strict-validation artifacts of kubernetes-validate (closed objects, apiVersion/kind enums) dropped."""
    if not isinstance(node, dict):
        return copy.deepcopy(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = REF_PREFIX + ref_name(value)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out[key] = types[0]
        elif key == "properties" and isinstance(value, dict):
            props = {}
            for name, sub in value.items():
                converted = _convert(sub, builtin)
                if builtin and name in ("apiVersion", "kind") and isinstance(converted, dict):
                    converted.pop("enum", None)
                props[name] = converted
            out[key] = props
        elif key == "additionalProperties":
            if value is False and builtin:
                continue
            out[key] = _convert(value, builtin)
        elif key in ("items", "not"):
            out[key] = _convert(value, builtin)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_convert(v, builtin) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _is_builtin(info: ResourceInfo) -> bool:
    return not info.crd and info.definition_name in builtin_definitions()


def _custom_kind_schema(info: ResourceInfo) -> dict[str, Any]:
    """A CRD (or other non-built-in) kind: its own schema plus what upstream's CRD publisher adds."""
    raw = info.schema.raw if info.schema is not None else {"type": "object"}
    schema: dict[str, Any] = _convert(raw, builtin=False)
    schema.setdefault("type", "object")
    props = dict(schema.get("properties") or {})
    props["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    props["kind"] = {"description": _KIND_DOC, "type": "string"}
    props["metadata"] = {"$ref": REF_PREFIX + OBJECT_META, "description": _OBJECT_META_DOC}
    schema["properties"] = dict(sorted(props.items()))
    schema["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    return schema


def _list_schema(info: ResourceInfo, item: str) -> dict[str, Any]:
    return {
        "description": f"{info.kind}List is a list of {info.kind}",
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "items": {
                "description": f"List of {info.plural}. More info: "
                "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                "items": {"$ref": REF_PREFIX + item},
                "type": "array",
            },
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": {"$ref": REF_PREFIX + LIST_META, "description": _LIST_META_DOC},
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind)],
    }


def _component_names(info: ResourceInfo) -> tuple[str, str]:
    item = info.definition_name or f"{'.'.join(reversed(info.group.split('.')))}.{info.version}.{info.kind}"
    listed = builtin_gvk_index().get((info.group, info.version, info.list_kind)) if _is_builtin(info) else None
    return item, listed or item + "List"


# ------------------------------------------------------------------------------------------------ paths


def _param(name: str, where: str, typ: str, description: str, required: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "in": where, "name": name}
    if required:
        out["required"] = True
    out["schema"] = {"type": typ, "uniqueItems": True}
    return out


_P_DRY_RUN = _param(
    "dryRun",
    "query",
    "string",
    "When present, indicates that modifications should not be persisted. "
    "Valid values are: - All: all dry run stages will be processed",
)
_P_FIELD_MANAGER = _param(
    "fieldManager",
    "query",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes "
    "(at most 128 printable characters). Required for apply requests (application/apply-patch).",
)
_P_FIELD_VALIDATION = _param(
    "fieldValidation",
    "query",
    "string",
    "fieldValidation determines how the server should respond to unknown/duplicate fields in the object in the "
    "request. Valid values are: - Ignore: ignores unknown/duplicate fields. - Warn: responds with a warning for "
    "each unknown/duplicate field, but successfully serves the request. - Strict: fails the request on "
    "unknown/duplicate fields.",
)
_P_FORCE = _param(
    "force",
    "query",
    "boolean",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other '
    "people. Force flag must be unset for non-apply patch requests.",
)
_P_PRETTY = _param("pretty", "query", "string", "If 'true', then the output is pretty printed.")
_P_NAMESPACE = _param("namespace", "path", "string", "object name and auth scope, such as for teams and projects", True)
_LIST_PARAMS = [
    _param(name, "query", typ, text)
    for name, typ, text in (
        ("allowWatchBookmarks", "boolean", 'allowWatchBookmarks requests watch events with type "BOOKMARK".'),
        ("continue", "string", "The continue option should be set when retrieving more results from the server."),
        ("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
        ("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
        ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        ("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions may be served."),
        ("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied."),
        ("sendInitialEvents", "boolean", "With watch=true, begin the stream with events for all existing objects."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources and return them as a stream."),
    )
]
_DELETE_PARAMS = [
    _param("gracePeriodSeconds", "query", "integer", "The duration in seconds before the object should be deleted."),
    _param("orphanDependents", "query", "boolean", "Deprecated: please use the PropagationPolicy."),
    _param("propagationPolicy", "query", "string", "Whether and how garbage collection will be performed."),
    _P_DRY_RUN,
]


def _content(ref: str, watch: bool = False) -> dict[str, Any]:
    schema = {"schema": {"$ref": REF_PREFIX + ref}}
    types = ("application/json", "application/json;stream=watch") if watch else ("application/json",)
    return {t: schema for t in types}


def _responses(ref: str, codes: Sequence[str] = ("200",), watch: bool = False) -> dict[str, Any]:
    text = {"200": "OK", "201": "Created", "202": "Accepted"}
    return {code: {"content": _content(ref, watch), "description": text[code]} for code in codes}


@dataclass(frozen=True)
class _Names:
    """Naming context for one resource's operations."""

    info: ResourceInfo
    item: str
    listed: str
    prefix: str  # "/api/v1", "/apis/apps/v1"
    camel_gv: str  # "CoreV1", "AppsV1", "RbacAuthorizationV1"
    tag: str  # "core_v1", "apps_v1"


def _names(info: ResourceInfo, item: str, listed: str) -> _Names:
    group = info.group.removesuffix(".k8s.io") if info.group else "core"
    words = [w for part in group.split(".") for w in part.split("-") if w]
    camel = "".join(w[:1].upper() + w[1:] for w in words)
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    tag = camel[:1].lower() + camel[1:] + "_" + info.version
    return _Names(info, item, listed, prefix, camel + info.version[:1].upper() + info.version[1:], tag)


def _op(n: _Names, verb: str, action: str, op_kind: str, gvk: dict[str, str], **fields: Any) -> dict[str, Any]:
    description = fields.pop("description")
    out: dict[str, Any] = {"description": description, "operationId": f"{verb}{n.camel_gv}{op_kind}"}
    out.update(fields)
    out["tags"] = [n.tag]
    out["x-kubernetes-action"] = action
    out["x-kubernetes-group-version-kind"] = gvk
    return out


def _patch_body(builtin: bool) -> dict[str, Any]:
    types = [APPLY_PATCH, JSON_PATCH, MERGE_PATCH] + ([STRATEGIC_PATCH] if builtin else [])
    return {"content": {t: {"schema": {"$ref": REF_PREFIX + PATCH}} for t in types}, "required": True}


def _object_ops(n: _Names, ref: str, gvk: dict[str, str], label: str, op_kind: str, subresource: str) -> dict[str, Any]:
    """get/put/patch (and delete for the object itself) on one object path."""
    verbs = set(n.info.verbs)
    builtin = _is_builtin(n.info)
    ops: dict[str, Any] = {}
    if subresource != "finalize" and "get" in verbs:
        ops["get"] = _op(n, "read", "get", op_kind, gvk, description=f"read {label}", responses=_responses(ref))
    if "update" in verbs:
        ops["put"] = _op(
            n,
            "replace",
            "put",
            op_kind,
            gvk,
            description=f"replace {label}",
            parameters=[_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            requestBody={"content": _content(ref), "required": True},
            responses=_responses(ref, ("200", "201")),
        )
    if subresource != "finalize" and "patch" in verbs:
        ops["patch"] = _op(
            n,
            "patch",
            "patch",
            op_kind,
            gvk,
            description=f"partially update {label}",
            parameters=[_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION, _P_FORCE],
            requestBody=_patch_body(builtin),
            responses=_responses(ref, ("200", "201")),
        )
    if not subresource and "delete" in verbs:
        ops["delete"] = _op(
            n,
            "delete",
            "delete",
            op_kind,
            gvk,
            description=f"delete {label}",
            parameters=_DELETE_PARAMS,
            requestBody={"content": _content(DELETE_OPTIONS)},
            responses=_responses(STATUS, ("200", "202")),
        )
    return ops


def _resource_paths(n: _Names) -> dict[str, dict[str, Any]]:
    info, verbs = n.info, set(n.info.verbs)
    gvk = _gvk(info.group, info.version, info.kind)
    scope = "Namespaced" if info.namespaced else ""
    collection = (
        f"{n.prefix}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{n.prefix}/{info.plural}"
    )
    scope_params = [_P_NAMESPACE] if info.namespaced else []
    name_param = _param("name", "path", "string", f"name of the {info.kind}", True)
    paths: dict[str, dict[str, Any]] = {}

    coll: dict[str, Any] = {}
    if "list" in verbs:
        coll["get"] = _op(
            n,
            "list",
            "list",
            f"{scope}{info.kind}",
            gvk,
            description=f"list or watch objects of kind {info.kind}",
            parameters=_LIST_PARAMS,
            responses=_responses(n.listed, watch="watch" in verbs),
        )
    if "create" in verbs:
        coll["post"] = _op(
            n,
            "create",
            "post",
            f"{scope}{info.kind}",
            gvk,
            description=f"create a {info.kind}",
            parameters=[_P_DRY_RUN, _P_FIELD_MANAGER, _P_FIELD_VALIDATION],
            requestBody={"content": _content(n.item), "required": True},
            responses=_responses(n.item, ("200", "201", "202")),
        )
    if "deletecollection" in verbs:
        coll["delete"] = _op(
            n,
            "delete",
            "deletecollection",
            f"Collection{scope}{info.kind}",
            gvk,
            description=f"delete collection of {info.kind}",
            parameters=_DELETE_PARAMS + _LIST_PARAMS,
            requestBody={"content": _content(DELETE_OPTIONS)},
            responses=_responses(STATUS),
        )
    if coll:
        paths[collection] = {**coll, "parameters": [*scope_params, _P_PRETTY]}

    obj_params = [name_param, *scope_params, _P_PRETTY]
    ops = _object_ops(n, n.item, gvk, f"the specified {info.kind}", f"{scope}{info.kind}", "")
    if ops:
        paths[f"{collection}/{{name}}"] = {**ops, "parameters": obj_params}
    for sub in info.subresources:
        group, version, kind = subresource_kind(info, sub)
        ref = SCALE if sub == "scale" else n.item
        label = f"{sub} of the specified {info.kind}"
        ops = _object_ops(n, ref, _gvk(group, version, kind), label, f"{scope}{info.kind}{sub.capitalize()}", sub)
        if ops:
            paths[f"{collection}/{{name}}/{sub}"] = {**ops, "parameters": obj_params}

    if info.namespaced and "list" in verbs:
        paths[f"{n.prefix}/{info.plural}"] = {
            "get": _op(
                n,
                "list",
                "list",
                f"{info.kind}ForAllNamespaces",
                gvk,
                description=f"list or watch objects of kind {info.kind}",
                responses=_responses(n.listed, watch="watch" in verbs),
            ),
            "parameters": [*_LIST_PARAMS, _P_PRETTY],
        }
    return paths


# ------------------------------------------------------------------------------------------------ documents


def group_version_path(group: str, version: str) -> str:
    """The index key (and URL tail) of a group-version document: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _parse_path(path: str) -> tuple[str, str] | None:
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) == 2 and parts[0] == "api":
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis":
        return parts[1], parts[2]
    return None


def _build(infos: Sequence[ResourceInfo]) -> dict[str, Any]:
    """The OpenAPI document of one group-version (all `infos` share it)."""
    builtin_defs = builtin_definitions()
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    # Where a referenced name is looked up: the resources' own definition sets first, then the built-ins.
    sources: list[tuple[Mapping[str, Any], bool]] = [
        (r.schema.definitions, False)
        for r in infos
        if r.schema is not None and r.schema.definitions is not builtin_defs
    ]
    sources.append((builtin_defs, True))
    for info in infos:
        item, listed = _component_names(info)
        if _is_builtin(info):
            schemas[item] = _convert(builtin_defs[item], builtin=True)
            if listed in builtin_defs:
                schemas[listed] = _convert(builtin_defs[listed], builtin=True)
        else:
            schemas[item] = _custom_kind_schema(info)
        if listed not in schemas:
            schemas[listed] = _list_schema(info, item)
        paths.update(_resource_paths(_names(info, item, listed)))
    gv = _names(infos[0], "", "")
    paths[gv.prefix + "/"] = {
        "get": {
            "description": "get available resources",
            "operationId": f"get{gv.camel_gv}APIResources",
            "responses": _responses(META + "APIResourceList"),
            "tags": [gv.tag],
        }
    }

    pending = set(_META_TYPES)
    if any("scale" in r.subresources for r in infos):
        pending.add(SCALE)
    _refs(schemas, pending)
    _refs(paths, pending)
    while pending:
        name = pending.pop()
        if name in schemas:
            continue
        if name in _SPECIAL_COMPONENTS:
            schemas[name] = copy.deepcopy(_SPECIAL_COMPONENTS[name])
            continue
        for defs, builtin in sources:
            if name in defs:
                schemas[name] = _convert(defs[name], builtin=builtin)
                break
        else:
            # An unresolvable ref would make kubectl's document parsing fail; publish an open object instead.
            schemas[name] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        found: set[str] = set()
        _refs(schemas[name], found)
        pending |= found - schemas.keys()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": version_info()["gitVersion"]},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


@dataclass(frozen=True)
class BuiltDocument:
    document: dict[str, Any]  # shared between callers: treat as read-only
    body: bytes  # the serialised document, what `/openapi/v3/<path>` returns
    hash: str  # upstream's form: upper-case hex SHA-512 of the body


_CACHE_BYTES = 64 * 1024 * 1024
_cache: OrderedDict[str, BuiltDocument] = OrderedDict()
_cache_lock = threading.Lock()


def _fingerprint(infos: Sequence[ResourceInfo]) -> str:
    builtin_defs = builtin_definitions()
    parts = []
    for r in infos:
        schema: Any = None
        if r.schema is not None and not _is_builtin(r):
            defs = None if r.schema.definitions is builtin_defs else r.schema.definitions
            schema = [r.schema.raw, defs]
        parts.append(
            [
                r.group,
                r.version,
                r.kind,
                r.plural,
                r.namespaced,
                r.subresources,
                r.verbs,
                r.definition_name,
                r.crd,
                schema,
            ]
        )
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _document(resources: Iterable[ResourceInfo], group: str, version: str) -> BuiltDocument | None:
    infos = sorted((r for r in resources if r.group == group and r.version == version), key=lambda r: r.plural)
    if not infos:
        return None
    key = _fingerprint(infos)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    doc = _build(infos)
    body = orjson.dumps(doc)
    built = BuiltDocument(doc, body, hashlib.sha512(body).hexdigest().upper())
    with _cache_lock:
        _cache[key] = built
        total = sum(len(b.body) for b in _cache.values())
        while total > _CACHE_BYTES and len(_cache) > 1:
            _, evicted = _cache.popitem(last=False)
            total -= len(evicted.body)
    return built


def built_document(resources: Iterable[ResourceInfo], path: str) -> BuiltDocument | None:
    """The document for `api/v1` / `apis/<g>/<v>` (a `?hash=` suffix is ignored), or None when not served."""
    gv = _parse_path(path)
    return None if gv is None else _document(resources, *gv)


def group_version_document(resources: Iterable[ResourceInfo], path: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document for one group-version (read-only: it is shared with other callers)."""
    built = built_document(resources, path)
    return None if built is None else built.document


def group_version_bytes(resources: Iterable[ResourceInfo], path: str) -> bytes | None:
    """The serialised document, ready to send; avoids re-encoding several hundred KB per request."""
    built = built_document(resources, path)
    return None if built is None else built.body


def index(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """`/openapi/v3`: one entry per served group-version; the hash changes whenever that document changes.

    URLs start with `/openapi/v3` so client-go keeps a kubeconfig path prefix such as `/clusters/root:org`."""
    infos = list(resources)
    paths: dict[str, Any] = {}
    for group, versions in group_versions(infos):
        for version in versions:
            built = _document(infos, group, version)
            if built is not None:
                key = group_version_path(group, version)
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={built.hash}"}
    return {"paths": paths}
