"""The syncer virtual workspace: `/services/syncer/<st-workspace>/<st-name>/<st-uid>/clusters/<ws|*>/api|apis/...`.

A forwarding view over the hub's storage for one SyncTarget (kcp's layout; see tmc/protocol/keys.py). Every
list, watch and get carries a fixed extra label requirement `state.workload.kcp.io/<key>=Sync`, ANDed with the
client's selector, so a syncer sees exactly the objects assigned to it; because the watch uses `lists.serve_watch`,
an object whose Sync label is removed reaches the syncer as DELETED (how un-assignment arrives), watches resume from
a resourceVersion and send bookmarks like any other watch. Objects pass through `syncer_view.to_view` on the way out
and writes through `syncer_view.apply_write` on the way in. Verbs: get, list, watch, update, patch, plus the status
subresource; create and delete are 405, as in kcp.

Who may call: privileged callers (system:masters) only. The hub has no RBAC yet; kcp's rule (a SubjectAccessReview
for verb `sync` on `synctargets/<name>` in the SyncTarget's workspace) belongs in `_authorize` once it has.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tmc.api.workload import STATE_SYNC, SYNC_TARGETS, state_label
from tmc.apimachinery import errors
from tmc.apimachinery.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch
from tmc.apimachinery.resources import ResourceInfo, cluster_of_key
from tmc.apimachinery.selectors import LabelSelector, Requirement
from tmc.apiserver.authn import CALLER, Caller
from tmc.apiserver.discovery_responder import DiscoveryResponder
from tmc.apiserver.httputil import (
    JSON,
    json_response,
    parse_json_body,
    path_not_found,
    read_body,
    read_raw,
    status_response,
)
from tmc.apiserver.lists import ListQuery, list_entries, parse_list_query, serve_watch
from tmc.apiserver.request import WILDCARD, RequestInfo, RequestInfoFactory
from tmc.apiserver.resolve import Resolver
from tmc.apiserver.virtual.syncer_writes import HubObject, ViewWrite, WriteCombiner
from tmc.observability import metrics
from tmc.protocol.keys import SYNCER_VW_PREFIX, sync_target_key
from tmc.protocol.view import is_assigned, to_view
from tmc.registry.resources import ResourceRegistry
from tmc.registry.reviews import is_review
from tmc.registry.service import JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, ObjectService
from tmc.storage.interface import Entry, Event, Store

PREFIX = SYNCER_VW_PREFIX
COMPONENT = "syncer-virtual-workspace"
# Never synced down: pods are created by the member cluster's own controllers and events are per-cluster records.
_NOT_SYNCABLE = frozenset({("", "pods"), ("", "events"), ("events.k8s.io", "events"), ("", "endpoints")})
_VIEW_VERBS = ("get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class Target:
    workspace: str
    name: str
    uid: str
    key: str


class SyncerVirtualWorkspace:
    """Serves the syncer virtual workspace; `handle` takes any request whose path starts with `PREFIX`."""

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
        self._writes = WriteCombiner(store, service)
        self.request_infos = RequestInfoFactory(default_cluster)
        self.resolver = Resolver(store, registry, default_cluster, served=_syncable, subresources=("status",))
        # Legacy discovery only, no OpenAPI: clients fall back to legacy discovery when aggregated is not offered.
        self.discovery = DiscoveryResponder(
            registry, default_cluster, served=self._served, aggregated=False, serve_openapi=False
        )

    # ---------------------------------------------------------------- entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            target, rest = self._target(request)
            if not rest.startswith("/clusters/"):
                raise path_not_found(request.path)
            ri = self.request_infos.attach(request, api_path=rest)
            if not ri.is_resource_request:
                return self.discovery.respond(request, ri)
            return await self._resource(request, ri, target)
        except errors.StatusError as e:
            return status_response(e)

    def _target(self, request: web.Request) -> tuple[Target, str]:
        """The SyncTarget named by the path (it must exist with that UID) and the `/clusters/...` remainder."""
        parts = request.path[len(PREFIX) :].split("/", 3)
        if len(parts) < 4 or not all(parts[:3]):
            raise path_not_found(request.path)
        workspace, name, uid, rest = parts[0], parts[1], parts[2], "/" + parts[3]
        self._authorize(request[CALLER], workspace, name)
        entry = self.store.get(SYNC_TARGETS.key(workspace, None, name))
        if entry is None:
            raise errors.not_found(SYNC_TARGETS.plural, name, SYNC_TARGETS.group)
        actual = str(entry.obj["metadata"].get("uid", ""))
        if actual != uid:
            raise errors.forbidden(
                f'synctargets.{SYNC_TARGETS.group} "{name}" in workspace "{workspace}" has UID {actual}, '
                f"not {uid}: the syncer is configured for a SyncTarget that no longer exists"
            )
        return Target(workspace, name, uid, sync_target_key(workspace, name)), rest

    def _authorize(self, caller: Caller, workspace: str, name: str) -> None:
        if not caller.privileged:
            raise errors.forbidden(
                f'User "{caller.user}" cannot sync synctargets.{SYNC_TARGETS.group} "{name}" in workspace "{workspace}"'
            )

    # ---------------------------------------------------------------- discovery

    def _served(self, cluster: str) -> list[ResourceInfo]:
        return [
            dataclasses.replace(
                info, verbs=_VIEW_VERBS, subresources=tuple(s for s in info.subresources if s == "status")
            )
            for info in self.registry.resources(cluster)
            if _syncable(info)
        ]

    # ---------------------------------------------------------------- resources

    async def _resource(self, request: web.Request, p: RequestInfo, target: Target) -> web.StreamResponse:
        info = self.resolver.resolve(p)
        method = request.method
        verb = p.verb
        started = time.perf_counter()
        code = 500
        # Refused methods keep the metrics label they always had here: the HTTP method (POST, DELETE), not the verb.
        label = verb if verb in _VIEW_VERBS else method.lower()
        labels = (label, info.group, info.version, info.plural, p.subresource, p.scope)
        try:
            if verb not in _VIEW_VERBS:
                raise errors.method_not_allowed(
                    f"{method} is not supported by the syncer virtual workspace: it serves get, list, watch, update "
                    "and patch"
                )
            if p.wildcard and verb not in ("list", "watch"):
                raise errors.method_not_allowed("the wildcard workspace only serves list and watch")
            if p.unsupported:  # here only PUT or PATCH without a name
                raise errors.method_not_allowed(p.unsupported)
            if info.namespaced and p.namespace is None and p.name:
                raise errors.method_not_allowed(f"{info.plural} must be addressed within a namespace")
            if verb == "watch":
                response = await self._watch(request, info, p, target)
            elif verb == "list":
                response = await self._list(request, info, p, target)
            elif verb == "get":
                response = json_response(self._view(info, self._get(info, p, target), target, p.workspace))
            else:
                response = await self._write(request, info, p, target, verb)
            code = response.status
            return response
        except errors.StatusError as e:
            code = e.code
            raise
        finally:
            metrics.observe_request(
                labels, code, time.perf_counter() - started, long_running=verb == "watch", component=COMPONENT
            )

    def _query(self, request: web.Request, info: ResourceInfo, target: Target, watch: bool) -> ListQuery:
        q = parse_list_query(request.query, info, watch=watch)
        assigned = Requirement(state_label(target.key), "=", (STATE_SYNC,))
        labels = LabelSelector((*q.labels.requirements, assigned), q.labels.matches_nothing)
        return dataclasses.replace(q, labels=labels)

    def _view(self, info: ResourceInfo, entry: Entry | Event, target: Target, cluster: str = WILDCARD) -> Any:
        owner = cluster_of_key(entry.key) if cluster == WILDCARD else cluster
        return to_view(self.service.served(info, entry.obj), target.key, owner)

    async def _list(
        self, request: web.Request, info: ResourceInfo, p: RequestInfo, target: Target
    ) -> web.StreamResponse:
        q = self._query(request, info, target, watch=False)
        cluster = None if p.wildcard else p.workspace
        result = await list_entries(self.store, info.key_prefix(cluster, p.namespace), q)
        list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta})
        items = b",".join(orjson.dumps(self._view(info, e, target)) for e in result.entries)
        return web.Response(body=head[:-1] + b',"items":[' + items + b"]}", content_type=JSON)

    async def _watch(
        self, request: web.Request, info: ResourceInfo, p: RequestInfo, target: Target
    ) -> web.StreamResponse:
        q = self._query(request, info, target, watch=True)
        cluster = None if p.wildcard else p.workspace

        # Digest of the view last sent per object, its resourceVersion left out. Every target's syncer writes the
        # same hub objects (finalizers, status reports) and the hub aggregates status into them, but a target's
        # view hides all of that: a change that leaves the view as it was is not sent, so each object costs a
        # syncer a few events instead of a few per target (with N targets, O(N) events per object, not O(N^2)).
        # A client that keeps the object it last saw only misses newer resourceVersions of the same content.
        sent: dict[str, bytes] = {}

        def encode(event_type: str, item: Entry | Event) -> bytes:
            body = orjson.dumps(self._view(info, item, target))
            if event_type == "DELETED":
                sent.pop(item.key, None)
            else:
                digest = _content_digest(body, item.rev)
                if event_type == "MODIFIED" and sent.get(item.key) == digest:
                    return b""
                sent[item.key] = digest
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

    def _get(self, info: ResourceInfo, p: RequestInfo, target: Target) -> Entry:
        assert p.name is not None
        entry = self.store.get(info.key(p.workspace, p.namespace, p.name))
        if entry is None or not is_assigned(entry.obj, target.key):
            raise errors.not_found(info.plural, p.name, info.group)
        return entry

    async def _write(
        self, request: web.Request, info: ResourceInfo, p: RequestInfo, target: Target, verb: str
    ) -> web.StreamResponse:
        """Update or patch through the view: the body (or the patch applied to the current view) is translated by
        `apply_write` and written to the hub object with the revision it was computed from, together with the
        other targets' writes of the same object queued meanwhile (syncer_writes); losing a race re-reads and
        recomputes unless the client pinned a resourceVersion, which then answers 409."""
        assert p.name is not None
        make_view: Callable[[dict[str, Any]], dict[str, Any]]
        if verb == "update":
            body = await read_body(request)
            if not isinstance(body, dict):
                raise errors.bad_request(f"the body of the request must be a {info.kind} object")
            name = (body.get("metadata") or {}).get("name")
            if name not in (None, "", p.name):
                raise errors.bad_request("the name of the object does not match the name on the URL")
            pinned = str((body.get("metadata") or {}).get("resourceVersion") or "")

            def make_view(_view: dict[str, Any]) -> dict[str, Any]:
                return body

        else:
            make_view, pinned = _patcher(info, request.content_type, await read_raw(request))
        manager = request.query.get("fieldManager") or request.headers.get("User-Agent", "").split("/", 1)[0]
        write = ViewWrite(target.key, make_view, p.subresource, pinned, manager=manager[:128] or "syncer")
        return json_response(await self._writes.write(HubObject(info, p.workspace, p.namespace, p.name), write))


def _content_digest(body: bytes, rev: int) -> bytes:
    """A digest of an encoded object without its own resourceVersion (the only field every write changes)."""
    return hashlib.blake2b(body.replace(b'"resourceVersion":"%d"' % rev, b"", 1), digest_size=16).digest()


def _patcher(
    info: ResourceInfo, content_type: str, raw: bytes
) -> tuple[Callable[[dict[str, Any]], dict[str, Any]], str]:
    """A function applying the patch body to a view, and the resourceVersion the patch pins ("" for none)."""
    if content_type not in (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
        raise errors.unsupported_media_type(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}"
        )
    if content_type == STRATEGIC_PATCH and info.crd:
        raise errors.unsupported_media_type(f"strategic merge patch is not supported for {info.qualified}")
    patch = parse_json_body(raw, "error decoding patch") if raw.strip() else {}
    pinned = ""
    if isinstance(patch, dict):
        pinned = str((patch.get("metadata") or {}).get("resourceVersion") or "")
    elif content_type != JSON_PATCH:
        raise errors.bad_request("error decoding patch: the patch must be a JSON object")

    def make_view(view: dict[str, Any]) -> dict[str, Any]:
        if content_type == JSON_PATCH:
            return apply_json_patch(view, patch)
        if content_type == MERGE_PATCH:
            return apply_merge_patch(view, patch)
        return apply_strategic_merge_patch(view, patch, info.schema)

    return make_view, pinned


def _syncable(info: ResourceInfo) -> bool:
    """Namespaces and every stored namespaced kind except those that never sync down."""
    if not info.group and info.plural == "namespaces":
        return True
    return info.namespaced and (info.group, info.plural) not in _NOT_SYNCABLE and not is_review(info)
