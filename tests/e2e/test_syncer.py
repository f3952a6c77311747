"""`tmc syncer` between a real hub and a member cluster, all as subprocesses; the test plays the scheduler.

The member cluster is `tmc sim-cluster` when this checkout has it (Deployments become Ready on their own), otherwise
a second `tmc server`, which is a Kubernetes-like API without workload controllers: the test then writes the member
cluster's Deployment status itself, as its controller would.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Hub, free_port, wait_until
from tmc.client import Kubeconfig, load_kubeconfig
from tmc.protocol.keys import downstream_namespace, namespace_locator, sync_target_key

NAME = "c1"
KEY = sync_target_key("root", NAME)
SYNC = {f"state.workload.kcp.io/{KEY}": "Sync"}
FINALIZER = f"workload.kcp.io/syncer-{KEY}"
ST_PATH = f"/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets/{NAME}"


def _has_sim_cluster() -> bool:
    probe = subprocess.run([sys.executable, "-m", "tmc", "sim-cluster", "--help"], capture_output=True, text=True)
    return probe.returncode == 0


@dataclass
class Member:
    """The member cluster, addressed through its kubeconfig (plain Kubernetes paths)."""

    kubeconfig: str
    process: subprocess.Popen[bytes]
    simulated: bool
    log_path: str

    def __post_init__(self) -> None:
        self.config: Kubeconfig = load_kubeconfig(self.kubeconfig)
        self.ssl = ssl.create_default_context(cadata=(self.config.ca_pem or b"").decode() or None)

    def request(self, method: str, path: str, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(self.config.server.rstrip("/") + path, data=data, method=method)
        req.add_header("Content-Type", ctype)
        if self.config.token:
            req.add_header("Authorization", f"Bearer {self.config.token}")
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=30) as r:
                return r.status, orjson.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, orjson.loads(e.read() or b"{}")

    def get(self, path: str) -> dict[str, Any] | None:
        status, body = self.request("GET", path)
        if status == 404:
            return None
        assert status == 200, body
        return dict(body)


@dataclass
class Syncer:
    process: subprocess.Popen[bytes]
    health_port: int
    metrics_port: int
    log_path: str

    def http(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def _log_tail(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-4000:]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub of its own: these tests stop it with SIGSTOP, which must not stall other modules."""
    server = Hub(
        data_dir=str(tmp_path_factory.mktemp("syncer-hub")), port=free_port(), extra_args=["--bookmark-interval", "1"]
    )
    server.start()
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Member]:
    data_dir = str(tmp_path_factory.mktemp("member"))
    port = free_port()
    log_path = os.path.join(data_dir, "member.log")
    log = open(log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
    simulated = _has_sim_cluster()
    if simulated:
        cmd = [
            "sim-cluster",
            "--name",
            NAME,
            "--data-dir",
            data_dir,
            "--secure-port",
            str(port),
            "--ready-delay",
            "0.2",
        ]
        kubeconfig = os.path.join(data_dir, f"{NAME}.kubeconfig")
    else:
        cmd = ["server", "--data-dir", data_dir, "--secure-port", str(port)]
        kubeconfig = os.path.join(data_dir, "admin.kubeconfig")
    process = subprocess.Popen([sys.executable, "-m", "tmc", *cmd], stdout=log, stderr=log)
    wait_until(lambda: os.path.exists(kubeconfig), timeout=30, what=f"member kubeconfig (log: {log_path})")
    m = Member(kubeconfig, process, simulated, log_path)
    wait_until(lambda: m.request("GET", "/api/v1/namespaces")[0] == 200, timeout=30, what="member cluster serving")
    yield m
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def syncer(hub: Hub, member: Member, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Syncer]:
    log_path = str(tmp_path_factory.mktemp("syncer") / "syncer.log")
    health, metrics_port = free_port(), free_port()
    cmd = [
        sys.executable, "-m", "tmc", "syncer",
        "--sync-target-name", NAME,
        "--kubeconfig", hub.kubeconfig,
        "--downstream-kubeconfig", member.kubeconfig,
        "--health-port", str(health),
        "--metrics-port", str(metrics_port),
        "--heartbeat-period", "1s",
        "--labels", "topology.kubernetes.io/region=eu-1",
        "--log-level", "debug",
    ]  # fmt: skip
    log = open(log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
    process = subprocess.Popen(cmd, stdout=log, stderr=log)
    s = Syncer(process, health, metrics_port, log_path)
    wait_until(lambda: s.http(health, "/readyz")[0] == 200, timeout=30, what=f"syncer ready (log: {log_path})")
    yield s
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


def hub_get(hub: Hub, path: str) -> dict[str, Any] | None:
    status, body = hub.request("GET", path)
    if status == 404:
        return None
    assert status == 200, body
    return dict(body)


def make_namespace(hub: Hub, prefix: str) -> str:
    name = f"{prefix}-{os.urandom(3).hex()}"
    status, body = hub.request("POST", "/clusters/root/api/v1/namespaces", {"metadata": {"name": name, "labels": SYNC}})
    assert status == 201, body
    return name


def downstream_ns(hub: Hub, namespace: str) -> str:
    uid = hub.request("GET", ST_PATH)[1]["metadata"]["uid"]
    return downstream_namespace(namespace_locator("root", NAME, uid, "root", namespace))


def deployment(name: str, image: str, configmap: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": SYNC},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": image, "envFrom": [{"configMapRef": {"name": configmap}}]}]
                },
            },
        },
    }


def test_syncer_registers_its_sync_target_and_heartbeats(hub: Hub, member: Member, syncer: Syncer) -> None:
    st = wait_until(
        lambda: (s := hub_get(hub, ST_PATH)) and (s.get("status") or {}).get("lastSyncerHeartbeatTime") and s,
        what="a heartbeat",
    )
    assert st["metadata"]["labels"]["topology.kubernetes.io/region"] == "eu-1"
    first = st["status"]["lastSyncerHeartbeatTime"]
    wait_until(lambda: hub_get(hub, ST_PATH)["status"]["lastSyncerHeartbeatTime"] != first, what="the next heartbeat")
    status = hub_get(hub, ST_PATH)["status"]
    assert status["virtualWorkspaces"][0]["syncerURL"].endswith(f"/services/syncer/root/{NAME}/{st['metadata']['uid']}")
    assert set(status["syncerStatus"]) == {"syncedResources", "pendingResources", "failedResources"}
    assert "allocated" in status
    if member.simulated:
        # The simulated cluster has Nodes: their capacity is summed into the SyncTarget.
        assert status["capacity"].get("cpu") and status["allocatable"].get("pods"), status

    def syncer_ready() -> bool:
        conditions = hub_get(hub, ST_PATH)["status"].get("conditions") or []
        return any(c["type"] == "SyncerReady" and c["status"] == "True" for c in conditions)

    # SyncerReady turns True with the first heartbeat after its member-cluster informers synced (maybe a later one).
    wait_until(syncer_ready, what="SyncerReady=True on the SyncTarget")
    code, text = syncer.http(syncer.metrics_port, "/metrics")
    assert code == 200 and "tmc_syncer_connections" in text and "tmc_syncer_heartbeat_age_seconds" in text
    assert syncer.http(syncer.health_port, "/healthz")[0] == 200


def test_workload_round_trip(hub: Hub, member: Member, syncer: Syncer) -> None:
    ns = make_namespace(hub, "shop")
    base = f"/clusters/root/api/v1/namespaces/{ns}"
    cm = {"metadata": {"name": "web-config", "labels": SYNC}, "data": {"GREETING": "hello"}}
    assert hub.request("POST", f"{base}/configmaps", cm)[0] == 201
    deploy_path = f"/clusters/root/apis/apps/v1/namespaces/{ns}/deployments"
    assert hub.request("POST", deploy_path, deployment("web", "nginx:1.25", "web-config"))[0] == 201

    down_ns = downstream_ns(hub, ns)
    namespace = wait_until(lambda: member.get(f"/api/v1/namespaces/{down_ns}"), what=f"downstream namespace {down_ns}")
    locator = orjson.loads(namespace["metadata"]["annotations"]["kcp.io/namespace-locator"])
    assert locator["namespace"] == ns and locator["cluster"] == "root"
    assert namespace["metadata"]["labels"]["internal.workload.kcp.io/cluster"] == KEY
    down_deploy = f"/apis/apps/v1/namespaces/{down_ns}/deployments/web"
    copy = wait_until(lambda: member.get(down_deploy), what="the downstream Deployment")
    assert member.get(f"/api/v1/namespaces/{down_ns}/configmaps/web-config")["data"] == {"GREETING": "hello"}
    labels = copy["metadata"]["labels"]
    assert labels["internal.workload.kcp.io/cluster"] == KEY and not any(k.startswith("state.") for k in labels)
    assert not copy["metadata"].get("finalizers") and not copy["metadata"].get("ownerReferences")
    upstream = hub_get(hub, f"{deploy_path}/web")
    assert FINALIZER in upstream["metadata"]["finalizers"]
    # Field managers: the syncer writes under its own name; the hub's ownership records never travel downstream
    # (the member records only its own writers).
    assert "tmc-syncer" in {e["manager"] for e in upstream["metadata"]["managedFields"]}
    assert {e["manager"] for e in copy["metadata"].get("managedFields", [])} <= {"tmc-syncer", "tmc-sim"}

    if not member.simulated:
        # No controllers in a plain `tmc server`: report what the member cluster's deployment controller would.
        ready = {"observedGeneration": copy["metadata"]["generation"], "replicas": 2, "readyReplicas": 2,
                 "availableReplicas": 2, "updatedReplicas": 2}  # fmt: skip
        assert member.request("PUT", f"{down_deploy}/status", {**copy, "status": ready})[0] == 200
    up = wait_until(
        lambda: (d := hub_get(hub, f"{deploy_path}/web")) and (d.get("status") or {}).get("readyReplicas") == 2 and d,
        timeout=30,
        what="readyReplicas on the hub",
    )
    assert up["status"]["observedGeneration"] == up["metadata"]["generation"]
    aggregated = [e for e in up["metadata"]["managedFields"] if e["manager"] == "tmc-status-aggregator"]
    assert aggregated and aggregated[0]["subresource"] == "status"
    assert f"diff.syncer.internal.kcp.io/{KEY}" in up["metadata"]["annotations"]

    # An image change propagates.
    up["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert hub.request("PUT", f"{deploy_path}/web", up)[0] == 200
    wait_until(
        lambda: member.get(down_deploy)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26",
        what="the new image downstream",
    )

    # The syncer's metrics count what it did: objects written down and status written up, with their durations.
    code, text = syncer.http(syncer.metrics_port, "/metrics")
    assert code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    for resource in ("deployments.apps", "configmaps"):
        synced = {"cluster": NAME, "resource": resource, "namespace": ns}
        assert sample("tmc_syncer_synced_resources_total", **synced) == 1, resource
        written = {"sync_target": NAME, "resource_type": resource, "operation": "create", "result": "success"}
        assert sample("syncer_operations_total", **written) >= 1, resource
        assert sample("syncer_resources_total", sync_target=NAME, resource_type=resource, status="synced") == 1
    status = {"sync_target": NAME, "resource_type": "deployments.apps", "operation": "status", "result": "success"}
    assert sample("syncer_operations_total", **status) >= 1
    assert (
        sample(
            "syncer_operation_duration_seconds_count", sync_target=NAME, resource_type="configmaps", operation="create"
        )
        >= 1
    )
    assert [v for (n, _), v in samples.items() if n == "syncer_target_health"] == [1.0]
    timed = [
        value
        for (name, labels), value in samples.items()
        if name == "tmc_syncer_sync_duration_seconds_count" and ("result", "success") in labels
    ]
    assert timed and sum(timed) >= 3

    # Deleting upstream deletes downstream first, then the hub object goes.
    assert hub.request("DELETE", f"{deploy_path}/web")[0] == 200
    wait_until(lambda: member.get(down_deploy) is None, what="the downstream Deployment to go")
    wait_until(lambda: hub_get(hub, f"{deploy_path}/web") is None, what="the hub Deployment to go")


def test_unassignment_removes_the_downstream_copy(hub: Hub, member: Member, syncer: Syncer) -> None:
    ns = make_namespace(hub, "unassign")
    path = f"/clusters/root/api/v1/namespaces/{ns}/configmaps"
    assert hub.request("POST", path, {"metadata": {"name": "settings", "labels": SYNC}, "data": {"a": "1"}})[0] == 201
    down = f"/api/v1/namespaces/{downstream_ns(hub, ns)}/configmaps/settings"
    wait_until(lambda: member.get(down), what="the downstream ConfigMap")
    patch = {"metadata": {"labels": {f"state.workload.kcp.io/{KEY}": None}}}
    assert hub.request("PATCH", f"{path}/settings", patch, content_type="application/merge-patch+json")[0] == 200
    wait_until(lambda: member.get(down) is None, what="the downstream ConfigMap to go")
    # The syncer's finalizer does not outlive the assignment.
    wait_until(
        lambda: FINALIZER not in (hub_get(hub, f"{path}/settings")["metadata"].get("finalizers") or []),
        what="finalizer released",
    )


def test_paused_hub_changes_nothing_downstream(hub: Hub, member: Member, syncer: Syncer) -> None:
    ns = make_namespace(hub, "pause")
    path = f"/clusters/root/api/v1/namespaces/{ns}/configmaps"
    for i in range(5):
        assert (
            hub.request("POST", path, {"metadata": {"name": f"cm-{i}", "labels": SYNC}, "data": {"i": str(i)}})[0]
            == 201
        )
    down_list = f"/api/v1/namespaces/{downstream_ns(hub, ns)}/configmaps"

    def snapshot() -> dict[str, tuple[str, str]]:
        items = member.request("GET", down_list)[1]["items"]
        return {i["metadata"]["name"]: (i["metadata"]["uid"], i["metadata"]["resourceVersion"]) for i in items}

    before = wait_until(lambda: len(s := snapshot()) == 5 and s, what="5 downstream ConfigMaps")
    assert hub.process is not None
    hub.process.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert snapshot() == before, "the member cluster changed while the hub was paused"
            time.sleep(0.2)
    finally:
        hub.process.send_signal(signal.SIGCONT)
    # After the hub resumes the syncer carries on from where it was: a new object arrives, nothing was recreated.
    assert hub.request("POST", path, {"metadata": {"name": "after", "labels": SYNC}, "data": {"i": "x"}})[0] == 201
    after = wait_until(lambda: "after" in (s := snapshot()) and s, timeout=60, what="the post-pause ConfigMap")
    assert {k: v for k, v in after.items() if k != "after"} == before
    namespaces = member.request("GET", f"/api/v1/namespaces?labelSelector=internal.workload.kcp.io/cluster%3D{KEY}")[1]
    locators = [n["metadata"]["annotations"]["kcp.io/namespace-locator"] for n in namespaces["items"]]
    assert sum(1 for text in locators if orjson.loads(text)["namespace"] == ns) == 1, locators
    assert syncer.process.poll() is None, _log_tail(syncer.log_path)
