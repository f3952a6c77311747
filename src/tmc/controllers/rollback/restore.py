"""Carrying out an undo on the hub: abort a canary in progress, write back the target revision's ConfigMaps and
Secrets, then the workload's template, then remove what only the undone change had created. Every cluster gets the
result through the normal sync.

A user's edit wins: the workload is written only if its generation is still the one the undo was planned against;
if it moved, the ConfigMaps and Secrets already written are put back as they were and the undo gives up (409).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from tmc.api.rollback import (
    CONDITION_ROLLED_BACK,
    ROLLED_BACK,
    UNDO_ANNOTATION,
    UNDO_RESULT_ANNOTATION,
)
from tmc.apimachinery import errors
from tmc.apimachinery.conditions import set_condition
from tmc.apimachinery.resources import ResourceInfo
from tmc.controllers.rollback import canary_hook, metrics
from tmc.controllers.rollback.context import CONFIGMAPS, SECRETS, Pending, Shared, WorkloadKey, now, stamp
from tmc.controllers.rollback.plan import UndoPlan, choose_target, plan_undo, revision_number
from tmc.controllers.rollback.recorder import current_state, read_snapshot, write_status
from tmc.controllers.rollback.snapshot import referenced
from tmc.protocol.workloads import is_workload
from tmc.registry.service import JSON_PATCH, MERGE_PATCH, WriteOptions

log = logging.getLogger("tmc.controllers.rollback")


class UndoError(Exception):
    """An undo that cannot be done; the message is what the user reads."""


class WaitForCanary(Exception):
    """A canary is being aborted: look again shortly."""


@dataclass
class Request:
    wanted: int | None  # None: the previous revision
    user: str
    reason: str  # UserRequested, ProgressDeadlineExceeded, AnalysisFailed
    message: str = ""
    token: str = ""  # the undo annotation's token (user requests only)

    @property
    def automatic(self) -> bool:
        return not self.token


def _other_references(shared: Shared, wk: WorkloadKey, info: ResourceInfo) -> set[tuple[str, str]]:
    """(plural, name) of what the namespace's other workloads reference."""
    out: set[tuple[str, str]] = set()
    for candidate in shared.registry.resources(wk.cluster):
        if candidate.group not in ("apps", "batch") or not candidate.namespaced:
            continue
        for entry in shared.store.list(candidate.key_prefix(wk.cluster, wk.namespace)):
            if candidate.plural == info.plural and entry.obj["metadata"]["name"] == wk.name:
                continue
            if is_workload(entry.obj):
                cms, secrets = referenced(entry.obj)
                out |= {("configmaps", n) for n in cms} | {("secrets", n) for n in secrets}
    return out


def plan_for(
    shared: Shared, wk: WorkloadKey, info: ResourceInfo, obj: dict[str, Any], wanted: int | None
) -> tuple[UndoPlan, dict[str, Any], dict[str, Any]]:
    """(plan, target revision, current revision state); UndoError when there is nothing to go back to."""
    revisions = shared.revisions(wk, info.kind)
    state = current_state(shared, wk, obj)
    try:
        target = choose_target(revisions, state["fingerprint"], wanted)
    except ValueError as e:
        raise UndoError(str(e)) from None
    plan = plan_undo(
        obj,
        target,
        revisions,
        shared.named(CONFIGMAPS, wk),
        shared.named(SECRETS, wk),
        _other_references(shared, wk, info),
    )
    return plan, target, state


async def undo(
    shared: Shared, wk: WorkloadKey, info: ResourceInfo, obj: dict[str, Any], request: Request
) -> tuple[int, list[str]]:
    """Restore the requested revision; returns (revision restored, warnings)."""
    plan, target, state = plan_for(shared, wk, info, obj, request.wanted)
    if not await canary_hook.abort_canary(shared, wk, info.kind):
        raise WaitForCanary()
    snapshot: dict[str, dict[str, Any]] = {}
    if plan.secrets:
        found = read_snapshot(shared, wk.cluster, str((target.get("spec") or {}).get("snapshotSecret") or ""))
        if found is None:
            raise UndoError(f"the Secret content of revision {plan.target} is no longer kept; nothing was changed")
        snapshot = found
    generation = (obj.get("metadata") or {}).get("generation")
    opts = WriteOptions(field_manager=shared.opts.field_manager, user=request.user)
    key = info.key(wk.cluster, wk.namespace, wk.name)
    cause = f"rollback to revision {plan.target}" + (f" ({request.reason})" if request.automatic else "")
    shared.pending[key] = Pending(
        str((target.get("spec") or {}).get("fingerprint", "")),
        cause,
        plan.target,
        request.automatic,
        request.user,
        now(),
    )
    undo_log: list[tuple[ResourceInfo, str, dict[str, Any] | None]] = []
    try:
        for cm in plan.configmaps:
            body = {"data": cm["data"], **({"binaryData": cm["binaryData"]} if cm["binaryData"] else {})}
            await _put(shared, wk, CONFIGMAPS, str(cm["name"]), body, opts, undo_log)
        for name in plan.secrets:
            saved = snapshot.get(name) or {}
            body = {"type": saved.get("type") or "Opaque", "data": saved.get("data") or {}}
            await _put(shared, wk, SECRETS, name, body, opts, undo_log)
        await _write_workload(shared, wk, info, plan, generation, request, opts)
    except BaseException:
        shared.pending.pop(key, None)
        await _compensate(shared, wk, undo_log, opts)
        raise
    # The rollback is done from here on: what follows cannot undo it, and its failures are warnings.
    metrics.ROLLBACKS.labels(request.reason).inc()
    for info_, names in ((CONFIGMAPS, plan.delete_configmaps), (SECRETS, plan.delete_secrets)):
        for name in names:
            try:
                with errors.ignore_not_found():
                    await shared.service.delete(info_, wk.cluster, wk.namespace, name, {}, False)
            except errors.StatusError as e:
                plan.warnings.append(f"{info_.kind} {name} was not removed: {e.message}")
    try:
        await _mark_undone(shared, wk, info, state["fingerprint"], plan.target, request)
    except errors.StatusError as e:
        log.warning("rollback of %s/%s done, but not all of it recorded: %s", wk.namespace, wk.name, e.message)
    if request.token:  # answered last, so the user hears "done" once everything is
        answer = "; ".join([f"{request.token} ok {plan.target}", *plan.warnings])
        try:
            await annotate(shared, info, wk, {UNDO_RESULT_ANNOTATION: answer})
        except errors.StatusError as e:
            log.warning("rollback of %s/%s done, but the answer was not written: %s", wk.namespace, wk.name, e.message)
    return plan.target, plan.warnings


async def _settle(shared: Shared) -> None:
    """After losing a race on a busy workload: let the write that won commit before reading again (re-reading at
    once reads the same state and loses again)."""
    await shared.store.wait_for_rev(shared.store.current_rev + 1, 0.2)


async def annotate(shared: Shared, info: ResourceInfo, wk: WorkloadKey, annotations: dict[str, str | None]) -> None:
    """A merge patch of the workload's annotations that outlasts a busy object: every syncer writes its status
    report to it, and the service gives up on an unconditional write after a few lost races."""
    patch = orjson.dumps({"metadata": {"annotations": annotations}})
    for attempt in range(20):
        try:
            await shared.service.patch(info, wk.cluster, wk.namespace, wk.name, MERGE_PATCH, patch, shared.opts)
            return
        except errors.StatusError as e:
            if e.code != 409 or attempt == 19:
                raise
            await _settle(shared)


async def _put(
    shared: Shared,
    wk: WorkloadKey,
    info: ResourceInfo,
    name: str,
    content: dict[str, Any],
    opts: WriteOptions,
    undo_log: list[tuple[ResourceInfo, str, dict[str, Any] | None]],
) -> None:
    entry = shared.store.get(info.key(wk.cluster, wk.namespace, name))
    if entry is None:
        body = {"apiVersion": "v1", "kind": info.kind, "metadata": {"name": name, "namespace": wk.namespace}, **content}
        await shared.service.create(info, wk.cluster, wk.namespace, body, opts)
        undo_log.append((info, name, None))
        return
    old = entry.obj
    body = {k: v for k, v in old.items() if k not in ("data", "binaryData", "stringData")}
    body = {**body, **content, "metadata": {**old["metadata"], "resourceVersion": str(entry.rev)}}
    await shared.service.update(info, wk.cluster, wk.namespace, name, body, opts)
    undo_log.append((info, name, old))


async def _compensate(
    shared: Shared, wk: WorkloadKey, undo_log: list[tuple[ResourceInfo, str, dict[str, Any] | None]], opts: WriteOptions
) -> None:
    """Put back what an undo that gave up had written already."""
    for info, name, old in reversed(undo_log):
        try:
            if old is None:
                await shared.service.delete(info, wk.cluster, wk.namespace, name, {}, False)
                continue
            entry = shared.store.get(info.key(wk.cluster, wk.namespace, name))
            if entry is None:
                continue
            body = {k: v for k, v in old.items() if k != "metadata"}
            body["metadata"] = {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}
            await shared.service.update(info, wk.cluster, wk.namespace, name, body, opts)
        except errors.StatusError:
            log.warning("could not put back %s %s/%s after a failed undo", info.kind, wk.namespace, name)


async def _write_workload(
    shared: Shared,
    wk: WorkloadKey,
    info: ResourceInfo,
    plan: UndoPlan,
    generation: Any,
    request: Request,
    opts: WriteOptions,
) -> None:
    """Template back, request annotation answered, in one write; a spec change by someone else since wins.

    A JSON patch whose first operation tests the generation: the object service applies it to the newest state,
    retrying on its own when a syncer's status report lands in between, and it fails (422) only when the spec
    moved, which a read-then-update loop on a workload ten syncers write to could not tell apart."""
    entry = shared.store.get(info.key(wk.cluster, wk.namespace, wk.name))
    if entry is None:
        raise UndoError(f"{info.kind} {wk.name} was deleted during the rollback")
    obj = entry.obj
    if (obj.get("metadata") or {}).get("generation") != generation:
        raise errors.conflict(
            info.plural, wk.name, info.group, "the workload's spec changed during the rollback; it wins"
        )
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/generation", "value": generation}]
    if str(obj.get("apiVersion", "")).startswith("apps/"):
        ops.append({"op": "replace", "path": "/spec/template", "value": plan.template})
    else:  # the spec as read at this generation, with the revision's fields but the current replicas
        spec = obj.get("spec") or {}
        value = {**plan.template, **({"replicas": spec["replicas"]} if "replicas" in spec else {})}
        ops.append({"op": "add", "path": "/spec", "value": value})
    if request.token and UNDO_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {}):
        ops.append({"op": "remove", "path": "/metadata/annotations/" + UNDO_ANNOTATION.replace("/", "~1")})
    try:
        await shared.service.patch(info, wk.cluster, wk.namespace, wk.name, JSON_PATCH, orjson.dumps(ops), opts)
    except errors.StatusError as e:
        if e.code == 404:
            raise UndoError(f"{info.kind} {wk.name} was deleted during the rollback") from None
        if e.code != 422 or "test failed" not in e.message:
            raise
        raise errors.conflict(
            info.plural, wk.name, info.group, "the workload's spec changed during the rollback; it wins"
        ) from None


async def _mark_undone(
    shared: Shared, wk: WorkloadKey, info: ResourceInfo, fingerprint: str, target: int, request: Request
) -> None:
    """The revision that was current is RolledBack; the workload gets a RolledBack condition and an Event."""
    undone = None
    for rev in reversed(shared.revisions(wk, info.kind)):
        if (rev.get("spec") or {}).get("fingerprint") == fingerprint:
            undone = rev
            break
    message = f"rolled back to revision {target}" + (f": {request.message}" if request.message else "")
    if request.user and not request.automatic:
        message += f" (requested by {request.user})"
    if undone is not None:
        seen = shared.progress.pop(str(undone["metadata"].get("uid", "")), None)
        status = {**(seen[1] if seen else undone.get("status") or {}), "phase": ROLLED_BACK, "message": message}
        await write_status(shared, wk, undone, status)
        message = f"revision {revision_number(undone)} " + message
    condition = {
        "type": CONDITION_ROLLED_BACK,
        "status": "True",
        "reason": request.reason,
        "message": message,
        "lastTransitionTime": stamp(now())[:19] + "Z",
    }
    entry = None
    for _ in range(8):  # status reports land on the workload all the time: retry on a conflict
        entry = shared.store.get(info.key(wk.cluster, wk.namespace, wk.name))
        if entry is None:
            return
        status = dict(entry.obj.get("status") or {})
        status["conditions"] = set_condition(status.get("conditions"), condition)
        body = {**entry.obj, "status": status}
        body["metadata"] = {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}
        try:
            await shared.service.update(info, wk.cluster, wk.namespace, wk.name, body, shared.opts, "status")
            break
        except errors.StatusError as e:
            if e.code != 409:
                raise
            await _settle(shared)
    assert entry is not None
    kind = "Normal" if not request.automatic else "Warning"
    await shared.events.record(wk.cluster, entry.obj, kind, "RolledBack", message)
