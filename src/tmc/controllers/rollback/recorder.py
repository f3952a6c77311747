"""Recording revisions: when a placed workload's template or the content it references no longer matches its newest
WorkloadRevision, write the next one (Secret content into a kcp-system Secret first), then prune the oldest beyond
`revisionHistoryLimit`, keeping the newest revision that was healthy everywhere (automatic rollback's target)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import orjson

from tmc.api.rollback import (
    CHANGE_CAUSE_ANNOTATION,
    DEFAULT_HISTORY_LIMIT,
    PROGRESSING,
    REVISION_KIND,
    REVISION_LABEL,
    SNAPSHOT_NAMESPACE,
    SNAPSHOT_NAMESPACE_LABEL,
    SNAPSHOT_SECRET_TYPE,
    SUPERSEDED,
    WORKLOAD_KIND_LABEL,
    WORKLOAD_NAME_LABEL,
    WORKLOAD_REVISIONS,
    revision_name,
)
from tmc.api.tmcgroup import API_VERSION
from tmc.apimachinery import errors
from tmc.controllers.rollback import metrics
from tmc.controllers.rollback.authors import newest_author
from tmc.controllers.rollback.context import SECRETS, Shared, WorkloadKey, now, stamp
from tmc.controllers.rollback.plan import revision_number
from tmc.controllers.rollback.snapshot import (
    configmap_entry,
    fingerprint,
    referenced,
    secret_entry,
    template_of,
)

log = logging.getLogger("tmc.controllers.rollback")
SNAPSHOT_KEY = "secrets.json"


def snapshot_name(namespace: str, revision: str) -> str:
    return f"{namespace}.{revision}"[:253]


def current_state(shared: Shared, wk: WorkloadKey, obj: dict[str, Any]) -> dict[str, Any]:
    """The revision-relevant state of the workload now: template, referenced content, fingerprint, live Secrets."""
    cm_names, secret_names = referenced(obj)
    cms = shared.named_some("configmaps", wk, cm_names)
    secrets = shared.named_some("secrets", wk, secret_names)
    template = template_of(obj)
    cm_entries = [configmap_entry(n, cms.get(n)) for n in cm_names]
    secret_entries = [secret_entry(n, secrets.get(n)) for n in secret_names]
    return {
        "template": template,
        "configMaps": cm_entries,
        "secrets": secret_entries,
        "fingerprint": fingerprint(template, cm_entries, secret_entries),
        "live_configmaps": cms,
        "live_secrets": secrets,
    }


def _author(obj: dict[str, Any], state: dict[str, Any]) -> dict[str, str]:
    """The newest change among the workload and the objects it references, from their author annotations."""
    newest = newest_author([obj, *state["live_configmaps"].values(), *state["live_secrets"].values()])
    if newest is not None:
        return {"user": newest["user"], "fieldManager": newest["fieldManager"]}
    # Written before authors were stamped on objects: the newest managedFields entry still names the manager.
    entries = sorted(
        ((obj.get("metadata") or {}).get("managedFields") or ()), key=lambda e: str(e.get("time", "")), reverse=True
    )
    manager = next((str(e.get("manager", "")) for e in entries if not e.get("subresource")), "")
    return {"user": "", "fieldManager": manager}


async def record(shared: Shared, wk: WorkloadKey, kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """Write a new revision when the workload's state differs from its newest one; returns the newest revision."""
    state = current_state(shared, wk, obj)
    revisions = shared.revisions(wk, kind)
    latest = revisions[-1] if revisions else None
    if latest is not None and (latest.get("spec") or {}).get("fingerprint") == state["fingerprint"]:
        return latest
    key = f"/registry/{wk.group or 'core'}/{wk.plural}/{wk.cluster}/{wk.namespace}/{wk.name}"
    number = (revision_number(latest) if latest else 0) + 1
    name = revision_name(kind, wk.name, number)
    md = obj.get("metadata") or {}
    spec: dict[str, Any] = {
        "workloadRef": {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": kind,
            "name": wk.name,
            "uid": md.get("uid", ""),
        },
        "revision": number,
        "template": state["template"],
        "configMaps": state["configMaps"],
        "secrets": state["secrets"],
        "fingerprint": state["fingerprint"],
        "author": _author(obj, state),
        "changeCause": str((md.get("annotations") or {}).get(CHANGE_CAUSE_ANNOTATION, "")),
    }
    if latest is not None and spec["changeCause"] == (latest.get("spec") or {}).get("changeCause"):
        spec["changeCause"] = _what_changed(latest.get("spec") or {}, spec) or spec["changeCause"]
    pending = shared.pending.get(key)
    if pending is not None:
        if pending.fingerprint == state["fingerprint"]:
            spec["changeCause"] = pending.cause
            spec["rollbackTo"] = pending.rollback_to
            spec["automatic"] = pending.automatic
            spec["author"] = {"user": pending.user, "fieldManager": spec["author"]["fieldManager"]}
        else:
            shared.pending.pop(key, None)  # someone else's change came in between: theirs is recorded as theirs
    if any(s.get("present") for s in state["secrets"]):
        spec["snapshotSecret"] = await _write_snapshot(shared, wk, name, state["live_secrets"])
    body = {
        "apiVersion": API_VERSION,
        "kind": REVISION_KIND,
        "metadata": {
            "name": name,
            "namespace": wk.namespace,
            "labels": {
                WORKLOAD_KIND_LABEL: kind.lower(),
                WORKLOAD_NAME_LABEL: wk.name[:63],
                REVISION_LABEL: str(number),
            },
            "ownerReferences": [
                {
                    "apiVersion": obj.get("apiVersion", ""),
                    "kind": kind,
                    "name": wk.name,
                    "uid": md.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
    try:
        created = await shared.service.create(WORKLOAD_REVISIONS, wk.cluster, wk.namespace, body, shared.opts)
    except errors.StatusError as e:
        if e.code != 409:
            raise
        return None  # recorded by a reconcile that raced this one; the next pass sees it
    # Its status (phase, startedAt, clusters) is written by the tracker: not before STATUS_INTERVAL while it stays
    # Progressing, at once when its phase changes, so a rollout done within that interval costs one status write.
    started = now()
    shared.progress[str(created["metadata"].get("uid", ""))] = (started, {"startedAt": stamp(started)})
    if latest is not None:
        seen = shared.progress.pop(str(latest["metadata"].get("uid", "")), None)
        stored = shared.store.get(WORKLOAD_REVISIONS.key(wk.cluster, wk.namespace, latest["metadata"]["name"]))
        last = (stored.obj if stored else latest).get("status") or {}
        if seen is not None and last.get("phase", PROGRESSING) == PROGRESSING:
            last = seen[1]  # what the tracker saw since its last write
        if last.get("phase", PROGRESSING) == PROGRESSING:
            await write_status(shared, wk, latest, {**last, "phase": SUPERSEDED})
    await prune(shared, wk, [*revisions, created], _history_limit(obj))
    metrics.REVISIONS.labels(kind).inc()
    return created


def _what_changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    """For a change that left the change-cause annotation as it was: what changed, e.g. "configmap/web-config"."""
    parts = [] if before.get("template") == after.get("template") else ["template"]
    for section, word, digest in (("configMaps", "configmap", "data"), ("secrets", "secret", "sha256")):
        old = {e.get("name"): (e.get("present"), e.get(digest)) for e in before.get(section) or ()}
        for entry in after.get(section) or ():
            if old.get(entry.get("name")) != (entry.get("present"), entry.get(digest)):
                parts.append(f"{word}/{entry.get('name')}")
    return f"changed: {', '.join(parts)}" if parts and parts != ["template"] else ""


def _history_limit(obj: dict[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("revisionHistoryLimit")
    return int(value) if isinstance(value, int) and value >= 0 else DEFAULT_HISTORY_LIMIT


async def write_status(shared: Shared, wk: WorkloadKey, rev: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """Write a revision's status over its stored state (read again on a conflict); the object as it is then."""
    name = str(rev["metadata"]["name"])
    for _ in range(5):
        entry = shared.store.get(WORKLOAD_REVISIONS.key(wk.cluster, wk.namespace, name))
        if entry is None:
            return rev
        if entry.obj.get("status") == status:
            return entry.obj
        body = {**entry.obj, "status": status}
        body["metadata"] = {**entry.obj["metadata"], "resourceVersion": str(entry.rev)}
        try:
            return await shared.service.update(
                WORKLOAD_REVISIONS, wk.cluster, wk.namespace, name, body, shared.opts, "status"
            )
        except errors.StatusError as e:
            if e.code != 409:
                raise
    return rev


async def _write_snapshot(shared: Shared, wk: WorkloadKey, revision: str, secrets: dict[str, dict[str, Any]]) -> str:
    """The referenced Secrets' type and data, in one Secret in kcp-system (which no Placement can select)."""
    await shared.service.ensure_namespace(wk.cluster, SNAPSHOT_NAMESPACE)
    content = {n: {"type": s.get("type", ""), "data": s.get("data") or {}} for n, s in sorted(secrets.items())}
    name = snapshot_name(wk.namespace, revision)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SNAPSHOT_SECRET_TYPE,
        "metadata": {"name": name, "namespace": SNAPSHOT_NAMESPACE, "labels": {SNAPSHOT_NAMESPACE_LABEL: wk.namespace}},
        "data": {SNAPSHOT_KEY: base64.b64encode(orjson.dumps(content)).decode()},
    }
    try:
        await shared.service.create(SECRETS, wk.cluster, SNAPSHOT_NAMESPACE, body, shared.opts)
    except errors.StatusError as e:
        if e.code != 409:  # 409: written by an earlier attempt at this revision
            raise
    return name


def read_snapshot(shared: Shared, cluster: str, name: str) -> dict[str, dict[str, Any]] | None:
    """The Secrets a snapshot holds ({name: {type, data}}), or None when the snapshot is gone."""
    entry = shared.store.get(SECRETS.key(cluster, SNAPSHOT_NAMESPACE, name)) if name else None
    if entry is None:
        return None
    raw = (entry.obj.get("data") or {}).get(SNAPSHOT_KEY, "")
    decoded: dict[str, dict[str, Any]] = orjson.loads(base64.b64decode(raw)) if raw else {}
    return decoded


async def prune(shared: Shared, wk: WorkloadKey, revisions: list[dict[str, Any]], limit: int) -> None:
    """Delete the oldest revisions beyond `limit`, except the newest healthy one (and the newest of all)."""
    ordered = sorted(revisions, key=revision_number)
    keep_healthy = next((r for r in reversed(ordered) if (r.get("status") or {}).get("healthy")), None)
    excess = len(ordered) - max(limit, 1)
    for rev in ordered[:-1]:
        if excess <= 0:
            break
        if rev is keep_healthy:
            continue
        await delete_revision(shared, wk, rev)
        excess -= 1


async def delete_revision(shared: Shared, wk: WorkloadKey, rev: dict[str, Any]) -> None:
    with errors.ignore_not_found():
        await shared.service.delete(
            WORKLOAD_REVISIONS, wk.cluster, wk.namespace, str(rev["metadata"]["name"]), {}, False
        )
    snapshot = str((rev.get("spec") or {}).get("snapshotSecret") or "")
    if snapshot:
        with errors.ignore_not_found():
            await shared.service.delete(SECRETS, wk.cluster, SNAPSHOT_NAMESPACE, snapshot, {}, False)
    metrics.REVISIONS.labels(str((rev.get("spec") or {}).get("workloadRef", {}).get("kind", ""))).dec()
