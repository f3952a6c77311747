"""Who changed what a revision is made of, kept on the object itself.

Kubernetes objects do not carry their writer's user (managedFields name only the manager), and a memory of writes
in the hub process is lost on a restart and not shared between hub replicas. So the write that changes a tracked
workload's pod template (an opted-in custom resource's spec), a ConfigMap's or Secret's content, or that asks for
an undo, gets the `rollback.tmc.kcp.io/changed-by` annotation {user, fieldManager, time} in that same write, from
the object service's stamp hook on whichever replica serves it. The recorder reads it back when it records the
revision, however much later that is.
"""

from __future__ import annotations

from typing import Any

import orjson

from tmc.api.rollback import AUTHOR_ANNOTATION, SNAPSHOT_NAMESPACE, UNDO_ANNOTATION
from tmc.apimachinery.resources import ResourceInfo
from tmc.controllers.rollback.context import now, stamp
from tmc.controllers.rollback.snapshot import template_of, tracked
from tmc.registry.service import WriteOptions

_CONTENT_FIELDS = ("data", "binaryData", "type")
_HUB_GROUPS = frozenset({"tmc.kcp.io", "workload.kcp.io", "scheduling.kcp.io", "tenancy.kcp.io"})


def _annotations(obj: dict[str, Any] | None) -> dict[str, Any]:
    found = ((obj or {}).get("metadata") or {}).get("annotations")
    return found if isinstance(found, dict) else {}


def _changed(info: ResourceInfo, old: dict[str, Any] | None, new: dict[str, Any]) -> bool | None:
    """Whether the write changes what a revision records; None for objects no revision reads."""
    if info.group == "" and info.plural in ("configmaps", "secrets"):
        return old is None or any(old.get(f) != new.get(f) for f in _CONTENT_FIELDS)
    if info.group in _HUB_GROUPS or not tracked(info.group, info.plural, new):
        return None
    if old is None or template_of(old) != template_of(new):
        return True
    asked = _annotations(new).get(UNDO_ANNOTATION)
    return asked is not None and asked != _annotations(old).get(UNDO_ANNOTATION)


def stamp_author(info: ResourceInfo, opts: WriteOptions, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """The object service's stamp hook: the author annotation on `new`, set by a change, else kept as it was (it is
    the hub's field: a replace that leaves it out does not remove it)."""
    md = new.get("metadata")
    if not info.namespaced or not isinstance(md, dict) or md.get("namespace") == SNAPSHOT_NAMESPACE:
        return
    changed = _changed(info, old, new)
    if changed is None:
        return
    annotations = _annotations(new)
    if changed:
        value = {"user": opts.user, "fieldManager": opts.field_manager, "time": stamp(now())}
        md["annotations"] = {**annotations, AUTHOR_ANNOTATION: orjson.dumps(value).decode()}
        return
    before = _annotations(old).get(AUTHOR_ANNOTATION)
    if before is not None and annotations.get(AUTHOR_ANNOTATION) != before:
        md["annotations"] = {**annotations, AUTHOR_ANNOTATION: before}


def author_of(obj: dict[str, Any] | None) -> dict[str, str] | None:
    """{user, fieldManager, time} from an object's author annotation; None when it has none (or a broken one)."""
    raw = _annotations(obj).get(AUTHOR_ANNOTATION)
    if not isinstance(raw, str):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    return {k: str(value.get(k) or "") for k in ("user", "fieldManager", "time")}


def newest_author(objects: list[dict[str, Any] | None]) -> dict[str, str] | None:
    """The most recent author among a workload and the ConfigMaps and Secrets it reads."""
    found = [a for a in (author_of(o) for o in objects) if a is not None]
    return max(found, key=lambda a: a["time"]) if found else None
