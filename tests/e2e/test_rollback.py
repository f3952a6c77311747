"""Revisions, undo and automatic rollback end to end, on one `tmc up` (three simulated clusters), with the files of
examples/rollback/ applied as they are, the real kubectl and the installed `kubectl-tmc`:
- the docs walk-through: two changes make three revisions with authors; `rollout undo --to-revision 1` brings back
  the first image and ConfigMap content on every member; `rollout undo` again brings back revision 3's content;
- a version whose pods never become Ready on two of the three clusters is rolled back by the RollbackPolicy at its
  progress deadline, the Event names the clusters, and the workload never loses availability;
- bad input: an unknown revision, no history, a ConfigMap deleted by hand (restored, with a warning);
- an undo of a canary paused at weight 30 (examples/rollback/canary.yaml, the live canary controller): in every
  member the VirtualService's weight 0 is written before the canary Deployment is scaled down (resourceVersions from
  the member's watch history), and the canary says the undo aborted it;
- a custom resource that opted in (crd.yaml, custom-resource.yaml): history and undo by `kubectl tmc rollout`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import FAST_UP_ARGS, TmcUp, free_port, wait_until

pytestmark = pytest.mark.usefixtures("kubectl_binary")
BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rollback"
NS = "rollback-demo"
CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    system = TmcUp(str(tmp_path_factory.mktemp("rollback")), free_port(), *FAST_UP_ARGS, "--no-prometheus")
    try:
        system.wait_up()
        wait_until(lambda: len(ready_targets(system)) == 3, timeout=30, what="three Ready SyncTargets")
        yield system
    finally:
        assert system.stop() == 0, system.output()


def ready_targets(up: TmcUp) -> list[str]:
    items = up.kubectl().json("get", "synctargets")["items"]
    return [
        i["metadata"]["name"]
        for i in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
    ]


def tmc(up: TmcUp, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": os.path.join(up.data_dir, "admin.kubeconfig")}
    result = subprocess.run([str(BIN / "kubectl-tmc"), *args], capture_output=True, text=True, env=env, timeout=90)
    assert result.returncode == code, f"kubectl tmc {' '.join(args)} -> {result.returncode}\n{result.stderr}"
    return result


def apply(up: TmcUp, name: str) -> None:
    up.kubectl().run("apply", "-f", str(EXAMPLES / name))


def member(up: TmcUp, cluster: str, kind: str, name: str) -> dict[str, Any] | None:
    """The member cluster's copy of the hub object `name` of namespace NS (found by its namespace locator)."""
    items = up.kubectl(cluster).json("get", kind, "-A")["items"]
    for item in items:
        if item["metadata"]["name"] == name and item["metadata"]["namespace"] == downstream_ns(up, cluster):
            return dict(item)
    return None


_DOWNSTREAM: dict[tuple[str, str], str] = {}


def downstream_ns(up: TmcUp, cluster: str, namespace: str = NS) -> str:
    if (cluster, namespace) not in _DOWNSTREAM:
        for ns in up.kubectl(cluster).json("get", "namespaces")["items"]:
            locator = (ns["metadata"].get("annotations") or {}).get("kcp.io/namespace-locator", "")
            if f'"namespace":"{namespace}"' in locator.replace(" ", ""):
                _DOWNSTREAM[(cluster, namespace)] = ns["metadata"]["name"]
    return _DOWNSTREAM.get((cluster, namespace), "")


def everywhere(up: TmcUp, image: str, greeting: str) -> bool:
    """Every member runs `image` (template, rolled out and available) and holds `greeting` in web-config."""
    for cluster in CLUSTERS:
        deploy = member(up, cluster, "deployment", "web")
        config = member(up, cluster, "configmap", "web-config")
        if deploy is None or config is None or config.get("data", {}).get("greeting") != greeting:
            return False
        status = deploy.get("status", {})
        if deploy["spec"]["template"]["spec"]["containers"][0]["image"] != image:
            return False
        if status.get("updatedReplicas") != 2 or status.get("availableReplicas") != 2 or status.get("replicas") != 2:
            return False
    return True


def revisions(up: TmcUp, name: str = "web", namespace: str = NS) -> list[dict[str, Any]]:
    items = up.kubectl().json("get", "workloadrevisions", "-n", namespace)["items"]
    return sorted((i for i in items if i["spec"]["workloadRef"]["name"] == name), key=lambda i: i["spec"]["revision"])


def history_rows(up: TmcUp) -> list[list[str]]:
    out = tmc(up, "rollout", "history", "deployment/web", "-n", NS).stdout.splitlines()
    assert out[0] == "deployment.apps/web" and out[1].split()[:3] == ["REVISION", "CHANGE-CAUSE", "AUTHOR"], out
    return [line.split() for line in out[2:]]


def test_walkthrough_history_undo_and_automatic_rollback(up: TmcUp) -> None:
    apply(up, "app.yaml")
    wait_until(lambda: everywhere(up, "nginx:1.26", "hello"), timeout=40, what="the first version everywhere")
    apply(up, "change-1.yaml")
    wait_until(lambda: everywhere(up, "nginx:1.27", "hello"), timeout=20, what="change 1 everywhere")
    wait_until(lambda: len(revisions(up)) == 2, what="revision 2")
    apply(up, "change-2.yaml")
    wait_until(lambda: everywhere(up, "nginx:1.27", "hello again"), timeout=20, what="change 2 everywhere")
    wait_until(lambda: len(revisions(up)) == 3, what="revision 3")

    rows = history_rows(up)
    assert [r[0] for r in rows] == ["1", "2", "3"], rows
    assert all("admin" in r for r in rows), rows  # the author: the kubeconfig's user
    assert rows[1][1:3] == ["nginx", "1.27"] and "configmap/web-config" in " ".join(rows[2]), rows
    shown = tmc(up, "rollout", "history", "deployment/web", "-n", NS, "--revision", "1").stdout
    assert "image: nginx:1.26" in shown and "-    image: nginx:1.27" in shown and "+    image: nginx:1.26" in shown

    dry = tmc(up, "rollout", "undo", "deployment/web", "-n", NS, "--to-revision", "1", "--dry-run").stdout
    assert "(dry run)" in dry and "configmap/web-config: restored" in dry, dry
    assert len(revisions(up)) == 3 and everywhere(up, "nginx:1.27", "hello again")  # the dry run changed nothing

    out = tmc(up, "rollout", "undo", "deployment/web", "-n", NS, "--to-revision", "1").stdout
    assert out.strip() == "deployment.apps/web rolled back to revision 1"
    wait_until(lambda: everywhere(up, "nginx:1.26", "hello"), timeout=20, what="revision 1 back everywhere")
    wait_until(lambda: len(revisions(up)) == 4, what="the undo recorded as revision 4")
    assert revisions(up)[3]["spec"]["rollbackTo"] == 1

    out = tmc(up, "rollout", "undo", "deployment/web", "-n", NS).stdout
    assert out.strip() == "deployment.apps/web rolled back to revision 3"
    wait_until(lambda: everywhere(up, "nginx:1.27", "hello again"), timeout=20, what="revision 3's content back")
    wait_until(lambda: (r := revisions(up)) and r[-1]["status"].get("healthy"), what="revision 5 healthy everywhere")
    stable = len(revisions(up))

    # A version that never becomes Ready on cluster-2 and cluster-3: the policy (deadline 10 s, at most one cluster
    # may miss it) rolls the fleet back to revision 5, while the old pods keep serving.
    applied = time.monotonic()
    apply(up, "never-ready.yaml")
    samples: list[int] = []

    def rolled_back() -> bool:
        hub = up.kubectl().json("get", "deployment", "web", "-n", NS)
        samples.append(int(hub.get("status", {}).get("availableReplicas") or 0))
        conditions = {c["type"]: c for c in hub.get("status", {}).get("conditions", [])}
        rolled = conditions.get("RolledBack", {})
        return rolled.get("reason") == "ProgressDeadlineExceeded" and "revision 6" in rolled.get("message", "")

    wait_until(rolled_back, timeout=30, interval=0.2, what="the automatic rollback")
    took = time.monotonic() - applied
    assert 10 <= took < 20, took  # at the progress deadline, not before it
    wait_until(lambda: everywhere(up, "nginx:1.27", "hello again"), timeout=20, what="the stable version everywhere")
    assert min(samples) == 6, samples  # full availability the whole time
    revs = revisions(up)
    assert revs[stable]["status"]["phase"] == "RolledBack" and revs[-1]["spec"]["rollbackTo"] == stable
    events = up.kubectl().json("get", "events", "-n", NS, "--field-selector", "involvedObject.name=web")["items"]
    [event] = [e for e in events if e["reason"] == "RolledBack" and e["type"] == "Warning"]
    assert "cluster-2, cluster-3" in event["message"] and "progress deadline" in event["message"], event
    # It does not loop: the bad revision is not tried again, and nothing more is recorded.
    assert len(revisions(up)) == stable + 2
    metrics = metric_values(up)
    assert metrics['tmc_rollbacks_total{reason="UserRequested"}'] == 2
    assert metrics['tmc_rollbacks_total{reason="ProgressDeadlineExceeded"}'] == 1
    assert metrics['tmc_workload_revisions{kind="Deployment"}'] == stable + 2
    assert metrics["tmc_rollback_duration_seconds_count"] >= 2  # the restored revisions became available


def metric_values(up: TmcUp) -> dict[str, float]:
    text = up.kubectl().run("get", "--raw", "/metrics").stdout
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("tmc_rollback", "tmc_workload_revisions"))
    }


def test_bad_input(up: TmcUp) -> None:
    kubectl = up.kubectl()
    kubectl.run("create", "namespace", "rollback-bad")
    kubectl.run("label", "namespace", "rollback-bad", "app=rollback-demo")  # placed by the example's Placement
    kubectl.run("create", "configmap", "api-config", "-n", "rollback-bad", "--from-literal=level=1")
    kubectl.run("create", "deployment", "api", "-n", "rollback-bad", "--image=nginx:1.26", "--replicas=1")
    kubectl.run("set", "env", "deployment/api", "-n", "rollback-bad", "--from=configmap/api-config")

    def reads_config() -> bool:
        found = revisions(up, "api", "rollback-bad")
        return bool(found) and any(c["name"] == "api-config" for c in found[-1]["spec"].get("configMaps", []))

    wait_until(reads_config, timeout=20, what="a revision of api reading api-config")

    unknown = tmc(up, "rollout", "undo", "deployment/api", "-n", "rollback-bad", "--to-revision", "42", code=1)
    assert "unable to find the specified revision 42" in unknown.stderr and unknown.stderr.count("\n") == 1
    missing = tmc(up, "rollout", "undo", "deployment/nope", "-n", "rollback-bad", code=1)
    assert 'Deployment "nope" not found' in missing.stderr
    kubectl.run("create", "deployment", "unplaced", "-n", "default", "--image=nginx")
    none = tmc(up, "rollout", "undo", "deployment/unplaced", "-n", "default", code=1)
    assert "no rollout history found for deployment.apps/unplaced" in none.stderr

    recorded = len(revisions(up, "api", "rollback-bad"))
    first = revisions(up, "api", "rollback-bad")[-1]["spec"]["revision"]
    kubectl.run("set", "image", "deployment/api", "-n", "rollback-bad", "*=nginx:1.27")
    wait_until(lambda: len(revisions(up, "api", "rollback-bad")) == recorded + 1, what="api's image change")
    kubectl.run("delete", "configmap", "api-config", "-n", "rollback-bad")  # deleted by hand
    wait_until(lambda: len(revisions(up, "api", "rollback-bad")) == recorded + 2, what="the deletion recorded")
    out = tmc(up, "rollout", "undo", "deployment/api", "-n", "rollback-bad", "--to-revision", str(first))
    assert f"ConfigMap api-config was deleted since revision {first}: restored from the revision" in out.stderr
    restored = kubectl.json("get", "configmap", "api-config", "-n", "rollback-bad")
    assert restored["data"] == {"level": "1"}
    image = kubectl.json("get", "deployment", "api", "-n", "rollback-bad")["spec"]["template"]["spec"]["containers"]
    assert image[0]["image"] == "nginx:1.26"


CANARY_NS = "rollback-canary"


def canary_weights(up: TmcUp, cluster: str) -> dict[str, int] | None:
    """shop's VirtualService route weights in a member."""
    for vs in up.kubectl(cluster).json("get", "virtualservices", "-A")["items"]:
        if vs["metadata"]["name"] == "shop" and vs["metadata"]["namespace"] == downstream_ns(up, cluster, CANARY_NS):
            return {d["destination"]["host"]: d.get("weight", 0) for d in vs["spec"]["http"][0]["route"]}
    return None


def member_rv(up: TmcUp, cluster: str) -> int:
    """The member's newest resourceVersion (one counter per cluster, across kinds)."""
    listed = json.loads(up.kubectl(cluster).run("get", "--raw", "/api/v1/namespaces").stdout)
    return int(listed["metadata"]["resourceVersion"])


def events_since(up: TmcUp, cluster: str, path: str, rv: int) -> list[dict[str, Any]]:
    """The member's watch events of `path` after `rv`, replayed from its watch history."""
    url = f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    lines = up.kubectl(cluster).run("get", "--raw", url).stdout.splitlines()
    return [e for e in (json.loads(line) for line in lines if line.strip()) if e["type"] in ("ADDED", "MODIFIED")]


def test_undo_of_a_paused_canary_reverses_traffic_before_cleanup(up: TmcUp) -> None:
    kubectl = up.kubectl()
    apply(up, "canary.yaml")

    def canary() -> dict[str, Any]:
        return dict(kubectl.json("get", "canarydeployment", "shop", "-n", CANARY_NS).get("status") or {})

    stable = {"shop-primary": 100, "shop-canary": 0}
    wait_until(lambda: canary().get("phase") == "Succeeded", timeout=40, what="the canary initialised")
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: canary_weights(up, c) == stable, timeout=30, what=f"stable routing in {cluster}")
    wait_until(lambda: len(revisions(up, "shop", CANARY_NS)) == 1, what="shop's revision 1")
    kubectl.run("set", "image", "deployment/shop", "-n", CANARY_NS, "*=nginx:1.28")
    split = {"shop-primary": 70, "shop-canary": 30}
    wait_until(lambda: canary().get("phase") == "Paused", timeout=40, what="the canary paused at weight 30")
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: canary_weights(up, c) == split, timeout=30, what=f"weight 30 in {cluster}")
    since = {cluster: member_rv(up, cluster) for cluster in CLUSTERS}

    out = tmc(up, "rollout", "undo", "deployment/shop", "-n", CANARY_NS).stdout
    assert out.strip() == "deployment.apps/shop rolled back to revision 1", out
    st = canary()
    assert st["phase"] == "RolledBack" and st["weight"] == 0, st
    assert "aborted by rollout undo" in st["message"], st["message"]
    for cluster in CLUSTERS:
        wait_until(lambda c=cluster: canary_weights(up, c) == stable, timeout=30, what=f"weight 0 in {cluster}")
        ns = downstream_ns(up, cluster, CANARY_NS)

        def scaled_down(c: str = cluster, ns: str = ns) -> bool:
            deploy = up.kubectl(c).json("get", "deployment", "shop", "-n", ns)
            return deploy["spec"]["replicas"] == 0 and not deploy["status"].get("replicas")

        wait_until(scaled_down, timeout=30, what=f"the canary scaled down in {cluster}")
        # In each member, the write that took the canary's weight to 0 came before the one that scaled it down.
        routed = events_since(
            up, cluster, f"/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices", since[cluster]
        )
        zero = min(
            int(e["object"]["metadata"]["resourceVersion"])
            for e in routed
            if {d["destination"]["host"]: d.get("weight", 0) for d in e["object"]["spec"]["http"][0]["route"]} == stable
        )
        scaled = events_since(up, cluster, f"/apis/apps/v1/namespaces/{ns}/deployments", since[cluster])
        down = min(
            int(e["object"]["metadata"]["resourceVersion"])
            for e in scaled
            if e["object"]["metadata"]["name"] == "shop" and e["object"]["spec"]["replicas"] == 0
        )
        assert zero < down, (cluster, zero, down)
    image = kubectl.json("get", "deployment", "shop", "-n", CANARY_NS)["spec"]["template"]["spec"]["containers"][0]
    assert image["image"] == "nginx:1.27"


def test_custom_resource_history_and_undo(up: TmcUp) -> None:
    kubectl = up.kubectl()
    kubectl.run("apply", "-f", str(EXAMPLES / "crd.yaml"))
    kubectl.run("wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=20s")
    wait_until(lambda: kubectl.run("apply", "-f", str(EXAMPLES / "custom-resource.yaml"), check=False).returncode == 0)
    wait_until(lambda: len(revisions(up, "nightly", "rollback-cr")) == 1, what="the CronTab's revision 1")
    patch = '{"spec":{"image":"backup:2","replicas":3}}'
    kubectl.run("patch", "crontab", "nightly", "-n", "rollback-cr", "--type", "merge", "-p", patch)
    wait_until(lambda: len(revisions(up, "nightly", "rollback-cr")) == 2, what="the CronTab's revision 2")

    out = tmc(up, "rollout", "history", "crontab/nightly", "-n", "rollback-cr").stdout.splitlines()
    assert out[0] == "crontab.stable.example.com/nightly", out
    assert [line.split()[0] for line in out[2:]] == ["1", "2"] and "admin" in out[3], out
    out = tmc(up, "rollout", "undo", "ct/nightly", "-n", "rollback-cr").stdout
    assert out.strip() == "crontab.stable.example.com/nightly rolled back to revision 1", out
    spec = kubectl.json("get", "crontab", "nightly", "-n", "rollback-cr")["spec"]
    assert spec == {"cronSpec": "0 3 * * *", "image": "backup:1", "replicas": 3}  # an undo does not scale
    missing = tmc(up, "rollout", "history", "crontab/nope", "-n", "rollback-cr", code=1)
    assert 'CronTab "nope" not found' in missing.stderr
