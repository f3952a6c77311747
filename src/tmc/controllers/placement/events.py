"""core/v1 Events from the scheduling controllers, written through ObjectService like any client's.

Repeats of the same (object, type, reason, message) bump `count` and `lastTimestamp` on the existing Event, as
client-go's event correlator does, so a controller that reconciles often does not flood the namespace. Recording
never fails a reconcile: an Event that cannot be written is logged and dropped.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

import orjson

from tmc.apimachinery import errors, meta
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions

FIELD_MANAGER = "tmc-scheduler"  # the field manager its writes are recorded under

log = logging.getLogger("tmc.controllers.events")
EVENTS = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "events")
NORMAL, WARNING = "Normal", "Warning"
_REMEMBERED = 4096


class EventRecorder:
    def __init__(self, service: ObjectService, component: str) -> None:
        self.service = service
        self.component = component
        # (cluster, namespace, uid, type, reason, message) -> (event name, count), least recently used first.
        self._seen: OrderedDict[tuple[str, ...], tuple[str, int]] = OrderedDict()

    async def record(self, cluster: str, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        md = obj.get("metadata") or {}
        namespace = str(md.get("namespace") or "")
        # Events about cluster-scoped objects live in "default", as upstream's recorder puts them.
        event_ns = namespace or "default"
        name = str(md.get("name", ""))
        uid = str(md.get("uid", ""))
        signature = (cluster, event_ns, uid, type_, reason, message)
        now = meta.now_rfc3339()
        try:
            seen = self._seen.get(signature)
            if seen is not None:
                event_name, count = seen
                patch = {"count": count + 1, "lastTimestamp": now}
                with errors.ignore_not_found():  # the Event expired: a new one is created below
                    await self.service.patch(
                        EVENTS,
                        cluster,
                        event_ns,
                        event_name,
                        MERGE_PATCH,
                        orjson.dumps(patch),
                        WriteOptions(field_manager=FIELD_MANAGER),
                    )
                    self._remember(signature, event_name, count + 1)
                    return
            involved = {
                "apiVersion": obj.get("apiVersion", ""),
                "kind": obj.get("kind", ""),
                "name": name,
                "uid": uid,
                "resourceVersion": str(md.get("resourceVersion", "")),
            }
            if namespace:
                involved["namespace"] = namespace
            event_name = f"{name}.{time.time_ns():x}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": event_ns},
                "involvedObject": involved,
                "reason": reason,
                "message": message[:1024],
                "type": type_,
                "source": {"component": self.component},
                "reportingComponent": self.component,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            await self.service.create(EVENTS, cluster, event_ns, body, WriteOptions(field_manager=FIELD_MANAGER))
            self._remember(signature, event_name, 1)
        except errors.StatusError as e:
            # A missing namespace (a workspace without "default") or a racing deletion: the Event is not essential.
            log.debug("event not recorded", extra={"reason": reason, "object": name, "error": str(e)})

    def _remember(self, signature: tuple[str, ...], event_name: str, count: int) -> None:
        self._seen[signature] = (event_name, count)
        self._seen.move_to_end(signature)
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
