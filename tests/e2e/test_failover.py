"""Placement by region, failover when a member cluster stops answering, cordon and drain, and the Events that explain
them: `tmc up` runs the hub, three simulated clusters (us-east-1, eu-central-1, ap-southeast-1) and their syncers;
everything is driven and observed with kubectl, as a user would.

The clusters are stopped with SIGSTOP on the pid in `<data-dir>/clusters/<name>.pid`: the process keeps its sockets
but answers nothing, which is how a hung or partitioned cluster looks to its syncer. Timings are printed (`pytest -s`).
"""

from __future__ import annotations

import datetime
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Kubectl, TmcUp, free_port, wait_until
from tmc.api.workload import deletion_annotation, state_label, status_diff_annotation
from tmc.protocol.keys import sync_target_key

pytestmark = pytest.mark.usefixtures("kubectl_binary")

THRESHOLD = 5.0  # hub --sync-target-heartbeat-threshold
PERIOD = 1.0  # syncer --heartbeat-period
CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")
REGION = "topology.kubernetes.io/region"
KEYS = {name: sync_target_key("root", name) for name in CLUSTERS}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    up = TmcUp(
        str(tmp_path_factory.mktemp("failover")),
        free_port(),
        "--clusters",
        "3",
        "--sync-target-heartbeat-threshold",
        f"{THRESHOLD:g}s",
        "--heartbeat-period",
        f"{PERIOD:g}s",
        "--ready-delay",
        "200ms",
    )
    try:
        up.wait_up()
        hub = up.kubectl()
        wait_until(lambda: ready_targets(hub) == set(CLUSTERS), timeout=30, what="three Ready SyncTargets")
        yield up
    finally:
        # A test that failed half-way must not leave a cluster stopped: `tmc up` could not stop it.
        for name in CLUSTERS:
            try:
                os.kill(up.pid(name), signal.SIGCONT)
            except (OSError, ValueError):
                pass
        assert up.stop() == 0, up.output()


# ---------------------------------------------------------------------------------------------------------- helpers


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def ready_targets(hub: Kubectl) -> set[str]:
    return {st["metadata"]["name"] for st in hub.json("get", "synctargets")["items"] if is_ready(st)}


def is_ready(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def placed(name: str, namespace: str, deployment: str, replicas: int = 1, spec: dict[str, Any] | None = None) -> str:
    """A namespace with a Deployment, and a Placement selecting that namespace."""
    manifests: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"test": namespace}}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": deployment}},
                "template": {
                    "metadata": {"labels": {"app": deployment}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        },
        {
            "apiVersion": "scheduling.kcp.io/v1alpha1",
            "kind": "Placement",
            "metadata": {"name": name},
            "spec": {
                "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
                "namespaceSelector": {"matchLabels": {"test": namespace}},
                **(spec or {}),
            },
        },
    ]
    return yaml.safe_dump_all(manifests)


def copies(system: TmcUp, name: str, clusters: tuple[str, ...] = CLUSTERS) -> dict[str, list[dict[str, Any]]]:
    """cluster -> the Deployments called `name` it runs (any namespace). Only ask clusters that answer."""
    out: dict[str, list[dict[str, Any]]] = {}
    for cluster in clusters:
        items = system.kubectl(cluster).json("get", "deployments", "-A")["items"]
        out[cluster] = [d for d in items if d["metadata"]["name"] == name]
    return out


def running(system: TmcUp, name: str, wanted: dict[str, int]) -> bool:
    """Each cluster in `wanted` runs exactly one copy with that many replicas, all Ready; the others run none."""
    for cluster, found in copies(system, name).items():
        want = wanted.get(cluster)
        if want is None:
            if found:
                return False
            continue
        if len(found) != 1:
            return False
        spec, status = found[0]["spec"], found[0].get("status") or {}
        if spec["replicas"] != want or status.get("readyReplicas", 0) != want:
            return False
    return True


def decided(hub: Kubectl, placement: str) -> dict[str, int]:
    status = hub.json("get", "placement", placement).get("status") or {}
    return {d["syncTarget"]["name"]: d.get("replicas", 0) for d in status.get("decisions") or []}


def events(hub: Kubectl, namespace: str, involved: str) -> list[dict[str, Any]]:
    items = hub.json("get", "events", "-n", namespace)["items"]
    return [e for e in items if e["involvedObject"]["name"] == involved]


def report(deployment: dict[str, Any], cluster: str) -> dict[str, Any]:
    """What `cluster`'s syncer reports for the hub Deployment (its per-target status)."""
    raw = deployment["metadata"].get("annotations", {}).get(status_diff_annotation(KEYS[cluster]))
    return (orjson.loads(raw).get("status") or {}) if raw else {}


DIVIDED = {"replicaScheduling": {"type": "Divided"}}


def hub_ready(hub: Kubectl, name: str = "web") -> tuple[int, int]:
    """(replicas, readyReplicas) of the hub Deployment `name` (in namespace `name`): the sums over its targets."""
    status = hub.json("get", "deployment", name, "-n", name).get("status") or {}
    return status.get("replicas", 0), status.get("readyReplicas", 0)


def moved(system: TmcUp) -> bool:
    """cluster-1 and cluster-3 each run one copy of `web` with 3 Ready replicas (cluster-2 is not asked: stopped)."""
    found = copies(system, "web", ("cluster-1", "cluster-3"))
    return all(
        len(items) == 1 and items[0]["spec"]["replicas"] == 3 and items[0].get("status", {}).get("readyReplicas") == 3
        for items in found.values()
    )


# ---------------------------------------------------------------------------------------------------------- tests


def test_a_placement_selecting_one_region_puts_it_only_there(system: TmcUp) -> None:
    hub = system.kubectl()
    # Directly, by the SyncTargets' region label.
    eu = {"syncTargetSelector": {"matchLabels": {REGION: "eu-central-1"}}}
    hub.run("apply", "-f", "-", input=placed("eu-only", "eu-only", "eu-app", 2, eu))
    # Through a Location whose instanceSelector picks a region.
    location = {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "asia", "labels": {"geo": "asia"}},
        "spec": {
            "resource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
            "instanceSelector": {"matchLabels": {REGION: "ap-southeast-1"}},
        },
    }
    hub.apply(location)
    asia = {"locationSelectors": [{"matchLabels": {"geo": "asia"}}]}
    hub.run("apply", "-f", "-", input=placed("asia-only", "asia-only", "asia-app", 1, asia))

    wait_until(lambda: running(system, "eu-app", {"cluster-2": 2}), timeout=30, what="eu-app on cluster-2 only")
    wait_until(lambda: running(system, "asia-app", {"cluster-3": 1}), timeout=30, what="asia-app on cluster-3 only")
    assert decided(hub, "eu-only") == {"cluster-2": 2}
    assert decided(hub, "asia-only") == {"cluster-3": 1}
    asia_status = hub.json("get", "placement", "asia-only")["status"]
    assert asia_status["phase"] == "Bound"
    assert asia_status["selectedLocation"] == {"path": "root", "locationName": "asia"}
    wait_until(
        lambda: hub.json("get", "deployment", "eu-app", "-n", "eu-only").get("status", {}).get("readyReplicas") == 2,
        timeout=20,
        what="the hub Deployment's status from cluster-2",
    )
    # What was decided and why, as Events on the Placement and on the workload.
    assert any(
        e["reason"] == "Scheduled" and e["message"] == "Placed on cluster-2 by strategy Spread"
        for e in events(hub, "default", "eu-only")
    ), events(hub, "default", "eu-only")
    described = hub.run("describe", "deployment", "eu-app", "-n", "eu-only").stdout
    assert "Runs on cluster-2 by Placement eu-only" in described, described


def test_a_stopped_cluster_fails_over_and_comes_back(system: TmcUp) -> None:
    hub = system.kubectl()
    hub.run("apply", "-f", "-", input=placed("web", "web", "web", 6, {"locationSelectors": [{}], **DIVIDED}))
    # A workload with nowhere else to go: only cluster-2 is in eu-central-1.
    eu = {"syncTargetSelector": {"matchLabels": {REGION: "eu-central-1"}}}
    hub.run("apply", "-f", "-", input=placed("lonely", "lonely", "lonely", 1, eu))
    wait_until(lambda: running(system, "web", dict.fromkeys(CLUSTERS, 2)), timeout=30, what="2 replicas per member")
    wait_until(lambda: hub_ready(hub) == (6, 6), timeout=20, what="6 of 6 ready on the hub")
    wait_until(lambda: hub_ready(hub, "lonely") == (1, 1), timeout=20, what="lonely ready on cluster-2")

    # Every version of the hub Deployment from here on, to check the old copy is kept while it must be.
    rv = hub.json("get", "deployment", "web", "-n", "web")["metadata"]["resourceVersion"]
    path = "/clusters/root/apis/apps/v1/namespaces/web/deployments"
    watch = system.hub().watch(f"{path}?watch=1&fieldSelector=metadata.name%3Dweb&resourceVersion={rv}")
    assert watch.status == 200, watch.error_body

    pid = system.pid("cluster-2")
    stopped = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        target = wait_until(
            lambda: (st := hub.json("get", "synctarget", "cluster-2")) and not is_ready(st) and st,
            timeout=THRESHOLD + PERIOD + 20,
            what="cluster-2 not Ready",
        )
        seen_not_ready = time.time() - stopped
        ready = condition(target, "Ready")
        # The hub's own record of the transition (whole seconds) is within threshold + one heartbeat of the stop.
        not_ready_after = epoch(ready["lastTransitionTime"]) - stopped
        assert not_ready_after <= THRESHOLD + PERIOD, (not_ready_after, ready)
        assert ready["reason"] == "ErrorHeartbeat" and ready["message"].startswith("No heartbeat since"), ready

        # Re-placed on the two others, Ready there, and the hub says so.
        wait_until(
            lambda: moved(system),
            timeout=30,
            what="3 Ready replicas on each of cluster-1 and cluster-3",
        )
        wait_until(lambda: hub_ready(hub) == (6, 6), timeout=20, what="the hub status: 6 of 6 ready")
        replaced_after = time.time() - stopped
        print(
            f"\nfailover: SIGSTOP -> Ready=False {not_ready_after:.1f}s by its lastTransitionTime "
            f"(seen {seen_not_ready:.1f}s), -> 6 replicas Ready on cluster-1 and cluster-3 {replaced_after:.1f}s"
        )
        assert decided(hub, "web") == {"cluster-1": 3, "cluster-3": 3}
        deployment = hub.json("get", "deployment", "web", "-n", "web")
        for cluster in ("cluster-1", "cluster-3"):
            assert report(deployment, cluster).get("readyReplicas") == 3, (cluster, deployment["metadata"])
        # cluster-2's copy stays for the grace (the heartbeat threshold) after it turned not Ready, then is removed;
        # it holds its syncer's finalizer until cluster-2 answers again.
        leaving = deletion_annotation(KEYS["cluster-2"])
        deployment = wait_until(
            lambda: (
                (d := hub.json("get", "deployment", "web", "-n", "web"))
                and leaving in d["metadata"].get("annotations", {})
                and d
            ),
            timeout=THRESHOLD + 20,
            what="cluster-2's copy asked to go after the grace",
        )
        removal_after = epoch(deployment["metadata"]["annotations"][leaving]) - epoch(ready["lastTransitionTime"])
        assert removal_after >= THRESHOLD - 1, (removal_after, ready)  # whole-second stamps on both sides
        status = deployment["status"]
        assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (6, 6, 6), status
        scheduled = condition(hub.json("get", "placement", "web"), "Scheduled")
        assert "1 not Ready" in scheduled["message"], scheduled

        # With no other target the last copy is never removed; the hub cannot vouch for it, so it counts 0 ready.
        lonely = condition(hub.json("get", "placement", "lonely"), "Scheduled")
        assert (lonely["status"], lonely["reason"]) == ("False", "NoValidTarget"), lonely
        assert decided(hub, "lonely") == {}
        assert any(e["reason"] == "FailedScheduling" for e in events(hub, "default", "lonely"))
        kept = hub.json("get", "deployment", "lonely", "-n", "lonely")
        assert state_label(KEYS["cluster-2"]) in kept["metadata"]["labels"], kept["metadata"]
        assert deletion_annotation(KEYS["cluster-2"]) not in kept["metadata"].get("annotations", {})
        wait_until(lambda: hub_ready(hub, "lonely")[1] == 0, timeout=10, what="lonely not counted as ready")

        # The old copy was kept until both new targets reported 3 available: never fewer than what ran.
        versions = [e["object"] for e in watch.drain() if e["type"] == "MODIFIED"]
        watch.close()
        removing = [o for o in versions if leaving in o["metadata"].get("annotations", {})]
        assert removing, f"no version of the hub Deployment asked cluster-2 to remove its copy ({len(versions)} seen)"
        for obj in removing:
            for cluster in ("cluster-1", "cluster-3"):
                assert report(obj, cluster).get("availableReplicas", 0) >= 3, (cluster, obj["metadata"])

        # Events say what was decided and why.
        placement_events = [e["message"] for e in events(hub, "default", "web")]
        assert any(
            "Placed on cluster-1 (3 replicas), cluster-3 (3 replicas) by strategy Spread; dropped cluster-2 (not Ready)"
            in m
            for m in placement_events
        ), placement_events
        described = hub.run("describe", "deployment", "web", "-n", "web").stdout
        assert "Rescheduling" in described and "Rescheduled" in described, described
        assert f"keeping the copy on cluster-2 while it is not Ready, for up to {THRESHOLD:g}s" in described
        assert "removing it from cluster-2: its new targets report it available" in described
        assert "dropped cluster-2 (not Ready)" in hub.run("describe", "placement", "web").stdout
    finally:
        watch.close()
        os.kill(pid, signal.SIGCONT)
    continued = time.time()

    wait_until(lambda: "cluster-2" in ready_targets(hub), timeout=THRESHOLD + 20, what="cluster-2 Ready again")
    print(f"recovery: SIGCONT -> Ready {time.time() - continued:.1f}s")
    # The Placement asks for every eligible target, so cluster-2 gets its share back; the others keep 3 until it
    # reports its 2 available. No duplicate is left anywhere.
    wait_until(lambda: running(system, "web", dict.fromkeys(CLUSTERS, 2)), timeout=30, what="2 per member again")
    wait_until(lambda: hub_ready(hub) == (6, 6), timeout=20, what="6 of 6 ready on the hub again")
    assert decided(hub, "web") == dict.fromkeys(CLUSTERS, 2)
    print(f"recovery: SIGCONT -> 2 Ready replicas on each member {time.time() - continued:.1f}s")
    assert decided(hub, "lonely") == {"cluster-2": 1}
    wait_until(lambda: hub_ready(hub, "lonely") == (1, 1), timeout=20, what="lonely counted again")
    assert running(system, "lonely", {"cluster-2": 1})


def test_unschedulable_stops_new_placements_and_evict_after_moves_workloads(system: TmcUp) -> None:
    hub = system.kubectl()
    try:
        hub.run("patch", "synctarget", "cluster-3", "--type", "merge", "-p", '{"spec":{"unschedulable":true}}')
        wait_until(
            lambda: hub.json("get", "location", "default").get("status", {}).get("availableInstances") == 2,
            timeout=20,
            what="the cordon seen by the hub",
        )
        two = {"locationSelectors": [{}], "numberOfTargets": 2}
        hub.run("apply", "-f", "-", input=placed("drain", "drain", "drained", 1, two))
        wait_until(lambda: decided(hub, "drain") == {"cluster-1": 1, "cluster-2": 1}, timeout=20, what="decision")
        scheduled = condition(hub.json("get", "placement", "drain"), "Scheduled")
        assert "1 unschedulable" in scheduled["message"], scheduled
        wait_until(
            lambda: running(system, "drained", {"cluster-1": 1, "cluster-2": 1}),
            timeout=30,
            what="on cluster-1 and cluster-2, not on the cordoned cluster-3",
        )

        # Uncordon cluster-3 (the Placement has its two targets and keeps them: decisions are sticky) and drain
        # cluster-1 from a moment ahead: nothing else happens when that time passes.
        evict = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
        patch = {"spec": {"unschedulable": False, "evictAfter": evict.strftime("%Y-%m-%dT%H:%M:%SZ")}}
        hub.run("patch", "synctarget", "cluster-1", "--type", "merge", "-p", orjson.dumps(patch).decode())
        hub.run("patch", "synctarget", "cluster-3", "--type", "merge", "-p", '{"spec":{"unschedulable":false}}')
        wait_until(
            lambda: decided(hub, "drain") == {"cluster-2": 1, "cluster-3": 1}, timeout=20, what="moved off cluster-1"
        )
        wait_until(
            lambda: running(system, "drained", {"cluster-2": 1, "cluster-3": 1}),
            timeout=30,
            what="the copy on cluster-1 removed once cluster-3 runs it",
        )
        deployment = hub.json("get", "deployment", "drained", "-n", "drain")
        assert state_label(KEYS["cluster-1"]) not in deployment["metadata"]["labels"], deployment["metadata"]
        messages = [e["message"] for e in events(hub, "default", "drain")]
        assert any("dropped cluster-1 (evicting)" in m for m in messages), messages
        described = hub.run("describe", "deployment", "drained", "-n", "drain").stdout
        assert "keeping the copy on cluster-1 until cluster-2, cluster-3 report the workload available" in described
        assert "removing it from cluster-1: its new targets report it available" in described, described
    finally:
        for name in CLUSTERS:
            hub.run(
                "patch",
                "synctarget",
                name,
                "--type",
                "merge",
                "-p",
                '{"spec":{"unschedulable":false,"evictAfter":null}}',
            )


# ---------------------------------------------------------------------------------------------------- health monitor


def syncer_health_base(system: TmcUp, cluster: str) -> str:
    """http://127.0.0.1:<health port> of a cluster's syncer, from `<data-dir>/up.json`."""
    with open(os.path.join(system.data_dir, "up.json"), "rb") as f:
        described = orjson.loads(f.read())
    member = next(c for c in described["clusters"] if c["name"] == cluster)
    return str(member["syncer"]["health"]).rsplit("/", 1)[0]


def http_get(url: str) -> tuple[int, str, str]:
    """Status, body and Content-Type of a plain HTTP GET (the syncer's health port), errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers["Content-Type"]


def hub_samples(hub: Kubectl) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = hub.run("get", "--raw", "/metrics").stdout
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def health_column(hub: Kubectl) -> dict[str, str]:
    """NAME -> HEALTH in `kubectl get synctargets`."""
    lines = hub.run("get", "synctargets").stdout.splitlines()
    header = lines[0].split()
    return {row.split()[0]: row.split()[header.index("HEALTH")] for row in lines[1:]}


def score(hub: Kubectl, cluster: str) -> float | None:
    labels = frozenset({"cluster": cluster, "workspace": "root", "location": REGIONS[cluster]}.items())
    return hub_samples(hub).get(("tmc_cluster_health_score", labels))


REGIONS = {"cluster-1": "us-east-1", "cluster-2": "eu-central-1", "cluster-3": "ap-southeast-1"}


def test_readyz_verbose_lists_every_check_on_the_hub_and_a_syncer(system: TmcUp) -> None:
    hub = system.kubectl()
    lines = hub.run("get", "--raw", "/readyz?verbose").stdout.splitlines()
    assert lines[:3] == ["[+]ping ok", "[+]storage ok", "[+]watch-cache ok"], lines
    assert "[+]controller-synctarget-heartbeat ok" in lines and "[+]controller-placement-scheduler ok" in lines
    assert lines[-3:] == ["[+]startup ok", "[+]shutdown ok", "readyz check passed"], lines
    assert hub.run("get", "--raw", "/livez").stdout == "ok"
    assert hub.run("get", "--raw", "/readyz/storage").stdout == "ok"
    assert hub.run("get", "--raw", "/healthz?verbose").stdout == "[+]ping ok\n[+]storage ok\nhealthz check passed\n"

    base = syncer_health_base(system, "cluster-1")
    assert http_get(f"{base}/readyz") == (200, "ok", "text/plain; charset=utf-8")
    assert http_get(f"{base}/readyz?verbose")[:2] == (
        200,
        "[+]ping ok\n[+]hub-connection ok\n[+]informer-sync ok\n[+]watches ok\n[+]member-cluster ok\n"
        "readyz check passed\n",
    )
    assert http_get(f"{base}/livez?verbose")[:2] == (200, "[+]ping ok\nlivez check passed\n")
    assert http_get(f"{base}/readyz/member-cluster")[:2] == (200, "ok")
    assert http_get(f"{base}/readyz/nope")[0] == 404


def test_a_stopped_cluster_turns_unhealthy_with_a_reason(system: TmcUp) -> None:
    hub = system.kubectl()
    wait_until(lambda: health_column(hub).get("cluster-3") == "Healthy", timeout=20, what="cluster-3 Healthy")
    before = wait_until(lambda: score(hub, "cluster-3"), timeout=10, what="a health score for cluster-3")
    assert before > 50, before
    base = syncer_health_base(system, "cluster-3")
    pid = system.pid("cluster-3")
    os.kill(pid, signal.SIGSTOP)
    try:
        # Its syncer's probe fails: its readiness says so at once, with the reason on the per-check path.
        _, body, _ = wait_until(
            lambda: (got := http_get(f"{base}/readyz?verbose"))[0] == 500 and got,
            timeout=PERIOD + 15,
            what="the syncer's /readyz to fail",
        )
        assert "[-]member-cluster failed: reason withheld\n" in body and body.endswith("readyz check failed\n")
        code, reason, _ = http_get(f"{base}/readyz/member-cluster")
        assert code == 500 and reason.startswith("internal server error: member cluster not answering since")

        # The hub: Healthy=False, Unreachable (the syncer said why its heartbeats stopped), in the HEALTH column.
        target = wait_until(
            lambda: (
                (st := hub.json("get", "synctarget", "cluster-3"))
                and condition(st, "Healthy").get("reason") == "Unreachable"
                and st
            ),
            timeout=THRESHOLD + 20,
            what="cluster-3 Healthy=False, Unreachable",
        )
        healthy = condition(target, "Healthy")
        assert healthy["status"] == "False" and "member cluster not answering" in healthy["message"], healthy
        assert health_column(hub)["cluster-3"] == "Unreachable"
        assert health_column(hub)["cluster-1"] == "Healthy"
        assert score(hub, "cluster-3") == 0.0  # not Ready
        samples = hub_samples(hub)
        component = ("tmc_component_health", frozenset({"component": "syncer/cluster-3"}.items()))
        assert samples[component] == 0.0
        assert samples[("tmc_component_health", frozenset({"component": "overall"}.items()))] == 0.5
        disconnected = {"cluster": "cluster-3", "status": "disconnected"}.items()
        assert samples[("tmc_syncer_connections", frozenset(disconnected))] == 1.0
        age = samples[("tmc_syncer_heartbeat_age_seconds", frozenset({"cluster": "cluster-3"}.items()))]
        assert age >= THRESHOLD, age
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: health_column(hub).get("cluster-3") == "Healthy", timeout=30, what="cluster-3 Healthy again")
    wait_until(lambda: (score(hub, "cluster-3") or 0) > 50, timeout=10, what="the score back up")
    assert http_get(f"{base}/readyz")[:2] == (200, "ok")
