"""Sync control for one SyncTarget's syncer: pause and force requests read from the hub, and what the syncer
reports back on each workload (docs/syncer.md, "Pausing and forcing a sync").

Requests are annotations the syncer already receives: on the workload and its Namespace through its virtual
workspace watches, on its own SyncTarget in every heartbeat's answer. So control costs no extra API call, and a
happy-path reconcile only looks up a few annotation names. Reports are written through the virtual workspace (this
target's own `sync.tmc.kcp.io/{state,forced,last-sync,error}.<key>` annotations) and as Events on the hub, only
when something changes: entering or leaving a pause, acknowledging a force, a persistent error set or cleared.

A malformed request (a pause value that is neither "true" nor a list of names) is ignored with a warning, once per
distinct value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from tmc.api.workload import (
    REASON_SYNC_PAUSED,
    REASON_SYNC_RESUMED,
    SYNC_PAUSED_ANNOTATION,
    SYNC_STATE_PAUSED,
    parse_paused,
    sync_error_annotation,
    sync_force_annotation,
    sync_forced_annotation,
    sync_last_sync_annotation,
    sync_state_annotation,
)
from tmc.client import ApiError, KubeClient, NotFound, Unreachable, error_type
from tmc.runtime.workqueue import WorkQueue
from tmc.syncer import metrics
from tmc.syncer.informer import Informer
from tmc.syncer.namespaces import TargetIdentity
from tmc.syncer.resources import SyncedResource

log = logging.getLogger("tmc.syncer.control")
SEP = "|"  # the engine's work-item separator: <resource>|<workspace>|<namespace>|<name>
FAILED_AFTER = 10.0  # seconds a key must keep failing to count as failed (and to publish its error)
# How often a deletion held by a pause looks again (the object left the view, so no event says the pause ended).
PAUSE_RECHECK = 5.0

MAX_ERROR_LENGTH = 1024
_MAX_WARNED = 1024


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class SyncControl:
    """Which scopes are paused for this target, and the names of its per-target annotations."""

    def __init__(self, target: TargetIdentity, hub: KubeClient) -> None:
        self.target = target
        self.hub = hub
        key = target.key
        self.force = sync_force_annotation(key)
        self.forced = sync_forced_annotation(key)
        self.state = sync_state_annotation(key)
        self.last_sync = sync_last_sync_annotation(key)
        self.error = sync_error_annotation(key)
        self.target_paused = False
        self._paused_namespaces: set[tuple[str, str]] = set()
        self._warned: set[str] = set()

    # ---------------------------------------------------------------- pause

    def applies(self, value: Any, where: str, lists_allowed: bool = True) -> bool:
        """Whether a `sync.tmc.kcp.io/paused` value pauses this target; a malformed one pauses nothing."""
        parsed = parse_paused(value)
        if parsed is not None and (lists_allowed or not parsed[1]):
            every, names = parsed
            return every or self.target.name in names
        warned = f"{where}={value!r}"
        if warned not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(warned)
            log.warning(
                "ignoring a malformed pause annotation",
                extra={"object": where, "annotation": SYNC_PAUSED_ANNOTATION, "value": str(value)[:256]},
            )
        return False

    def observe_target(self, sync_target: dict[str, Any]) -> bool:
        """Read the SyncTarget's pause annotation (start-up, every heartbeat answer); True when it changed."""
        value = ((sync_target.get("metadata") or {}).get("annotations") or {}).get(SYNC_PAUSED_ANNOTATION)
        paused = value is not None and self.applies(value, f"synctarget/{self.target.name}", lists_allowed=False)
        changed = paused != self.target_paused
        if changed:
            log.info("sync target pause changed", extra={"sync_target": self.target.name, "paused": paused})
        self.target_paused = paused
        return changed

    def observe_namespace(self, cluster: str, namespace: str, obj: dict[str, Any] | None) -> bool:
        """Read an upstream Namespace's pause annotation (None: it left the view); True when it changed."""
        value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(SYNC_PAUSED_ANNOTATION)
        paused = value is not None and self.applies(value, f"{cluster}/namespace/{namespace}")
        where = (cluster, namespace)
        if paused == (where in self._paused_namespaces):
            return False
        if paused:
            self._paused_namespaces.add(where)
        else:
            self._paused_namespaces.discard(where)
        return True

    def scope_paused(self, cluster: str, namespace: str) -> bool:
        """Paused by the SyncTarget or the Namespace."""
        return self.target_paused or (cluster, namespace) in self._paused_namespaces

    def object_paused(self, cluster: str, obj: dict[str, Any]) -> bool:
        md = obj.get("metadata") or {}
        value = (md.get("annotations") or {}).get(SYNC_PAUSED_ANNOTATION)
        return value is not None and self.applies(value, f"{cluster}/{md.get('namespace')}/{md.get('name')}")

    def paused(self, cluster: str, namespace: str, obj: dict[str, Any]) -> bool:
        return self.scope_paused(cluster, namespace) or self.object_paused(cluster, obj)

    def scope_of(self, cluster: str, namespace: str) -> str:
        if self.target_paused:
            return f"SyncTarget {self.target.name}"
        if (cluster, namespace) in self._paused_namespaces:
            return f"Namespace {namespace}"
        return "the workload"

    # ---------------------------------------------------------------- force

    def force_token(self, annotations: dict[str, Any]) -> str | None:
        """The force token not yet acknowledged, if any."""
        token = annotations.get(self.force)
        if not isinstance(token, str) or not token or annotations.get(self.forced) == token:
            return None
        return token

    def needs_attention(self, annotations: dict[str, Any]) -> bool:
        """Cheap happy-path test: a force request, or a Paused or error report that may have to be cleared."""
        return self.force in annotations or self.state in annotations or self.error in annotations

    # ---------------------------------------------------------------- reports

    async def event(
        self, cluster: str, resource: SyncedResource, obj: dict[str, Any], reason: str, message: str
    ) -> None:
        """An Event about the workload on the hub; never fails the reconcile."""
        md = obj.get("metadata") or {}
        namespace = str(md.get("namespace") or "default")
        name = str(md.get("name") or "")
        now = now_rfc3339()
        involved = {
            "apiVersion": f"{resource.group}/{resource.version}" if resource.group else resource.version,
            "kind": resource.kind,
            "name": name,
            "namespace": namespace,
            "uid": str(md.get("uid") or ""),
            "resourceVersion": str(md.get("resourceVersion") or ""),
        }
        component = f"tmc-syncer/{self.target.name}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message[:MAX_ERROR_LENGTH],
            "type": "Normal",
            "source": {"component": component},
            "reportingComponent": "tmc-syncer",
            "reportingInstance": self.target.name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.hub.create(f"/clusters/{cluster}/api/v1/namespaces/{namespace}/events", body)
        except (ApiError, Unreachable) as e:
            log.info("event not recorded", extra={"reason": reason, "object": name, "error": str(e)})

    def paused_report(self, cluster: str, namespace: str) -> tuple[dict[str, str | None], str, str]:
        """(annotations to write, Event reason, message) when a workload enters a pause for this target."""
        message = f"Sync to SyncTarget {self.target.name} paused by {self.scope_of(cluster, namespace)}"
        return {self.state: SYNC_STATE_PAUSED}, REASON_SYNC_PAUSED, message

    def resumed_report(self) -> tuple[dict[str, str | None], str, str]:
        message = f"Sync to SyncTarget {self.target.name} resumed; the current spec is applied"
        return {self.state: None, self.last_sync: now_rfc3339()}, REASON_SYNC_RESUMED, message


def error_text(error: BaseException) -> str:
    return str(error)[:MAX_ERROR_LENGTH] or type(error).__name__


class ControlSteps:
    """The sync engine's steps for control requests and reports (Engine inherits them; the attributes are its)."""

    control: SyncControl
    vw: KubeClient
    hub: KubeClient
    up: dict[str, Informer]
    resources: dict[str, SyncedResource]
    queue: WorkQueue
    reads: metrics.CacheReads
    _last_view: dict[str, dict[str, Any]]
    _publishing: dict[str, asyncio.Task[None]]  # keys whose error is being written

    def _vw_item(self, resource: SyncedResource, cluster: str, namespace: str, name: str) -> str:
        return f"/clusters/{cluster}{resource.item(namespace, name)}"

    async def _hold(
        self,
        resource: SyncedResource,
        cluster: str,
        namespace: str,
        name: str,
        up: dict[str, Any],
    ) -> dict[str, Any]:
        """Paused: nothing is written downstream (no create, update or delete); the pause is reported once and a
        force request is acknowledged without a write. Returns the upstream object as it now is."""
        annotations = (up.get("metadata") or {}).get("annotations") or {}
        changes: dict[str, str | None] = {}
        event = None
        if annotations.get(self.control.state) is None:
            changes, reason, message = self.control.paused_report(cluster, namespace)
            event = (reason, message)
        token = self.control.force_token(annotations)
        if token is not None:
            changes[self.control.forced] = token
        if changes:
            up = await self._annotate(resource, cluster, namespace, name, changes)
            if event is not None:
                log.info("sync paused", extra={"object": f"{cluster}/{namespace}/{name}", "resource": resource.id})
                await self.control.event(cluster, resource, up, *event)
        return up

    async def _report(
        self, resource: SyncedResource, cluster: str, namespace: str, name: str, up: dict[str, Any], force: str | None
    ) -> dict[str, Any]:
        """After a successful sync of an object with control annotations: leave a pause, acknowledge a force,
        clear a published error, in one write."""
        annotations = (up.get("metadata") or {}).get("annotations") or {}
        changes: dict[str, str | None] = {}
        event = None
        if annotations.get(self.control.state) is not None:
            changes, reason, message = self.control.resumed_report()
            event = (reason, message)
        if force is not None:
            changes[self.control.forced] = force
            changes[self.control.last_sync] = now_rfc3339()
        if self.control.error in annotations:
            changes[self.control.error] = None
        if not changes:
            return up
        up = await self._annotate(resource, cluster, namespace, name, changes)
        if event is not None:
            log.info("sync resumed", extra={"object": f"{cluster}/{namespace}/{name}", "resource": resource.id})
            await self.control.event(cluster, resource, up, *event)
        return up

    async def _annotate(
        self, resource: SyncedResource, cluster: str, namespace: str, name: str, changes: dict[str, str | None]
    ) -> dict[str, Any]:
        """Set (or with None remove) this target's own sync annotations on the hub object, through the view."""
        path = self._vw_item(resource, cluster, namespace, name)
        view = await self.vw.patch(path, {"metadata": {"annotations": changes}})
        self.up[resource.id].remember(view)
        return dict(view)

    def _report_error(self, key: str, error: BaseException) -> None:
        """Publish a persistent error in the background, one write per key at a time, so a slow hub never holds a
        sync worker; not while the hub's watches are down (the write could not land, and the error is the hub's)."""
        if key in self._publishing or not all(i.connected for i in self.up.values()):
            return
        task = asyncio.create_task(self._publish_error(key, error), name=f"publish-error-{key}")
        self._publishing[key] = task  # the loop keeps only weak references to tasks
        task.add_done_callback(lambda _: self._publishing.pop(key, None))

    async def _publish_error(self, key: str, error: BaseException) -> None:
        """A sync failing for FAILED_AFTER seconds: its error on the hub object (written again only when the text
        changes; removed by the next successful sync). Best effort: the hub may be what fails."""
        rid, cluster, namespace, name = key.split(SEP)
        resource = self.resources.get(rid)
        up = self.up[rid].cache.get(SEP.join((cluster, namespace, name))) if resource is not None else None
        if resource is None or up is None:
            return
        text = f"{error_type(error)}: {error_text(error)}"
        if ((up.get("metadata") or {}).get("annotations") or {}).get(self.control.error) == text:
            return
        try:
            await self._annotate(resource, cluster, namespace, name, {self.control.error: text})
        except (ApiError, Unreachable) as e:
            log.debug("sync error not published", extra={"key": key, "error": str(e)})

    def _delete_held(self, key: str, cluster: str, namespace: str) -> str:
        """Why a downstream deletion of an object that left the view waits ("scope": its Namespace or SyncTarget is
        paused; "object": as last seen, the object itself is), "" when it does not; looked at again every
        PAUSE_RECHECK seconds."""
        last = self._last_view.get(key)
        held = "scope" if self.control.scope_paused(cluster, namespace) else ""
        if not held and last is not None and self.control.object_paused(cluster, last):
            held = "object"
        if held:
            self.queue.add_after(key, PAUSE_RECHECK)
        return held

    async def _refresh_last_view(
        self, key: str, resource: SyncedResource, cluster: str, namespace: str, name: str
    ) -> None:
        """The hub object as it is now, for a deletion held by the object's own pause annotation (it left the view,
        so no event brings the annotation's removal)."""
        last = self._last_view.get(key)
        if last is None:
            return
        self.reads.miss()
        try:
            self._last_view[key] = await self.hub.get(f"/clusters/{cluster}{resource.item(namespace, name)}")
        except NotFound:
            md = dict(last.get("metadata") or {})
            md.pop("annotations", None)  # gone from the hub: its pause went with it
            self._last_view[key] = {**last, "metadata": md}
        except (ApiError, Unreachable):
            pass
