"""The syncer's side of its SyncTarget: create it if missing, heartbeat, report capacity and counters.

Every `--heartbeat-period` the syncer reads the member cluster's Nodes and Pods, then sends one JSON patch to
`synctargets/<name>/status`: a `test` of `/metadata/uid` (so a SyncTarget deleted and re-created under the same name
is never written by a syncer configured for the old one), then `lastSyncerHeartbeatTime`, `syncerStatus`, and the
member cluster's `capacity`, `allocatable` (sums over Nodes) and `allocated` (sum of the requests of pods bound to
nodes and not finished). A failed round is retried every second until it succeeds, as kcp's syncer does.

A heartbeat therefore says "this syncer reaches both the hub and its member cluster": while the member cluster does
not answer, no heartbeat is sent, and the hub marks the SyncTarget not Ready once its heartbeat threshold has passed
since the last one, i.e. within the threshold plus one period of the cluster going silent. The hub's threshold stays
the only grace period, so a slow answer never flips Ready on its own.

The `SyncerReady` condition is written separately and only when it changes, with a `test` on the current conditions
so the hub's heartbeat controller's own conditions are never overwritten.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tmc.api.workload import CONDITION_SYNCER_READY, SYNC_TARGETS
from tmc.apimachinery.meta import now_rfc3339
from tmc.controllers.synctarget.quantity import parse_resource_list
from tmc.syncer import metrics
from tmc.syncer.client import JSON_PATCH, ApiError, KubeClient, Unreachable

log = logging.getLogger("tmc.syncer.heartbeat")

RETRY_PERIOD = 1.0
_FINISHED_PHASES = ("Succeeded", "Failed")


def sync_target_path(workspace: str, name: str | None = None) -> str:
    base = f"/clusters/{workspace}/apis/{SYNC_TARGETS.group}/{SYNC_TARGETS.version}/{SYNC_TARGETS.plural}"
    return f"{base}/{name}" if name else base


async def ensure_sync_target(hub: KubeClient, workspace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """Get the SyncTarget, creating it (with `labels`) when missing and adding missing labels when it exists."""
    try:
        obj: dict[str, Any] = await hub.get(sync_target_path(workspace, name))
    except ApiError as e:
        if e.code != 404:
            raise
        body = {
            "apiVersion": SYNC_TARGETS.api_version,
            "kind": SYNC_TARGETS.kind,
            "metadata": {"name": name, "labels": labels},
            "spec": {},
        }
        try:
            created: dict[str, Any] = await hub.create(sync_target_path(workspace), body)
            log.info("created SyncTarget", extra={"workspace": workspace, "sync_target": name})
            return created
        except ApiError as e2:
            if e2.code != 409:
                raise
            obj = await hub.get(sync_target_path(workspace, name))
    current = (obj.get("metadata") or {}).get("labels") or {}
    if any(current.get(k) != v for k, v in labels.items()):
        obj = await hub.patch(sync_target_path(workspace, name), {"metadata": {"labels": labels}})
    return obj


def syncer_vw_url(hub_base: str, target: dict[str, Any], workspace: str) -> str:
    """Where the syncer virtual workspace is: the path the hub published in status.virtualWorkspaces (kept only when
    it names this SyncTarget's UID), on the scheme and host of the syncer's own kubeconfig so its TLS settings
    apply; computed from the kcp layout when the hub has not published it yet."""
    md = target.get("metadata") or {}
    uid, name = str(md.get("uid")), str(md.get("name"))
    for entry in (target.get("status") or {}).get("virtualWorkspaces") or ():
        path = urlsplit(str((entry or {}).get("syncerURL") or "")).path
        if path.endswith(f"/{uid}"):
            return hub_base + path
    return f"{hub_base}/services/syncer/{workspace}/{name}/{uid}"


def format_quantity(resource: str, value: float) -> str:
    """A quantity string: cpu in millicores when fractional, everything else as a whole number (bytes, counts)."""
    if resource == "cpu" or resource.endswith(".cpu"):
        millis = round(value * 1000)
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    whole = round(value)
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if whole >= factor and whole % factor == 0:
            return f"{whole // factor}{suffix}"
    return str(whole)


def _format(totals: dict[str, float]) -> dict[str, str]:
    return {k: format_quantity(k, v) for k, v in sorted(totals.items())}


def _add(into: dict[str, float], values: dict[str, float]) -> None:
    for k, v in values.items():
        into[k] = into.get(k, 0.0) + v


def pod_requests(pod: dict[str, Any]) -> dict[str, float]:
    """A pod's effective requests: the larger of its containers' sum and its largest init container (kube rule)."""
    spec = pod.get("spec") or {}
    total: dict[str, float] = {}
    for c in spec.get("containers") or ():
        _add(total, parse_resource_list(((c or {}).get("resources") or {}).get("requests")))
    for c in spec.get("initContainers") or ():
        for k, v in parse_resource_list(((c or {}).get("resources") or {}).get("requests")).items():
            total[k] = max(total.get(k, 0.0), v)
    return total


async def cluster_resources(down: KubeClient) -> dict[str, dict[str, str]]:
    """capacity and allocatable summed over Nodes; allocated summed over running pods (plus their count)."""
    nodes, _ = await down.list_all("/api/v1/nodes")
    capacity: dict[str, float] = {}
    allocatable: dict[str, float] = {}
    for node in nodes:
        status = node.get("status") or {}
        _add(capacity, parse_resource_list(status.get("capacity")))
        _add(allocatable, parse_resource_list(status.get("allocatable") or status.get("capacity")))
    pods, _ = await down.list_all("/api/v1/pods")
    allocated: dict[str, float] = {"pods": 0.0}
    for pod in pods:
        if not (pod.get("spec") or {}).get("nodeName") or (pod.get("status") or {}).get("phase") in _FINISHED_PHASES:
            continue
        _add(allocated, pod_requests(pod))
        allocated["pods"] += 1
    return {"capacity": _format(capacity), "allocatable": _format(allocatable), "allocated": _format(allocated)}


class Heartbeat:
    def __init__(
        self,
        hub: KubeClient,
        down: KubeClient,
        workspace: str,
        name: str,
        uid: str,
        period: float,
        counts: Callable[[], tuple[int, int, int]],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self.hub = hub
        self.down = down
        self.path = sync_target_path(workspace, name) + "/status"
        self.name = name
        self.uid = uid
        self.period = period
        self.counts = counts
        self.ready = ready
        self.last_success: float | None = None
        self._reported_ready: bool | None = None
        self._resources: dict[str, dict[str, str]] = {}
        # Wall-clock time the member cluster stopped answering and why, None while it answers.
        self.downstream_silent_since: float | None = None
        self.downstream_error = ""

    def age(self) -> float:
        return -1.0 if self.last_success is None else time.monotonic() - self.last_success

    def downstream_problem(self) -> str | None:
        """Why the member cluster counts as not answering, None when it answers."""
        if self.downstream_silent_since is None:
            return None
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.downstream_silent_since))
        return f"member cluster not answering since {since}: {self.downstream_error}"

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            # No heartbeat without an answer from the member cluster (see the module docstring).
            while not await self._refresh_resources():
                await asyncio.sleep(RETRY_PERIOD)
            while True:
                try:
                    await self.beat()
                    break
                except (ApiError, Unreachable) as e:
                    log.warning("heartbeat failed; retrying", extra={"error": str(e)})
                    await asyncio.sleep(RETRY_PERIOD)
            await self._report_ready()
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))

    async def _refresh_resources(self) -> bool:
        """Read the member cluster's capacity; False when it does not answer or answers only with server errors.
        A refusal (403 on pods, say) is an answer: the last figures are kept and the heartbeat goes out."""
        asked = time.time()
        try:
            self._resources = await cluster_resources(self.down)
        except (ApiError, Unreachable) as e:
            if not isinstance(e, ApiError) or e.code >= 500:
                if self.downstream_silent_since is None:
                    self.downstream_silent_since = asked
                    log.warning("member cluster not answering; heartbeats paused", extra={"error": str(e)})
                self.downstream_error = str(e)
                return False
            log.warning("could not read member cluster capacity", extra={"error": str(e)})
        if self.downstream_silent_since is not None:
            log.warning(
                "member cluster answering again; heartbeats resumed",
                extra={"silent_seconds": round(time.time() - self.downstream_silent_since, 1)},
            )
            self.downstream_silent_since = None
            self.downstream_error = ""
        return True

    async def beat(self) -> None:
        synced, pending, failed = self.counts()
        values: dict[str, Any] = {
            "lastSyncerHeartbeatTime": now_rfc3339(),
            "syncerStatus": {"syncedResources": synced, "pendingResources": pending, "failedResources": failed},
            **self._resources,
        }
        test = {"op": "test", "path": "/metadata/uid", "value": self.uid}
        ops = [test, *({"op": "add", "path": f"/status/{k}", "value": v} for k, v in values.items())]
        try:
            await self.hub.patch(self.path, ops, JSON_PATCH)
        except ApiError as e:
            if e.code != 422 or "missing path" not in str(e.body):
                raise
            # A SyncTarget that has no status yet: create it with these values.
            await self.hub.patch(self.path, [test, {"op": "add", "path": "/status", "value": values}], JSON_PATCH)
        self.last_success = time.monotonic()
        metrics.HEARTBEAT_AGE.labels(self.name).set(0)

    async def _report_ready(self) -> None:
        ready, message = self.ready()
        if ready == self._reported_ready:
            return
        try:
            current = await self.hub.get(self.path)
        except (ApiError, Unreachable) as e:
            log.warning("could not read the SyncTarget", extra={"error": str(e)})
            return
        conditions = list((current.get("status") or {}).get("conditions") or [])
        condition = {
            "type": CONDITION_SYNCER_READY,
            "status": "True" if ready else "False",
            "reason": "" if ready else "SyncerNotReady",
            "message": message,
            "lastTransitionTime": now_rfc3339(),
        }
        if not ready:
            condition["severity"] = "Error"
        kept = [c for c in conditions if c.get("type") != CONDITION_SYNCER_READY]
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": self.uid}]
        if "conditions" in (current.get("status") or {}):
            ops.append({"op": "test", "path": "/status/conditions", "value": conditions})
        ops.append({"op": "add", "path": "/status/conditions", "value": [*kept, condition]})
        try:
            await self.hub.patch(self.path, ops, JSON_PATCH)
            self._reported_ready = ready
        except (ApiError, Unreachable) as e:
            # The conditions changed under us (or the hub is away): the next heartbeat tries again.
            log.info("SyncerReady not written this round", extra={"error": str(e)})
