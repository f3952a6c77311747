"""Istio's standard request metrics, as a simulated cluster's sidecars would report them: `istio_requests_total`
and `istio_request_duration_milliseconds` (Istio's default buckets), with Istio's label names and values, so that
queries written for real Istio work unchanged. Served on the simulated cluster's /metrics.

Who reports what (as Envoy does): a request a pod answered is reported by the destination's proxy
(`reporter="destination"`); a request that found no Ready pod is answered 503 by the calling proxy with
`response_flags="UH"` (no healthy upstream) and reported only by it (`reporter="source"`, destination workload
`unknown`). The callers are the cluster's ingress gateway (`source_workload="istio-ingressgateway"` in
`istio-system`); `destination_cluster` and `source_cluster` are the simulated cluster's name, as a multi-cluster
mesh names each cluster. Series are kept for the life of the process, like an Envoy's counters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmc.observability import catalogue, exposition
from tmc.observability.catalogue import SIM
from tmc.sim.routing import DOMAIN, Backend
from tmc.sim.traffic import BUCKETS_MS, Outcome

REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
# Istio's label set for HTTP request metrics, in the order they are written.
LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "destination_canonical_service",
    "destination_canonical_revision",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
UNKNOWN = "unknown"
GATEWAY = "istio-ingressgateway"
GATEWAY_NAMESPACE = "istio-system"
HASH_LABEL = "pod-template-hash"

catalogue.describe(
    REQUESTS,
    "counter",
    "Requests a simulated cluster's mesh served, as Istio reports them: by source and destination workload, "
    "Service, version and response code (simulated traffic of Services annotated sim.tmc.io/request-rate).",
    LABELS,
    owners=(SIM,),
    promql='sum by (cluster, destination_workload) (rate(istio_requests_total{reporter="destination"}[1m]))',
)
catalogue.describe(
    DURATION,
    "histogram",
    "Latency of the requests a simulated cluster's mesh served, in milliseconds, with Istio's default buckets and "
    "the labels of istio_requests_total.",
    LABELS,
    owners=(SIM,),
    promql="histogram_quantile(0.99, sum by (le, cluster, destination_workload) "
    "(rate(istio_request_duration_milliseconds_bucket[1m])))",
)


@dataclass(frozen=True)
class Workload:
    """What Istio's proxy knows about the pod it fronts."""

    name: str
    namespace: str
    app: str
    version: str
    canonical_service: str
    canonical_revision: str
    principal: str


def workload_of(pod: Mapping[str, Any]) -> Workload:
    """Istio's workload identity of a pod: a ReplicaSet's pods belong to its Deployment (the ReplicaSet's name
    without the pod-template-hash), other controlled pods to their controller, a bare pod to itself."""
    md = pod.get("metadata") or {}
    labels = md.get("labels") or {}
    namespace = str(md.get("namespace") or "default")
    name = str(md.get("name") or "")
    owner = next((r for r in md.get("ownerReferences") or () if isinstance(r, dict) and r.get("controller")), None)
    if owner is not None:
        name = str(owner.get("name") or name)
        pod_hash = labels.get(HASH_LABEL)
        if owner.get("kind") == "ReplicaSet" and pod_hash and name.endswith(f"-{pod_hash}"):
            name = name[: -len(pod_hash) - 1]
    app = str(labels.get("app") or labels.get("app.kubernetes.io/name") or UNKNOWN)
    version = str(labels.get("version") or labels.get("app.kubernetes.io/version") or UNKNOWN)
    canonical = str(labels.get("service.istio.io/canonical-name") or labels.get("app.kubernetes.io/name") or "")
    canonical = canonical or str(labels.get("app") or name)
    revision = str(labels.get("service.istio.io/canonical-revision") or "")
    revision = revision or str(labels.get("app.kubernetes.io/version") or labels.get("version") or "latest")
    account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
    principal = f"spiffe://cluster.local/ns/{namespace}/sa/{account}"
    return Workload(name, namespace, app, version, canonical, revision, principal)


def _escape(value: str) -> str:
    return exposition.label_value(value)


@dataclass
class _Histogram:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class IstioMetrics:
    """The counters and histograms of one simulated cluster, keyed by their rendered label set."""

    cluster: str = ""
    requests: dict[str, float] = field(default_factory=dict)
    durations: dict[str, _Histogram] = field(default_factory=dict)

    def _labels(self, destination: Workload | None, backend: Backend, code: str) -> str:
        gateway_principal = f"spiffe://cluster.local/ns/{GATEWAY_NAMESPACE}/sa/{GATEWAY}-service-account"
        source = (GATEWAY, GATEWAY_NAMESPACE, gateway_principal, GATEWAY, UNKNOWN, self.cluster, GATEWAY, "latest")
        if destination is None:
            dest: tuple[str, ...] = ("source", UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)
            flags, policy = "UH", UNKNOWN
            canonical: tuple[str, str] = (UNKNOWN, UNKNOWN)
        else:
            w = destination
            dest = ("destination", w.name, w.namespace, w.principal, w.app, w.version)
            flags, policy = "-", "mutual_tls"
            canonical = (w.canonical_service, w.canonical_revision)
        values = (
            dest[0],
            *source,
            *dest[1:],
            f"{backend.service}.{backend.namespace}.{DOMAIN}",
            backend.service,
            backend.namespace,
            self.cluster,
            *canonical,
            "http",
            code,
            "",
            flags,
            policy,
        )
        return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(LABELS, values, strict=True))

    def record(self, destination: Workload | None, backend: Backend, code: str, outcome: Outcome) -> None:
        """Add `outcome` (requests with response `code`) to the series of `destination` behind `backend`; None as
        the destination means no pod answered."""
        key = self._labels(destination, backend, code)
        self.requests[key] = self.requests.get(key, 0.0) + outcome.count
        hist = self.durations.get(key)
        if hist is None:
            hist = self.durations[key] = _Histogram([0] * len(outcome.buckets))
        for i, c in enumerate(outcome.buckets):
            hist.buckets[i] += c
        hist.total += outcome.sum_ms
        hist.count += outcome.count

    def request_samples(self) -> Iterator[str]:
        for key, value in self.requests.items():
            yield f"{REQUESTS}{{{key}}} {value}\n"

    def duration_samples(self) -> Iterator[str]:
        bounds = [*(format(b, "g") for b in BUCKETS_MS), "+Inf"]
        for key, hist in self.durations.items():
            cumulative = 0
            for le, count in zip(bounds, hist.buckets, strict=True):
                cumulative += count
                yield f'{DURATION}_bucket{{{key},le="{le}"}} {cumulative}\n'
            yield f"{DURATION}_sum{{{key}}} {hist.total}\n"
            yield f"{DURATION}_count{{{key}}} {hist.count}\n"


# One per process: a simulated cluster is one process.
METRICS = IstioMetrics()
exposition.register(REQUESTS, METRICS.request_samples)
exposition.register(DURATION, METRICS.duration_samples)
