"""The Kubernetes REST surface over HTTP: routing, content negotiation, and the handlers for each verb."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from tmc.api.tenancy import WORKSPACES
from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.apimachinery.tables import to_table, watch_event_table
from tmc.apimachinery.validation import validate_field_validation_param
from tmc.apiserver.authn import CALLER, Caller
from tmc.apiserver.discovery_responder import DiscoveryResponder
from tmc.apiserver.httputil import (
    JSON,
    json_response,
    parse_json_body,
    raw_response,
    read_body,
    read_raw,
    status_response,
)
from tmc.apiserver.lists import list_entries, parse_list_query, query_bool, query_int, serve_watch
from tmc.apiserver.request import RequestInfo, RequestInfoFactory
from tmc.apiserver.resolve import Resolver
from tmc.observability import metrics, tracing
from tmc.registry import reviews
from tmc.registry.deleteoptions import check_delete_options
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import APPLY_PATCH, ObjectService, WriteOptions
from tmc.storage.interface import Entry, Event, Store

CLUSTER_ANNOTATION = "kcp.io/cluster"


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


def _write_options(
    query: Mapping[str, str], options_kind: str, user_agent: str = "", apply: bool = False
) -> WriteOptions:
    validation = validate_field_validation_param(query.get("fieldValidation", ""), options_kind)
    manager = query.get("fieldManager", "")
    if len(manager) > 128:
        cause = {"type": "FieldValueTooLong", "field": "fieldManager", "message": "Too long: may not be more than 128"}
        raise errors.invalid(options_kind, "", [cause], "meta.k8s.io")
    if not manager and not apply:
        # kube-apiserver names an unnamed writer after its User-Agent's product ("kubectl/v1.32 ..." -> kubectl);
        # an apply must name its manager.
        manager = user_agent.split("/", 1)[0][:128]
    opts = WriteOptions(dry_run=_dry_run(query, options_kind), field_validation=validation, field_manager=manager)
    force = query.get("force")
    if force is not None:
        if force not in ("true", "false", "True", "False", "1", "0"):
            raise errors.bad_request(f'invalid value for force: "{force}"')
        opts.force = force in ("true", "True", "1")
    return opts


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
        self.request_infos = RequestInfoFactory(default_cluster)
        self.resolver = Resolver(store, registry, default_cluster)
        self.discovery = DiscoveryResponder(registry, default_cluster)
        # Virtual workspaces by path prefix (e.g. "/services/syncer/"): they route and authorize on their own.
        self.virtual: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}

    # ---------------------------------------------------------------- entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route to a virtual workspace, or compute the RequestInfo and serve discovery or a resource."""
        for prefix, virtual in self.virtual.items():
            if request.path.startswith(prefix):
                return await virtual(request)
        try:
            ri = self.request_infos.attach(request)
            _check_acceptable(request.headers.get("Accept", ""))
            if ri.wildcard:
                caller: Caller = request[CALLER]
                if not caller.privileged:
                    raise errors.forbidden(f'User "{caller.user}" cannot access the wildcard workspace "*"')
            elif not self.workspace_exists(ri.workspace):
                raise errors.not_found("workspaces", ri.workspace, WORKSPACES.group)
            if not ri.is_resource_request:
                return self.discovery.respond(request, ri)
            if tracing.enabled and ri.verb != "watch":
                return await self._traced(request, ri)
            return await self._resource(request, ri)
        except errors.StatusError as e:
            return status_response(e)

    def workspace_exists(self, cluster: str) -> bool:
        if cluster == "root":
            return True
        parent, _, name = cluster.rpartition(":")
        if not parent:
            return False
        return self.store.get(WORKSPACES.key(parent, None, name)) is not None

    # ---------------------------------------------------------------- resources

    async def _traced(self, request: web.Request, p: RequestInfo) -> web.StreamResponse:
        """The request's server span. A privileged caller's `traceparent` is its parent; anyone else's is only a
        link (as the Kubernetes API server does), so an unprivileged client cannot force sampling or join traces."""
        remote = tracing.parse_traceparent(request.headers.get(tracing.TRACEPARENT_HEADER))
        trusted = remote is not None and request[CALLER].privileged
        if not (trusted or tracing.root_spans):
            return await self._resource(request, p)  # a process that only continues traces: nothing to continue
        name = f"{p.verb} {p.resource}" + (f"/{p.subresource}" if p.subresource else "")
        attributes = {"k8s.verb": p.verb, "k8s.resource": p.resource, "tmc.workspace": p.workspace}
        if p.namespace:
            attributes["k8s.namespace"] = p.namespace
        if p.name:
            attributes["k8s.name"] = p.name
        if p.subresource:
            attributes["k8s.subresource"] = p.subresource
        with tracing.span(
            name,
            parent=remote if trusted else None,
            links=(remote,) if remote is not None and not trusted else (),
            kind=tracing.SpanKind.SERVER,
            attributes=attributes,
            # Objects record the trace only of a write whose client asked for tracing with a sampled context.
            carry=trusted and remote is not None and remote.trace_flags.sampled,
            # A member cluster (which only continues traces) makes no spans inside a request and sends nothing on:
            # its request span need not be the active one.
            current=tracing.root_spans,
        ) as span:
            try:
                response = await self._resource(request, p)
            except errors.StatusError as e:
                span.set_attribute("http.response.status_code", e.code)
                raise
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def _resource(self, request: web.Request, p: RequestInfo) -> web.StreamResponse:
        info = self.resolver.resolve(p)
        if p.unsupported:
            raise errors.method_not_allowed(p.unsupported)
        verb = p.verb
        started = time.perf_counter()
        code = 500
        labels = (verb, info.group, info.version, info.plural, p.subresource, p.scope)
        try:
            if p.wildcard and verb not in ("list", "watch"):
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
        self, request: web.Request, info: ResourceInfo, p: RequestInfo, verb: str
    ) -> web.StreamResponse:
        svc = self.service
        cluster, ns, name, sub = p.workspace, p.namespace, p.name, p.subresource
        query = request.query
        if info.namespaced and ns is None and verb not in ("list", "watch"):
            raise errors.method_not_allowed(f"{info.plural} must be addressed within a namespace")
        if verb == "get":
            assert name is not None
            entry = svc.get(info, cluster, ns, name)
            if sub == "scale":
                return json_response(svc.scale_of(info, entry))
            return self._render_object(request, info, entry.obj, entry.raw)
        if verb == "list":
            return self._render_list(request, info, p, await self._list(info, p, query))
        if verb == "create" and reviews.is_review(info):
            caller: Caller = request[CALLER]
            return json_response(reviews.answer(info, await read_body(request), caller.user, caller.groups), 201)
        if verb not in info.verbs:
            raise errors.method_not_allowed(f"{request.method} is not supported on {info.qualified}")
        if verb == "create":
            opts = _write_options(query, "CreateOptions", request.headers.get("User-Agent", ""))
            opts.user = request[CALLER].user
            opts.body_owned = True  # decoded for this request only
            body = await read_body(request)
            obj = await svc.create(info, cluster, ns, body, opts)
            return json_response(svc.served(info, obj), 201, opts.warnings)
        if verb == "update":
            assert name is not None
            opts = _write_options(query, "UpdateOptions", request.headers.get("User-Agent", ""))
            opts.user = request[CALLER].user
            opts.body_owned = True
            body = await read_body(request)
            obj = await svc.update(info, cluster, ns, name, body, opts, sub)
            return json_response(svc.served(info, obj) if sub != "scale" else obj, 200, opts.warnings)
        if verb == "patch":
            assert name is not None
            ctype = request.content_type
            opts = _write_options(query, "PatchOptions", request.headers.get("User-Agent", ""), ctype == APPLY_PATCH)
            opts.user = request[CALLER].user
            raw = await read_raw(request)
            obj = await svc.patch(info, cluster, ns, name, ctype, raw, opts, sub)
            return json_response(svc.served(info, obj) if sub != "scale" else obj, 200, opts.warnings)
        if verb == "delete":
            assert name is not None
            options = await _delete_options(request)
            dry_run = _dry_run(query, "DeleteOptions") or _body_dry_run(options)
            body, _gone = await svc.delete(info, cluster, ns, name, options, dry_run)
            return json_response(body, 200)
        if verb == "deletecollection":
            return await self._delete_collection(request, info, p)
        raise errors.method_not_allowed(f"{request.method} is not supported on {request.path}")

    async def _list(self, info: ResourceInfo, p: RequestInfo, query: Mapping[str, str]) -> Any:
        q = parse_list_query(query, info, watch=False)
        cluster = None if p.wildcard else p.workspace
        return await list_entries(self.store, info.key_prefix(cluster, p.namespace), q)

    async def _delete_collection(self, request: web.Request, info: ResourceInfo, p: RequestInfo) -> web.StreamResponse:
        options = await _delete_options(request)
        dry_run = _dry_run(request.query, "DeleteOptions") or _body_dry_run(options)
        result = await self._list(info, p, request.query)
        deleted: list[dict[str, Any]] = []
        for entry in result.entries:
            md = entry.obj["metadata"]
            try:
                body, _ = await self.service.delete(
                    info, p.workspace, md.get("namespace"), md["name"], options, dry_run
                )
            except errors.StatusError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(body if body.get("kind") != "Status" else entry.obj)
        return json_response(
            {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": {}, "items": deleted}, 200
        )

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
            return json_response(table)
        return raw_response(self._item(info, "", obj, raw, False), JSON)

    def _render_list(self, request: web.Request, info: ResourceInfo, p: RequestInfo, result: Any) -> web.StreamResponse:
        wildcard = p.wildcard
        list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
        if result.remaining is not None:
            list_meta["remainingItemCount"] = result.remaining
        if _wants_table(request.headers.get("Accept", "")):
            objs = [self._item_obj(info, e.key, e.obj, wildcard) for e in result.entries]
            include = request.query.get("includeObject", "Metadata")
            return json_response(to_table(info, objs, include_object=include, list_meta=list_meta))
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta})
        items = b",".join(self._item(info, e.key, e.obj, e.raw, wildcard) for e in result.entries)
        return raw_response(head[:-1] + b',"items":[' + items + b"]}", JSON)

    # ---------------------------------------------------------------- watch

    async def _watch(self, request: web.Request, info: ResourceInfo, p: RequestInfo) -> web.StreamResponse:
        query = request.query
        q = parse_list_query(query, info, watch=True)
        if p.name:
            raise errors.bad_request("watch a single object with fieldSelector=metadata.name=<name> on its collection")
        wildcard = p.wildcard
        cluster = None if wildcard else p.workspace
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


async def _delete_options(request: web.Request) -> dict[str, Any]:
    options: dict[str, Any] = {}
    raw = await read_raw(request) if request.can_read_body else b""
    if raw.strip():
        body = parse_json_body(raw, "invalid DeleteOptions")
        if not isinstance(body, dict):
            raise errors.bad_request("invalid DeleteOptions: the body must be an object")
        options.update(body)
    query = request.query
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "orphanDependents" in query:
        options["orphanDependents"] = query_bool(query, "orphanDependents")
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = query_int(query, "gracePeriodSeconds")
    check_delete_options(options)
    return options


def _body_dry_run(options: Mapping[str, Any]) -> bool:
    return _check_dry_run(list(options.get("dryRun") or []), "DeleteOptions")
