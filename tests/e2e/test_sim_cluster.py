"""`tmc sim-cluster` end to end: a real process driven with kubectl and the official Python client."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.e2e.harness import Kubectl, free_port, python_client, wait_until
from tests.e2e.sim_harness import SimCluster
from tmc.client import load_kubeconfig

NEVER_READY = "sim.tmc.io/never-ready"
CRASH_LOOP = "sim.tmc.io/crash-loop"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    data_dir = str(tmp_path_factory.mktemp("sim"))
    args = ["--nodes", "2", "--node-cpu", "2", "--ready-delay", "200ms", "--labels", "region=eu-west,zone=eu-west-1a"]
    cluster = SimCluster("c1", data_dir, free_port(), args)
    cluster.start()
    yield cluster
    if cluster.process is not None:
        assert cluster.stop() == 0, cluster.log_text()


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: str, sim: SimCluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(sim.kubeconfig, str(tmp_path_factory.mktemp("sim-kube-cache")))


@pytest.fixture(scope="module")
def api(sim: SimCluster) -> Any:
    return python_client(sim.kubeconfig)


@pytest.fixture
def ns(api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("_", "-")[:50].strip("-") + "-" + os.urandom(2).hex()
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)  # frees the capacity its pods take for the tests after it


def deployment(name: str, replicas: int = 3, image: str = "nginx:1.25", **template: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if "cpu" in template:
        container["resources"] = {"requests": {"cpu": template.pop("cpu")}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": template.pop("annotations", {})},
                "spec": {"containers": [container]},
            },
        },
    }


def pods(api: Any, ns: str, selector: str) -> list[Any]:
    return list(client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=selector).items)


def conditions(obj: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in obj.status.conditions or []}


def test_nodes_have_capacity_labels_and_ready(sim: SimCluster, api: Any, kubectl: Kubectl) -> None:
    nodes = client.CoreV1Api(api).list_node().items
    assert sorted(n.metadata.name for n in nodes) == ["c1-node-0", "c1-node-1"]
    for node in nodes:
        assert node.status.capacity == {"cpu": "2", "memory": "32Gi", "pods": "110"}
        assert node.status.allocatable == node.status.capacity
        assert conditions(node)["Ready"] == ("True", "KubeletReady")
        assert node.status.node_info.kubelet_version == "v1.32.0-sim"
        assert {a.type for a in node.status.addresses} == {"InternalIP", "Hostname"}
        labels = node.metadata.labels
        assert labels["kubernetes.io/hostname"] == node.metadata.name and labels["type"] == "kwok"
        assert labels["topology.kubernetes.io/region"] == "eu-west"
        assert labels["topology.kubernetes.io/zone"] == "eu-west-1a"
        assert labels["node.kubernetes.io/instance-type"]
    out = kubectl.run("get", "nodes,deploy,rs,pods", "-A").stdout
    assert "c1-node-0" in out and "Ready" in out
    with open(sim.kubeconfig) as f:
        config = yaml.safe_load(f)
    assert config["current-context"] == "c1"
    assert config["clusters"][0]["cluster"]["server"] == sim.base_url  # plain layout, no /clusters/ prefix


def test_deployment_becomes_ready_with_upstream_status(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web"))
    d = wait_until(
        lambda: (d := apps.read_namespaced_deployment("web", ns)).status.available_replicas == 3 and d,
        timeout=10,
        what="3/3 available",
    )
    assert (d.status.replicas, d.status.updated_replicas, d.status.ready_replicas) == (3, 3, 3)
    assert d.status.observed_generation == d.metadata.generation and not d.status.unavailable_replicas
    d = wait_until(
        lambda: (
            conditions(d := apps.read_namespaced_deployment("web", ns)).get("Progressing", ("", ""))[1]
            == "NewReplicaSetAvailable"
            and d
        ),
        timeout=5,
        what="Progressing=NewReplicaSetAvailable",
    )
    assert conditions(d)["Available"] == ("True", "MinimumReplicasAvailable")
    assert [c.type for c in d.status.conditions] == ["Available", "Progressing"]
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    [rs] = apps.list_namespaced_replica_set(ns).items
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}" and len(pod_hash) == 10
    assert rs.metadata.owner_references[0].controller and rs.metadata.owner_references[0].uid == d.metadata.uid
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (3, 3, 3)
    for pod in pods(api, ns, "app=web"):
        assert (
            pod.metadata.name.startswith(f"{rs.metadata.name}-") and len(pod.metadata.name) == len(rs.metadata.name) + 6
        )
        assert pod.status.phase == "Running" and pod.spec.node_name in ("c1-node-0", "c1-node-1")
        assert {c.type: c.status for c in pod.status.conditions} == {
            "PodReadyToStartContainers": "True",
            "Initialized": "True",
            "Ready": "True",
            "ContainersReady": "True",
            "PodScheduled": "True",
        }
        [cs] = pod.status.container_statuses
        assert cs.ready and cs.started and cs.restart_count == 0 and cs.state.running.started_at
        assert pod.status.pod_ip and pod.status.host_ip and pod.status.start_time


def test_image_change_rolls_out(api: Any, ns: str, kubectl: Kubectl) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("roll", replicas=4))
    wait_until(lambda: apps.read_namespaced_deployment("roll", ns).status.available_replicas == 4, timeout=10)
    kubectl.run("-n", ns, "set", "image", "deployment/roll", "app=nginx:1.27")

    def rolled() -> bool:
        d = apps.read_namespaced_deployment("roll", ns)
        s = d.status
        done = s.observed_generation == 2 and s.updated_replicas == s.replicas == s.available_replicas == 4
        return done and conditions(d)["Progressing"][1] == "NewReplicaSetAvailable"

    wait_until(rolled, timeout=15, what="rollout to finish")
    sets = {rs.spec.template.spec.containers[0].image: rs for rs in apps.list_namespaced_replica_set(ns).items}
    assert sets["nginx:1.25"].spec.replicas == 0 and not sets["nginx:1.25"].status.replicas
    assert sets["nginx:1.27"].spec.replicas == 4
    assert sets["nginx:1.27"].metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert {p.spec.containers[0].image for p in pods(api, ns, "app=roll") if p.metadata.deletion_timestamp is None} == {
        "nginx:1.27"
    }
    assert "successfully rolled out" in kubectl.run("-n", ns, "rollout", "status", "deployment/roll").stdout


def test_pods_beyond_node_capacity_stay_pending(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("big", replicas=3, cpu="1500m"))

    def split() -> list[Any] | None:
        found = pods(api, ns, "app=big")
        ready = [p for p in found if p.status.phase == "Running"]
        stuck = [p for p in found if p.status.conditions and conditions(p).get("PodScheduled", ("",))[0] == "False"]
        return stuck if len(ready) == 2 and len(stuck) == 1 else None

    [pending] = wait_until(split, timeout=10, what="2 running, 1 unschedulable")
    assert pending.status.phase == "Pending" and pending.spec.node_name is None
    [cond] = [c for c in pending.status.conditions if c.type == "PodScheduled"]
    assert cond.reason == "Unschedulable"
    assert cond.message.startswith("0/2 nodes are available:") and "Insufficient cpu" in cond.message
    d = wait_until(lambda: (d := apps.read_namespaced_deployment("big", ns)).status.ready_replicas == 2 and d)
    assert conditions(d)["Available"] == ("False", "MinimumReplicasUnavailable")
    assert d.status.unavailable_replicas == 1


def test_never_ready_and_crash_loop_faults(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("stuck", replicas=1, annotations={NEVER_READY: "true"}))
    apps.create_namespaced_deployment(ns, deployment("crash", replicas=1, annotations={CRASH_LOOP: "true"}))

    def crashing() -> Any:
        [pod] = pods(api, ns, "app=crash") or [None]
        cs = pod and pod.status.container_statuses and pod.status.container_statuses[0]
        return cs if cs and cs.restart_count >= 2 else None

    cs = wait_until(crashing, timeout=10, what="crash-looping pod restarting")
    assert cs.state.waiting.reason == "CrashLoopBackOff" and not cs.ready
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    [stuck] = pods(api, ns, "app=stuck")
    assert stuck.status.phase == "Running" and stuck.metadata.annotations[NEVER_READY] == "true"
    assert conditions(stuck)["Ready"] == ("False", "ContainersNotReady")
    assert stuck.status.container_statuses[0].state.running and not stuck.status.container_statuses[0].ready
    for name in ("stuck", "crash"):
        d = apps.read_namespaced_deployment(name, ns)
        assert not d.status.ready_replicas and conditions(d)["Available"][0] == "False"


def test_job_completes(api: Any, ns: str) -> None:
    batch = client.BatchV1Api(api)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "completions": 3,
            "parallelism": 2,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
        },
    }
    batch.create_namespaced_job(ns, job)
    done = wait_until(
        lambda: (j := batch.read_namespaced_job("once", ns)).status.completion_time and j, timeout=10, what="job done"
    )
    assert done.status.succeeded == 3 and not done.status.active and not done.status.failed
    assert conditions(done) == {
        "SuccessCriteriaMet": ("True", "CompletionsReached"),
        "Complete": ("True", "CompletionsReached"),
    }
    assert done.status.start_time <= done.status.completion_time
    finished = pods(api, ns, "job-name=once")
    assert len(finished) == 3 and {p.status.phase for p in finished} == {"Succeeded"}


def test_statefulset_and_daemonset_status(api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    template = {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "postgres"}]}}
    sts = {
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template},
    }
    apps.create_namespaced_stateful_set(ns, sts)
    ds_template = {
        "metadata": {"labels": {"app": "agent"}},
        "spec": {"containers": [{"name": "c", "image": "fluentd"}]},
    }
    ds = {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": ds_template},
    }
    apps.create_namespaced_daemon_set(ns, ds)
    s = wait_until(
        lambda: (s := apps.read_namespaced_stateful_set("db", ns)).status.ready_replicas == 2 and s, timeout=10
    )
    assert (s.status.replicas, s.status.current_replicas, s.status.updated_replicas, s.status.available_replicas) == (
        2,
        2,
        2,
        2,
    )
    assert s.status.current_revision == s.status.update_revision and s.status.observed_generation == 1
    assert sorted(p.metadata.name for p in pods(api, ns, "app=db")) == ["db-0", "db-1"]
    d = wait_until(
        lambda: (d := apps.read_namespaced_daemon_set("agent", ns)).status.number_ready == 2 and d, timeout=10
    )
    st = d.status
    assert (st.desired_number_scheduled, st.current_number_scheduled, st.updated_number_scheduled) == (2, 2, 2)
    assert (st.number_available, st.number_misscheduled, st.observed_generation) == (2, 0, 1)
    assert sorted(p.spec.node_name for p in pods(api, ns, "app=agent")) == ["c1-node-0", "c1-node-1"]


def _token_and_ca(sim: SimCluster) -> tuple[str, ssl.SSLContext]:
    config = load_kubeconfig(sim.kubeconfig)
    assert config.token and config.ca_pem
    return config.token, ssl.create_default_context(cadata=config.ca_pem.decode())


def _answers(sim: SimCluster, timeout: float) -> bool:
    token, ctx = _token_and_ca(sim)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
        return conn.getresponse().status == 200
    except TimeoutError:
        return False
    finally:
        conn.close()


def test_outage_file_stops_answers_until_removed(sim: SimCluster, kubectl: Kubectl) -> None:
    token, ctx = _token_and_ca(sim)
    watch = http.client.HTTPSConnection("127.0.0.1", sim.port, context=ctx, timeout=10)
    watch.request("GET", "/api/v1/namespaces/default/configmaps?watch=1", headers={"Authorization": f"Bearer {token}"})
    response = watch.getresponse()
    assert response.status == 200
    sim.outage(True)
    try:
        try:
            response.read()  # the open watch is cut when the outage starts (no 10 s timeout)
        except (http.client.IncompleteRead, ConnectionError, ssl.SSLError):
            pass
        wait_until(lambda: not _answers(sim, timeout=0.5), timeout=5, what="requests to time out")
        assert kubectl.run("get", "nodes", "--request-timeout=1s", check=False).returncode != 0
    finally:
        sim.outage(False)
        watch.close()
    wait_until(lambda: _answers(sim, timeout=2), timeout=5, what="service to come back")
    assert "c1-node-0" in kubectl.run("get", "nodes").stdout


def test_restart_keeps_nodes_and_workloads(sim: SimCluster, api: Any, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("keep", replicas=2))
    wait_until(lambda: apps.read_namespaced_deployment("keep", ns).status.available_replicas == 2, timeout=10)
    uids = {n.metadata.name: n.metadata.uid for n in client.CoreV1Api(api).list_node().items}
    assert sim.stop(signal.SIGTERM) == 0
    sim.start()
    fresh = python_client(sim.kubeconfig)
    assert {n.metadata.name: n.metadata.uid for n in client.CoreV1Api(fresh).list_node().items} == uids
    d = client.AppsV1Api(fresh).read_namespaced_deployment("keep", ns)
    assert d.status.available_replicas == 2
