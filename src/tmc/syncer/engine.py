"""The sync loop: spec down, status up, deletion, for every object assigned to one SyncTarget.

Work items are `<resource>|<workspace>|<namespace>|<name>` keys (upstream coordinates) on a de-duplicating queue
drained by `--concurrency` workers; upstream events (through the syncer virtual workspace), downstream events and
the periodic resync all enqueue keys, and one reconcile brings both directions in line:

1. Upstream gone. Only the hub can say so: a DELETED watch event (deletion, or un-assignment by removing the Sync
   label), or a 404 from a GET through the virtual workspace when the object merely went missing from a relist or
   is found downstream without an upstream copy. An unreachable hub never deletes anything
   (https://github.com/kcp-dev/kcp/issues/2671). Then the downstream copy is deleted with a UID precondition
   (https://github.com/kcp-dev/kcp/issues/643).
2. Deletion pending (a deletionTimestamp in the view): delete downstream (UID precondition), and once it is gone
   drop the syncer finalizer through the view; the virtual workspace then lets go of the object (protocol/view.py).
3. Otherwise: add the syncer finalizer upstream (before anything exists downstream), make sure the downstream
   namespace exists, sync the ConfigMaps and Secrets the pod template references first, then create the downstream
   object or JSON-merge-patch it (see transform.merge_patch) when what the syncer would write changed.
4. Copy the downstream `.status` up through the view's status subresource when it differs from the last report.

Sync control (control.py) wraps 1-3: a paused object, Namespace or SyncTarget gets no downstream write at all (only
its status goes up), and a force request re-reads the downstream copy and writes the whole desired object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from tmc.api.workload import DOWNSTREAM_CLUSTER_LABEL, syncable, syncer_finalizer
from tmc.client import JSON_PATCH, ApiError, Conflict, Invalid, KubeClient, NotFound, Unreachable, error_type
from tmc.observability import otel_metrics, tracing
from tmc.runtime.workqueue import WorkQueue
from tmc.syncer import metrics
from tmc.syncer.control import FAILED_AFTER, SEP, ControlSteps, SyncControl
from tmc.syncer.informer import Informer
from tmc.syncer.namespaces import Namespaces, TargetIdentity
from tmc.syncer.resources import NAMESPACES, SyncedResource
from tmc.syncer.transform import (
    downstream_name,
    downstream_object,
    merge_patch,
    referenced_config,
    upstream_name,
    upstream_status,
)

log = logging.getLogger("tmc.syncer")
T = TypeVar("T")
NAMESPACE_CLEAN_DELAY = 5.0  # seconds a downstream namespace outlives its upstream one (kcp: 30 s)


@dataclass
class Applied:
    desired: dict[str, Any]
    uid: str


_NO_SPAN = contextlib.nullcontext()


def make_key(resource: str, cluster: str, namespace: str, name: str) -> str:
    return SEP.join((resource, cluster, namespace, name))


class Engine(ControlSteps):
    def __init__(
        self,
        target: TargetIdentity,
        vw: KubeClient,
        hub: KubeClient,
        down: KubeClient,
        resources: list[SyncedResource],
        *,
        namespaces_filter: frozenset[str] = frozenset(),
    ) -> None:
        # The OTel sync instruments (when exported) are read from these series: nothing extra per write.
        otel_metrics.use_sources(metrics.OPERATIONS, metrics.OPERATION_SECONDS)
        self.target = target
        self.vw = vw  # the syncer virtual workspace, rooted at .../services/syncer/<ws>/<name>/<uid>
        self.hub = hub  # the hub itself, only to release finalizers of objects that left the view abruptly
        self.down = down
        self.resources = {r.id: r for r in resources}
        self.namespaces_filter = namespaces_filter
        self.namespaces = Namespaces(down, target)
        self.queue = WorkQueue(f"syncer-{target.name}")
        self.finalizer = syncer_finalizer(target.key)
        self.applied: dict[str, Applied] = {}
        # key -> when it started failing (monotonic); cleared by its next success.
        self._failing: dict[str, float] = {}
        # Keys whose upstream object the hub reported DELETED: no confirmation GET needed before deleting downstream.
        self._gone: set[str] = set()
        # Views last seen for keys that left the view (to know whether the syncer finalizer must still be released).
        self._last_view: dict[str, dict[str, Any]] = {}
        self._ns_label = metrics.NamespaceLabels()
        # Each object read a reconcile uses: a hit when the cache's answer is used as is, a miss when it takes a GET.
        self.reads = metrics.CacheReads(target.name)
        self.up: dict[str, Informer] = {}
        self.downstream: dict[str, Informer] = {}
        self.ready = asyncio.Event()
        self.control = SyncControl(target, hub)
        self._publishing: dict[str, asyncio.Task[None]] = {}

    # ---------------------------------------------------------------- informers and events

    def informers(self, on_connection: Any) -> list[Informer]:
        selector = f"{DOWNSTREAM_CLUSTER_LABEL}={self.target.key}"
        self.up = {
            r.id: Informer(
                self.vw,
                f"/clusters/*{r.collection()}",
                self._upstream_handler(r),
                name=f"hub/{r.id}",
                key_of=_upstream_key,
                on_connection=on_connection,
                cluster=self.target.name,
            )
            for r in [NAMESPACES, *self.resources.values()]
        }
        self.downstream = {
            r.id: Informer(
                self.down,
                r.collection(),
                self._downstream_handler(r),
                name=f"downstream/{r.id}",
                label_selector=selector,
                on_connection=on_connection,
                cluster=self.target.name,
            )
            for r in [NAMESPACES, *self.resources.values()]
        }
        return [*self.up.values(), *self.downstream.values()]

    def _upstream_handler(self, resource: SyncedResource) -> Any:
        def handle(event: str, obj: dict[str, Any], cache_key: str) -> None:
            cluster, namespace, name = cache_key.split(SEP)
            if resource is NAMESPACES:
                namespace, name = name, ""
            if self.namespaces_filter and namespace not in self.namespaces_filter:
                return
            key = make_key(resource.id, cluster, namespace, name)
            if event == "DELETED":
                self._gone.add(key)
                self._last_view[key] = obj
            elif event != "VANISHED":
                self._gone.discard(key)
            if resource is NAMESPACES:
                gone = event in ("DELETED", "VANISHED")
                if self.control.observe_namespace(cluster, namespace, None if gone else obj):
                    self._requeue_namespace(cluster, namespace)  # its pause changed: every object in it
            if resource is NAMESPACES and event in ("DELETED", "VANISHED"):
                self.queue.add_after(key, NAMESPACE_CLEAN_DELAY)
            else:
                self.queue.add(key)

        return handle

    def _downstream_handler(self, resource: SyncedResource) -> Any:
        def handle(event: str, obj: dict[str, Any], cache_key: str) -> None:
            md = obj.get("metadata") or {}
            if resource is NAMESPACES:
                upstream = self.namespaces.upstream_of(str(md.get("name")))
                self.namespaces.observe(event, obj)
                if upstream is None:
                    upstream = self.namespaces.upstream_of(str(md.get("name")))
                if upstream is not None:
                    self.queue.add_after(make_key(NAMESPACES.id, upstream[0], upstream[1], ""), NAMESPACE_CLEAN_DELAY)
                return
            upstream = self.namespaces.upstream_of(str(md.get("namespace")))
            if upstream is None:
                return  # not a namespace of this SyncTarget (or not seen yet; the resync catches up)
            name = upstream_name(resource.resource, str(md.get("name")))
            self.queue.add(make_key(resource.id, upstream[0], upstream[1], name))

        return handle

    def _requeue_namespace(self, cluster: str, namespace: str) -> None:
        for rid, informer in self.up.items():
            if rid == NAMESPACES.id:
                continue
            for cache_key in list(informer.cache):
                c, ns, name = cache_key.split(SEP)
                if c == cluster and ns == namespace:
                    self.queue.add(make_key(rid, c, ns, name))

    def observe_target(self, sync_target: dict[str, Any]) -> None:
        """The SyncTarget as the hub last answered (start-up, each heartbeat): a change of its pause requeues all."""
        if self.control.observe_target(sync_target) and self.up:
            self.resync()

    def resync(self) -> None:
        """Queue every known key again (periodic drift repair)."""
        for rid, informer in self.up.items():
            for cache_key in list(informer.cache):
                cluster, namespace, name = cache_key.split(SEP)
                if rid == NAMESPACES.id:
                    namespace, name = name, ""
                self.queue.add(make_key(rid, cluster, namespace, name))
        for rid, informer in self.downstream.items():
            if rid == NAMESPACES.id:
                continue
            for obj in list(informer.cache.values()):
                self._downstream_handler(self.resources[rid])("MODIFIED", obj, "")

    # ---------------------------------------------------------------- workers

    async def work(self) -> None:
        await self.ready.wait()
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
                self.queue.forget(key)
                self._failing.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                since = self._failing.setdefault(key, time.monotonic())
                rid = key.split(SEP, 1)[0]
                metrics.SYNC_ERRORS.labels(self.target.name, rid, error_type(e)).inc()
                metrics.ERRORS.labels(self.target.name, error_type(e)).inc()
                level = logging.WARNING if isinstance(e, ApiError | Unreachable) else logging.ERROR
                log.log(level, "sync failed", extra={"key": key, "error": str(e)}, exc_info=level == logging.ERROR)
                if time.monotonic() - since >= FAILED_AFTER:
                    self._report_error(key, e)
                self.queue.retry(key)
            finally:
                self.queue.done(key)

    def counts(self) -> tuple[int, int, int]:
        """(synced, pending, failed) objects, for the SyncTarget's status.syncerStatus."""
        return len(self.applied), len(self.queue), len(self.failed)

    @property
    def failed(self) -> set[str]:
        """Keys that have kept failing for FAILED_AFTER seconds. A write that fails once and succeeds on its retry
        (a conflict, a namespace still terminating) is not a failure of the syncer: counting those made a healthy
        target with few objects look as if a tenth of them failed."""
        cutoff = time.monotonic() - FAILED_AFTER
        return {key for key, since in self._failing.items() if since <= cutoff}

    async def reconcile(self, key: str) -> None:
        rid, cluster, namespace, name = key.split(SEP)
        if self.namespaces_filter and namespace not in self.namespaces_filter:
            return
        if rid == NAMESPACES.id:
            await self._reconcile_namespace(key, cluster, namespace)
            return
        if not (self.up[rid].synced.is_set() and self.downstream[rid].synced.is_set()):
            # Until both sides of this type have been listed, neither cache can be trusted to decide anything.
            self.queue.add_after(key, 1.0)
            return
        resource = self.resources[rid]
        up = self.up[rid].cache.get(SEP.join((cluster, namespace, name)))
        down_ns = self.namespaces.lookup(cluster, namespace)
        down = self.downstream[rid].cache.get(f"{down_ns}/{downstream_name(resource.resource, name)}")
        if up is None:
            await self._upstream_gone(key, resource, cluster, namespace, name, down_ns, down)
            return
        self.reads.hit()
        md = up.get("metadata") or {}
        deleting = bool(md.get("deletionTimestamp"))
        if not syncable(resource.resource, up) and not (deleting and self.finalizer in (md.get("finalizers") or ())):
            return  # never copied; but a finalizer of ours, however it got there, is always let go
        annotations = md.get("annotations") or {}
        if self.control.paused(cluster, namespace, up):
            up = await self._hold(resource, cluster, namespace, name, up)
            if resource.has_status and down is not None and not deleting:
                await self._status_up(resource, cluster, namespace, name, up, down)  # status keeps flowing up
            return
        attention = self.control.needs_attention(annotations)
        force = self.control.force_token(annotations) if attention else None
        if deleting:
            if await self._delete_downstream(
                resource, namespace, down_ns, downstream_name(resource.resource, name), down
            ):
                await self._release(resource, cluster, namespace, name)
                self.applied.pop(key, None)
            return
        self.reads.hit()  # the downstream copy, or its absence: then it is created
        up = await self._spec_down(key, resource, cluster, namespace, up, down, force is not None)
        if attention:
            up = await self._report(resource, cluster, namespace, name, up, force)
        if not resource.has_status:
            return
        down = self.downstream[rid].cache.get(f"{down_ns}/{downstream_name(resource.resource, name)}")
        self.reads.hit()
        if down is not None:
            await self._status_up(resource, cluster, namespace, name, up, down)

    # ---------------------------------------------------------------- spec down

    async def _spec_down(
        self,
        key: str,
        resource: SyncedResource,
        cluster: str,
        namespace: str,
        up: dict[str, Any],
        down: dict[str, Any] | None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Create or update the downstream copy when what the syncer would write changed; `force`: re-read it from
        the member cluster and write the whole desired object whatever the syncer believes (drift repair)."""
        name = str(up["metadata"]["name"])
        if self.finalizer not in (up["metadata"].get("finalizers") or ()):
            # Before anything exists downstream, so an upstream deletion always waits for the downstream copy to go.
            up = await self.vw.patch(
                self._vw_item(resource, cluster, namespace, name), {"metadata": {"finalizers": [self.finalizer]}}
            )
            self.up[resource.id].remember(up)
        down_ns = await self.namespaces.ensure(cluster, namespace)
        await self._dependencies(resource, cluster, namespace, up)
        desired = downstream_object(up, resource.resource, self.target.key, down_ns)
        previous = self.applied.get(key)
        if force:
            self.reads.miss()
            try:
                down = await self.down.get(resource.item(down_ns, str(desired["metadata"]["name"])))
            except NotFound:
                down = None
            previous = None  # a merge patch of the whole desired object restores every field it sets
        down_uid = str((down or {}).get("metadata", {}).get("uid") or "")
        if previous is not None and previous.desired == desired and down is not None and down_uid == previous.uid:
            return up
        with self._span("workload-sync", resource, up) if tracing.enabled else _NO_SPAN:
            written = await self._write_down(resource, namespace, down_ns, desired, previous, down)
        self.downstream[resource.id].remember(written)
        self.applied[key] = Applied(desired, str(written["metadata"].get("uid") or ""))
        return up

    async def _write_down(
        self,
        resource: SyncedResource,
        namespace: str,
        down_ns: str,
        desired: dict[str, Any],
        previous: Applied | None,
        down: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Create or merge-patch the downstream copy, whichever its state asks for."""
        started = time.perf_counter()
        result = "error"
        path = resource.item(down_ns, str(desired["metadata"]["name"]))
        patch = merge_patch(previous.desired if previous else None, desired)
        collection = resource.collection(down_ns)
        try:
            if down is None:
                try:
                    written = await self._write(resource, "create", self.down.create(collection, desired))
                except Conflict:
                    written = await self._write(resource, "update", self.down.patch(path, patch))
            else:
                try:
                    written = await self._write(resource, "update", self.down.patch(path, patch))
                except NotFound:
                    written = await self._write(resource, "create", self.down.create(collection, desired))
            result = "success"
        finally:
            self._observe("down", resource, namespace, result, started)
        return written

    def _span(self, name: str, resource: SyncedResource, up: dict[str, Any]) -> contextlib.AbstractContextManager[Any]:
        """A span in the trace of the hub write that changed `up` (its trace annotation), when it has one: a leaf
        span (tracing.leaf_span), as nothing inside it but its one request names it. This runs once per write."""
        md = up.get("metadata") or {}
        attributes = {
            "workload.type": resource.id,
            "workload.name": str(md.get("name", "")),
            "workload.namespace": str(md.get("namespace", "")),
            "cluster.name": self.target.name,
        }
        return tracing.leaf_span(name, tracing.object_traceparent(up), tracing.SpanKind.CLIENT, attributes)

    async def _dependencies(self, resource: SyncedResource, cluster: str, namespace: str, up: dict[str, Any]) -> None:
        """Sync the ConfigMaps and Secrets a workload's pods need before the workload, when they are assigned too."""
        configmaps, secrets = referenced_config(up)
        for rid, names in (("configmaps", configmaps), ("secrets", secrets)):
            if rid not in self.resources or rid == resource.id:
                continue
            for dep in names:
                dep_key = make_key(rid, cluster, namespace, dep)
                if dep_key not in self.applied and SEP.join((cluster, namespace, dep)) in self.up[rid].cache:
                    await self.reconcile(dep_key)

    # ---------------------------------------------------------------- status up

    async def _status_up(
        self,
        resource: SyncedResource,
        cluster: str,
        namespace: str,
        name: str,
        up: dict[str, Any],
        down: dict[str, Any],
    ) -> None:
        status = upstream_status(down)
        if status is None or status == up.get("status"):
            return
        started = time.perf_counter()
        result = "error"
        try:
            path = self._vw_item(resource, cluster, namespace, name) + "/status"
            ops = [{"op": "add", "path": "/status", "value": status}]
            with self._span("status-report", resource, up) if tracing.enabled else _NO_SPAN:
                written = await self._write(resource, "status", self.vw.patch(path, ops, JSON_PATCH))
            result = "success"
        finally:
            self._observe("up", resource, namespace, result, started)
        self.up[resource.id].remember(written)

    # ---------------------------------------------------------------- deletion

    async def _upstream_gone(
        self,
        key: str,
        resource: SyncedResource,
        cluster: str,
        namespace: str,
        name: str,
        down_ns: str,
        down: dict[str, Any] | None,
    ) -> None:
        if key in self._gone:
            self.reads.hit()  # the hub said DELETED: the cache's "absent" is the answer
        else:
            # Missing from the cache is not proof: ask the hub. A 200 means it is still assigned (the cache lags).
            self.reads.miss()
            try:
                view = await self.vw.get(self._vw_item(resource, cluster, namespace, name))
            except NotFound:
                pass
            else:
                self.up[resource.id].remember(view)
                self.queue.add(key)
                return
        held = self._delete_held(key, cluster, namespace)
        if held:
            if held == "object":
                await self._refresh_last_view(key, resource, cluster, namespace, name)
            return
        dname = downstream_name(resource.resource, name)
        if await self._delete_downstream(resource, namespace, down_ns, dname, down):
            self.applied.pop(key, None)
            last = self._last_view.pop(key, None)
            if last is not None and self.finalizer in ((last.get("metadata") or {}).get("finalizers") or ()):
                await self._release_on_hub(resource, cluster, namespace, name)
            self._gone.discard(key)

    async def _delete_downstream(
        self, resource: SyncedResource, namespace: str, down_ns: str, name: str, down: dict[str, Any] | None
    ) -> bool:
        """Delete this target's downstream copy, UID-guarded; True once it is gone."""
        path = resource.item(down_ns, name)
        for _ in range(3):
            if down is None:
                self.reads.miss()
                try:
                    down = await self.down.get(path)
                except NotFound:
                    return True
            else:
                self.reads.hit()
            labels = (down.get("metadata") or {}).get("labels") or {}
            if labels.get(DOWNSTREAM_CLUSTER_LABEL) != self.target.key:
                return True  # not this syncer's object: never touch it
            uid = str(down["metadata"].get("uid") or "")
            started = time.perf_counter()
            try:
                options = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
                answer = await self._write(resource, "delete", self.down.delete(path, options))
            except ApiError as e:
                self._observe("down", resource, namespace, "error", started)
                if isinstance(e, NotFound):
                    return True
                if isinstance(e, Conflict):
                    down = None  # replaced by another object since we looked: look again
                    continue
                raise
            self._observe("down", resource, namespace, "success", started)
            # A Status means it is gone; the object itself means downstream finalizers hold it (its DELETED event
            # requeues the key).
            return isinstance(answer, dict) and answer.get("kind") == "Status"
        return False

    async def _release(self, resource: SyncedResource, cluster: str, namespace: str, name: str) -> None:
        """Drop the syncer finalizer through the view: the downstream copy is gone."""
        try:
            view = await self.vw.patch(
                self._vw_item(resource, cluster, namespace, name), {"metadata": {"finalizers": []}}
            )
        except NotFound:
            return
        self.up[resource.id].remember(view)

    async def _release_on_hub(self, resource: SyncedResource, cluster: str, namespace: str, name: str) -> None:
        """The object left the view while still holding this syncer's finalizer (its Sync label was removed without
        the deletion protocol): remove the finalizer on the hub directly, guarded by a JSON patch `test`, so an
        upstream deletion is not blocked forever."""
        path = f"/clusters/{cluster}{resource.item(namespace, name)}"
        for _ in range(3):
            self.reads.miss()  # no cache holds objects outside the view
            try:
                obj = await self.hub.get(path)
            except NotFound:
                return
            finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
            if self.finalizer not in finalizers:
                return
            index = finalizers.index(self.finalizer)
            ops = [
                {"op": "test", "path": f"/metadata/finalizers/{index}", "value": self.finalizer},
                {"op": "remove", "path": f"/metadata/finalizers/{index}"},
            ]
            try:
                await self.hub.patch(path, ops, JSON_PATCH)
                return
            except NotFound:
                return
            except (Conflict, Invalid):
                continue  # changed since we read it (the `test` failed): read again

    # ---------------------------------------------------------------- namespaces

    async def _reconcile_namespace(self, key: str, cluster: str, namespace: str) -> None:
        if self.control.scope_paused(cluster, namespace):
            return  # neither created nor deleted downstream; the pause's end requeues this key
        up = self.up[NAMESPACES.id].cache.get(SEP.join((cluster, "", namespace)))
        if up is not None and not (up.get("metadata") or {}).get("deletionTimestamp"):
            self.reads.hit()
            await self.namespaces.ensure(cluster, namespace)
            return
        down_ns = self.namespaces.lookup(cluster, namespace)
        if not self.namespaces.exists(down_ns):
            self.reads.hit()  # nothing to clean up, whatever the hub says
            return
        if up is not None or key in self._gone:
            self.reads.hit()
        else:
            self.reads.miss()
            try:
                await self.vw.get(f"/clusters/{cluster}/api/v1/namespaces/{namespace}")
                return  # still assigned
            except NotFound:
                pass
        if any(
            obj["metadata"].get("namespace") == down_ns for i in self.downstream.values() for obj in i.cache.values()
        ):
            self.queue.add_after(key, NAMESPACE_CLEAN_DELAY)  # objects still leaving through their own protocol
            return
        uid = self.namespaces.uid_of(down_ns)
        try:
            await self.down.delete(f"/api/v1/namespaces/{down_ns}", {"preconditions": {"uid": uid}})
        except (NotFound, Conflict):
            pass  # already gone, or replaced since
        self._gone.discard(key)

    # ---------------------------------------------------------------- helpers

    async def _write(self, resource: SyncedResource, operation: str, call: Awaitable[T]) -> T:
        """One write (create, update, delete downstream; status to the hub), counted and timed as syncer_operations."""
        started = time.perf_counter()
        result = "error"
        try:
            value = await call
            result = "success"
            return value
        finally:
            seconds = time.perf_counter() - started
            labels = (self.target.name, resource.id, operation)
            metrics.OPERATIONS.labels(*labels, result).inc()
            metrics.OPERATION_SECONDS.labels(*labels).observe(seconds)

    def observe_state(self) -> None:
        """Set the gauges of what this engine holds, by resource (and namespace): called when /metrics is scraped."""
        name = self.target.name
        synced: Counter[tuple[str, str]] = Counter()
        for key in self.applied:
            rid, _cluster, namespace, _name = key.split(SEP)
            synced[(rid, self._ns_label(namespace))] += 1
        metrics.SYNCED_RESOURCES.clear()
        for (rid, namespace), count in synced.items():
            metrics.SYNCED_RESOURCES.labels(name, rid, namespace).set(count)
        states = {"synced": self.applied.keys(), "pending": self.queue.keys(), "failed": self.failed}
        for rid in self.resources:
            for state in states:
                metrics.RESOURCES.labels(name, rid, state).set(0)
        for state, keys in states.items():
            for rid, count in Counter(key.split(SEP, 1)[0] for key in keys).items():
                metrics.RESOURCES.labels(name, rid, state).set(count)

    def _observe(self, direction: str, resource: SyncedResource, namespace: str, result: str, started: float) -> None:
        metrics.SYNC_DURATION.labels(
            direction, resource.id, self.target.name, self._ns_label(namespace), result
        ).observe(time.perf_counter() - started)


def _upstream_key(obj: dict[str, Any]) -> str:
    md = obj.get("metadata") or {}
    cluster = str((md.get("annotations") or {}).get("kcp.io/cluster") or "")
    return SEP.join((cluster, str(md.get("namespace") or ""), str(md.get("name"))))
