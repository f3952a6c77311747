"""The Kubernetes REST surface over HTTP: routing, content negotiation, and the handlers for each verb."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import yaml
from aiohttp import web

from tmc.api.tenancy import WORKSPACES
from tmc.apimachinery import errors
from tmc.apimachinery.protobuf import ProtobufCodec
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.apimachinery.tables import to_table, watch_event_table
from tmc.apimachinery.validation import validate_field_validation_param
from tmc.apiserver import discovery, openapi, paths
from tmc.apiserver.authn import CALLER, Caller
from tmc.apiserver.lists import list_entries, parse_list_query, serve_watch
from tmc.observability import metrics
from tmc.registry import reviews
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, ObjectService, WriteOptions
from tmc.storage.interface import Entry, Event, Store

MAX_BODY_BYTES = 3 * 1024 * 1024  # upstream's request body limit; objects themselves are capped at 1.5 MiB
CLUSTER_ANNOTATION = "kcp.io/cluster"
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def status_response(err: errors.StatusError) -> web.Response:
    return web.Response(status=err.code, body=orjson.dumps(err.to_status()), content_type=JSON)


def _wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _check_acceptable(accept: str) -> None:
    if not accept:
        return
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("application/json", "*/*", "application/*", "application/yaml", ""):
            return
    raise errors.not_acceptable(f"only the following media types are accepted: application/json; got {accept}")


def _dry_run(query: Mapping[str, str], options_kind: str = "CreateOptions") -> bool:
    values = [v for v in query.getall("dryRun", [])] if hasattr(query, "getall") else [query.get("dryRun", "")]
    return _check_dry_run([v for v in values if v], options_kind)


def _check_dry_run(values: list[str], options_kind: str) -> bool:
    """`All` or nothing; anything else is 422 Invalid on the options object, as upstream."""
    if not values:
        return False
    if values != ["All"]:
        cause = {
            "type": "FieldValueNotSupported",
            "field": "dryRun",
            "message": f'Unsupported value: {values}: supported values: "All"',
        }
        raise errors.invalid(options_kind, "", [cause], "meta.k8s.io")
    return True


def _write_options(query: Mapping[str, str], options_kind: str) -> WriteOptions:
    validation = validate_field_validation_param(query.get("fieldValidation", ""), options_kind)
    manager = query.get("fieldManager", "")
    if len(manager) > 128:
        cause = {"type": "FieldValueTooLong", "field": "fieldManager", "message": "Too long: may not be more than 128"}
        raise errors.invalid(options_kind, "", [cause], "meta.k8s.io")
    return WriteOptions(dry_run=_dry_run(query, options_kind), field_validation=validation, field_manager=manager)


class ApiHandler:
    def __init__(
        self,
        store: Store,
        registry: ResourceRegistry,
        service: ObjectService,
        stopping: asyncio.Event,
        *,
        default_cluster: str = "root",
        bookmark_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.service = service
        self.stopping = stopping
        self.default_cluster = default_cluster
        self.bookmark_interval = bookmark_interval
        self._discovery_cache: dict[tuple[str, int, str], tuple[bytes, str]] = {}
        # Virtual workspaces by path prefix (e.g. "/services/syncer/"): they route and authorize on their own.
        self.virtual: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}

    # ---------------------------------------------------------------- entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        for prefix, virtual in self.virtual.items():
            if request.path.startswith(prefix):
                return await virtual(request)
        caller: Caller = request[CALLER]
        parsed = paths.parse(request.path, self.default_cluster)
        if parsed is None:
            return status_response(_path_not_found(request.path))
        if not paths.valid_workspace_path(parsed.cluster):
            return status_response(errors.bad_request(f"invalid workspace path {parsed.cluster!r}"))
        try:
            _check_acceptable(request.headers.get("Accept", ""))
            if parsed.cluster == paths.WILDCARD:
                if not caller.privileged:
                    raise errors.forbidden(f'User "{caller.user}" cannot access the wildcard workspace "*"')
            elif not self.workspace_exists(parsed.cluster):
                raise errors.not_found("workspaces", parsed.cluster, WORKSPACES.group)
            if isinstance(parsed, paths.DiscoveryPath):
                return self._discovery(request, parsed)
            return await self._resource(request, parsed)
        except errors.StatusError as e:
            return status_response(e)

    def workspace_exists(self, cluster: str) -> bool:
        if cluster == "root":
            return True
        parent, _, name = cluster.rpartition(":")
        if not parent:
            return False
        return self.store.get(WORKSPACES.key(parent, None, name)) is not None

    # ---------------------------------------------------------------- discovery and OpenAPI

    def _cached(self, cluster: str, what: str, build: Any) -> tuple[bytes, str]:
        key = (cluster, self.registry.generation(cluster), what)
        hit = self._discovery_cache.get(key)
        if hit is None:
            if len(self._discovery_cache) > 4096:
                self._discovery_cache.clear()
            hit = build()
            self._discovery_cache[key] = hit
        return hit

    def _discovery(self, request: web.Request, p: paths.DiscoveryPath) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed(f"the server does not allow this method on {request.path}")
        cluster = self.default_cluster if p.cluster == paths.WILDCARD else p.cluster
        resources = self.registry.resources(cluster)
        accept = request.headers.get("Accept", "")
        aggregated = "as=APIGroupDiscoveryList" in accept and "v=v2" in accept
        if p.kind == "version":
            return web.Response(body=orjson.dumps(discovery.version_info()), content_type=JSON)
        if p.kind == "api":
            if aggregated:
                body, _ = self._cached(
                    cluster, "agg-api", lambda: (orjson.dumps(discovery.aggregated_core(resources)), "")
                )
                return _raw(body, discovery.AGGREGATED_CONTENT_TYPE)
            return web.Response(body=orjson.dumps(discovery.legacy_api_versions()), content_type=JSON)
        if p.kind == "apis":
            if aggregated:
                body, _ = self._cached(
                    cluster, "agg-apis", lambda: (orjson.dumps(discovery.aggregated_groups(resources)), "")
                )
                return _raw(body, discovery.AGGREGATED_CONTENT_TYPE)
            body, _ = self._cached(cluster, "apis", lambda: (orjson.dumps(discovery.api_group_list(resources)), ""))
            return _raw(body, JSON)
        if p.kind == "group":
            doc = discovery.api_group(resources, p.group)
            if doc is None:
                raise _path_not_found(request.path)
            return web.Response(body=orjson.dumps(doc), content_type=JSON)
        if p.kind in ("api-version", "group-version"):
            doc = discovery.api_resource_list(resources, p.group, p.version)
            if doc is None:
                raise _path_not_found(request.path)
            return web.Response(body=orjson.dumps(doc), content_type=JSON)
        if p.kind == "openapi":
            body, _ = self._cached(cluster, "openapi", lambda: (orjson.dumps(openapi.index(resources)), ""))
            return _raw(body, JSON)
        if p.kind == "openapi-gv":

            def build() -> tuple[bytes, str]:
                return (openapi.group_version_bytes(resources, p.openapi_path) or b"", "")

            body, _ = self._cached(cluster, "openapi:" + p.openapi_path, build)
            if not body:
                raise _path_not_found(request.path)
            return _raw(body, JSON)
        raise _path_not_found(request.path)

    # ---------------------------------------------------------------- resources

    def _resolve(self, p: paths.ResourcePath) -> ResourceInfo:
        if p.cluster == paths.WILDCARD:
            info = self.registry.lookup(self.default_cluster, p.group, p.version, p.resource)
            if info is None:
                info = self._wildcard_custom(p)
        else:
            info = self.registry.lookup(p.cluster, p.group, p.version, p.resource)
        if info is None:
            gv = f"{p.group}/{p.version}" if p.group else p.version
            raise errors.StatusError(
                404, "NotFound", f"the server could not find the requested resource ({p.resource} in {gv})"
            )
        if p.namespace is not None and not info.namespaced:
            raise _path_not_found(f"{info.plural} is not namespaced")
        if p.subresource and p.subresource not in info.subresources:
            raise errors.not_found(f"{info.plural}/{p.subresource}", p.name or "", info.group)
        return info

    def _wildcard_custom(self, p: paths.ResourcePath) -> ResourceInfo | None:
        for entry in self.store.list("/registry/apiextensions.k8s.io/customresourcedefinitions/"):
            cluster = cluster_of_key(entry.key)
            info = self.registry.lookup(cluster, p.group, p.version, p.resource)
            if info is not None:
                return info
        return None

    async def _resource(self, request: web.Request, p: paths.ResourcePath) -> web.StreamResponse:
        info = self._resolve(p)
        method = request.method
        query = request.query
        watch = query.get("watch", "") in ("1", "true", "True")
        verb = _verb(method, p, watch)
        started = time.perf_counter()
        code = 500
        scope = "resource" if p.name else ("namespace" if p.namespace else "cluster")
        labels = (verb, info.group, info.version, info.plural, p.subresource, scope)
        try:
            if p.cluster == paths.WILDCARD and verb not in ("list", "watch"):
                raise errors.method_not_allowed("the wildcard workspace only serves list and watch")
            if verb == "watch":
                response = await self._watch(request, info, p)
            else:
                response = await self._dispatch(request, info, p, verb)
            code = response.status
            return response
        except errors.StatusError as e:
            code = e.code
            raise
        finally:
            metrics.observe_request(labels, code, time.perf_counter() - started, long_running=verb == "watch")

    async def _dispatch(
        self, request: web.Request, info: ResourceInfo, p: paths.ResourcePath, verb: str
    ) -> web.StreamResponse:
        svc = self.service
        cluster, ns, name, sub = p.cluster, p.namespace, p.name, p.subresource
        query = request.query
        if info.namespaced and ns is None and verb not in ("list", "watch"):
            raise errors.method_not_allowed(f"{info.plural} must be addressed within a namespace")
        if verb == "get":
            assert name is not None
            entry = svc.get(info, cluster, ns, name)
            if sub == "scale":
                return _json(svc.scale_of(info, entry))
            return self._render_object(request, info, entry.obj, entry.raw)
        if verb == "list":
            return self._render_list(request, info, p, await self._list(info, p, query))
        if verb == "create" and reviews.is_review(info):
            caller: Caller = request[CALLER]
            return _json(reviews.answer(info, await _read_body(request), caller.user, caller.groups), 201)
        if verb not in info.verbs:
            raise errors.method_not_allowed(f"{request.method} is not supported on {info.qualified}")
        if verb == "create":
            opts = _write_options(query, "CreateOptions")
            opts.body_owned = True  # decoded for this request only
            body = await _read_body(request)
            obj = await svc.create(info, cluster, ns, body, opts)
            return _json(svc.served(info, obj), 201, opts.warnings)
        if verb == "update":
            assert name is not None
            opts = _write_options(query, "UpdateOptions")
            opts.body_owned = True
            body = await _read_body(request)
            obj = await svc.update(info, cluster, ns, name, body, opts, sub)
            return _json(svc.served(info, obj) if sub != "scale" else obj, 200, opts.warnings)
        if verb == "patch":
            assert name is not None
            opts = _write_options(query, "PatchOptions")
            raw = await _read_raw(request)
            ctype = request.content_type
            obj = await svc.patch(info, cluster, ns, name, ctype, raw, opts, sub)
            return _json(svc.served(info, obj) if sub != "scale" else obj, 200, opts.warnings)
        if verb == "delete":
            assert name is not None
            options = await _delete_options(request)
            dry_run = _dry_run(query, "DeleteOptions") or _body_dry_run(options)
            body, _gone = await svc.delete(info, cluster, ns, name, options, dry_run)
            return _json(body, 200)
        if verb == "deletecollection":
            return await self._delete_collection(request, info, p)
        raise errors.method_not_allowed(f"{request.method} is not supported on {request.path}")

    async def _list(self, info: ResourceInfo, p: paths.ResourcePath, query: Mapping[str, str]) -> Any:
        q = parse_list_query(query, info, watch=False)
        cluster = None if p.cluster == paths.WILDCARD else p.cluster
        return await list_entries(self.store, info.key_prefix(cluster, p.namespace), q)

    async def _delete_collection(
        self, request: web.Request, info: ResourceInfo, p: paths.ResourcePath
    ) -> web.StreamResponse:
        options = await _delete_options(request)
        dry_run = _dry_run(request.query, "DeleteOptions") or _body_dry_run(options)
        result = await self._list(info, p, request.query)
        deleted: list[dict[str, Any]] = []
        for entry in result.entries:
            md = entry.obj["metadata"]
            try:
                body, _ = await self.service.delete(info, p.cluster, md.get("namespace"), md["name"], options, dry_run)
            except errors.StatusError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(body if body.get("kind") != "Status" else entry.obj)
        return _json({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": {}, "items": deleted}, 200)

    # ---------------------------------------------------------------- rendering

    def _item(self, info: ResourceInfo, key: str, obj: dict[str, Any], raw: bytes, wildcard: bool) -> bytes:
        if not wildcard and obj.get("apiVersion") == info.api_version and raw:
            return raw
        return orjson.dumps(self._item_obj(info, key, obj, wildcard))

    def _item_obj(self, info: ResourceInfo, key: str, obj: dict[str, Any], wildcard: bool) -> dict[str, Any]:
        out = self.service.served(info, obj)
        if wildcard:
            out = dict(out)
            md = dict(out.get("metadata") or {})
            md["annotations"] = {**(md.get("annotations") or {}), CLUSTER_ANNOTATION: cluster_of_key(key)}
            out["metadata"] = md
        return out

    def _render_object(
        self, request: web.Request, info: ResourceInfo, obj: dict[str, Any], raw: bytes
    ) -> web.StreamResponse:
        if _wants_table(request.headers.get("Accept", "")):
            table = to_table(
                info,
                [obj],
                include_object=request.query.get("includeObject", "Metadata"),
                list_meta={"resourceVersion": str(obj["metadata"].get("resourceVersion", ""))},
            )
            return _json(table)
        return _raw(self._item(info, "", obj, raw, False), JSON)

    def _render_list(
        self, request: web.Request, info: ResourceInfo, p: paths.ResourcePath, result: Any
    ) -> web.StreamResponse:
        wildcard = p.cluster == paths.WILDCARD
        list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
        if result.remaining is not None:
            list_meta["remainingItemCount"] = result.remaining
        if _wants_table(request.headers.get("Accept", "")):
            objs = [self._item_obj(info, e.key, e.obj, wildcard) for e in result.entries]
            include = request.query.get("includeObject", "Metadata")
            return _json(to_table(info, objs, include_object=include, list_meta=list_meta))
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta})
        items = b",".join(self._item(info, e.key, e.obj, e.raw, wildcard) for e in result.entries)
        return _raw(head[:-1] + b',"items":[' + items + b"]}", JSON)

    # ---------------------------------------------------------------- watch

    async def _watch(self, request: web.Request, info: ResourceInfo, p: paths.ResourcePath) -> web.StreamResponse:
        query = request.query
        q = parse_list_query(query, info, watch=True)
        if p.name:
            raise errors.bad_request("watch a single object with fieldSelector=metadata.name=<name> on its collection")
        wildcard = p.cluster == paths.WILDCARD
        cluster = None if wildcard else p.cluster
        table = _wants_table(request.headers.get("Accept", ""))

        def encode(event_type: str, item: Entry | Event) -> bytes:
            if table:
                obj = watch_event_table(info, self._item_obj(info, item.key, item.obj, wildcard))
                return orjson.dumps({"type": event_type, "object": obj}) + b"\n"
            body = self._item(info, item.key, item.obj, item.raw, wildcard)
            return b'{"type":"' + event_type.encode() + b'","object":' + body + b"}\n"

        prefix = info.key_prefix(cluster, p.namespace)
        return await serve_watch(
            request,
            self.store,
            info,
            prefix,
            q,
            encode,
            bookmark_interval=self.bookmark_interval,
            stopping=self.stopping,
        )


# -------------------------------------------------------------------- helpers


def _path_not_found(path: str) -> errors.StatusError:
    return errors.StatusError(404, "NotFound", f"the server could not find the requested resource ({path})")


def _verb(method: str, p: paths.ResourcePath, watch: bool) -> str:
    if method == "GET":
        if p.name:
            return "get"
        return "watch" if watch else "list"
    if method == "POST":
        if p.name:
            raise errors.method_not_allowed(f"POST is not supported on a named {p.resource}")
        return "create"
    if method == "PUT":
        if not p.name:
            raise errors.method_not_allowed("PUT needs an object name")
        return "update"
    if method == "PATCH":
        if not p.name:
            raise errors.method_not_allowed("PATCH needs an object name")
        return "patch"
    if method == "DELETE":
        return "delete" if p.name else "deletecollection"
    raise errors.method_not_allowed(f"the server does not allow the method {method}")


def _json(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w.replace(chr(34), chr(39))}"' for w in warnings)
    return web.Response(status=status, body=orjson.dumps(obj), content_type=JSON, headers=headers)


def _raw(body: bytes, content_type: str) -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _read_raw(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.too_large(f"the request body is {request.content_length} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.too_large(f"the request body is larger than {MAX_BODY_BYTES} bytes") from None


async def _read_body(request: web.Request) -> Any:
    raw = await _read_raw(request)
    ctype = request.content_type
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
    if ctype == PROTOBUF:
        codec = ProtobufCodec.shared()
        if not codec.available:
            raise errors.unsupported_media_type(
                "protobuf request bodies need the Kubernetes type descriptors, read from a kubectl binary on the "
                "server's PATH (or TMC_KUBECTL_BINARY); none was found. Send application/json instead"
            )
        return codec.decode(raw)
    if ctype in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
        raise errors.unsupported_media_type(f"{ctype} is only accepted by PATCH")
    if ctype not in ("application/json", "application/octet-stream", ""):
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml; got {ctype}"
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from None


async def _delete_options(request: web.Request) -> dict[str, Any]:
    options: dict[str, Any] = {}
    raw = await _read_raw(request) if request.can_read_body else b""
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"invalid DeleteOptions: {e}") from None
        if not isinstance(body, dict):
            raise errors.bad_request("invalid DeleteOptions: the body must be an object")
        options.update(body)
    query = request.query
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if query.get("orphanDependents") in ("true", "false"):
        options["orphanDependents"] = query["orphanDependents"] == "true"
    return options


def _body_dry_run(options: Mapping[str, Any]) -> bool:
    return _check_dry_run(list(options.get("dryRun") or []), "DeleteOptions")
