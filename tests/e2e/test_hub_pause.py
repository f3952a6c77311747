"""The hub stopped for 60 s (SIGSTOP on `<data-dir>/hub.pid`) under `tmc up`, with workloads on every member.

What a user must see: nothing changes in any member cluster while the hub is stopped; afterwards the syncers are
connected again and heartbeat, no SyncTarget ever turned NotReady (a paused hub is not a failed cluster), a change
made on the hub still reaches the members (the watches really resumed), nothing was recreated or duplicated, and the
hub's /metrics shows no relist storm: the syncers resumed their watches from their last resourceVersion.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import TmcUp, free_port, wait_until

pytestmark = pytest.mark.usefixtures("kubectl_binary")

PAUSE_SECONDS = 60.0  # the acceptance scenario itself, not a synchronisation wait
CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")
NAMESPACES = ("pause-a", "pause-b", "pause-c")
CLUSTER_LABEL = "internal.workload.kcp.io/cluster"
VW_COMPONENT = "syncer-virtual-workspace"

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]
Snapshot = dict[tuple[str, str, str], tuple[str, str]]  # (kind, namespace, name) -> (uid, resourceVersion)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    """`tmc up` as a user runs it, with a heartbeat threshold well below the pause."""
    args = ["--clusters", str(len(CLUSTERS)), "--sync-target-heartbeat-threshold", "10s", "--heartbeat-period", "1s"]
    system = TmcUp(str(tmp_path_factory.mktemp("hub-pause")), free_port(), *args, "--ready-delay", "200ms")
    try:
        system.wait_up()
        yield system
    finally:
        if os.path.exists(os.path.join(system.data_dir, "hub.pid")):
            os.kill(system.pid_of("hub.pid"), signal.SIGCONT)  # never leave a stopped hub behind a failed test
        assert system.stop() == 0, system.output()


# ---------------------------------------------------------------- reading what a user would read


def parse_metrics(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **match: str) -> float:
    wanted = set(match.items())
    return sum(value for (n, labels), value in samples.items() if n == name and wanted <= labels)


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    wanted = set(match.items())
    out: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name and wanted <= labels:
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
    return out


def hub_metrics(up: TmcUp) -> Samples:
    return parse_metrics(up.kubectl().run("get", "--raw", "/metrics").stdout)


def syncer_metrics(up: TmcUp, cluster: str) -> Samples:
    url = up.syncer_metrics_url(cluster)
    with urllib.request.urlopen(url, timeout=10) as r:
        return parse_metrics(r.read().decode())


def member_objects(up: TmcUp, cluster: str) -> list[dict[str, Any]]:
    """Every object the syncer manages in the member, and the ReplicaSets and Pods running in its namespaces."""
    kinds = "namespaces,deployments,replicasets,pods,configmaps"
    items = up.kubectl(cluster).json("get", kinds, "-A")["items"]
    return [
        item
        for item in items
        if CLUSTER_LABEL in (item["metadata"].get("labels") or {})
        or str(item["metadata"].get("namespace", "")).startswith("kcp-")
    ]


def snapshot(up: TmcUp) -> dict[str, Snapshot]:
    out: dict[str, Snapshot] = {}
    for cluster in CLUSTERS:
        out[cluster] = {
            (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): (
                o["metadata"]["uid"],
                o["metadata"]["resourceVersion"],
            )
            for o in member_objects(up, cluster)
        }
    return out


def changes(before: dict[str, Snapshot], after: dict[str, Snapshot]) -> list[str]:
    """What differs between two snapshots, readably."""
    out = []
    for cluster in CLUSTERS:
        old, new = before.get(cluster, {}), after.get(cluster, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                out.append(f"{cluster} {'/'.join(key)}: {old.get(key)} -> {new.get(key)}")
    return out


def synced_uids(snap: dict[str, Snapshot]) -> dict[tuple[str, str, str, str], str]:
    """uid of every object the syncers created (namespaces, Deployments, ConfigMaps), per member."""
    return {
        (cluster, *key): uid
        for cluster, objects in snap.items()
        for key, (uid, _) in objects.items()
        if key[0] in ("Namespace", "Deployment", "ConfigMap")
    }


def ready_transitions(up: TmcUp) -> dict[str, tuple[str, str]]:
    """SyncTarget -> (Ready status, its lastTransitionTime)."""
    out = {}
    for st in up.kubectl().json("get", "synctargets")["items"]:
        ready = next(c for c in st["status"]["conditions"] if c["type"] == "Ready")
        out[st["metadata"]["name"]] = (ready["status"], ready["lastTransitionTime"])
    return out


def manifests() -> str:
    docs = [
        """
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: pause}
spec:
  locationSelectors: [{}]
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  namespaceSelector: {matchLabels: {suite: hub-pause}}
  locationWorkspace: root
  replicaScheduling: {type: Divided}
"""
    ]
    for ns in NAMESPACES:
        docs.append(f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}, labels: {{suite: hub-pause}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{mode: before}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: feature-flags, namespace: {ns}}}
data: {{beta: "false"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
      - {{name: api, image: "nginx:1.27", volumeMounts: [{{name: cfg, mountPath: /etc/api}}]}}
      volumes: [{{name: cfg, configMap: {{name: settings}}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: worker, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: worker}}}}
  template:
    metadata: {{labels: {{app: worker}}}}
    spec:
      containers:
      - {{name: worker, image: "busybox:1.36", envFrom: [{{configMapRef: {{name: feature-flags}}}}]}}
""")
    return "---".join(docs)


def all_synced_and_ready(up: TmcUp) -> bool:
    """Every member has its share of each Deployment running, with both ConfigMaps; the hub sums them up."""
    replicas: dict[tuple[str, str], int] = {}
    for cluster in CLUSTERS:
        objects = member_objects(up, cluster)
        deployments = [o for o in objects if o["kind"] == "Deployment"]
        configmaps = [o for o in objects if o["kind"] == "ConfigMap"]
        if len(deployments) != 2 * len(NAMESPACES) or len(configmaps) != 2 * len(NAMESPACES):
            return False
        for d in deployments:
            status = d.get("status") or {}
            if status.get("readyReplicas", 0) != d["spec"]["replicas"] or status.get("observedGeneration") != d[
                "metadata"
            ].get("generation"):
                return False
            locator = orjson.loads(
                next(
                    o
                    for o in objects
                    if o["kind"] == "Namespace" and o["metadata"]["name"] == d["metadata"]["namespace"]
                )["metadata"]["annotations"]["kcp.io/namespace-locator"]
            )
            key = (locator["namespace"], d["metadata"]["name"])
            replicas[key] = replicas.get(key, 0) + d["spec"]["replicas"]
    if replicas != {(ns, name): n for ns in NAMESPACES for name, n in (("api", 3), ("worker", 2))}:
        return False
    hub = up.kubectl().json("get", "deployments", "-A", "-l", "app")["items"]
    return all((d.get("status") or {}).get("readyReplicas") == d["spec"]["replicas"] for d in hub)


def settled(up: TmcUp) -> dict[str, Snapshot]:
    """A snapshot once two in a row, a second apart, are identical (late status writes have landed)."""
    previous: list[dict[str, Snapshot]] = []

    def stable() -> dict[str, Snapshot] | None:
        current = snapshot(up)
        same = bool(previous) and previous[-1] == current
        previous.append(current)
        return current if same else None

    return wait_until(stable, timeout=60, interval=1.0, what="the members to settle")


# ---------------------------------------------------------------- the scenario


@pytest.mark.timeout(480)
def test_hub_paused_for_60s_changes_nothing_and_syncers_resume_without_relisting(up: TmcUp) -> None:
    hub = up.kubectl()

    def three_ready() -> bool:
        return [s for s, _ in ready_transitions(up).values()] == ["True"] * len(CLUSTERS)

    wait_until(three_ready, timeout=30, what="three Ready SyncTargets")
    hub.run("apply", "-f", "-", input=manifests())
    wait_until(lambda: all_synced_and_ready(up), timeout=60, interval=0.5, what="workloads on every member")

    before = settled(up)
    ready_before = ready_transitions(up)
    decisions_before = hub.json("get", "placement", "pause")["status"]["decisions"]
    hub_before = hub_metrics(up)
    syncers_before = {c: syncer_metrics(up, c) for c in CLUSTERS}
    hub_informers = {
        c: len(by_label(syncers_before[c], "tmc_syncer_lists_total", "resource", endpoint="hub")) for c in CLUSTERS
    }

    # ---- the pause: the members are watched the whole time; the hub is not asked anything.
    hub_pid = up.pid_of("hub.pid")
    os.kill(hub_pid, signal.SIGSTOP)
    stopped_at = time.time()
    disconnected_seen = dict.fromkeys(CLUSTERS, 0.0)
    checks = 0
    try:
        deadline = time.monotonic() + PAUSE_SECONDS
        while time.monotonic() < deadline:
            assert not changes(before, snapshot(up)), "a member cluster changed while the hub was stopped"
            checks += 1
            for cluster in CLUSTERS:
                samples = syncer_metrics(up, cluster)
                disconnected_seen[cluster] = max(
                    disconnected_seen[cluster], total(samples, "tmc_syncer_connections", status="disconnected")
                )
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
        during = {c: syncer_metrics(up, c) for c in CLUSTERS}
    finally:
        os.kill(hub_pid, signal.SIGCONT)
    resumed_at = time.time()
    assert checks >= 10, checks

    # The syncers noticed the hub was gone (their hub watches went silent and the hub did not answer a probe), and
    # did not hammer it: a few timed-out attempts per watch, not a retry loop.
    attempts = {
        c: total(during[c], "tmc_syncer_requests_total", endpoint="hub")
        - total(syncers_before[c], "tmc_syncer_requests_total", endpoint="hub")
        for c in CLUSTERS
    }
    for cluster in CLUSTERS:
        assert disconnected_seen[cluster] > 0, f"{cluster}: the syncer never noticed the stopped hub"
        assert attempts[cluster] <= 4 * hub_informers[cluster] + 10, attempts

    # ---- after SIGCONT: connected again, heartbeating, nothing moved.
    def reconnected() -> bool:
        for cluster in CLUSTERS:
            samples = syncer_metrics(up, cluster)
            if total(samples, "tmc_syncer_connections", status="disconnected") != 0:
                return False
            if total(samples, "tmc_syncer_connections", status="connected") != total(
                syncers_before[cluster], "tmc_syncer_connections", status="connected"
            ):
                return False
        return True

    wait_until(reconnected, timeout=60, interval=0.5, what="every syncer connected again")
    reconnected_after = time.time() - resumed_at

    def heartbeats_after_pause() -> bool:
        items = hub.json("get", "synctargets")["items"]
        stamps = [datetime.fromisoformat(st["status"]["lastSyncerHeartbeatTime"]).timestamp() for st in items]
        return len(stamps) == len(CLUSTERS) and all(s >= int(resumed_at) for s in stamps)

    wait_until(heartbeats_after_pause, timeout=30, interval=0.5, what="heartbeats sent after the pause")
    for cluster in CLUSTERS:
        assert 0 <= total(syncer_metrics(up, cluster), "tmc_syncer_heartbeat_age_seconds") < 10
    assert ready_transitions(up) == ready_before, "a SyncTarget changed Ready because the hub was stopped"
    assert hub.json("get", "placement", "pause")["status"]["decisions"] == decisions_before
    assert not changes(before, snapshot(up)), "a member cluster changed after the hub came back"

    # ---- the watches really resumed: a change made now reaches every member.
    for ns in NAMESPACES:
        hub.run("patch", "configmap", "settings", "-n", ns, "--type=merge", "-p", '{"data":{"mode":"after"}}')
    hub.run("set", "image", "deployment/api", "api=nginx:1.28", "-n", NAMESPACES[0])

    def changed_everywhere() -> bool:
        for cluster in CLUSTERS:
            objects = member_objects(up, cluster)
            modes = [
                o["data"]["mode"] for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "settings"
            ]
            images = [
                o["spec"]["template"]["spec"]["containers"][0]["image"]
                for o in objects
                if o["kind"] == "Deployment" and o["metadata"]["name"] == "api"
            ]
            if modes != ["after"] * len(NAMESPACES) or sorted(images) != ["nginx:1.27", "nginx:1.27", "nginx:1.28"]:
                return False
        return True

    changed_at = time.time()
    wait_until(changed_everywhere, timeout=60, interval=0.5, what="the post-pause change on every member")
    change_took = time.time() - changed_at

    # ---- no duplicates, nothing recreated: the same objects (uids) as before, one namespace per upstream one.
    after = snapshot(up)
    assert synced_uids(after) == synced_uids(before)
    for cluster in CLUSTERS:
        objects = member_objects(up, cluster)
        locators = [
            orjson.loads(o["metadata"]["annotations"]["kcp.io/namespace-locator"])["namespace"]
            for o in objects
            if o["kind"] == "Namespace"
        ]
        assert sorted(locators) == sorted(NAMESPACES), (cluster, locators)
        names = [
            (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
            for o in objects
            if o["kind"] in ("Deployment", "ConfigMap")
        ]
        assert len(names) == len(set(names)) == 4 * len(NAMESPACES), (cluster, names)

    # ---- no relist storm: the hub's LIST counts through the syncer virtual workspace, before and after.
    hub_after = hub_metrics(up)
    lists_before = by_label(hub_before, "apiserver_request_total", "resource", component=VW_COMPONENT, verb="LIST")
    lists_after = by_label(hub_after, "apiserver_request_total", "resource", component=VW_COMPONENT, verb="LIST")
    watches_before = by_label(hub_before, "apiserver_request_total", "resource", component=VW_COMPONENT, verb="WATCH")
    watches_after = by_label(hub_after, "apiserver_request_total", "resource", component=VW_COMPONENT, verb="WATCH")
    print(f"\nhub stopped {resumed_at - stopped_at:.1f} s; member snapshots compared during the pause: {checks}")
    print(
        f"every syncer connected again {reconnected_after:.1f} s after SIGCONT; "
        f"a change made then was on every member in {change_took:.1f} s"
    )
    print("hub apiserver_request_total{component=syncer-virtual-workspace}, before -> after the pause:")
    print(f"  {'resource':<16} {'LIST':>12} {'WATCH ended':>14}")
    for resource in sorted(lists_after):
        print(
            f"  {resource:<16} {lists_before.get(resource, 0):>5.0f} -> {lists_after[resource]:<4.0f}"
            f" {watches_before.get(resource, 0):>6.0f} -> {watches_after.get(resource, 0):<4.0f}"
        )
    for resource, count in lists_after.items():
        assert count - lists_before.get(resource, 0) <= len(CLUSTERS), (resource, lists_before, lists_after)

    print("syncers (hub side), change over the pause:")
    for cluster in CLUSTERS:
        now = syncer_metrics(up, cluster)
        lists = total(now, "tmc_syncer_lists_total", endpoint="hub") - total(
            syncers_before[cluster], "tmc_syncer_lists_total", endpoint="hub"
        )
        restarts = {
            reason: value
            - by_label(syncers_before[cluster], "tmc_syncer_watch_restarts_total", "reason", endpoint="hub").get(
                reason, 0
            )
            for reason, value in by_label(now, "tmc_syncer_watch_restarts_total", "reason", endpoint="hub").items()
        }
        print(
            f"  {cluster}: lists +{lists:.0f}, watch restarts {restarts}, hub requests that failed while stopped "
            f"{attempts[cluster]:.0f}, most disconnected watches {disconnected_seen[cluster]:.0f}"
        )
        assert lists <= hub_informers[cluster], (cluster, lists)
        assert restarts.get("unreachable", 0) > 0, (cluster, restarts)
