"""The syncer's side of its SyncTarget: create it if missing, heartbeat, report capacity and counters.

Every `--heartbeat-period` the syncer checks that the member cluster answers (one GET of its `/readyz`), then sends
one JSON patch to `synctargets/<name>/status`: a `test` of `/metadata/uid` (so a SyncTarget deleted and re-created
under the same name is never written by a syncer configured for the old one), then `lastSyncerHeartbeatTime`,
`syncerStatus`, and the member cluster's `capacity`, `allocatable` (sums over Nodes) and `allocated` (sum of the
requests of pods bound to nodes and not finished, plus their count), and `syncedResources` (the types this syncer
syncs, which the hub's assignment reads to add the syncer's finalizer itself). A failed round is retried after a
back-off that starts at 1 s and doubles with each consecutive failure (+-20 % jitter), never longer than one period.

The figures come from two informers (list, then watch from the resourceVersion) on the member's Nodes and Pods,
kept as running sums updated on each event, so a heartbeat costs no list however many pods the cluster runs. The
informers keep only what the sums need of each object (a Pod's node, phase and container requests). The
capacity figures are sent once the Nodes are listed, `allocated` once the Pods are (the first heartbeat waits up
to one period for both); a list the member refuses (403 on pods, say) leaves that figure out and the heartbeat goes
out without it.

A heartbeat therefore says "this syncer reaches both the hub and its member cluster": while the member cluster does
not answer (no response within the probe timeout, a refused connection, a 5xx), no heartbeat is sent, and the hub
marks the SyncTarget not Ready once its heartbeat threshold has passed since the last one, i.e. within the threshold
plus one period of the cluster going silent. Any other answer (a 403, a 404) counts: the server is there. The
hub's threshold stays the only grace period, so a slow answer never flips Ready on its own.

The `SyncerReady` condition is written separately and only when it changes, with a `test` on the current conditions
so the hub's heartbeat controller's own conditions are never overwritten. So is `MemberClusterReachable`: False, with
the probe's error, as soon as the member stops answering (the hub then names the cause of the stale heartbeat:
reason Unreachable in `Healthy`), True again once it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tmc.api.workload import CONDITION_MEMBER_REACHABLE, CONDITION_SYNCER_READY, REASON_MEMBER_UNREACHABLE
from tmc.apimachinery.meta import now_rfc3339
from tmc.apimachinery.quantity import format_quantity, parse_resource_list
from tmc.client import JSON_PATCH, SYNC_TARGET, ApiError, Conflict, Invalid, KubeClient, NotFound, Unreachable
from tmc.client.watch import backoff_delay
from tmc.protocol.keys import syncer_vw_path
from tmc.syncer import metrics
from tmc.syncer.informer import Informer

log = logging.getLogger("tmc.syncer.heartbeat")

RETRY_START = 1.0  # seconds before the first retry of a failed round; doubles per consecutive failure
RETRY_CAP = 5.0  # seconds at most between retries, whatever the period
PROBE_PATH = "/readyz"  # answered by every Kubernetes API server; 5xx while it cannot serve (its etcd is down, say)
_FINISHED_PHASES = ("Succeeded", "Failed")
_GONE = ("DELETED", "VANISHED")


async def ensure_sync_target(hub: KubeClient, workspace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """Get the SyncTarget, creating it (with `labels`) when missing and adding missing labels when it exists."""
    try:
        obj = await SYNC_TARGET.get(hub, workspace, name)
    except NotFound:
        try:
            created = await SYNC_TARGET.create(hub, workspace, SYNC_TARGET.new(name, {}, labels))
            log.info("created SyncTarget", extra={"workspace": workspace, "sync_target": name})
            return created
        except Conflict:
            obj = await SYNC_TARGET.get(hub, workspace, name)
    current = (obj.get("metadata") or {}).get("labels") or {}
    if any(current.get(k) != v for k, v in labels.items()):
        obj = await SYNC_TARGET.patch(hub, workspace, name, {"metadata": {"labels": labels}})
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
    return hub_base + syncer_vw_path(workspace, name, uid)


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


def retry_delay(failures: int, period: float) -> float:
    """The wait after `failures` consecutive failed rounds: 1 s doubling, +-20 % jitter, capped at one period (a
    failure never puts the next attempt off by more than a period) and at RETRY_CAP: the syncer's watches wait for
    the hub to answer something, typically this retry, before reconnecting, so the cap bounds how long a returning
    hub waits to be rejoined."""
    return min(period, RETRY_CAP, backoff_delay(RETRY_START * 2 ** min(failures - 1, 30)))


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """What `allocated` needs of a Pod: its node, phase and container requests (a whole Pod is kilobytes)."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}

    def requests(kind: str) -> list[dict[str, Any]]:
        found = (((c or {}).get("resources") or {}).get("requests") for c in spec.get(kind) or ())
        return [{"resources": {"requests": r}} for r in found if r]

    return {
        "metadata": {k: md.get(k) for k in ("namespace", "name", "resourceVersion")},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": requests("containers"),
            "initContainers": requests("initContainers"),
        },
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


def slim_node(node: dict[str, Any]) -> dict[str, Any]:
    md = node.get("metadata") or {}
    status = node.get("status") or {}
    return {
        "metadata": {k: md.get(k) for k in ("name", "resourceVersion")},
        "status": {k: status.get(k) for k in ("capacity", "allocatable")},
    }


class RunningTotals:
    """Resource figures per object and their sums, updated as objects change. Kept in integer milli-units, so taking
    an object's figures out restores the sums exactly however many events have passed (floats would drift)."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[str, int]] = {}
        self._sums: dict[str, int] = {}
        # How many objects name each resource: a resource nobody names any more leaves the sums, as in a fresh sum.
        self._holders: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._parts)

    def set(self, key: str, values: dict[str, float] | None) -> None:
        """The figures of object `key` are now `values` (None: it no longer counts)."""
        part = None if values is None else {name: round(v * 1000) for name, v in values.items()}
        old = self._parts.pop(key, None)
        if old == part:
            if part is not None:
                self._parts[key] = part
            return
        for name, v in (old or {}).items():
            left = self._holders[name] - 1
            if left:
                self._holders[name] = left
                self._sums[name] -= v
            else:
                del self._holders[name], self._sums[name]
        if part is not None:
            self._parts[key] = part
            for name, v in part.items():
                self._holders[name] = self._holders.get(name, 0) + 1
                self._sums[name] = self._sums.get(name, 0) + v

    def totals(self) -> dict[str, float]:
        return {name: v / 1000 for name, v in self._sums.items()}


class MemberResources:
    """The member cluster's capacity, allocatable and allocated figures, kept up to date by watching its Nodes and
    Pods. `informers` must be run by the caller (the syncer runs them next to the sync engine's)."""

    def __init__(
        self, down: KubeClient, cluster: str = "", on_connection: Callable[[Informer, bool], None] | None = None
    ) -> None:
        self.capacity = RunningTotals()
        self.allocatable = RunningTotals()
        self.allocated = RunningTotals()  # one entry per counted pod
        self.nodes = Informer(
            down,
            "/api/v1/nodes",
            self._node_changed,
            name="downstream/nodes",
            transform=slim_node,
            on_connection=on_connection,
            cluster=cluster,
        )
        self.pods = Informer(
            down,
            "/api/v1/pods",
            self._pod_changed,
            name="downstream/pods",
            transform=slim_pod,
            on_connection=on_connection,
            cluster=cluster,
        )

    @property
    def informers(self) -> list[Informer]:
        return [self.nodes, self.pods]

    async def wait_synced(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for both initial lists."""
        waits = asyncio.gather(self.nodes.synced.wait(), self.pods.synced.wait())
        try:
            await asyncio.wait_for(waits, timeout)
        except TimeoutError:
            pass

    # A relist's VANISHED needs no confirmation here: the figures describe what the member lists, nothing is deleted.
    def _node_changed(self, event: str, node: dict[str, Any], key: str) -> None:
        if event in _GONE:
            self.capacity.set(key, None)
            self.allocatable.set(key, None)
            return
        status = node.get("status") or {}
        self.capacity.set(key, parse_resource_list(status.get("capacity")))
        self.allocatable.set(key, parse_resource_list(status.get("allocatable") or status.get("capacity")))

    def _pod_changed(self, event: str, pod: dict[str, Any], key: str) -> None:
        counted = (
            event not in _GONE
            and (pod.get("spec") or {}).get("nodeName")
            and (pod.get("status") or {}).get("phase") not in _FINISHED_PHASES
        )
        self.allocated.set(key, pod_requests(pod) if counted else None)

    def report(self) -> dict[str, dict[str, str]]:
        """The status fields for a heartbeat: capacity and allocatable once the Nodes are listed, allocated (with a
        `pods` count) once the Pods are."""
        out: dict[str, dict[str, str]] = {}
        if self.nodes.synced.is_set():
            out["capacity"] = _format(self.capacity.totals())
            out["allocatable"] = _format(self.allocatable.totals())
        if self.pods.synced.is_set():
            out["allocated"] = _format({**self.allocated.totals(), "pods": float(len(self.allocated))})
        return out


class Heartbeat:
    """Heartbeats for one SyncTarget. The informers of `resources` must run for the figures to be reported."""

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
        on_connection: Callable[[Informer, bool], None] | None = None,
        synced_resources: list[dict[str, Any]] | None = None,
        on_target: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.hub = hub
        # Called with the SyncTarget each heartbeat's answer returns (its pause annotation: control.py), so reading
        # it costs no request of its own.
        self.on_target = on_target
        # status.syncedResources: the types this syncer syncs, so the hub adds its finalizer with the label.
        self.synced_resources = synced_resources
        self.down = down
        self.path = SYNC_TARGET.path(workspace, name, "status")
        self.name = name
        self.uid = uid
        self.period = period
        self.counts = counts
        self.ready = ready
        self.resources = MemberResources(down, name, on_connection)
        self.last_success: float | None = None
        self._reported_ready: bool | None = None
        self._reported_reachable: bool | None = None
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
        failures = 0
        while True:
            started = time.monotonic()
            if await self._round():
                failures = 0
                await self._report_ready()
                await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))
                continue
            failures += 1
            await asyncio.sleep(retry_delay(failures, self.period))

    async def _round(self) -> bool:
        """One heartbeat; False when it was not sent."""
        if self.last_success is None:
            # So the hub sees the capacity from the first heartbeat on (the lists take milliseconds as a rule).
            await self.resources.wait_synced(self.period)
        # No heartbeat without an answer from the member cluster (see the module docstring).
        if not await self._member_answers():
            await self._report_reachable()
            return False
        try:
            await self.beat()
        except (ApiError, Unreachable) as e:
            log.warning("heartbeat failed; retrying", extra={"error": str(e)})
            return False
        await self._report_reachable()
        return True

    async def _member_answers(self) -> bool:
        """Does the member cluster answer? False for no answer or a server error; a refusal (403) is an answer."""
        asked = time.time()
        try:
            await self.down.get(PROBE_PATH)
        except (ApiError, Unreachable) as e:
            if not isinstance(e, ApiError) or e.code >= 500:
                if self.downstream_silent_since is None:
                    self.downstream_silent_since = asked
                    log.warning("member cluster not answering; heartbeats paused", extra={"error": str(e)})
                self.downstream_error = str(e)
                return False
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
            **self.resources.report(),
        }
        if self.synced_resources is not None:
            values["syncedResources"] = self.synced_resources
        test = {"op": "test", "path": "/metadata/uid", "value": self.uid}
        ops = [test, *({"op": "add", "path": f"/status/{k}", "value": v} for k, v in values.items())]
        try:
            answer = await self.hub.patch(self.path, ops, JSON_PATCH)
        except Invalid as e:
            if "missing path" not in str(e.body):
                raise
            # A SyncTarget that has no status yet: create it with these values.
            answer = await self.hub.patch(
                self.path, [test, {"op": "add", "path": "/status", "value": values}], JSON_PATCH
            )
        if self.on_target is not None and isinstance(answer, dict):
            self.on_target(answer)
        self.last_success = time.monotonic()
        metrics.HEARTBEAT_AGE.labels(self.name).set(0)

    async def _report_ready(self) -> None:
        ready, message = self.ready()
        if ready == self._reported_ready:
            return
        if await self._write_condition(CONDITION_SYNCER_READY, ready, "" if ready else "SyncerNotReady", message):
            self._reported_ready = ready

    async def _report_reachable(self) -> None:
        problem = self.downstream_problem()
        reachable = problem is None
        if reachable == self._reported_reachable:
            return
        reason = "" if reachable else REASON_MEMBER_UNREACHABLE
        if await self._write_condition(CONDITION_MEMBER_REACHABLE, reachable, reason, problem or "", only_change=True):
            self._reported_reachable = reachable

    async def _write_condition(
        self, type_: str, ok: bool, reason: str, message: str, *, only_change: bool = False
    ) -> bool:
        """Set one condition on the SyncTarget, leaving the others as they are; False when it was not written.
        `only_change`: a True condition that is not there yet is not added (nothing to clear)."""
        try:
            current = await self.hub.get(self.path)
        except (ApiError, Unreachable) as e:
            log.warning("could not read the SyncTarget", extra={"error": str(e)})
            return False
        conditions = list((current.get("status") or {}).get("conditions") or [])
        existing = next((c for c in conditions if c.get("type") == type_), None)
        status = "True" if ok else "False"
        since = None
        if existing is None and only_change and ok:
            return True
        if existing is not None:
            if (existing.get("status"), existing.get("reason", ""), existing.get("message")) == (
                status,
                reason,
                message,
            ):
                return True  # already says so (a restarted syncer)
            # The transition time moves only when the status does.
            since = existing.get("lastTransitionTime") if existing.get("status") == status else None
        condition = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since or now_rfc3339(),
        }
        if not ok:
            condition["severity"] = "Error"
        kept = [c for c in conditions if c.get("type") != type_]
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": self.uid}]
        if "conditions" in (current.get("status") or {}):
            ops.append({"op": "test", "path": "/status/conditions", "value": conditions})
        ops.append({"op": "add", "path": "/status/conditions", "value": [*kept, condition]})
        try:
            await self.hub.patch(self.path, ops, JSON_PATCH)
        except (ApiError, Unreachable) as e:
            # The conditions changed under us (or the hub is away): the next round tries again.
            log.info(f"{type_} not written this round", extra={"error": str(e)})
            return False
        return True
