"""The metric catalogue: every metric a tmc process exports, declared with the process that owns it, its meaning and
an example query. docs/observability.md is generated from it (`python -m tmc metrics-catalogue`), and tests check
that each process exports exactly its catalogued metrics and that every label is one of LABELS, whose values are
bounded. Define metrics through `counter`, `gauge`, `histogram` (or `describe` for a custom collector) so that a
metric cannot exist without its entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# No `<name>_created` series beside every counter and histogram: kube-apiserver exports none, and they would double
# the series Prometheus stores and the bytes each scrape moves.
disable_created_metrics()

HUB = "hub"
SYNCER = "syncer"
SIM = "sim-cluster"
OWNERS = (HUB, SYNCER, SIM)

# Every label any tmc metric may carry, with why its values stay few. Object names and uids are not among them: a
# series per workload would grow with the fleet and churn with every rollout.
LABELS: dict[str, str] = {
    "verb": "HTTP verb as kube-apiserver reports it (GET, LIST, WATCH, POST, ...)",
    "group": "API group of a served resource",
    "version": "API version of a served resource",
    "resource": "a resource type (plural), or a capacity resource (cpu, memory, pods)",
    "subresource": "status, scale or empty",
    "scope": "resource, namespace or cluster",
    "component": "apiserver, or a health monitor component (storage, watch-cache, a controller, syncer/<name>)",
    "code": "HTTP status code, or unreachable",
    "request_kind": "readOnly or mutating",
    "kind": "a resource kind",
    "controller": "a controller's name",
    "result": "outcome: success, error, requeue, no_targets, hit, miss ...",
    "error_type": "not_found, conflict, timeout, forbidden, server_timeout, rate_limited, unknown",
    "name": "a work queue's name (one per controller)",
    "cluster": "a SyncTarget (member cluster) name: few and long-lived",
    "sync_target": "a SyncTarget name, as syncer_* metrics call it",
    "workspace": "a logical cluster (workspace) path",
    "location": "a SyncTarget's location label",
    "strategy": "a Placement strategy: Spread, Divided, ...",
    "candidates": "bucketed candidate count: 1-10, 11-100, 101-1000, >1000",
    "placement": "a Placement name: few per workspace, long-lived",
    "direction": "down (hub to member) or up (status to the hub)",
    "namespace": "an upstream namespace, the first few only, the rest 'other'",
    "endpoint": "hub or downstream",
    "method": "HTTP method, or LIST/WATCH",
    "status": "connected or disconnected; or a resource's sync state",
    "state": "a sync state: pending, synced, available, deleting, failed",
    "reason": "why a list or watch restarted: initial, expired, closed, unreachable, error; or why a canary failed "
    "(AnalysisFailed, AnalysisError, ProgressDeadlineExceeded, Aborted); or why a workload was rolled back "
    "(ProgressDeadlineExceeded, AnalysisFailed, UserRequested)",
    "operation": "create, update, delete or status",
    "resource_type": "a synced resource type, as syncer_* metrics call it",
    "cache_type": "watch-cache, informer or engine",
    "operation_type": "a storage operation: create, update, delete, list, get",
    "canary": "a CanaryDeployment name: few per namespace, long-lived configuration objects",
    "metric": "an analysis metric's name in a CanaryDeployment's spec (or comparison)",
}
# Istio's standard request labels, which a simulated cluster's istio_* metrics carry under Istio's names so queries
# written for Istio work as they are. They name workloads and Services, as Istio's do: bounded by the Services that
# get simulated traffic, never pods.
_ISTIO_SIDES = {
    "workload": "a Deployment (or other controller) name, or unknown",
    "workload_namespace": "the namespace of that workload, as the member cluster sees it",
    "principal": "the workload's SPIFFE identity (its ServiceAccount)",
    "app": "the workload's app label, or unknown",
    "version": "the workload's version label, or unknown",
    "cluster": "the mesh cluster ID (a simulated cluster's name)",
    "canonical_service": "Istio's canonical service of the workload",
    "canonical_revision": "Istio's canonical revision of the workload",
}
for _side in ("source", "destination"):
    for _name, _meaning in _ISTIO_SIDES.items():
        LABELS[f"{_side}_{_name}"] = f"Istio: {_side} {_meaning}"
LABELS.update(
    {
        "reporter": "Istio: destination (the answering proxy) or source (the calling proxy)",
        "destination_service": "Istio: the destination Service's host (name.namespace.svc.cluster.local)",
        "destination_service_name": "Istio: the destination Service's name",
        "destination_service_namespace": "Istio: the destination Service's namespace",
        "request_protocol": "Istio: http",
        "response_code": "Istio: the HTTP status code",
        "grpc_response_status": "Istio: the gRPC status (empty for HTTP)",
        "response_flags": "Istio: Envoy's response flags (- or UH)",
        "connection_security_policy": "Istio: mutual_tls, or unknown when reported by the source",
    }
)


@dataclass(frozen=True)
class MetricDoc:
    name: str  # as exposed: counters end in _total
    kind: str  # counter, gauge, histogram
    labels: tuple[str, ...]
    owners: tuple[str, ...]
    meaning: str
    promql: str


CATALOGUE: dict[str, MetricDoc] = {}


class CatalogueError(ValueError):
    pass


def describe(
    name: str, kind: str, meaning: str, labels: Sequence[str], *, owners: Sequence[str], promql: str
) -> MetricDoc:
    """Catalogue a metric exported by a custom collector (counter/gauge/histogram below catalogue themselves)."""
    unknown = [label for label in labels if label not in LABELS]
    if unknown:
        raise CatalogueError(f"metric {name}: labels {unknown} are not in the catalogue's LABELS")
    bad_owner = [owner for owner in owners if owner not in OWNERS]
    if bad_owner or not owners:
        raise CatalogueError(f"metric {name}: owners must be some of {OWNERS}, got {list(owners)}")
    doc = MetricDoc(name, kind, tuple(labels), tuple(owners), meaning, promql)
    if CATALOGUE.get(name, doc) != doc:
        raise CatalogueError(f"metric {name} is catalogued twice, differently")
    CATALOGUE[name] = doc
    return doc


def counter(
    name: str,
    meaning: str,
    labels: Sequence[str] = (),
    *,
    owners: Sequence[str],
    promql: str,
    registry: CollectorRegistry | None = REGISTRY,
) -> Counter:
    """A Counter; `name` ends in _total, as it is exposed."""
    if not name.endswith("_total"):
        raise CatalogueError(f"counter {name} must be named with its _total suffix")
    describe(name, "counter", meaning, labels, owners=owners, promql=promql)
    return Counter(name.removesuffix("_total"), meaning, labels, registry=registry)


def gauge(
    name: str,
    meaning: str,
    labels: Sequence[str] = (),
    *,
    owners: Sequence[str],
    promql: str,
    registry: CollectorRegistry | None = REGISTRY,
) -> Gauge:
    describe(name, "gauge", meaning, labels, owners=owners, promql=promql)
    return Gauge(name, meaning, labels, registry=registry)


def gauge_of(doc: MetricDoc, registry: CollectorRegistry | None = REGISTRY) -> Gauge:
    """A Gauge for a gauge catalogued already with `describe` (one entry that several processes share)."""
    return gauge(doc.name, doc.meaning, doc.labels, owners=doc.owners, promql=doc.promql, registry=registry)


def histogram(
    name: str,
    meaning: str,
    labels: Sequence[str] = (),
    *,
    owners: Sequence[str],
    promql: str,
    buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    registry: CollectorRegistry | None = REGISTRY,
) -> Histogram:
    describe(name, "histogram", meaning, labels, owners=owners, promql=promql)
    return Histogram(name, meaning, labels, buckets=buckets, registry=registry)


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Prometheus' ExponentialBuckets: `count` upper bounds from `start`, each `factor` times the one before."""
    return tuple(start * factor**i for i in range(count))


def markdown_table(owner: str | None = None) -> str:
    """The catalogue as a Markdown table (all owners, or one), sorted by name."""
    rows = [
        "| name | type | labels | owner | meaning | example PromQL |",
        "|---|---|---|---|---|---|",
    ]
    for doc in sorted(CATALOGUE.values(), key=lambda d: d.name):
        if owner is not None and owner not in doc.owners:
            continue
        labels = ", ".join(f"`{label}`" for label in doc.labels) or "-"
        query = doc.promql.replace("|", "\\|")
        meaning = doc.meaning.replace("|", "\\|")
        rows.append(f"| `{doc.name}` | {doc.kind} | {labels} | {', '.join(doc.owners)} | {meaning} | `{query}` |")
    return "\n".join(rows) + "\n"
