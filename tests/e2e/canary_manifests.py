"""Manifests of the canary scenarios beside examples/canary/ (tests/e2e/test_canary_up.py): one namespace each,
selected by the Placement of examples/canary/app.yaml (label `canary-demo`), with short steps and intervals so every
scenario reaches its verdict within about a minute on `tmc up`."""

from __future__ import annotations

import copy
from typing import Any

REQUEST_RATE = "50"
# The canary's 5xx share per cluster (as examples/canary/app.yaml asks it), over a short window: the simulated
# clusters are scraped every 2 s. A canary without 5xx has no 5xx series: `or ... * 0` makes its rate 0, not no data.
# Every scenario's Deployment is `web`: only the namespace (as the members name it) tells them apart.
# One workload's answered requests: `%(w)s` is `canary` or `stable`.
SELECT = (
    'reporter="destination",destination_workload="{{ args.%(w)s }}",'
    'destination_workload_namespace=~"{{ args.memberNamespaces }}"'
)
ERROR_RATE_QUERY = (
    f'(sum by (cluster) (rate(istio_requests_total{{{SELECT},response_code=~"5.."}}[10s]))'
    f" or sum by (cluster) (rate(istio_requests_total{{{SELECT}}}[10s])) * 0)"
    f" / sum by (cluster) (rate(istio_requests_total{{{SELECT}}}[10s]))"
)
# Mean latency per cluster of one workload's answered requests (the histogram's sum over its count).
MEAN_LATENCY_QUERY = (
    f"sum by (cluster) (rate(istio_request_duration_milliseconds_sum{{{SELECT}}}[10s]))"
    f" / sum by (cluster) (rate(istio_request_duration_milliseconds_count{{{SELECT}}}[10s]))"
)
# The canary's 5xx share in the clusters the canary runs in: in a first wave `{{ args.clusters }}` names only the
# first wave's, so clusters where the canary gets no requests (0/0) are not judged.
FIRST_WAVE_ERROR_RATE_QUERY = ERROR_RATE_QUERY.replace(
    'destination_workload_namespace=~"{{ args.memberNamespaces }}"',
    'destination_workload_namespace=~"{{ args.memberNamespaces }}",cluster=~"{{ args.clusters }}"',
)
# Latency of the slow version in the Mann-Whitney scenarios: five times the default (p50 20ms, p99 100ms), so its
# mean (about 125 ms) is far above the stable copy's (about 25 ms) in every sample.
SLOW = "p50=100ms,p99=500ms"


def error_rate_metric(address: str = "", query: str = ERROR_RATE_QUERY, **limits: Any) -> dict[str, Any]:
    prometheus: dict[str, Any] = {"query": query % {"w": "canary"}}
    if address:
        prometheus["address"] = address
    return {
        "name": "error-rate",
        "initialDelay": "8s",
        "interval": "3s",
        "failureLimit": 1,
        "consecutiveErrorLimit": 4,
        "successCondition": "result < 0.05",
        "provider": {"prometheus": prometheus},
        **limits,
    }


def latency_comparison(*extra: dict[str, Any]) -> dict[str, Any]:
    """Canary against stable, once, 20 s after the canary is Ready: by then each cluster has about eight canary
    samples (one per 2 s step from when its traffic started) against ten of the stable copy."""
    latency = {
        "name": "latency",
        "canaryQuery": MEAN_LATENCY_QUERY % {"w": "canary"},
        "baselineQuery": MEAN_LATENCY_QUERY % {"w": "stable"},
        "direction": "increase",
        # Equal versions differ by a few per cent between 10 s windows; the slow one by +400 %.
        "effectSize": 0.25,
        "minSamples": 5,
    }
    return {
        "initialDelay": "20s",
        "count": 1,
        "consecutiveErrorLimit": 3,
        "lookback": "20s",
        "step": "2s",
        "metrics": [latency, *extra],
    }


def app(
    namespace: str,
    router: str,
    steps: list[Any],
    analysis: dict[str, Any],
    replicas: int = 3,
    **spec: Any,
) -> list[dict[str, Any]]:
    """Namespace, Deployment `web` (nginx:1.27), Service `web` with simulated traffic, the routing object the
    router needs (none for `replicas`; `istio-subsets` routes by the DestinationRule `web`'s subsets `stable` and
    `canary`, which the controller creates) and the CanaryDeployment `web` (`spec`: more of its fields)."""
    labels = {"app": "web"}
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"canary-demo": "true"}}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template("nginx:1.27"),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "web",
                "namespace": namespace,
                "annotations": {"sim.tmc.io/request-rate": REQUEST_RATE},
            },
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        },
    ]
    routing: dict[str, Any] = {"replicas": {}}
    if router in ("istio", "istio-subsets"):
        routing = {"istio": {"virtualService": {"name": "web", "routes": ["primary"]}}}
        if router == "istio-subsets":
            routing["istio"]["destinationRule"] = {
                "name": "web",
                "stableSubsetName": "stable",
                "canarySubsetName": "canary",
            }
        objects.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [{"destination": {"host": "web"}}]}]},
            }
        )
    elif router == "gatewayAPI":
        routing = {"gatewayAPI": {"httpRoute": "web"}}
        objects.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "web", "namespace": namespace},
                "spec": {
                    "parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 80}],
                    "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
                },
            }
        )
    objects.append(
        {
            "apiVersion": "tmc.kcp.io/v1alpha1",
            "kind": "CanaryDeployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "service": {"name": "web", "port": 80},
                "trafficRouting": routing,
                "progressDeadlineSeconds": 60,
                "steps": steps,
                "analysis": analysis,
                **spec,
            },
        }
    )
    return objects


def template(image: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {"app": "web"}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]},
    }


def new_version(objects: list[dict[str, Any]], image: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """The scenario's Deployment with a new pod template."""
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"] = template(image, annotations)
    return deployment
