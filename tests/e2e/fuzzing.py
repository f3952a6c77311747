"""A request fuzzer for the hub, driven by the hub's own OpenAPI v3 documents.

Every operation (path, method, query parameters, request body schema, group-version-kind) comes from the served
documents; hypothesis strategies turn the schemas into objects and then break them: one value of the wrong JSON type,
unknown fields with control characters in their names, numbers no integer type holds, deep nesting, patches of the
wrong shape, YAML-only values. Requests go out on a fresh raw HTTP(S) connection each, so that a dropped connection or
a hang is seen as such and not hidden by a client's retries.
"""

from __future__ import annotations

import gzip
import http.client
import json
import ssl
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from hypothesis import strategies as st

Schema = dict[str, Any]

# The names the fuzzer writes to: "seed" objects exist from the start (deletes never target them, so updates, patches
# and subresources keep reaching a stored object); the others come and go as the fuzzer creates and deletes them.
SEED = "seed"
NAMES = (SEED, "fz-a", "fz-b")
DELETABLE = ("fz-a", "fz-b", "missing")
# Only objects with this label can be hit by a delete-collection, and nothing valid carries it by accident.
VICTIM_SELECTOR = "fuzz-victim=yes"

CATEGORIES = (
    "create",
    "create-near-valid",
    "update",
    "patch-json",
    "patch-merge",
    "patch-strategic",
    "patch-other-type",
    "status",
    "scale",
    "delete",
    "delete-collection",
    "get",
    "list",
    "watch",
    "yaml-body",
    "content-encoding",
    "unknown-content-type",
    "deep-nesting",
)

PATCH_TYPES = {
    "patch-json": "application/json-patch+json",
    "patch-merge": "application/merge-patch+json",
    "patch-strategic": "application/strategic-merge-patch+json",
}
ODD_CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "application/json-patch+json; charset=utf-16",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "multipart/form-data; boundary=x",
    "",
    "application/",
    "application/json; charset=unknown-8",
    ";;;",
    "application/json; q=x; =",
)
ACCEPTS = (
    "application/json",
    "application/yaml",
    "*/*",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/vnd.kubernetes.protobuf, application/json",
    "text/html",
    "application/json;as=Nope;v=x",
    ";;",
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    categories: frozenset[str] = frozenset()
    # A watch answers 200 and then streams: only its status line and headers are read.
    streaming: bool = False
    plain: bytes | None = None  # the body before Content-Encoding, for the failure message

    def __repr__(self) -> str:
        body = b"" if self.body is None else self.body
        shown = body[:600] + (b"...(%d bytes)" % len(body) if len(body) > 600 else b"")
        headers = "".join(f"\n  {k}: {v!r}" for k, v in self.headers.items())
        plain = f"\n  decoded body: {self.plain[:600]!r}" if self.plain is not None else ""
        return (
            f"\n{self.method} {self.path}{headers}\n  body: {shown!r}{plain}\n  categories: {sorted(self.categories)}"
        )


@dataclass
class Outcome:
    status: int | None
    body: bytes
    error: str | None = None  # the transport failure: dropped connection, reset, timeout


def send(
    req: Request, host: str, port: int, token: str, context: ssl.SSLContext | None, timeout: float = 20.0
) -> Outcome:
    """One request on its own connection (TLS when `context` is given)."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
        if context is not None
        else http.client.HTTPConnection(host, port, timeout=timeout)
    )
    try:
        conn.putrequest(req.method, req.path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {token}")
        for name, value in req.headers.items():
            conn.putheader(name, value)
        if req.body is not None:
            conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body)
        response = conn.getresponse()
        if req.streaming and response.status == 200:
            return Outcome(response.status, b"")
        return Outcome(response.status, response.read())
    except (OSError, http.client.HTTPException) as e:  # socket.timeout is an OSError
        return Outcome(None, b"", f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def problem(outcome: Outcome) -> str | None:
    """What is wrong with an answer, or None: it must arrive, not be a 5xx, and a 4xx must be a JSON Status."""
    if outcome.status is None:
        return f"no response: {outcome.error}"
    if outcome.status >= 500 and not too_large_resource_version(outcome):
        return f"server error {outcome.status}: {outcome.body[:500]!r}"
    if 400 <= outcome.status < 500:
        try:
            status = orjson.loads(outcome.body)
        except orjson.JSONDecodeError:
            return f"{outcome.status} with a body that is not JSON: {outcome.body[:300]!r}"
        if not isinstance(status, dict) or status.get("kind") != "Status":
            return f"{outcome.status} with a body that is not a Status: {outcome.body[:300]!r}"
        if status.get("code") != outcome.status:
            return f"{outcome.status} with a Status whose code is {status.get('code')!r}"
    return None


def too_large_resource_version(outcome: Outcome) -> bool:
    """kube-apiserver's answer to a read at a resourceVersion the store has not reached: a 504 Status with the cause
    `ResourceVersionTooLarge`, which client-go's reflector looks for; so it is the one 5xx a correct hub gives."""
    if outcome.status != 504:
        return False
    try:
        causes = orjson.loads(outcome.body).get("details", {}).get("causes", [])
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return any(isinstance(c, dict) and c.get("type") == "ResourceVersionTooLarge" for c in causes)


def signature(req: Request, outcome: Outcome, found: str) -> str:
    """Groups failures by the kind of request and of answer (not by resource), for the keep-going report."""
    parts = req.path.split("?")[0].split("/")
    subresource = parts[-1] if len(parts) > 2 and parts[-1] in ("status", "scale") else ""
    answer = outcome.error.split(":")[0] if outcome.error else " ".join(found.split(":")[0].split()[:6])
    kind = "/".join(sorted(req.categories - {"content-encoding", "yaml-body", "deep-nesting"}))
    encoding = req.headers.get("Content-Encoding", "")
    content = req.headers.get("Content-Type", "-").split(";")[0]
    return f"{req.method} {subresource} [{content} {encoding}] {kind} -> {answer}"


# --- the OpenAPI side --------------------------------------------------------------------------------------------


@dataclass
class Operation:
    method: str
    path: str  # a template: {namespace}, {name}
    gvk: dict[str, str]
    query: dict[str, Schema]
    body: Schema | None
    content_types: tuple[str, ...]

    @property
    def subresource(self) -> str | None:
        tail = self.path.rsplit("/", 2)
        return tail[-1] if tail[-2] == "{name}" else None


@dataclass
class Api:
    components: dict[str, Schema] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)

    def add_document(self, doc: dict[str, Any]) -> None:
        self.components.update(doc.get("components", {}).get("schemas", {}))
        for path, item in doc.get("paths", {}).items():
            if "{namespace}" not in path:
                continue  # cluster-scoped paths include namespaces; the fuzzer stays inside its own namespace
            shared = {p["name"]: p for p in item.get("parameters", [])}
            for method, op in item.items():
                if method not in ("get", "put", "post", "patch", "delete") or not isinstance(op, dict):
                    continue
                params = {**shared, **{p["name"]: p for p in op.get("parameters", [])}}
                query = {n: p.get("schema", {}) for n, p in params.items() if p.get("in") == "query"}
                content = (op.get("requestBody") or {}).get("content", {})
                body = next(iter(content.values()), {}).get("schema") if content else None
                gvk = op.get("x-kubernetes-group-version-kind") or {}
                self.operations.append(Operation(method.upper(), path, gvk, query, body, tuple(content)))

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            schema = {
                **self.components[schema["$ref"].rsplit("/", 1)[-1]],
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
        if "allOf" in schema and len(schema["allOf"]) == 1:
            schema = {**self.resolve(schema["allOf"][0]), **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema


def api_version(gvk: dict[str, str]) -> str:
    return f"{gvk['group']}/{gvk['version']}" if gvk.get("group") else gvk.get("version", "v1")


# --- values --------------------------------------------------------------------------------------------------------

CONTROL_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F), min_size=1, max_size=8)
KEYS = st.one_of(st.sampled_from(["a", "app", "x.io/y", "", " ", "-"]), CONTROL_TEXT, st.text(max_size=6))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)  # fmt: skip
ANY_JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=6
)
ODD_NUMBERS = st.sampled_from(
    [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30, -1, 0, 1.5, -0.5, 1e308, 5e-324, -0.0, 1e20]
)
# Written into the body text as is: numbers and values that JSON parsers disagree about or Python turns into floats.
RAW_JSON_TOKENS = ("1e999", "-1e999", "NaN", "Infinity", "1" * 40, "1.0", "0.1e1", "-0", "1E+2", "0.0000001")
# YAML scalars and nodes that do not map onto JSON: timestamps, binary, sets, non-string keys, anchors.
RAW_YAML_TOKENS = (
    "2001-12-14t21:59:43.10-05:00", "2002-12-14", "!!binary aGVsbG8=", "!!set {a, b}", "{1: a, 2: b}",
    "{null: x}", "{[1, 2]: x}", "{? {a: 1} : b}", ".nan", "-.inf", "0x1F", "0o17", "1_000", "~", "!!float 1",
    "!!str", "!!python/name:os.system", "&a [*a]", "{<<: {a: 1}}", "!!int x", "!!timestamp 2001-12-14",
)  # fmt: skip


@dataclass(frozen=True)
class Raw:
    """A value written into the body text verbatim."""

    text: str


def nested(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


DEEP = st.builds(nested, st.sampled_from([40, 200, 1000, 3000, 20000]), st.sampled_from(["list", "map"]))


class Values:
    """Hypothesis strategies for the values a schema describes (bounded in depth and width)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cache: dict[tuple[int, int], st.SearchStrategy[Any]] = {}

    def of(self, schema: Schema, depth: int = 3) -> st.SearchStrategy[Any]:
        key = (id(schema), depth)
        if key not in self.cache:
            self.cache[key] = st.deferred(lambda: self._build(schema, depth))
        return self.cache[key]

    def _build(self, schema: Schema, depth: int) -> st.SearchStrategy[Any]:
        s = self.api.resolve(schema)
        if s.get("x-kubernetes-int-or-string"):
            return st.one_of(st.integers(-5, 100), st.sampled_from(["25%", "80", "http", "x"]))
        for alternatives in ("oneOf", "anyOf"):
            if alternatives in s:
                return st.one_of([self.of(a, depth) for a in s[alternatives]])
        if "enum" in s:
            return st.sampled_from(s["enum"])
        kind = s.get("type")
        if kind == "string":
            if s.get("format") == "date-time":
                return st.sampled_from(["2024-01-01T00:00:00Z", "not-a-time"])
            if s.get("format") == "byte":
                return st.sampled_from(["aGVsbG8=", "not base64"])
            return st.one_of(
                st.sampled_from(["", "a", "web", "nginx:1.27", "TCP", "100m", "1Gi"]), st.text(max_size=10)
            )
        if kind == "integer":
            return st.one_of(st.integers(-2, 10), ODD_NUMBERS)
        if kind == "number":
            return st.one_of(st.floats(-10, 10), ODD_NUMBERS)
        if kind == "boolean":
            return st.booleans()
        if kind == "array":
            if depth <= 0:
                return st.just([])
            return st.lists(self.of(s.get("items", {}), depth - 1), max_size=2)
        properties: dict[str, Schema] = s.get("properties", {})
        if kind == "object" or properties or "additionalProperties" in s:
            if depth <= 0:
                return st.just({})
            if properties:
                optional = {k: self.of(v, depth - 1) for k, v in properties.items() if k not in ("apiVersion", "kind")}
                return st.fixed_dictionaries({}, optional=optional)
            extra = s.get("additionalProperties")
            values = self.of(extra, depth - 1) if isinstance(extra, dict) else ANY_JSON
            return st.dictionaries(st.sampled_from(["a", "b", "app", "x.io/y"]), values, max_size=2)
        if s.get("x-kubernetes-preserve-unknown-fields"):
            return ANY_JSON
        return SCALARS

    def object(self, op: Operation, schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
        """A well-formed object of the operation's kind (it may still fail semantic validation)."""
        name = st.sampled_from(NAMES)
        meta = st.fixed_dictionaries(
            {"name": name},
            optional={"labels": st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["web", "db"]))},
        )
        head = {"apiVersion": st.just(api_version(op.gvk)), "kind": st.just(op.gvk.get("kind", "")), "metadata": meta}
        return st.builds(lambda h, rest: {**rest, **h}, st.fixed_dictionaries(head), self.of(schema))


# --- mutation ------------------------------------------------------------------------------------------------------


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths_in(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths_in(v, (*prefix, i))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value.get(head, {}), rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


WRONG_TYPES: tuple[Any, ...] = (None, True, 0, -1, 1.5, "x", "", [], [1], {}, {"a": 1})


def json_type(value: Any) -> str:
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> tuple[Any, str]:
    """`base` with one thing broken; returns the value and what was done."""
    paths = paths_in(base)
    how = draw(st.sampled_from(["wrong-type", "wrong-type", "unknown-field", "odd-number", "raw", "deep", "metadata"]))
    if how == "metadata" and isinstance(base, dict):
        meta = base.get("metadata")
        choices = [("metadata",), *(("metadata", k) for k in (meta if isinstance(meta, dict) else {}))]
        choices += [("metadata", "labels"), ("metadata", "annotations"), ("metadata", "ownerReferences")]
        path = draw(st.sampled_from(choices))
        if not isinstance(meta, dict):
            base = {**base, "metadata": {}}
        return replaced(base, path, draw(st.sampled_from(WRONG_TYPES) | ANY_JSON)), "metadata"
    path = draw(st.sampled_from(paths))
    old = get_at(base, path)
    if how == "unknown-field":
        dicts = [p for p in paths if isinstance(get_at(base, p), dict)]
        if dicts:
            target = draw(st.sampled_from(dicts))
            return replaced(base, target, {**get_at(base, target), draw(KEYS): draw(ANY_JSON)}), how
        how = "wrong-type"
    if how == "wrong-type":
        return replaced(
            base, path, draw(st.sampled_from(WRONG_TYPES).filter(lambda v: json_type(v) != json_type(old)))
        ), how
    if how == "odd-number":
        return replaced(base, path, draw(ODD_NUMBERS)), how
    if how == "raw":
        return replaced(base, path, Raw(draw(st.sampled_from(RAW_JSON_TOKENS + RAW_YAML_TOKENS)))), how
    return replaced(base, path, draw(DEEP)), "deep-nesting"


def get_at(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


# --- encoding ------------------------------------------------------------------------------------------------------


def encode(value: Any, as_yaml: bool) -> bytes:
    """JSON or YAML text of `value`, with every Raw written in place verbatim."""
    raws: dict[str, str] = {}

    def swap(v: Any) -> Any:
        if isinstance(v, Raw):
            marker = f"RAW{len(raws)}X"
            raws[marker] = v.text
            return marker
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    plain = swap(value)
    if as_yaml:
        text = yaml.safe_dump(plain, default_flow_style=True, width=1 << 30, allow_unicode=True)
        for marker, raw in raws.items():
            text = text.replace(marker, raw)
    else:
        text = json.dumps(plain, ensure_ascii=False)
        for marker, raw in raws.items():
            text = text.replace(f'"{marker}"', raw).replace(marker, raw)
    return text.encode("utf-8", errors="surrogatepass")


def compress(body: bytes, how: str) -> tuple[bytes, str]:
    """The body and its Content-Encoding header: real gzip/deflate, or a header that lies about the body."""
    if how == "gzip":
        return gzip.compress(body), "gzip"
    if how == "deflate":
        return zlib.compress(body), "deflate"
    if how == "gzip-bomb":
        return gzip.compress(b"{" + b" " * (8 << 20) + b"}"), "gzip"
    if how == "gzip-truncated":
        return gzip.compress(body)[:-6], "gzip"
    return body, how  # "gzip" claimed for a plain body, "br", "identity", "x-unknown", "gzip, gzip"


ENCODINGS = st.sampled_from(
    ["gzip", "deflate", "gzip-bomb", "gzip-truncated", "br", "identity", "x-unknown", "gzip, gzip"]
)


# --- requests ------------------------------------------------------------------------------------------------------

WRONG_QUERY_VALUES = st.one_of(
    st.sampled_from(
        ["", "x", "-1", "1.5", "1e3", "9" * 30, "true", "null", "[]", "%00", "0x10", " 1", "\x7f", "Exact"]
    ),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=10),
)
QUERY_VALUES: dict[str, st.SearchStrategy[str]] = {
    "limit": st.sampled_from(["0", "1", "500", "-5", str(2**63)]),
    "timeoutSeconds": st.sampled_from(["0", "1", "-1", str(2**63)]),
    "resourceVersion": st.sampled_from(["0", "1", "", "18446744073709551616", "-3"]),
    "resourceVersionMatch": st.sampled_from(["NotOlderThan", "Exact", "exact"]),
    "labelSelector": st.sampled_from(["app=web", "app in (web,db)", "!app", "app!=", "a,,b", "x=" + "y" * 70]),
    "fieldSelector": st.sampled_from(["metadata.name=seed", "metadata.namespace!=x", "status.phase=Running", "a=b=c"]),
    "gracePeriodSeconds": st.sampled_from(["0", "30", "-1", str(2**63)]),
    "propagationPolicy": st.sampled_from(["Background", "Foreground", "Orphan", "Sometimes"]),
    "dryRun": st.sampled_from(["All", "all", "None"]),
    "fieldValidation": st.sampled_from(["Strict", "Warn", "Ignore", "Loose"]),
    "allowWatchBookmarks": st.sampled_from(["true", "false", "1"]),
    "sendInitialEvents": st.sampled_from(["true", "false"]),
    "orphanDependents": st.sampled_from(["true", "false"]),
    "continue": st.sampled_from(["", "abc", "eyJ2IjoxfQ"]),
}


@st.composite
def query_string(draw: st.DrawFn, names: list[str], fixed: dict[str, str]) -> str:
    """Query parameters the operation declares, most with a value of their type, some with anything."""
    chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True)) if names else []
    pairs = list(fixed.items())
    for name in chosen:
        strategy = QUERY_VALUES.get(name, st.sampled_from(["true", "x"]))
        pairs.append((name, draw(strategy | WRONG_QUERY_VALUES)))
    if not pairs:
        return ""
    return "?" + "&".join(f"{urllib.parse.quote(k)}={urllib.parse.quote(v, safe='')}" for k, v in pairs)


@dataclass
class Target:
    prefix: str  # e.g. /clusters/root
    namespace: str


class Generator:
    """Builds the request strategy from the operations of the served OpenAPI documents."""

    def __init__(self, api: Api, target: Target) -> None:
        self.api = api
        self.target = target
        self.values = Values(api)
        self.ops = [op for op in api.operations if op.gvk]

    def fill(self, op: Operation, name: str) -> str:
        path = op.path.replace("{namespace}", self.target.namespace).replace("{name}", name)
        return self.target.prefix + path

    def requests(self) -> st.SearchStrategy[Request]:
        return st.one_of(
            self.writes(), self.patches(), self.deletes(), self.reads(), self.odd_content()
        )  # fmt: skip

    def pick(self, method: str, subresources: tuple[str | None, ...] = (None,)) -> st.SearchStrategy[Operation]:
        ops = [op for op in self.ops if op.method == method and op.subresource in subresources]
        return st.sampled_from(ops)

    @st.composite
    def _body(draw: st.DrawFn, self: Generator, op: Operation, categories: set[str]) -> Any:
        schema = op.body or {}
        base = draw(self.values.object(op, schema)) if op.body else {}
        if op.subresource == "scale":
            base = {**base, "apiVersion": "autoscaling/v1", "kind": "Scale"}
        if draw(st.integers(0, 2)) == 0:
            categories.add("create" if op.method == "POST" else "update")
            return base
        value, _ = draw(mutated(base))
        categories.add("create-near-valid" if op.method == "POST" else "update")
        if has_deep(value):
            categories.add("deep-nesting")
        return value

    @st.composite
    def _write(draw: st.DrawFn, self: Generator) -> Request:
        categories: set[str] = set()
        op = draw(st.one_of(self.pick("POST"), self.pick("PUT", (None, "status", "scale"))))
        if op.subresource in ("status", "scale"):
            categories.add(op.subresource)
        name = draw(st.sampled_from(NAMES))
        body = draw(self._body(op, categories))
        if isinstance(body, dict) and op.method == "PUT" and isinstance(body.get("metadata"), dict):
            body["metadata"] = {**body["metadata"], "name": name}
        query = draw(query_string(list(op.query), {}))
        return self.finish(draw, op.method, self.fill(op, name) + query, body, categories, "application/json")

    def writes(self) -> st.SearchStrategy[Request]:
        return self._write()

    @st.composite
    def _patch(draw: st.DrawFn, self: Generator) -> Request:
        op = draw(self.pick("PATCH", (None, "status", "scale")))
        categories: set[str] = {op.subresource} if op.subresource else set()
        kind = draw(st.sampled_from([*PATCH_TYPES, "patch-other-type"]))
        categories.add(kind)
        content_type = PATCH_TYPES.get(kind) or draw(
            st.sampled_from(["application/apply-patch+yaml", "application/json"])
        )
        full = draw(self.values.object(op, self._kind_schema(op)))
        body = draw(json_patch(full)) if kind == "patch-json" else draw(merge_patch(full))
        if has_deep(body):
            categories.add("deep-nesting")
        query = draw(query_string(list(op.query), {}))
        return self.finish(
            draw, "PATCH", self.fill(op, draw(st.sampled_from(NAMES))) + query, body, categories, content_type
        )

    def _kind_schema(self, op: Operation) -> Schema:
        put = next((o for o in self.ops if o.method == "PUT" and o.path == op.path), None)
        return put.body if put is not None and put.body else {}

    def patches(self) -> st.SearchStrategy[Request]:
        return self._patch()

    @st.composite
    def _delete(draw: st.DrawFn, self: Generator) -> Request:
        op = draw(self.pick("DELETE"))
        collection = op.path.endswith("}") is False and not op.path.endswith("{name}")
        categories = {"delete-collection" if collection else "delete"}
        fixed = {"labelSelector": VICTIM_SELECTOR} if collection else {}
        names = [n for n in op.query if not (collection and n == "labelSelector")]
        path = self.fill(op, draw(st.sampled_from(DELETABLE))) + draw(query_string(names, fixed))
        options_schema = op.body or {}
        body: Any = None
        if draw(st.booleans()):
            options = draw(self.values.of(options_schema, 2))
            options = {"apiVersion": "v1", "kind": "DeleteOptions", **options} if isinstance(options, dict) else options
            if draw(st.booleans()):
                options, _ = draw(mutated(options))
            body = options
        return self.finish(draw, "DELETE", path, body, categories, "application/json")

    def deletes(self) -> st.SearchStrategy[Request]:
        return self._delete()

    @st.composite
    def _read(draw: st.DrawFn, self: Generator) -> Request:
        op = draw(self.pick("GET", (None, "status", "scale")))
        single = "{name}" in op.path
        watch = not single and draw(st.booleans())
        categories = {"get" if single else "watch" if watch else "list"}
        if op.subresource:
            categories.add(op.subresource)
        fixed = {"watch": "true", "timeoutSeconds": "1"} if watch else {}
        names = [n for n in op.query if n not in fixed]
        path = self.fill(op, draw(st.sampled_from(NAMES))) + draw(query_string(names, fixed))
        headers = {"Accept": draw(st.sampled_from(ACCEPTS))}
        # Any `watch` parameter may start a stream, whatever the category says.
        return Request("GET", path, headers, None, frozenset(categories), streaming="watch=" in path)

    def reads(self) -> st.SearchStrategy[Request]:
        return self._read()

    @st.composite
    def _odd(draw: st.DrawFn, self: Generator) -> Request:
        """Well-formed objects under content types the endpoint does not take."""
        op = draw(self.pick("POST"))
        body = draw(self.values.object(op, op.body or {}))
        content_type = draw(st.sampled_from(ODD_CONTENT_TYPES))
        categories = {"unknown-content-type", "create"}
        return self.finish(draw, "POST", self.fill(op, SEED), body, categories, content_type, force_type=True)

    def odd_content(self) -> st.SearchStrategy[Request]:
        return self._odd()

    def finish(
        self,
        draw: st.DrawFn,
        method: str,
        path: str,
        body: Any,
        categories: set[str],
        content_type: str,
        force_type: bool = False,
    ) -> Request:
        """Encodes the body as JSON or YAML and maybe compresses it."""
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        plain: bytes | None = None
        if body is not None:
            as_yaml = not force_type and content_type in ("application/json", "application/apply-patch+yaml")
            as_yaml = as_yaml and draw(st.integers(0, 3)) == 0
            if as_yaml:
                categories.add("yaml-body")
                if content_type == "application/json":
                    content_type = "application/yaml"
            data = encode(body, as_yaml or content_type == "application/apply-patch+yaml")
            headers["Content-Type"] = content_type
            if draw(st.integers(0, 7)) == 0:
                plain = data
                data, headers["Content-Encoding"] = compress(data, draw(ENCODINGS))
                categories.add("content-encoding")
        return Request(method, path, headers, data, frozenset(categories), plain=plain)


POINTERS = st.sampled_from(["", "/", "/metadata/~2", "no-slash", "/spec/-", "/metadata/labels/-", "/a/b/c", "/~1"])


@st.composite
def json_patch(draw: st.DrawFn, full: dict[str, Any]) -> Any:
    """A JSON patch: operations on paths of a real object, with broken ops, paths and values mixed in."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.one_of(st.sampled_from([{}, {"op": "add"}, "x", 5, None, [1, "a"], [[]]]), DEEP))
    pointers = [
        "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) for path in paths_in(full)[1:]
    ]
    pointer = st.sampled_from(pointers) | POINTERS if pointers else POINTERS
    value = st.one_of(
        ANY_JSON, st.sampled_from(WRONG_TYPES), ODD_NUMBERS, DEEP, st.builds(Raw, st.sampled_from(RAW_JSON_TOKENS))
    )
    op_name = st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]) | st.sampled_from(
        ["junk", 5, None, ""]
    )
    operation = st.fixed_dictionaries(
        {"op": op_name, "path": pointer | st.sampled_from([5, None, [], {}])},
        optional={"value": value, "from": pointer},
    )
    return draw(st.lists(operation, min_size=1, max_size=3))


STRATEGIC_DIRECTIVES: tuple[Any, ...] = (
    {"$patch": "delete"}, {"$patch": "replace"}, {"$patch": 5}, {"$patch": []}, {"$retainKeys": 1},
    {"$retainKeys": ["a", 2]}, {"$setElementOrder/containers": "x"}, {"$setElementOrder/containers": [1, {}]},
    {"$deleteFromPrimitiveList/finalizers": {"a": 1}}, {"containers": [{"$patch": "delete"}]},
    {"containers": [1, "x", None]}, {"containers": {"name": "a"}}, {"template": {"spec": {"containers": [{}]}}},
)  # fmt: skip


@st.composite
def merge_patch(draw: st.DrawFn, full: dict[str, Any]) -> Any:
    """A merge or strategic patch: part of an object, broken in one place, or a body of the wrong shape."""
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(
            st.one_of(st.sampled_from([[], [{}], "x", 5, None, True, {"metadata": "x"}, {"metadata": []}]), DEEP)
        )
    keys = [k for k in full if k not in ("apiVersion", "kind")]
    part = {k: full[k] for k in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))} if keys else {}
    if shape == 1:
        spot = draw(st.sampled_from([(), ("spec",), ("spec", "template", "spec"), ("metadata",)]))
        return replaced_deep(part, spot, draw(st.sampled_from(STRATEGIC_DIRECTIVES)))
    if shape <= 3:
        value, _ = draw(mutated(part))
        return value
    return part


def replaced_deep(value: dict[str, Any], path: tuple[str, ...], directive: Any) -> dict[str, Any]:
    """Merges `directive` into `value` at `path`, creating the dictionaries on the way."""
    if not path:
        return {**value, **directive}
    inner = value.get(path[0])
    return {**value, path[0]: replaced_deep(inner if isinstance(inner, dict) else {}, path[1:], directive)}


def fetch_api(get: Callable[[str], Any], group_versions: list[str]) -> Api:
    """Reads the listed group-versions from `GET /openapi/v3` and their documents."""
    index = get("/openapi/v3")["paths"]
    api = Api()
    for gv in group_versions:
        api.add_document(get(index[gv]["serverRelativeURL"]))
    return api


def has_deep(value: Any) -> bool:
    """Whether a body holds a deeply nested value (see DEEP)."""
    return any(isinstance(v, Raw) and v.text.startswith(("[[", '{"a":')) for v in leaves(value))


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]
