"""The sync-control contract between the CLI and the hub/syncer side (pause, force, simulate, cordon/drain).

`tmc.api.workload` and `tmc.api.scheduling` define these names for the hub and the syncer; the CLI restates them, as
cli/names.py does the protocol's, because importing tmc.api builds the built-in resource table (~45 ms of start-up), and
tests/unit/test_cli_output.py pins each copy to its source. All per-target names end in the SyncTarget key
(`tmc.protocol.keys.sync_target_key(workspace, name)`), the same key as
the `state.workload.kcp.io/<key>` labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# On a workload, a hub Namespace or a SyncTarget: "true" pauses every target; on a workload or Namespace a comma list
# of SyncTarget names pauses only those.
PAUSED_ANNOTATION = "sync.tmc.kcp.io/paused"
PAUSED_ALL = "true"
# Written by the syncer on the workload: "Paused" while it holds writes for that target.
STATE_ANNOTATION_PREFIX = "sync.tmc.kcp.io/state."
STATE_PAUSED = "Paused"
# Set by the CLI to a token (a timestamp); the syncer re-syncs and echoes the token in `forced.<key>`.
FORCE_ANNOTATION_PREFIX = "sync.tmc.kcp.io/force."
FORCED_ANNOTATION_PREFIX = "sync.tmc.kcp.io/forced."
# RFC 3339 time of the syncer's last successful write to that target, and a persistent error, if any.
LAST_SYNC_ANNOTATION_PREFIX = "sync.tmc.kcp.io/last-sync."
ERROR_ANNOTATION_PREFIX = "sync.tmc.kcp.io/error."
# Events the syncer records on the workload.
EVENT_SYNC_PAUSED = "SyncPaused"
EVENT_SYNC_RESUMED = "SyncResumed"
# A server-side dry run (`?dryRun=All`) of a Placement returns the scheduler's view of every candidate here:
# [{syncTarget, selected, score, reason, scores: {component: value}}].
CANDIDATES_FIELD = "candidates"


def state_annotation(key: str) -> str:
    return STATE_ANNOTATION_PREFIX + key


def force_annotation(key: str) -> str:
    return FORCE_ANNOTATION_PREFIX + key


def forced_annotation(key: str) -> str:
    return FORCED_ANNOTATION_PREFIX + key


def last_sync_annotation(key: str) -> str:
    return LAST_SYNC_ANNOTATION_PREFIX + key


def error_annotation(key: str) -> str:
    return ERROR_ANNOTATION_PREFIX + key


def paused_targets(value: str | None) -> frozenset[str] | None:
    """The SyncTarget names a `paused` value holds: None when not paused, an empty set for "true" (all)."""
    if value is None:
        return None
    if value.strip().lower() == PAUSED_ALL:
        return frozenset()
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def pause_value(current: str | None, targets: frozenset[str]) -> str:
    """The annotation value after pausing `targets` (empty: all) on top of `current`."""
    held = paused_targets(current)
    if not targets or held == frozenset():
        return PAUSED_ALL
    return ",".join(sorted((held or frozenset()) | targets))


def resume_value(current: str | None, targets: frozenset[str]) -> str | None:
    """The annotation value after resuming `targets` (empty: all); None removes the annotation. Resuming one target
    of an all-targets pause is refused by the caller: "true" has no list to take a name out of."""
    held = paused_targets(current)
    if held is None or not targets:
        return None
    rest = held - targets
    return ",".join(sorted(rest)) if rest else None


def is_paused_for(annotations: Mapping[str, Any], target: str) -> bool:
    held = paused_targets(annotations.get(PAUSED_ANNOTATION))
    return held is not None and (not held or target in held)
