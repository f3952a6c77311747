"""The kcp protocol names and kubectl's age format, as the CLI's hot path reads them.

`tmc.api.workload` and `tmc.apimachinery.printers` define these, but importing them builds the built-in resource
table and its schema index (~65 ms), which `kubectl tmc get st` never uses; its start-up budget cannot carry that. So
the values are restated here and tests/unit/test_cli_output.py pins each one to its source: any drift fails the tests.
"""

from __future__ import annotations

import datetime
from typing import Any

STATE_LABEL_PREFIX = "state.workload.kcp.io/"
DELETION_ANNOTATION_PREFIX = "deletion.internal.workload.kcp.io/"
STATUS_DIFF_ANNOTATION_PREFIX = "diff.syncer.internal.kcp.io/"
STATUS_PROMOTED = "##promoted##"
SYNC_TARGET_KEY_LABEL = "internal.workload.kcp.io/key"
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
CONDITION_READY = "Ready"
CONDITION_HEALTHY = "Healthy"


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration ("5s", "3m12s", "2d4h"), as tmc.apimachinery.printers has it."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp (UTC when it names no zone); None when unset or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def since(value: Any, now: datetime.datetime) -> str:
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration((now - t).total_seconds())
