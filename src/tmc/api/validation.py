"""Semantic validation of SyncTarget, Location and Placement (422 Invalid causes, worded like upstream's).

`check_fields` only checks JSON types and unknown fields against a kind's schema; it ignores `enum`, `minimum` and
`required`. These rules enforce them, plus the cross-field rules a CRD would state in CEL (taint/toleration
semantics, static weights only with Divided). kcp v0.11 manifests satisfy all of them, so they still apply.

Call `validate_tmc(info, obj, old)` after `validate_builtin` in `tmc.registry.admission.admit`; it returns [] for
every other kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard

from tmc.api import canary, rollback, scheduling, workload
from tmc.api.canary_validation import validate_canary
from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.validation_common import (
    Cause,
    duplicate,
    forbidden,
    invalid,
    is_label_value,
    is_qualified_name,
    not_supported,
    required,
    validate_label_selector,
)

Rule = Callable[[dict[str, Any], dict[str, Any] | None, list[Cause]], None]

# kcp's pattern for a logical cluster path such as root:org:ws.
_CLUSTER_PATH = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CLUSTER_PATH_MSG = "must be a workspace path: lower-case alphanumeric segments with '-', separated by ':'"
_MIN_ONE = "must be greater than or equal to 1"
_MIN_ZERO = "must be greater than or equal to 0"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [v if isinstance(v, dict) else {} for v in value] if isinstance(value, list) else []


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _enum(
    bag: dict[str, Any], key: str, path: str, values: Iterable[str], out: list[Cause], need: bool = False
) -> None:
    """`bag[key]` must be one of `values`; absent (or "") is allowed unless `need`."""
    value = bag.get(key)
    if value is None or value == "":
        if need:
            out.append(required(f"{path}.{key}"))
        return
    allowed = tuple(values)
    if value not in allowed:
        out.append(not_supported(f"{path}.{key}", value, allowed))


def _minimum(bag: dict[str, Any], key: str, path: str, low: int, out: list[Cause]) -> None:
    value = bag.get(key)
    if _is_int(value) and value < low:
        out.append(invalid(f"{path}.{key}", value, _MIN_ONE if low == 1 else _MIN_ZERO))


def _need_text(bag: dict[str, Any], key: str, path: str, out: list[Cause]) -> str:
    value = bag.get(key)
    if not isinstance(value, str) or not value:
        out.append(required(f"{path}.{key}"))
        return ""
    return value


def _qualified(value: str, field: str, out: list[Cause]) -> None:
    for msg in is_qualified_name(value):
        out.append(invalid(field, value, msg))


def _unique(seen: set[Any], value: Any, field: str, out: list[Cause]) -> None:
    if value in seen:
        out.append(duplicate(field, value))
    seen.add(value)


def _conditions(status: dict[str, Any], path: str, out: list[Cause]) -> None:
    seen: set[str] = set()
    for i, cond in enumerate(_items(status.get("conditions"))):
        p = f"{path}.conditions[{i}]"
        ctype = _need_text(cond, "type", p, out)
        if ctype:
            _unique(seen, ctype, f"{p}.type", out)
        _enum(cond, "status", p, workload.CONDITION_STATUSES, out, need=True)
        _enum(cond, "severity", p, workload.CONDITION_SEVERITIES, out)


def _selectors(bag: dict[str, Any], keys: Iterable[str], path: str, out: list[Cause]) -> None:
    for key in keys:
        validate_label_selector(bag.get(key), f"{path}.{key}", out)


def _gvr(bag: dict[str, Any], key: str, path: str, out: list[Cause]) -> None:
    value = bag.get(key)
    if not isinstance(value, dict):
        out.append(required(f"{path}.{key}"))
        return
    p = f"{path}.{key}"
    expected = scheduling.LOCATION_RESOURCE
    _enum(value, "group", p, (expected["group"],), out)
    _enum(value, "version", p, (expected["version"],), out, need=True)
    _enum(value, "resource", p, (expected["resource"],), out, need=True)


# --- SyncTarget -------------------------------------------------------------------------------------------------


def _validate_sync_target(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    for i, ref in enumerate(_items(spec.get("supportedAPIExports"))):
        p = f"spec.supportedAPIExports[{i}]"
        _need_text(ref, "export", p, out)
        path = ref.get("path")
        if isinstance(path, str) and path and not _CLUSTER_PATH.fullmatch(path):
            out.append(invalid(f"{p}.path", path, _CLUSTER_PATH_MSG))
    seen: set[Any] = set()
    for i, cap in enumerate(_items(spec.get("capabilities"))):
        ctype = _need_text(cap, "type", f"spec.capabilities[{i}]", out)
        if ctype:
            _unique(seen, ctype, f"spec.capabilities[{i}].type", out)
    seen = set()
    for i, taint in enumerate(_items(spec.get("taints"))):
        p = f"spec.taints[{i}]"
        key = _need_text(taint, "key", p, out)
        if key:
            _qualified(key, f"{p}.key", out)
        value = taint.get("value")
        if isinstance(value, str):
            for msg in is_label_value(value):
                out.append(invalid(f"{p}.value", value, msg))
        _enum(taint, "effect", p, workload.TAINT_EFFECTS, out, need=True)
        if key and taint.get("effect"):
            # As on Nodes: one taint per key and effect, so a toleration's match is unambiguous.
            pair = (key, taint["effect"])
            if pair in seen:
                out.append(duplicate(p, f"{key}:{taint['effect']}"))
            seen.add(pair)
    rf = _dict(spec.get("resourceFilter"))
    seen = set()
    for i, rt in enumerate(rf.get("resourceTypes") or []):
        if not rt:
            out.append(required(f"spec.resourceFilter.resourceTypes[{i}]"))
        else:
            _unique(seen, rt, f"spec.resourceFilter.resourceTypes[{i}]", out)
    _selectors(rf, ("namespaceSelector", "labelSelector", "annotationSelector"), "spec.resourceFilter", out)

    status = _dict(obj.get("status"))
    _conditions(status, "status", out)
    for i, res in enumerate(_items(status.get("syncedResources"))):
        p = f"status.syncedResources[{i}]"
        _need_text(res, "resource", p, out)
        if not res.get("versions"):
            out.append(required(f"{p}.versions", "must have at least 1 item"))
        _enum(res, "state", p, workload.RESOURCE_STATES, out)
    counters = _dict(status.get("syncerStatus"))
    for key in ("syncedResources", "pendingResources", "failedResources"):
        _minimum(counters, key, "status.syncerStatus", 0, out)


# --- Location ---------------------------------------------------------------------------------------------------


def _validate_location(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    _gvr(spec, "resource", "spec", out)
    seen: set[Any] = set()
    for i, label in enumerate(_items(spec.get("availableSelectorLabels"))):
        p = f"spec.availableSelectorLabels[{i}]"
        key = _need_text(label, "key", p, out)
        if key:
            _qualified(key, f"{p}.key", out)
            _unique(seen, key, f"{p}.key", out)
        values = label.get("values")
        if not values:
            out.append(required(f"{p}.values", "must have at least 1 item"))
        for j, value in enumerate(values if isinstance(values, list) else []):
            for msg in is_label_value(str(value)):
                out.append(invalid(f"{p}.values[{j}]", value, msg))
    validate_label_selector(spec.get("instanceSelector"), "spec.instanceSelector", out)
    status = _dict(obj.get("status"))
    _minimum(status, "instances", "status", 0, out)
    _minimum(status, "availableInstances", "status", 0, out)


# --- Placement --------------------------------------------------------------------------------------------------


def _validate_replica_scheduling(rs: dict[str, Any], out: list[Cause]) -> None:
    p = "spec.replicaScheduling"
    _enum(rs, "type", p, scheduling.REPLICA_SCHEDULING_TYPES, out)
    _enum(rs, "dynamicWeight", p, scheduling.DYNAMIC_WEIGHTS, out)
    weights = _items(rs.get("weights"))
    for i, entry in enumerate(weights):
        wp = f"{p}.weights[{i}]"
        if not isinstance(entry.get("syncTargetSelector"), dict):
            out.append(required(f"{wp}.syncTargetSelector"))
        validate_label_selector(entry.get("syncTargetSelector"), f"{wp}.syncTargetSelector", out)
        if entry.get("weight") is None:
            out.append(required(f"{wp}.weight"))
        _minimum(entry, "weight", wp, 0, out)
    # Weights only say how to divide; with Duplicated (the default) every target runs all replicas.
    divided = rs.get("type") == "Divided"
    if weights and not divided:
        out.append(forbidden(f"{p}.weights", "may only be set when type is Divided"))
    if rs.get("dynamicWeight") and not divided:
        out.append(forbidden(f"{p}.dynamicWeight", "may only be set when type is Divided"))
    if weights and rs.get("dynamicWeight"):
        out.append(forbidden(f"{p}.dynamicWeight", "may not be set together with weights"))


def _validate_tolerations(tolerations: list[dict[str, Any]], out: list[Cause]) -> None:
    for i, tol in enumerate(tolerations):
        p = f"spec.tolerations[{i}]"
        key, op = tol.get("key") or "", tol.get("operator") or "Equal"
        if key:
            _qualified(str(key), f"{p}.key", out)
        _enum(tol, "operator", p, scheduling.TOLERATION_OPERATORS, out)
        _enum(tol, "effect", p, workload.TAINT_EFFECTS, out)
        # The Pod rules: an empty key means "every taint", which only Exists can express.
        if not key and op != "Exists":
            out.append(invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty"))
        if op == "Exists" and tol.get("value"):
            out.append(invalid(f"{p}.operator", op, "value must be empty when `operator` is 'Exists'"))
        value = tol.get("value")
        if isinstance(value, str) and op == "Equal":
            for msg in is_label_value(value):
                out.append(invalid(f"{p}.value", value, msg))


def _validate_placement(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    _gvr(spec, "locationResource", "spec", out)
    for i, sel in enumerate(spec.get("locationSelectors") or []):
        validate_label_selector(sel, f"spec.locationSelectors[{i}]", out)
    _selectors(spec, ("namespaceSelector", "workloadSelector", "syncTargetSelector"), "spec", out)
    ws = spec.get("locationWorkspace")
    if isinstance(ws, str) and ws and not _CLUSTER_PATH.fullmatch(ws):
        out.append(invalid("spec.locationWorkspace", ws, _CLUSTER_PATH_MSG))
    _enum(spec, "strategy", "spec", scheduling.STRATEGIES, out)
    _minimum(spec, "numberOfTargets", "spec", 1, out)
    _validate_replica_scheduling(_dict(spec.get("replicaScheduling")), out)
    seen: set[Any] = set()
    for i, sc in enumerate(_items(spec.get("spreadConstraints"))):
        p = f"spec.spreadConstraints[{i}]"
        key = _need_text(sc, "topologyKey", p, out)
        if key:
            _qualified(key, f"{p}.topologyKey", out)
            _unique(seen, key, f"{p}.topologyKey", out)
        _minimum(sc, "minGroups", p, 1, out)
        _minimum(sc, "maxGroups", p, 1, out)
        low, high = sc.get("minGroups"), sc.get("maxGroups")
        if _is_int(low) and _is_int(high) and high < low:
            out.append(invalid(f"{p}.maxGroups", high, "must be greater than or equal to minGroups"))
    seen = set()
    for i, req in enumerate(_items(spec.get("capabilityRequirements"))):
        ctype = _need_text(req, "type", f"spec.capabilityRequirements[{i}]", out)
        if ctype:
            _unique(seen, ctype, f"spec.capabilityRequirements[{i}].type", out)
    _validate_tolerations(_items(spec.get("tolerations")), out)

    status = _dict(obj.get("status"))
    _enum(status, "phase", "status", scheduling.PLACEMENT_PHASES, out)
    selected = status.get("selectedLocation")
    if isinstance(selected, dict):
        _need_text(selected, "path", "status.selectedLocation", out)
        _need_text(selected, "locationName", "status.selectedLocation", out)
    seen = set()
    for i, decision in enumerate(_items(status.get("decisions"))):
        p = f"status.decisions[{i}]"
        target = decision.get("syncTarget")
        if not isinstance(target, dict):
            out.append(required(f"{p}.syncTarget"))
        else:
            name = _need_text(target, "name", f"{p}.syncTarget", out)
            if name:
                _unique(seen, f"{target.get('workspace') or ''}:{name}".lstrip(":"), f"{p}.syncTarget", out)
        _minimum(decision, "weight", p, 0, out)
        _minimum(decision, "replicas", p, 0, out)
    _conditions(status, "status", out)


_RULES: dict[tuple[str, str], Rule] = {
    (workload.GROUP, "SyncTarget"): _validate_sync_target,
    (scheduling.GROUP, "Location"): _validate_location,
    (scheduling.GROUP, "Placement"): _validate_placement,
    (canary.GROUP, canary.KIND): validate_canary,
    (rollback.GROUP, rollback.REVISION_KIND): rollback.validate_revision,
    (rollback.GROUP, rollback.POLICY_KIND): rollback.validate_policy,
}


def validate_tmc(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Value rules of the TMC kinds on create (`old` None) or update; [] when valid or for any other kind.

    Metadata is `validate_builtin`'s job; this checks spec and status only.
    """
    rule = None if info.crd else _RULES.get((info.group, info.kind))
    if rule is None:
        return []
    out: list[Cause] = []
    rule(obj, old, out)
    return out
