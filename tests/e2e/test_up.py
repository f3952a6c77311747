"""`tmc up` end to end: the hub, three simulated clusters and their syncers; a Placement divides a Deployment."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.harness import FAST_UP_ARGS, Kubectl, TmcUp, free_port, wait_until
from tmc.cli.catalogue import catalogue_markdown
from tmc.observability import catalogue
from tmc.protocol import keys

pytestmark = pytest.mark.usefixtures("kubectl_binary")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    up = TmcUp(str(tmp_path_factory.mktemp("up")), free_port(), *FAST_UP_ARGS)
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


def _exported(text: str) -> set[str]:
    """The metric families an exposition declares (`# TYPE` lines), without prometheus_client's own."""
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return {n for n in names if not n.startswith(("process_", "python_"))}


def test_each_process_exports_exactly_its_catalogued_metrics(system: TmcUp) -> None:
    catalogue_markdown()

    def scrape_syncer() -> str | None:
        try:
            with urllib.request.urlopen(system.syncer_metrics_url("cluster-1"), timeout=10) as r:
                return str(r.read().decode())
        except OSError:
            return None  # still starting

    syncer = wait_until(scrape_syncer, what="the syncer's /metrics")
    texts = {
        catalogue.HUB: system.kubectl().run("get", "--raw", "/metrics").stdout,
        catalogue.SIM: system.kubectl("cluster-1").run("get", "--raw", "/metrics").stdout,
        catalogue.SYNCER: syncer,
    }
    for owner, text in texts.items():
        wanted = {name for name, doc in catalogue.CATALOGUE.items() if owner in doc.owners}
        assert _exported(text) == wanted, (owner, sorted(_exported(text) ^ wanted))


def _ready_targets(hub: Kubectl) -> list[str]:
    items = hub.json("get", "synctargets")["items"]
    return [
        st["metadata"]["name"]
        for st in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("status", {}).get("conditions", []))
    ]


def test_up_starts_three_ready_targets_with_capacity(system: TmcUp) -> None:
    hub = system.kubectl()
    wait_until(lambda: len(_ready_targets(hub)) == 3, timeout=20, what="three Ready SyncTargets")
    for st in hub.json("get", "synctargets")["items"]:
        assert st["status"]["capacity"]["cpu"], st["status"]
        # What its syncer syncs, so the hub can add the syncer's finalizer when it assigns an object.
        synced = {(r.get("group", ""), r["resource"], r["state"]) for r in st["status"]["syncedResources"]}
        assert {("apps", "deployments", "Accepted"), ("", "configmaps", "Accepted")} <= synced, synced
    for name in ("hub.pid", "clusters/cluster-1.pid", "syncers/cluster-1.pid"):
        assert os.path.exists(os.path.join(system.data_dir, name)), name
    out = system.output()
    assert "export KUBECONFIG=" in out and "kubectl get synctargets" in out


MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {app: shop}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-config, namespace: shop}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop, namespace: shop}
spec:
  replicas: 6
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
      - name: shop
        image: nginx:1.27
        volumeMounts: [{name: cfg, mountPath: /etc/shop}]
      volumes: [{name: cfg, configMap: {name: shop-config}}]
---
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: shop}
spec:
  locationSelectors: [{}]
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  namespaceSelector: {matchLabels: {app: shop}}
  locationWorkspace: root
  replicaScheduling: {type: Divided}
"""


def _member_deployments(system: TmcUp, name: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for cluster in ("cluster-1", "cluster-2", "cluster-3"):
        items = system.kubectl(cluster).json("get", "deployments", "-A")["items"]
        for item in items:
            if item["metadata"]["name"] == name:
                found[cluster] = item
    return found


def test_divided_deployment_runs_on_every_member_with_its_configmap(system: TmcUp) -> None:
    hub = system.kubectl()
    wait_until(lambda: len(_ready_targets(hub)) == 3, timeout=20, what="three Ready SyncTargets")
    hub.run("apply", "-f", "-", input=MANIFESTS)

    def divided() -> dict[str, Any] | None:
        found = _member_deployments(system, "shop")
        if len(found) != 3 or sum(d["spec"]["replicas"] for d in found.values()) != 6:
            return None
        return found

    members = wait_until(divided, timeout=20, what="the Deployment divided across three members")
    assert sorted(d["spec"]["replicas"] for d in members.values()) == [2, 2, 2]
    targets = {st["metadata"]["name"]: st for st in hub.json("get", "synctargets")["items"]}
    for cluster, deployment in members.items():
        namespace = deployment["metadata"]["namespace"]
        # kcp's formulas (checked against kcp's test vectors in the unit tests): the SyncTarget key from its
        # workspace and name, the downstream namespace from the locator, which names the SyncTarget's uid.
        target = targets[cluster]
        key = keys.sync_target_key("root", cluster)
        assert target["metadata"]["labels"]["internal.workload.kcp.io/key"] == key
        member_ns = system.kubectl(cluster).json("get", "namespace", namespace)
        locator = orjson.loads(member_ns["metadata"]["annotations"]["kcp.io/namespace-locator"])
        assert locator == {
            "syncTarget": {"cluster": "root", "name": cluster, "uid": target["metadata"]["uid"]},
            "cluster": "root",
            "namespace": "shop",
        }
        assert namespace == keys.downstream_namespace(locator)
        assert member_ns["metadata"]["labels"]["kcp.io/tenant-id"] == keys.tenant_id(locator)
        assert f"state.workload.kcp.io/{key}" in hub.json("get", "namespace", "shop")["metadata"]["labels"]
        config = system.kubectl(cluster).json("get", "configmap", "shop-config", "-n", namespace)
        assert config["data"] == {"greeting": "hello"}
    wait_until(
        lambda: hub.json("get", "deployment", "shop", "-n", "shop").get("status", {}).get("readyReplicas") == 6,
        timeout=20,
        what="6 ready replicas on the hub",
    )

    # A new image on the hub reaches every member.
    hub.run("set", "image", "deployment/shop", "shop=nginx:1.28", "-n", "shop")
    wait_until(
        lambda: all(
            d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
            for d in _member_deployments(system, "shop").values()
        ),
        timeout=20,
        what="the new image on every member",
    )

    # Deleting on the hub removes it everywhere, and the hub object goes once the syncers' finalizers are gone.
    hub.run("delete", "deployment", "shop", "-n", "shop", "--wait=false")
    wait_until(lambda: not _member_deployments(system, "shop"), timeout=20, what="the members' copies deleted")
    wait_until(
        lambda: hub.run("get", "deployment", "shop", "-n", "shop", check=False).returncode != 0,
        timeout=20,
        what="the hub Deployment gone",
    )
    raw = hub.run("get", "placement", "shop", "-o", "json").stdout
    assert orjson.loads(raw)["status"]["phase"] == "Bound", yaml.safe_dump(orjson.loads(raw))


def _member_configmaps(system: TmcUp, name: str) -> dict[str, str]:
    """cluster -> uid of the member's copy of ConfigMap `name`."""
    found = {}
    for cluster in ("cluster-1", "cluster-2", "cluster-3"):
        for item in system.kubectl(cluster).json("get", "configmaps", "-A")["items"]:
            if item["metadata"]["name"] == name:
                found[cluster] = item["metadata"]["uid"]
    return found


def test_restart_on_the_same_data_dir_brings_the_same_system_back(system: TmcUp) -> None:
    hub = system.kubectl()
    wait_until(lambda: len(_ready_targets(hub)) == 3, timeout=60, what="three Ready SyncTargets")
    hub.run("create", "namespace", "keep")
    hub.run("label", "namespace", "keep", "app=shop")  # the Placement `shop` selects it
    hub.run("create", "configmap", "survivor", "-n", "keep", "--from-literal=a=1")
    wait_until(lambda: len(_member_configmaps(system, "survivor")) == 3, timeout=60, what="the ConfigMap on 3 members")
    copies = _member_configmaps(system, "survivor")
    targets = {st["metadata"]["name"]: st["metadata"]["uid"] for st in hub.json("get", "synctargets")["items"]}

    assert system.stop() == 0, system.output()
    for pid_file in ("hub.pid", "clusters/cluster-1.pid", "syncers/cluster-1.pid"):
        assert not os.path.exists(os.path.join(system.data_dir, pid_file)), pid_file
    system.start()
    system.wait_up()

    # Deadlines, not waits: generous because a loaded machine restarts seven processes slowly.
    wait_until(lambda: len(_ready_targets(hub)) == 3, timeout=90, what="three Ready SyncTargets after the restart")
    again = {st["metadata"]["name"]: st["metadata"]["uid"] for st in hub.json("get", "synctargets")["items"]}
    assert again == targets  # the same SyncTargets, not new ones
    assert hub.json("get", "configmap", "survivor", "-n", "keep")["data"] == {"a": "1"}
    assert _member_configmaps(system, "survivor") == copies  # the members kept their objects; nothing recreated

    # And the restarted system still works: a change on the hub reaches every member.
    hub.run("create", "configmap", "after-restart", "-n", "keep", "--from-literal=b=2")
    wait_until(lambda: len(_member_configmaps(system, "after-restart")) == 3, timeout=60, what="a new ConfigMap")
