"""Before an undo: a canary in progress on the workload is aborted through the canary controller's own API (the
`canary.tmc.kcp.io/action: abort@<token>` annotation on its CanaryDeployment), and the undo waits until the canary
reports RolledBack: weight 0 in every cluster first (Failed), then its objects cleaned up (RolledBack). A canary that
is Pending (nothing started) or done (Succeeded, RolledBack) is left alone.
"""

from __future__ import annotations

import os
from typing import Any

from tmc.api.canary import ACTION_ANNOTATION, ANALYZING, CANARY_DEPLOYMENTS, FAILED, PAUSED, PROGRESSING
from tmc.api.rollback import CANARY_ABORT_TOKEN_PREFIX
from tmc.apimachinery import errors
from tmc.controllers.rollback.context import Shared, WorkloadKey

ACTIVE_PHASES = frozenset({PROGRESSING, ANALYZING, PAUSED})
ABORTING_PHASES = frozenset({FAILED})  # weight 0 written, canary objects not yet cleaned up


def _canaries(shared: Shared, wk: WorkloadKey, kind: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for entry in shared.store.list(CANARY_DEPLOYMENTS.key_prefix(wk.cluster, wk.namespace)):
        ref = (entry.obj.get("spec") or {}).get("targetRef") or {}
        if ref.get("name") == wk.name and ref.get("kind", "Deployment") == kind:
            out.append((entry.key, entry.obj))
    return out


async def abort_canary(shared: Shared, wk: WorkloadKey, kind: str) -> bool:
    """True when no canary of the workload is in progress (any there was is aborted and cleaned up)."""
    ready = True
    for _, canary in _canaries(shared, wk, kind):
        status = canary.get("status") or {}
        phase = status.get("phase", "")
        if phase in ABORTING_PHASES:
            ready = False  # traffic is back on stable; cleanup is under way
            continue
        if phase not in ACTIVE_PHASES:
            continue
        ready = False
        annotations = (canary.get("metadata") or {}).get("annotations") or {}
        if str(annotations.get(ACTION_ANNOTATION, "")).startswith("abort@"):
            continue  # asked already; the canary controller has not acted yet
        info = CANARY_DEPLOYMENTS
        body = {**canary, "metadata": {**canary["metadata"]}}
        body["metadata"].pop("resourceVersion", None)  # an unconditional write: only the annotation is ours
        token = f"{CANARY_ABORT_TOKEN_PREFIX}{os.urandom(4).hex()}"
        body["metadata"]["annotations"] = {**annotations, ACTION_ANNOTATION: f"abort@{token}"}
        with errors.ignore_not_found():
            try:
                await shared.service.update(
                    info, wk.cluster, wk.namespace, canary["metadata"]["name"], body, shared.opts
                )
            except errors.StatusError as e:
                if e.code != 409:
                    raise
    return ready
