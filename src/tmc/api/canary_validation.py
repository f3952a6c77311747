"""Value rules of CanaryDeployment (422 causes naming the field): the target, exactly one router, steps with one
action each and weights 0-100, durations, step thresholds that name a metric of spec.analysis, and the first wave
(a valid selector, a known gate, and a mesh router: without one the Placement divides the canary's replicas, which
cannot differ per wave).

The analysis block itself (providers, conditions, templates) is the analysis engine's to check; the canary
controller's wiring adds that check at admission, since this layer cannot import the engine.
"""

from __future__ import annotations

import re
from typing import Any

from tmc.api.canary import GATES, OPERATORS, ROUTERS, STEP_KINDS
from tmc.apimachinery.validation_common import (
    Cause,
    forbidden,
    invalid,
    is_dns1123_subdomain,
    not_supported,
    required,
    validate_label_selector,
)

_DURATION = re.compile(r"^(\d+(\.\d+)?)(ms|s|m|h)?$")


def duration_seconds(value: Any) -> float | None:
    """Seconds of an int-or-string duration (`30`, `"30s"`, `"2m"`), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    m = _DURATION.match(value.strip())
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(3) or "s"]
    return float(m.group(1)) * scale


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _name(bag: dict[str, Any], key: str, path: str, out: list[Cause], need: bool) -> None:
    value = bag.get(key)
    if value in (None, ""):
        if need:
            out.append(required(f"{path}.{key}"))
        return
    problems = is_dns1123_subdomain(str(value))
    if problems:
        out.append(invalid(f"{path}.{key}", value, "; ".join(problems)))


def _duration(bag: dict[str, Any], path: str, out: list[Cause]) -> None:
    if "duration" in bag and duration_seconds(bag["duration"]) is None:
        out.append(invalid(f"{path}.duration", bag["duration"], "must be seconds or a duration such as 30s, 2m, 1h"))


def _routing(spec: dict[str, Any], out: list[Cause]) -> None:
    routing = spec.get("trafficRouting")
    if not isinstance(routing, dict):
        out.append(required("spec.trafficRouting", "a router: one of istio, gatewayAPI, replicas"))
        return
    chosen = [k for k in ROUTERS if k in routing]
    if len(chosen) != 1:
        detail = f"must set exactly one of {', '.join(ROUTERS)}"
        out.append(
            invalid("spec.trafficRouting", sorted(chosen), detail)
            if chosen
            else required("spec.trafficRouting", detail)
        )
        return
    if chosen[0] == "istio":
        istio = _dict(routing["istio"])
        _name(_dict(istio.get("virtualService")), "name", "spec.trafficRouting.istio.virtualService", out, need=True)
        if "destinationRule" in istio:
            _destination_rule(_dict(istio["destinationRule"]), out)
    elif chosen[0] == "gatewayAPI":
        _name(_dict(routing["gatewayAPI"]), "httpRoute", "spec.trafficRouting.gatewayAPI", out, need=True)


def _destination_rule(dr: dict[str, Any], out: list[Cause]) -> None:
    path = "spec.trafficRouting.istio.destinationRule"
    _name(dr, "name", path, out, need=True)
    for key in ("stableSubsetName", "canarySubsetName"):
        _name(dr, key, path, out, need=False)
    if (dr.get("stableSubsetName") or "stable") == (dr.get("canarySubsetName") or "canary"):
        out.append(invalid(f"{path}.canarySubsetName", dr.get("canarySubsetName"), "must differ from stableSubsetName"))


def _clusters(spec: dict[str, Any], out: list[Cause]) -> None:
    if "clusters" not in spec:
        return
    clusters = spec["clusters"]
    if not isinstance(clusters, dict):
        out.append(invalid("spec.clusters", clusters, "must be an object"))
        return
    selector = clusters.get("syncTargetSelector")
    path = "spec.clusters.syncTargetSelector"
    if selector is None:
        out.append(required(path, "the first wave's SyncTargets"))
    elif not isinstance(selector, dict):
        out.append(invalid(path, selector, "must be a label selector"))
    else:
        validate_label_selector(selector, path, out)
    if clusters.get("gate") not in (None, *GATES):
        out.append(not_supported("spec.clusters.gate", clusters.get("gate"), GATES))
    if "replicas" in _dict(spec.get("trafficRouting")):
        out.append(
            forbidden(
                path,
                "a first wave needs trafficRouting.istio or trafficRouting.gatewayAPI: with trafficRouting.replicas "
                "the Placement divides the canary's replicas across all clusters alike",
            )
        )


def _metric_names(spec: dict[str, Any]) -> list[str]:
    metrics = _dict(spec.get("analysis")).get("metrics")
    return (
        [str(m.get("name")) for m in metrics if isinstance(m, dict) and m.get("name")]
        if isinstance(metrics, list)
        else []
    )


def _steps(spec: dict[str, Any], out: list[Cause]) -> None:
    steps = spec.get("steps")
    if steps is None:
        return
    metrics = _metric_names(spec)
    for i, raw in enumerate(steps if isinstance(steps, list) else []):
        path = f"spec.steps[{i}]"
        step = _dict(raw)
        kinds = [k for k in STEP_KINDS if k in step]
        if len(kinds) != 1:
            detail = f"must set exactly one of {', '.join(STEP_KINDS)}"
            out.append(invalid(path, sorted(kinds), detail) if kinds else required(path, detail))
            continue
        kind = kinds[0]
        if kind == "setWeight":
            weight = step["setWeight"]
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                out.append(invalid(f"{path}.setWeight", weight, "must be between 0 and 100, inclusive"))
            continue
        body = _dict(step[kind])
        _duration(body, f"{path}.{kind}", out)
        if kind != "analysis":
            continue
        if not metrics:
            out.append(required("spec.analysis.metrics", f"{path} is an analysis step"))
        for j, t in enumerate(body.get("thresholds") or []):
            tp = f"{path}.analysis.thresholds[{j}]"
            t = _dict(t)
            metric = t.get("metric")
            if not metric:
                out.append(required(f"{tp}.metric"))
            elif metric not in metrics:
                out.append(not_supported(f"{tp}.metric", metric, metrics))
            if t.get("operator") not in OPERATORS:
                out.append(not_supported(f"{tp}.operator", t.get("operator"), OPERATORS))
            value = t.get("value")
            if not isinstance(value, int | float) or isinstance(value, bool):
                out.append(required(f"{tp}.value", "a number"))


def validate_canary(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    target = spec.get("targetRef")
    if not isinstance(target, dict):
        out.append(required("spec.targetRef"))
    else:
        if target.get("kind") != "Deployment":
            out.append(not_supported("spec.targetRef.kind", target.get("kind"), ("Deployment",)))
        if target.get("apiVersion") not in (None, "", "apps/v1"):
            out.append(not_supported("spec.targetRef.apiVersion", target.get("apiVersion"), ("apps/v1",)))
        _name(target, "name", "spec.targetRef", out, need=True)
    _name(_dict(spec.get("service")), "name", "spec.service", out, need=False)
    _routing(spec, out)
    _clusters(spec, out)
    _steps(spec, out)
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline < 1):
        out.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than or equal to 1"))
