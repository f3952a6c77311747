"""A CanaryDeployment's spec as the controller uses it: steps, router, names, the analysis parsed by the engine
(with the plan-wide defaults folded into every metric), and the pod-template revision hash.

`analysis_causes` is the admission check the API layer cannot make itself: it runs the engine's parser over
spec.analysis and the steps' thresholds and returns its field causes for a 422.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from tmc.api.canary import CANARY_SUFFIX, PRIMARY_SUFFIX, ROLE_LABEL
from tmc.api.canary_validation import duration_seconds
from tmc.controllers.canary import analysis as a

DEFAULT_DEADLINE = 600.0
# Placeholders the controller fills in analysis queries, URLs, headers and bodies (docs/canary.md, Arguments).
ARGS = (
    "namespace",
    "name",
    "canary",
    "stable",
    "workload",
    "service",
    "canaryService",
    "stableService",
    "clusters",
    "memberNamespaces",
)
# Plan-wide analysis fields that apply to every metric that does not set its own.
METRIC_DEFAULTS = ("interval", "failureLimit", "consecutiveErrorLimit", "inconclusiveLimit")


@dataclass(frozen=True)
class Step:
    kind: str  # setWeight | pause | analysis
    weight: int = 0
    duration: float | None = None
    thresholds: tuple[a.Threshold, ...] = ()

    def describe(self) -> str:
        if self.kind == "setWeight":
            return f"setWeight {self.weight}"
        if self.kind == "pause":
            return "pause" + (f" {self.duration:g}s" if self.duration is not None else " (until promoted)")
        extra = ", ".join(f"{t.metric} {t.operator} {t.value:g}" for t in self.thresholds)
        return (
            "analysis"
            + (f" {self.duration:g}s" if self.duration is not None else "")
            + (f" [{extra}]" if extra else "")
        )


@dataclass(frozen=True)
class Plan:
    name: str
    namespace: str
    target: str
    service: str
    port: int
    router: str  # istio | gatewayAPI | replicas
    router_object: str  # the VirtualService or HTTPRoute name ("" for replicas)
    routes: tuple[str, ...]
    steps: tuple[Step, ...]
    analysis: a.AnalysisSpec | None
    deadline: float = DEFAULT_DEADLINE
    auto_promote: bool = True
    paused: bool = False
    raw_analysis: dict[str, Any] = field(default_factory=dict)
    # spec.clusters: the first wave's SyncTarget selector (None: one wave, every cluster) and the gate after it.
    first_wave: dict[str, Any] | None = None
    manual_gate: bool = False
    # spec.trafficRouting.istio.destinationRule: (name, stable subset, canary subset), or None for two Services.
    destination_rule: tuple[str, str, str] | None = None

    @property
    def stable(self) -> str:
        return self.target + PRIMARY_SUFFIX

    @property
    def stable_service(self) -> str:
        return self.service + PRIMARY_SUFFIX

    @property
    def canary_service(self) -> str:
        return self.service + CANARY_SUFFIX

    @property
    def mesh(self) -> bool:
        return self.router != "replicas"

    @property
    def subsets(self) -> bool:
        """Istio routes to two subsets of the user's Service rather than to two Services of the controller's."""
        return self.destination_rule is not None

    @property
    def waves(self) -> bool:
        return self.first_wave is not None

    def args(self, clusters: list[str], member_namespaces: list[str] | None = None) -> dict[str, str]:
        """`member_namespaces`: the namespace's names in the member clusters (the syncers' `kcp-<hash>`), which
        Istio's `*_workload_namespace` labels carry; without them a query by workload name alone also counts
        Deployments of that name in other namespaces."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "canary": self.target,
            "workload": self.target,
            "stable": self.stable,
            "service": self.service,
            "canaryService": self.canary_service if self.mesh and not self.subsets else self.service,
            "stableService": self.stable_service if self.mesh and not self.subsets else self.service,
            "clusters": "|".join(sorted(clusters)),
            "memberNamespaces": "|".join(sorted(set(member_namespaces or ()))),
        }

    def step_analysis(self, step: Step) -> a.AnalysisSpec | None:
        """spec.analysis with the step's thresholds added to its metrics' success conditions."""
        if self.analysis is None:
            return None
        metrics = tuple(_bounded(m.with_thresholds(step.thresholds), step) for m in self.analysis.metrics)
        comparison = self.analysis.comparison
        if comparison is not None and step.duration is None and comparison.limits.count is None:
            comparison = replace(comparison, limits=replace(comparison.limits, count=1))
        return a.AnalysisSpec(metrics, comparison)


def _bounded(metric: a.MetricSpec, step: Step) -> a.MetricSpec:
    """An analysis step without a duration ends: a metric without a count takes one measurement there."""
    if step.duration is not None or metric.limits.count is not None:
        return metric
    return replace(metric, limits=replace(metric.limits, count=1))


def _with_defaults(raw: Any) -> Any:
    """spec.analysis with its plan-wide limits copied into each metric (and the comparison) that lacks them."""
    if not isinstance(raw, dict):
        return raw
    out = {k: v for k, v in raw.items() if k not in METRIC_DEFAULTS}
    defaults = {k: raw[k] for k in METRIC_DEFAULTS if k in raw}
    if isinstance(raw.get("metrics"), list):
        out["metrics"] = [({**defaults, **m} if isinstance(m, dict) else m) for m in raw["metrics"]]
    if isinstance(raw.get("comparison"), dict):
        out["comparison"] = {**defaults, **raw["comparison"]}
    return out


def parse_plan(obj: dict[str, Any]) -> Plan:
    """The plan of a stored (admitted) CanaryDeployment; raises a.SpecError on an invalid analysis."""
    md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    target = str((spec.get("targetRef") or {}).get("name", ""))
    service = spec.get("service") or {}
    routing = spec.get("trafficRouting") or {}
    router = next((k for k in ("istio", "gatewayAPI", "replicas") if k in routing), "replicas")
    router_object, routes = "", ()
    destination_rule = None
    if router == "istio":
        vs = (routing["istio"] or {}).get("virtualService") or {}
        router_object, routes = str(vs.get("name", "")), tuple(vs.get("routes") or ())
        dr = (routing["istio"] or {}).get("destinationRule")
        if isinstance(dr, dict):
            destination_rule = (
                str(dr.get("name", "")),
                str(dr.get("stableSubsetName") or "stable"),
                str(dr.get("canarySubsetName") or "canary"),
            )
    elif router == "gatewayAPI":
        router_object = str((routing["gatewayAPI"] or {}).get("httpRoute", ""))
    raw_analysis = spec.get("analysis")
    analysis = a.parse_analysis(_with_defaults(raw_analysis), known_args=ARGS) if raw_analysis else None
    steps = []
    for i, raw in enumerate(spec.get("steps") or []):
        if "setWeight" in raw:
            steps.append(Step("setWeight", weight=int(raw["setWeight"])))
            continue
        kind = "pause" if "pause" in raw else "analysis"
        body = raw.get(kind) or {}
        duration = duration_seconds(body["duration"]) if "duration" in body else None
        thresholds: tuple[a.Threshold, ...] = ()
        if kind == "analysis" and analysis is not None:
            thresholds = a.parse_thresholds(body.get("thresholds"), f"spec.steps[{i}].analysis.thresholds", analysis)
        steps.append(Step(kind, duration=duration, thresholds=thresholds))
    return Plan(
        name=str(md.get("name", "")),
        namespace=str(md.get("namespace", "")),
        target=target,
        service=str(service.get("name") or target),
        port=int(service.get("port") or 80),
        router=router,
        router_object=router_object,
        routes=routes,
        steps=tuple(steps),
        analysis=analysis,
        deadline=float(spec.get("progressDeadlineSeconds") or DEFAULT_DEADLINE),
        auto_promote=bool(spec.get("autoPromote", True)),
        paused=bool(spec.get("paused", False)),
        raw_analysis=copy.deepcopy(raw_analysis) if isinstance(raw_analysis, dict) else {},
        first_wave=_first_wave(spec.get("clusters")),
        manual_gate=(spec.get("clusters") or {}).get("gate") == "manual",
        destination_rule=destination_rule,
    )


def _first_wave(clusters: Any) -> dict[str, Any] | None:
    if not isinstance(clusters, dict) or not isinstance(clusters.get("syncTargetSelector"), dict):
        return None
    return copy.deepcopy(clusters["syncTargetSelector"])


def analysis_causes(obj: dict[str, Any]) -> list[dict[str, str]]:
    """The analysis engine's 422 causes for spec.analysis and the steps' thresholds ([] when valid)."""
    try:
        parse_plan(obj)
    except a.SpecError as exc:
        return list(exc.causes)
    return []


def revision(template: Any) -> str:
    """A short, stable hash of a pod template (what Argo calls the pod-template-hash). The controller's own role
    label is left out, so adding it to the canary's pods (DestinationRule subsets) is not a new revision."""
    template = template or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if ROLE_LABEL in labels:
        template = {
            **template,
            "metadata": {**template["metadata"], "labels": {k: v for k, v in labels.items() if k != ROLE_LABEL}},
        }
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:10]
