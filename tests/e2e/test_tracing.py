"""Tracing end to end: `tmc up --tracing-endpoint` exports to an OTLP receiver in this test, and one Deployment
applied with a `traceparent` header yields one trace across the hub, the scheduler and both syncers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from tests.e2e.harness import Hub, TmcUp, free_port, wait_until
from tests.otlp import OtlpReceiver, ReceivedSpan

ANNOTATION = "tracing.k8s.io/traceparent"
CLUSTERS = ("cluster-1", "cluster-2")
SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    sink = OtlpReceiver()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[TmcUp]:
    args = ("--clusters", "2", "--heartbeat-period", "1s", "--ready-delay", "200ms")
    tracing = ("--tracing-endpoint", receiver.endpoint, "--tracing-sample-ratio", "1")
    # Spans leave each process every 200 ms instead of the SDK's 5 s, metrics every second instead of every minute;
    # every child inherits the variables.
    with mock.patch.dict(os.environ, {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}):
        up = TmcUp(str(tmp_path_factory.mktemp("traced")), free_port(), *args, *tracing)
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _ok(result: tuple[int, Any], *codes: int) -> Any:
    status, body = result
    assert status in (codes or (200, 201)), body
    return body


def _ready_targets(hub: Hub) -> int:
    items = _ok(hub.request("GET", "/apis/workload.kcp.io/v1alpha1/synctargets"))["items"]
    return sum(
        any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("status", {}).get("conditions", []))
        for st in items
    )


def _member_deployment(system: TmcUp, cluster: str, name: str) -> dict[str, Any] | None:
    items = system.kubectl(cluster).json("get", "deployments", "-A")["items"]
    return next((d for d in items if d["metadata"]["name"] == name), None)


def _deploy(hub: Hub, namespace: str, name: str, traceparent: str) -> None:
    """A namespace both syncers get (through a Placement), then a Deployment in it created with `traceparent`."""
    _ok(hub.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace, "labels": {"app": namespace}}}))
    placement = {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": namespace},
        "spec": {
            "locationSelectors": [{}],
            "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
            "namespaceSelector": {"matchLabels": {"app": namespace}},
            "locationWorkspace": "root",
        },
    }
    _ok(hub.request("POST", "/apis/scheduling.kcp.io/v1alpha1/placements", placement))
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    _ok(hub.request("POST", path, deployment, headers={"traceparent": traceparent}))


@pytest.fixture(scope="module")
def traced(system: TmcUp) -> dict[str, str]:
    """One Deployment created with a traceparent, running on both members."""
    hub = system.hub()
    wait_until(lambda: _ready_targets(hub) == 2, timeout=30, what="two Ready SyncTargets")
    traceparent, trace_id, span_id = _traceparent()
    _deploy(hub, "traced", "web", traceparent)
    wait_until(
        lambda: all(_member_deployment(system, c, "web") for c in CLUSTERS), timeout=30, what="web on both members"
    )
    return {"trace_id": trace_id, "span_id": span_id, "namespace": "traced", "name": "web"}


def test_one_apply_is_one_trace_across_hub_scheduler_and_both_syncers(
    receiver: OtlpReceiver, traced: dict[str, str]
) -> None:
    trace_id = traced["trace_id"]

    def complete() -> list[ReceivedSpan] | None:
        spans = receiver.trace(trace_id)
        syncs = {s.attributes.get("cluster.name") for s in spans if s.name == "workload-sync"}
        reports = {s.attributes.get("cluster.name") for s in spans if s.name == "status-report"}
        decisions = [s for s in spans if s.name == "placement decision"]
        requests = [s for s in spans if s.kind == SERVER_KIND and s.service == "tmc-hub"]
        members = {s.resource.get("tmc.cluster") for s in spans if s.service == "tmc-sim-cluster"}
        everyone = syncs >= set(CLUSTERS) and members >= set(CLUSTERS)
        return spans if requests and decisions and everyone and reports else None

    spans = wait_until(complete, timeout=30, what=f"hub, scheduler, syncers' and members' spans in trace {trace_id}")

    request = next(s for s in spans if s.name == "create deployments" and s.service == "tmc-hub")
    assert request.kind == SERVER_KIND
    assert request.parent_span_id == traced["span_id"]  # it continues the client's traceparent
    assert request.attributes["k8s.verb"] == "create"
    assert request.attributes["k8s.resource"] == "deployments"
    assert request.attributes["k8s.namespace"] == "traced"
    assert request.attributes["tmc.workspace"] == "root"
    assert request.attributes["http.response.status_code"] == 201
    assert any(s.name == "storage.commit" and s.parent_span_id == request.span_id for s in spans)

    decision = next(s for s in spans if s.name == "placement decision")
    assert decision.service == "tmc-hub"
    assert decision.attributes["workload.name"] == "web"
    assert decision.attributes["placement.clusters.count"] == 2
    assert decision.attributes["placement.reason"] == "Scheduled"
    assert decision.attributes["placement.strategy"]

    syncs = [s for s in spans if s.name == "workload-sync"]
    assert {s.resource["tmc.sync_target"] for s in syncs} == set(CLUSTERS)
    assert {s.service for s in syncs} == {"tmc-syncer"}
    for s in syncs:
        assert s.attributes["workload.type"] == "deployments.apps"
        assert s.attributes["cluster.name"] == s.resource["tmc.sync_target"]
    # The syncers' clients pass the trace on: each member cluster's create of its copy is in the trace too.
    member_creates = [s for s in spans if s.service == "tmc-sim-cluster" and s.name == "create deployments"]
    assert {s.resource["tmc.cluster"] for s in member_creates} == set(CLUSTERS)
    assert {s.parent_span_id for s in member_creates} <= {s.span_id for s in syncs}
    # Every span of the trace hangs off another span of it, or off the client's span.
    known = {s.span_id for s in spans} | {traced["span_id"]}
    assert all(s.parent_span_id in known for s in spans), [(s.service, s.name) for s in spans]


def test_status_write_keeps_the_annotation_and_members_never_see_it(system: TmcUp, traced: dict[str, str]) -> None:
    hub = system.hub()
    path = f"/apis/apps/v1/namespaces/{traced['namespace']}/deployments/{traced['name']}"
    before = _ok(hub.request("GET", path))["metadata"]["annotations"][ANNOTATION]
    assert before.split("-")[1] == traced["trace_id"]

    other, _, _ = _traceparent()
    patch = [{"op": "add", "path": "/status/observedGeneration", "value": 1}]
    headers = {"traceparent": other}
    _ok(hub.request("PATCH", path + "/status", patch, "application/json-patch+json", headers=headers))
    assert _ok(hub.request("GET", path))["metadata"]["annotations"][ANNOTATION] == before

    for cluster in CLUSTERS:
        copy = _member_deployment(system, cluster, traced["name"])
        assert copy is not None
        assert ANNOTATION not in (copy["metadata"].get("annotations") or {}), copy["metadata"]


# ---------------------------------------------------------------- bad configuration


def _tmc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tmc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("command", "ratio"),
    [("server", "abc"), ("server", "1.5"), ("syncer", "-0.1"), ("sim-cluster", "nan"), ("up", "2")],
)
def test_malformed_sample_ratio_is_a_usage_error(command: str, ratio: str) -> None:
    result = _tmc(command, "--tracing-sample-ratio", ratio)
    assert result.returncode == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--tracing-sample-ratio" in errors[0] and ratio in errors[0], result.stderr


@pytest.mark.parametrize("command", ["server", "up"])
def test_malformed_sampler_arg_in_the_environment_is_a_usage_error(command: str, tmp_path: Any) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER_ARG": "lots"}
    result = _tmc(command, "--data-dir", str(tmp_path), "--secure-port", str(free_port()), env=env)
    assert result.returncode == 2, result
    assert "Error: OTEL_TRACES_SAMPLER_ARG: 'lots' is not a number between 0 and 1" in result.stderr
    assert not os.path.exists(os.path.join(tmp_path, "hub.pid"))  # `tmc up` started nothing


def test_unreachable_endpoint_is_a_warning_and_the_hub_serves(tmp_path: Any) -> None:
    closed = free_port()  # nothing listens there
    hub = Hub(str(tmp_path), free_port(), extra_args=["--tracing-endpoint", f"http://127.0.0.1:{closed}"])
    hub.start()
    try:
        _ok(hub.request("GET", "/api/v1/namespaces/default", headers={"traceparent": _traceparent()[0]}))
        wait_until(lambda: "tracing endpoint unreachable" in hub.log_text(), timeout=15, what="the warning")
        warning = next(line for line in hub.log_text().splitlines() if "tracing endpoint unreachable" in line)
        assert '"level": "warning"' in warning and str(closed) in warning
        _ok(hub.request("GET", "/api/v1/namespaces/default"))
    finally:
        hub.stop()


def test_syncers_export_their_sync_instruments_over_otlp(receiver: OtlpReceiver, traced: dict[str, str]) -> None:
    """tmc.sync.operations and tmc.sync.duration reach the OTLP endpoint from both syncers, with the writes they
    made for the traced Deployment."""

    def exported() -> bool:
        creates = [
            p
            for p in receiver.metric("tmc.sync.operations")
            if p.attributes.get("operation") == "create" and p.attributes.get("result") == "success"
        ]
        timed = receiver.metric("tmc.sync.duration")
        return {p.attributes["sync_target"] for p in creates} == set(CLUSTERS) and bool(timed)

    wait_until(exported, timeout=30, what="the syncers' OTLP metrics")
    point = receiver.metric("tmc.sync.duration")[-1]
    assert point.service == "tmc-syncer" and point.value >= 1
    assert point.attributes["resource_type"] and point.attributes["operation"]
