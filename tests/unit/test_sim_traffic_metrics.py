"""Istio's metrics as a simulated cluster exposes them: names, Istio's label set and values, Istio's default duration
buckets, and a text exposition Prometheus' parser reads."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tmc.observability import exposition
from tmc.sim.istiometrics import DURATION, LABELS, REQUESTS, IstioMetrics, workload_of
from tmc.sim.routing import Backend
from tmc.sim.traffic import BUCKETS_MS, Outcome, unanswered

ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000]
ISTIO_BUCKETS += [1800000, 3600000]


def pod(owner_kind: str | None, owner: str = "", labels: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "web-canary-7d9f8-abcde", "namespace": "kcp-abc", "labels": labels or {}}
    if owner_kind:
        md["ownerReferences"] = [{"kind": owner_kind, "name": owner, "controller": True}]
    return {"metadata": md, "spec": {"serviceAccountName": "web"}}


def test_a_deployments_pods_report_the_deployment_as_their_workload() -> None:
    labels = {"app": "web", "version": "canary", "pod-template-hash": "7d9f8"}
    w = workload_of(pod("ReplicaSet", "web-canary-7d9f8", labels))
    assert (w.name, w.namespace, w.app, w.version) == ("web-canary", "kcp-abc", "web", "canary")
    assert (w.canonical_service, w.canonical_revision) == ("web", "canary")
    assert w.principal == "spiffe://cluster.local/ns/kcp-abc/sa/web"
    assert workload_of(pod("StatefulSet", "db")).name == "db"
    bare = workload_of(pod(None))
    assert (bare.name, bare.app, bare.version, bare.canonical_revision) == (
        "web-canary-7d9f8-abcde",
        *["unknown"] * 2,
        "latest",
    )


def parse(metrics: IstioMetrics) -> dict[str, Any]:
    text = "".join(
        exposition.header(name) + "".join(samples())
        for name, samples in ((REQUESTS, metrics.request_samples), (DURATION, metrics.duration_samples))
    )
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_requests_and_durations_are_exposed_under_istios_names_labels_and_buckets() -> None:
    metrics = IstioMetrics(cluster="cluster-2")
    labels = {"app": "web", "version": "canary", "pod-template-hash": "h1"}
    canary = workload_of(pod("ReplicaSet", "web-canary-h1", labels))
    backend = Backend("web", "kcp-abc", 0.2, [], "canary")
    buckets = [0] * (len(BUCKETS_MS) + 1)
    buckets[4], buckets[5], buckets[-1] = 6, 3, 1  # 6 in (10, 25], 3 in (25, 50], 1 above an hour
    metrics.record(canary, backend, "500", Outcome(10, buckets, 1234.5))
    metrics.record(canary, backend, "500", Outcome(10, buckets, 1234.5))
    metrics.record(None, Backend("web-canary", "kcp-abc", 1.0), "503", unanswered(4))

    assert (REQUESTS, DURATION) == ("istio_requests_total", "istio_request_duration_milliseconds")  # Istio's names
    families = parse(metrics)
    requests = families["istio_requests"]  # the parser strips _total from a counter's family name
    assert requests.type == "counter"
    served, refused = sorted(requests.samples, key=lambda s: s.labels["reporter"])
    assert list(served.labels) == list(LABELS) and served.value == 20
    assert {k: served.labels[k] for k in LABELS if k.startswith("destination_") or k.startswith("re")} == {
        "reporter": "destination",
        "destination_workload": "web-canary",
        "destination_workload_namespace": "kcp-abc",
        "destination_principal": "spiffe://cluster.local/ns/kcp-abc/sa/web",
        "destination_app": "web",
        "destination_version": "canary",
        "destination_service": "web.kcp-abc.svc.cluster.local",
        "destination_service_name": "web",
        "destination_service_namespace": "kcp-abc",
        "destination_cluster": "cluster-2",
        "destination_canonical_service": "web",
        "destination_canonical_revision": "canary",
        "request_protocol": "http",
        "response_code": "500",
        "response_flags": "-",
    }
    assert served.labels["source_workload"] == "istio-ingressgateway"
    assert served.labels["source_workload_namespace"] == "istio-system"
    assert served.labels["connection_security_policy"] == "mutual_tls"
    assert (refused.labels["reporter"], refused.labels["destination_workload"], refused.labels["response_flags"]) == (
        "source",
        "unknown",
        "UH",
    )
    assert (refused.labels["response_code"], refused.labels["destination_service_name"], refused.value) == (
        "503",
        "web-canary",
        4,
    )

    duration = families[DURATION]
    assert duration.type == "histogram"
    served_buckets = [
        s for s in duration.samples if s.name.endswith("_bucket") and s.labels["reporter"] == "destination"
    ]
    assert [float(s.labels["le"]) for s in served_buckets] == [*ISTIO_BUCKETS, float("inf")]
    assert [s.value for s in served_buckets][3:7] == [0, 12, 18, 18]  # cumulative
    assert served_buckets[-1].value == 20
    by_name = {
        s.name: s.value for s in duration.samples if s.labels["reporter"] == "destination" and "le" not in s.labels
    }
    assert by_name == {f"{DURATION}_sum": 2469.0, f"{DURATION}_count": 20}


def test_label_values_are_escaped() -> None:
    metrics = IstioMetrics(cluster='odd"name')
    metrics.record(None, Backend("web", "ns", 1.0), "503", unanswered(1))
    (sample,) = parse(metrics)["istio_requests"].samples
    assert sample.labels["destination_cluster"] == 'odd"name'
