"""What `kubectl tmc` / `tmcctl` build on, at the API level: pausing and forcing a sync (annotations on a workload, a
Namespace, a SyncTarget), placement simulation (a server-side dry run of a Placement) and draining a cluster
(`spec.unschedulable` + `spec.evictAfter`). `tmc up` runs the hub, three simulated clusters and their syncers;
everything is driven with kubectl, as the CLI will.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.harness import Kubectl, TmcUp, free_port, readyz, wait_until
from tmc.api.scheduling import SIMULATION_CANDIDATES_FIELD
from tmc.api.workload import (
    REASON_SYNC_PAUSED,
    REASON_SYNC_RESUMED,
    SYNC_CONTROL_PREFIX,
    SYNC_PAUSED_ANNOTATION,
    SYNC_STATE_PAUSED,
    state_label,
    status_diff_annotation,
    sync_force_annotation,
    sync_forced_annotation,
    sync_last_sync_annotation,
    sync_state_annotation,
)
from tmc.protocol.keys import sync_target_key

pytestmark = pytest.mark.usefixtures("kubectl_binary")

CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")
KEYS = {name: sync_target_key("root", name) for name in CLUSTERS}
LOCATION_RESOURCE = {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    up = TmcUp(
        str(tmp_path_factory.mktemp("sync-control")),
        free_port(),
        "--clusters",
        "3",
        "--sync-target-heartbeat-threshold",
        "5s",
        "--heartbeat-period",
        "1s",
        "--ready-delay",
        "200ms",
    )
    try:
        up.wait_up()
        hub = up.kubectl()
        wait_until(lambda: ready_targets(hub) == set(CLUSTERS), timeout=30, what="three Ready SyncTargets")
        yield up
    finally:
        assert up.stop() == 0, up.output()


# ---------------------------------------------------------------------------------------------------------- helpers


def ready_targets(hub: Kubectl) -> set[str]:
    return {
        st["metadata"]["name"]
        for st in hub.json("get", "synctargets")["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("status", {}).get("conditions", []))
    }


def workload(namespace: str, name: str, replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def placement(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": name},
        "spec": {
            "locationResource": LOCATION_RESOURCE,
            "namespaceSelector": {"matchLabels": {"test": namespace}},
            "locationSelectors": [{}],
            **spec,
        },
    }


def place(hub: Kubectl, namespace: str, deployment: dict[str, Any], **spec: Any) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"test": namespace}}}
    hub.run("apply", "-f", "-", input=yaml.safe_dump_all([ns, deployment, placement(namespace, namespace, **spec)]))


def copy_on(system: TmcUp, cluster: str, name: str) -> dict[str, Any] | None:
    items = [
        d for d in system.kubectl(cluster).json("get", "deployments", "-A")["items"] if d["metadata"]["name"] == name
    ]
    assert len(items) <= 1, items
    return items[0] if items else None


def image_on(system: TmcUp, cluster: str, name: str) -> str | None:
    found = copy_on(system, cluster, name)
    return None if found is None else str(found["spec"]["template"]["spec"]["containers"][0]["image"])


def annotations(hub: Kubectl, namespace: str, name: str) -> dict[str, str]:
    return dict(hub.json("get", "deployment", name, "-n", namespace)["metadata"].get("annotations") or {})


def reported(hub: Kubectl, namespace: str, name: str, cluster: str) -> dict[str, Any]:
    """The status `cluster`'s syncer reported for the hub Deployment (its per-target status-diff annotation)."""
    raw = annotations(hub, namespace, name).get(status_diff_annotation(KEYS[cluster]))
    return dict(orjson.loads(raw).get("status") or {}) if raw else {}


def reasons(hub: Kubectl, namespace: str, name: str) -> list[str]:
    items = hub.json("get", "events", "-n", namespace)["items"]
    return [e["reason"] for e in items if e["involvedObject"]["name"] == name]


def decided(obj: dict[str, Any]) -> dict[str, int]:
    return {d["syncTarget"]["name"]: d.get("replicas", 0) for d in (obj.get("status") or {}).get("decisions") or []}


# ---------------------------------------------------------------------------------------------------------- tests


def test_pause_holds_one_target_force_repairs_drift_and_resume_applies_the_spec(system: TmcUp) -> None:
    hub = system.kubectl()
    ns = "ctl"
    place(hub, ns, workload(ns, "web", 1))
    wait_until(lambda: all(image_on(system, c, "web") == "nginx:1.27" for c in CLUSTERS), timeout=30, what="placed")

    # Pause for cluster-1 only; a spec change reaches the two others.
    hub.run("annotate", "deployment", "web", "-n", ns, f"{SYNC_PAUSED_ANNOTATION}=cluster-1")
    state1 = sync_state_annotation(KEYS["cluster-1"])
    wait_until(lambda: annotations(hub, ns, "web").get(state1) == SYNC_STATE_PAUSED, what="Paused reported")
    assert not any(k.startswith(sync_state_annotation("")) and k != state1 for k in annotations(hub, ns, "web"))
    hub.run("set", "image", "deployment/web", "-n", ns, "app=nginx:1.28")
    wait_until(
        lambda: image_on(system, "cluster-2", "web") == image_on(system, "cluster-3", "web") == "nginx:1.28",
        timeout=20,
        what="the change on the unpaused targets",
    )
    time.sleep(1.0)
    assert image_on(system, "cluster-1", "web") == "nginx:1.27"
    wait_until(lambda: REASON_SYNC_PAUSED in reasons(hub, ns, "web"), what="SyncPaused Event")

    # A forced sync of a paused workload is acknowledged and writes nothing.
    hub.run("annotate", "deployment", "web", "-n", ns, f"{sync_force_annotation(KEYS['cluster-1'])}=t1")
    wait_until(lambda: annotations(hub, ns, "web").get(sync_forced_annotation(KEYS["cluster-1"])) == "t1", what="ack")
    assert image_on(system, "cluster-1", "web") == "nginx:1.27"

    # Status keeps flowing up from the paused target: a hand-made change there is reported.
    down1 = copy_on(system, "cluster-1", "web")
    assert down1 is not None
    system.kubectl("cluster-1").run("scale", "deployment/web", "-n", down1["metadata"]["namespace"], "--replicas=2")
    wait_until(lambda: reported(hub, ns, "web", "cluster-1").get("readyReplicas") == 2, timeout=20, what="status up")

    # Resume: the current spec is applied, the report removed, an Event says so.
    hub.run("annotate", "deployment", "web", "-n", ns, f"{SYNC_PAUSED_ANNOTATION}-")
    wait_until(lambda: image_on(system, "cluster-1", "web") == "nginx:1.28", timeout=20, what="resumed")
    assert (copy_on(system, "cluster-1", "web") or {})["spec"]["replicas"] == 1
    wait_until(lambda: state1 not in annotations(hub, ns, "web"), what="Paused report removed")
    wait_until(lambda: REASON_SYNC_RESUMED in reasons(hub, ns, "web"), what="SyncResumed Event")

    # Drift on a member is left alone by a normal sync, and repaired by a forced one.
    member = system.kubectl("cluster-2")
    down = copy_on(system, "cluster-2", "web")
    assert down is not None
    assert not [k for k in down["metadata"].get("annotations", {}) if k.startswith(SYNC_CONTROL_PREFIX)]
    down_ns = down["metadata"]["namespace"]
    member.run("set", "image", "deployment/web", "-n", down_ns, "app=hand-edited:1")
    time.sleep(1.0)
    assert image_on(system, "cluster-2", "web") == "hand-edited:1"
    key2 = KEYS["cluster-2"]
    hub.run("annotate", "deployment", "web", "-n", ns, f"{sync_force_annotation(key2)}=t2")
    wait_until(lambda: image_on(system, "cluster-2", "web") == "nginx:1.28", timeout=20, what="drift repaired")
    done = wait_until(
        lambda: (a := annotations(hub, ns, "web")).get(sync_forced_annotation(key2)) == "t2" and a, what="forced ack"
    )
    synced_at = datetime.datetime.fromisoformat(done[sync_last_sync_annotation(key2)].replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.UTC) - synced_at).total_seconds()) < 60


def test_namespace_and_sync_target_pauses_hold_their_scope(system: TmcUp) -> None:
    hub = system.kubectl()
    ns = "ctl"
    try:
        # A Namespace paused for cluster-2: none of its workloads change there.
        hub.run("annotate", "namespace", ns, f"{SYNC_PAUSED_ANNOTATION}=cluster-2")
        state2 = sync_state_annotation(KEYS["cluster-2"])
        wait_until(lambda: annotations(hub, ns, "web").get(state2) == SYNC_STATE_PAUSED, what="namespace pause")
        # A SyncTarget paused: nothing synced to it changes.
        hub.run("annotate", "synctarget", "cluster-3", f"{SYNC_PAUSED_ANNOTATION}=true")
        state3 = sync_state_annotation(KEYS["cluster-3"])
        wait_until(lambda: annotations(hub, ns, "web").get(state3) == SYNC_STATE_PAUSED, what="target pause")
        hub.run("set", "image", "deployment/web", "-n", ns, "app=nginx:1.29")
        wait_until(lambda: image_on(system, "cluster-1", "web") == "nginx:1.29", timeout=20, what="cluster-1")
        time.sleep(1.0)
        assert image_on(system, "cluster-2", "web") == image_on(system, "cluster-3", "web") == "nginx:1.28"
        # A malformed value pauses nothing (the syncer logs a warning).
        hub.run("annotate", "namespace", ns, "--overwrite", f"{SYNC_PAUSED_ANNOTATION}=Not A Name!")
        wait_until(lambda: image_on(system, "cluster-2", "web") == "nginx:1.29", timeout=20, what="cluster-2 resumed")
        hub.run("annotate", "synctarget", "cluster-3", f"{SYNC_PAUSED_ANNOTATION}-")
        wait_until(lambda: image_on(system, "cluster-3", "web") == "nginx:1.29", timeout=20, what="cluster-3 resumed")
        wait_until(lambda: not {state2, state3} & set(annotations(hub, ns, "web")), what="no Paused report left")
    finally:
        hub.run("annotate", "namespace", ns, f"{SYNC_PAUSED_ANNOTATION}-", check=False)
        hub.run("annotate", "synctarget", "cluster-3", f"{SYNC_PAUSED_ANNOTATION}-", check=False)


def configmap_on(system: TmcUp, cluster: str, name: str) -> bool:
    items = system.kubectl(cluster).json("get", "configmaps", "-A")["items"]
    return any(c["metadata"]["name"] == name for c in items)


def test_a_deletion_waits_for_the_pause_to_end(system: TmcUp) -> None:
    hub = system.kubectl()
    ns = "ctl"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": ns}, "data": {"k": "v"}}
    hub.apply(cm)
    wait_until(lambda: all(configmap_on(system, c, "cfg") for c in CLUSTERS), timeout=20, what="cfg everywhere")
    hub.run("annotate", "configmap", "cfg", "-n", ns, f"{SYNC_PAUSED_ANNOTATION}=cluster-1")
    state1 = sync_state_annotation(KEYS["cluster-1"])
    wait_until(
        lambda: hub.json("get", "configmap", "cfg", "-n", ns)["metadata"]["annotations"].get(state1) == "Paused",
        what="Paused reported",
    )
    hub.run("delete", "configmap", "cfg", "-n", ns, "--wait=false")
    wait_until(
        lambda: not configmap_on(system, "cluster-2", "cfg") and not configmap_on(system, "cluster-3", "cfg"),
        timeout=20,
        what="deleted on the unpaused targets",
    )
    time.sleep(1.0)
    assert configmap_on(system, "cluster-1", "cfg")  # held
    held = hub.json("get", "configmap", "cfg", "-n", ns)["metadata"]
    assert held.get("deletionTimestamp") and held.get("finalizers"), held  # cluster-1's syncer still holds it
    hub.run("annotate", "configmap", "cfg", "-n", ns, f"{SYNC_PAUSED_ANNOTATION}-")
    wait_until(lambda: not configmap_on(system, "cluster-1", "cfg"), timeout=20, what="deleted once resumed")
    wait_until(
        lambda: hub.run("get", "configmap", "cfg", "-n", ns, check=False).returncode != 0, what="gone from the hub"
    )


def test_simulated_placement_decisions_match_the_real_ones(system: TmcUp) -> None:
    hub = system.kubectl()
    ns = "sim"
    hub.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"test": ns}}})
    hub.apply(workload(ns, "app", 4))
    hub.run("patch", "synctarget", "cluster-2", "--type", "merge", "-p", '{"spec":{"unschedulable":true}}')
    try:
        spec = {"numberOfTargets": 2, "replicaScheduling": {"type": "Divided"}}
        manifest = yaml.safe_dump(placement(ns, ns, **spec))
        wait_until(
            lambda: (
                "unschedulable"
                in str(json_out(hub.run("create", "--dry-run=server", "-o", "json", "-f", "-", input=manifest).stdout))
            ),
            what="the cordon seen by the scheduler",
        )
        simulated = json_out(hub.run("create", "--dry-run=server", "-o", "json", "-f", "-", input=manifest).stdout)
        assert hub.run("get", "placement", ns, check=False).returncode != 0  # nothing written
        candidates = {c["syncTarget"]["name"]: c for c in simulated["status"][SIMULATION_CANDIDATES_FIELD]}
        assert set(candidates) == set(CLUSTERS)
        assert candidates["cluster-2"]["reason"] == "excluded: unschedulable (cordoned)"
        assert not candidates["cluster-2"]["selected"]
        assert decided(simulated) == {"cluster-1": 2, "cluster-3": 2}

        hub.apply(placement(ns, ns, **spec))
        wait_until(lambda: decided(hub.json("get", "placement", ns)) == decided(simulated), what="real decision")

        # Simulate a change of the existing Placement, then apply it: the same decision.
        change = '{"spec":{"numberOfTargets":1}}'
        what_if = json_out(
            hub.run("patch", "placement", ns, "--type", "merge", "-p", change, "--dry-run=server", "-o", "json").stdout
        )
        assert len(decided(what_if)) == 1 and sum(decided(what_if).values()) == 4
        assert decided(hub.json("get", "placement", ns)) == decided(simulated)  # the dry run changed nothing
        hub.run("patch", "placement", ns, "--type", "merge", "-p", change)
        wait_until(lambda: decided(hub.json("get", "placement", ns)) == decided(what_if), what="real change")
    finally:
        hub.run("patch", "synctarget", "cluster-2", "--type", "merge", "-p", '{"spec":{"unschedulable":false}}')
        hub.run("delete", "placement", ns, "--ignore-not-found")


def json_out(text: str) -> dict[str, Any]:
    return dict(orjson.loads(text))


def test_draining_a_cluster_moves_every_workload_off_it_while_the_hub_stays_ready(system: TmcUp) -> None:
    hub = system.kubectl()
    ns = "drain"
    place(hub, ns, workload(ns, "spread", 6), replicaScheduling={"type": "Divided"})
    wait_until(
        lambda: all((copy_on(system, c, "spread") or {}).get("spec", {}).get("replicas") == 2 for c in CLUSTERS),
        timeout=30,
        what="2 replicas on each cluster",
    )
    base = system.hub().base_url
    try:
        # The recipe of docs/placement.md, "Draining a cluster".
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        drain = {"spec": {"unschedulable": True, "evictAfter": now}}
        hub.run("patch", "synctarget", "cluster-3", "--type", "merge", "-p", orjson.dumps(drain).decode())

        def drained() -> bool:
            assert readyz(base), "the hub stopped being ready during the drain"
            on = {c: (copy_on(system, c, "spread") or {}) for c in CLUSTERS}
            ready = {c: d.get("status", {}).get("readyReplicas", 0) for c, d in on.items()}
            return (
                not on["cluster-3"]
                and copy_on(system, "cluster-3", "web") is None
                and ready["cluster-1"] == ready["cluster-2"] == 3
            )

        wait_until(drained, timeout=60, interval=0.5, what="every workload off cluster-3")
        assert decided(hub.json("get", "placement", ns)) == {"cluster-1": 3, "cluster-2": 3}
        label = state_label(KEYS["cluster-3"])
        left = hub.json("get", "deployments,configmaps", "-A", "-l", label)["items"]
        assert not left, [i["metadata"]["name"] for i in left]
    finally:
        undo = '{"spec":{"unschedulable":false,"evictAfter":null}}'
        hub.run("patch", "synctarget", "cluster-3", "--type", "merge", "-p", undo)
