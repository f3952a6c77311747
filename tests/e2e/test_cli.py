"""`kubectl tmc` and `tmcctl` end to end: the installed entry points as subprocesses (and `kubectl tmc` through the
real kubectl) against one `tmc up` system shared by every test here.

The last tests go through the sync-control annotations (tmc.cli.contract) to the real syncers and the hub's
scheduler: the syncer's Paused marker, the force acknowledgement, and Placement simulation by a server-side dry run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.harness import FAST_UP_ARGS, KUBECTL, TmcUp, free_port, wait_until
from tmc.cli import contract
from tmc.protocol.keys import sync_target_key

pytestmark = pytest.mark.usefixtures("kubectl_binary")

BIN = Path(sys.executable).parent
NS = "cli-shop"
LABEL = "tmc-cli-test"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    up = TmcUp(str(tmp_path_factory.mktemp("cli")), free_port(), *FAST_UP_ARGS, "--no-prometheus")
    try:
        up.wait_up()
        hub = up.kubectl()
        wait_until(lambda: len(ready_targets(up)) == 3, timeout=30, what="three Ready SyncTargets")
        hub.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {LABEL: "yes"}}})
        hub.apply(
            {
                "apiVersion": "scheduling.kcp.io/v1alpha1",
                "kind": "Placement",
                "metadata": {"name": "cli-web"},
                "spec": {
                    "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
                    "locationSelectors": [{}],
                    "namespaceSelector": {"matchLabels": {LABEL: "yes"}},
                    "numberOfTargets": 2,
                },
            }
        )
        hub.apply(deployment("web"))
        wait_until(lambda: len(targets_of(up, "web")) == 2, timeout=30, what="web placed on two clusters")
        yield up
    finally:
        assert up.stop() == 0, up.output()


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
    }


def ready_targets(up: TmcUp) -> list[str]:
    items = up.kubectl().json("get", "synctargets")["items"]
    return [
        i["metadata"]["name"]
        for i in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", []))
    ]


def key(name: str) -> str:
    return sync_target_key("root", name)


def targets_of(up: TmcUp, name: str) -> set[str]:
    labels = up.kubectl().json("get", "deployment", name, "-n", NS)["metadata"].get("labels", {})
    names = {key(c): c for c in ("cluster-1", "cluster-2", "cluster-3")}
    return {names[k.split("/", 1)[1]] for k in labels if k.startswith("state.workload.kcp.io/")}


def env(up: TmcUp, **extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out["KUBECONFIG"] = os.path.join(up.data_dir, "admin.kubeconfig")
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
    out.pop("NO_COLOR", None)
    out.update(extra)
    return out


def tool(up: TmcUp, program: str, *args: str, code: int | None = 0, **kw: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / program), *args], capture_output=True, text=True, env=kw.pop("env", None) or env(up), timeout=120
    )
    if code is not None:
        assert result.returncode == code, (
            f"{program} {' '.join(args)} -> {result.returncode}\n{result.stderr}{result.stdout}"
        )
    return result


def tmc(up: TmcUp, *args: str, code: int | None = 0, **kw: Any) -> subprocess.CompletedProcess[str]:
    return tool(up, "kubectl-tmc", *args, code=code, **kw)


def ctl(up: TmcUp, *args: str, code: int | None = 0, **kw: Any) -> subprocess.CompletedProcess[str]:
    return tool(up, "tmcctl", *args, code=code, **kw)


def test_kubectl_finds_and_runs_the_plugin(system: TmcUp) -> None:
    assert KUBECTL
    listed = subprocess.run([KUBECTL, "plugin", "list"], capture_output=True, text=True, env=env(system))
    assert str(BIN / "kubectl-tmc") in listed.stdout, listed.stdout + listed.stderr
    out = subprocess.run([KUBECTL, "tmc", "get", "st"], capture_output=True, text=True, env=env(system), timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "READY", "REGION"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["cluster-1", "cluster-2", "cluster-3"]
    usage = subprocess.run([KUBECTL, "tmc", "--help"], capture_output=True, text=True, env=env(system))
    assert usage.stdout.startswith("Usage: kubectl tmc"), usage.stdout
    completion = subprocess.run(
        [KUBECTL, "__complete", "tmc", "describe", "cl", ""], capture_output=True, text=True, env=env(system)
    )
    assert {"cluster-1", "cluster-2", "cluster-3"} <= set(completion.stdout.split()), completion.stdout


def test_get_in_every_output_format(system: TmcUp) -> None:
    clusters = tmc(system, "get", "clusters").stdout.splitlines()
    header = clusters[0].split()
    assert header[:8] == ["NAME", "READY", "HEALTH", "SCHEDULING", "CPU", "MEMORY", "HEARTBEAT", "WORKLOADS"]
    workloads = {line.split()[0]: int(line.split()[7]) for line in clusters[1:]}
    assert sum(workloads.values()) >= 2 and set(workloads) == {"cluster-1", "cluster-2", "cluster-3"}
    wl = tmc(system, "get", "wl", "-A", "-l", "app=web").stdout.splitlines()
    assert wl[0].split() == ["NAMESPACE", "KIND", "NAME", "TARGETS", "AGE"]
    assert wl[1].split()[:3] == [NS, "Deployment", "web"] and wl[1].count(":") == 2
    assert tmc(system, "get", "wl", "-n", NS, "-o", "name").stdout.splitlines() == ["deployment.apps/web"]
    names = tmc(system, "get", "st", "-o", "jsonpath={.items[*].metadata.name}", "--sort-by", ".metadata.name")
    assert names.stdout == "cluster-1 cluster-2 cluster-3"
    custom = tmc(system, "get", "st", "cluster-2", "-o", "custom-columns=N:.metadata.name", "--no-headers").stdout
    assert custom == "cluster-2\n"
    # JSON and YAML round-trip through kubectl apply. A List skips kubectl's client-side validation: kubectl
    # validates Lists against /openapi/v2, which the hub does not serve (kubectl's own `get -o yaml` List fails too).
    for fmt in ("json", "yaml"):
        one = tmc(system, "get", "pl", "cli-web", "-o", fmt).stdout
        applied = system.kubectl().run("apply", "-f", "-", input=one)
        assert applied.stdout.startswith("placement.scheduling.kcp.io/cli-web"), applied.stdout
        listed = tmc(system, "get", "pl", "-o", fmt).stdout
        applied = system.kubectl().run("apply", "--validate=false", "-f", "-", input=listed)
        assert "placement.scheduling.kcp.io/cli-web" in applied.stdout, applied.stdout
    assert orjson.loads(tmc(system, "get", "st", "cluster-1", "-o", "json").stdout)["kind"] == "SyncTarget"


def _follow(up: TmcUp, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "kubectl-tmc"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(up)
    )


def test_get_watch_prints_changes_from_a_watch(system: TmcUp) -> None:
    targets = _follow(system, "get", "st", "cluster-3", "-w", "-o", "name")
    workloads = _follow(system, "get", "wl", "-n", NS, "-w", "--no-headers")
    try:
        assert targets.stdout is not None and workloads.stdout is not None
        wait_until(lambda: targets.stdout.readline(), timeout=30, what="the listed lines")
        assert wait_until(lambda: workloads.stdout.readline(), timeout=30, what="the listed workload").split()[:2] == [
            "Deployment",
            "web",
        ]
        system.kubectl().run("label", "synctarget", "cluster-3", "tmc-cli-watched=yes", "--overwrite")
        line = wait_until(lambda: targets.stdout.readline().strip(), timeout=30, what="a watch event line")
        assert line.startswith("synctarget.workload.kcp.io/"), line
        # A new Deployment shows once it is placed (created unplaced, then labelled for its targets).
        system.kubectl().apply(deployment("watched"))
        line = wait_until(lambda: workloads.stdout.readline().strip(), timeout=30, what="the new workload's line")
        assert line.split()[:2] == ["Deployment", "watched"] and ":" in line.split()[2], line
    finally:
        for proc in (targets, workloads):
            proc.terminate()
            proc.wait(timeout=10)
        system.kubectl().run("delete", "deployment", "watched", "-n", NS, "--ignore-not-found")


def test_describe_health_and_debug(system: TmcUp) -> None:
    placed = sorted(targets_of(system, "web"))
    cl = tmc(system, "describe", "cl", placed[0]).stdout
    for section in ("Conditions:", "Resources:", "Workloads (1)", "Events:"):
        assert section in cl, cl
    assert re.search(rf"{NS}\s+Deployment\s+web\s+Sync", cl), cl
    pl = tmc(system, "describe", "pl", "cli-web").stdout
    assert "Decisions:" in pl and all(name in pl for name in placed), pl
    wl = tmc(system, "describe", "wl", "deployment/web", "-n", NS).stdout
    assert "Targets:" in wl and "Scheduled" in wl, wl
    health = tmc(system, "health")
    assert health.stdout.startswith("Overall: healthy") and "[" not in health.stdout.splitlines()[0]
    report = orjson.loads(tmc(system, "health", "-o", "json").stdout)
    assert report["overall"] == "healthy" and len(report["clusters"]) == 3 and report["hub"]["ready"]
    debug = tmc(system, "debug", "syncer", "cluster-1").stdout
    assert "[+]informer-sync ok" in debug and "Queue depth:" in debug, debug
    assert debug.rstrip().splitlines()[-1] == "Verdict: syncer for cluster-1 is healthy."


def test_workspaces(system: TmcUp, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(os.path.join(system.data_dir, "admin.kubeconfig"), kubeconfig)
    local = env(system, KUBECONFIG=str(kubeconfig))
    assert tmc(system, "ws", env=local).stdout == 'Current workspace is "root".\n'
    tmc(system, "ws", "create", "cli-team", "--enter", "-q", env=local)
    assert tmc(system, "ws", env=local).stdout == 'Current workspace is "root:cli-team".\n'
    # kubectl follows the kubeconfig the plugin edited.
    assert "/clusters/root:cli-team" in subprocess.run(
        [str(KUBECTL), "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"],
        capture_output=True, text=True, env=local,
    ).stdout  # fmt: skip
    assert tmc(system, "ws", "use", "..", env=local).stdout == 'Current workspace is "root".\n'
    assert tmc(system, "ws", "use", "-", env=local).stdout == 'Current workspace is "root:cli-team".\n'
    assert "cli-team" in tmc(system, "ws", "tree", "--workspace", "root", env=local).stdout
    missing = tmc(system, "ws", "use", "nope", code=1, env=local)
    assert missing.stderr.startswith('error: workspace "root:cli-team:nope" not found')


def test_placement_create_from_flags(system: TmcUp) -> None:
    manifest = tmc(
        system, "placement", "create", "cli-gpu", "--namespace-selector", "team in (ml)", "--strategy", "spread",
        "--replicas", "divided", "--spread", "topology.kubernetes.io/region:2", "--capabilities", "gpu:false",
        "--dry-run=client", "-o", "yaml",
    ).stdout  # fmt: skip
    obj = yaml.safe_load(manifest)
    assert obj["spec"]["strategy"] == "Spread" and obj["spec"]["replicaScheduling"] == {"type": "Divided"}
    assert (
        "created (server dry run)"
        in system.kubectl().run("apply", "--dry-run=server", "-f", "-", input=manifest).stdout
    )
    assert "not found" in system.kubectl().run("get", "placement", "cli-gpu", check=False).stderr
    tmc(system, "placement", "create", "cli-gpu", "--namespace-selector", "team=ml", "--targets", "1")
    tmc(system, "placement", "update", "cli-gpu", "--targets", "2")
    assert system.kubectl().json("get", "placement", "cli-gpu")["spec"]["numberOfTargets"] == 2
    listed = ctl(system, "placement", "list").stdout
    assert "cli-gpu" in listed and "cli-web" in listed
    assert ctl(system, "placement", "delete", "cli-gpu").stdout == "placement.scheduling.kcp.io/cli-gpu deleted\n"


def test_bad_input_is_one_line_and_changes_nothing(system: TmcUp) -> None:
    before = system.kubectl().json("get", "synctargets")["items"]
    port = free_port()
    cases = [
        (tmc, ("get", "pods"), 2, "unknown resource type"),
        (tmc, ("get", "st", "-l", "a in (b"), 2, "is not a label selector"),
        (tmc, ("sync", "force", "deployment/web", "-n", NS, "--timeout", "soon"), 2, "is not a positive duration"),
        (ctl, ("cluster", "drain", "cluster-9"), 1, 'SyncTarget "cluster-9" not found'),
        (ctl, ("cluster", "cordon", "cluster-1", "--server", f"https://127.0.0.1:{port}"), 1, "cannot reach the hub"),
        (tmc, ("get", "st", "-o", "xml"), 2, "unable to match a printer"),
    ]
    for run, args, code, text in cases:
        result = run(system, *args, code=code)
        assert result.stderr.startswith("error: ") and text in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    after = system.kubectl().json("get", "synctargets")["items"]
    assert [(i["metadata"]["name"], i.get("spec")) for i in before] == [
        (i["metadata"]["name"], i.get("spec")) for i in after
    ]


def test_tmcctl_register_cordon_drain_unregister(system: TmcUp) -> None:
    first = ctl(system, "cluster", "register", "cli-edge", "--location", "eu-west-1", "--capabilities", "gpu:true")
    assert first.stdout.startswith("synctarget.workload.kcp.io/cli-edge created")
    assert "tmc syncer --sync-target-name cli-edge --workspace root" in first.stdout
    again = ctl(system, "cluster", "register", "cli-edge", "--location", "eu-west-1", "--capabilities", "gpu:true")
    assert again.stdout.startswith("synctarget.workload.kcp.io/cli-edge configured")
    st = system.kubectl().json("get", "synctarget", "cli-edge")
    assert st["spec"]["capabilities"] == [{"type": "gpu", "available": True}]
    # The manifest is accepted by a member cluster's API (a server dry run; its namespace must exist first).
    manifest = ctl(system, "cluster", "register", "cli-edge", "-o", "manifest").stdout
    objects = list(yaml.safe_load_all(manifest))
    assert [o["kind"] for o in objects] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Deployment",
    ]  # fmt: skip
    member = system.kubectl("cluster-1")
    member.apply(objects[0])
    dry = member.run("apply", "--dry-run=server", "-f", "-", input=manifest)
    assert dry.stdout.count("(server dry run)") == 6, dry.stdout
    member_config = os.path.join(system.data_dir, "clusters", "cluster-2.kubeconfig")
    ctl(system, "cluster", "register", "cli-edge", "--apply-to", member_config, "-q")
    applied = system.kubectl("cluster-2").json("get", "deployments", "-A", "-l", "tmc.kcp.io/sync-target=cli-edge")
    assert [d["metadata"]["name"] for d in applied["items"]] == [objects[-1]["metadata"]["name"]]
    assert "cli-edge" in ctl(system, "cluster", "list").stdout
    ready = ctl(system, "cluster", "register", "cluster-2", "--location", "eu-central-1", "--wait", "--timeout", "30s")
    assert ready.stdout.rstrip().endswith("cluster cluster-2 is Ready"), ready.stdout
    assert ctl(system, "cluster", "unregister", "cli-edge", "--force").stdout.endswith("cli-edge deleted\n")

    assert ctl(system, "cluster", "cordon", "cluster-1").stdout == "cluster cluster-1 cordoned\n"
    assert ctl(system, "cluster", "cordon", "cluster-1").stdout == "cluster cluster-1 already cordoned\n"
    assert ctl(system, "cluster", "uncordon", "cluster-1").stdout == "cluster cluster-1 uncordoned\n"

    placed = sorted(targets_of(system, "web"))
    drained = ctl(system, "cluster", "drain", placed[0], "--timeout", "60s")
    assert drained.stdout.startswith(f"cluster {placed[0]} drained"), drained.stdout + drained.stderr
    assert placed[0] not in targets_of(system, "web")
    status = ctl(system, "cluster", "status", placed[0]).stdout
    assert "Scheduling:           Draining" in status and "Workloads (0)" in status, status
    ctl(system, "cluster", "uncordon", placed[0])
    workloads = ctl(system, "workload", "status", "-A").stdout
    assert "web" in workloads


def test_sync_status_and_pause_annotations(system: TmcUp) -> None:
    placed = sorted(targets_of(system, "web"))
    rows = tmc(system, "sync", "status", "-n", NS).stdout.splitlines()
    assert rows[0].split() == ["KIND", "NAME", "CLUSTER", "STATE", "LAG"]
    assert sorted(r.split()[2] for r in rows[1:] if r.split()[1] == "web") == placed
    tmc(system, "sync", "pause", "deployment/web", "-n", NS, "--cluster", placed[0])
    annotations = system.kubectl().json("get", "deployment", "web", "-n", NS)["metadata"]["annotations"]
    assert annotations[contract.PAUSED_ANNOTATION] == placed[0]
    tmc(system, "sync", "pause", "-n", NS)
    assert (
        system.kubectl().json("get", "namespace", NS)["metadata"]["annotations"][contract.PAUSED_ANNOTATION] == "true"
    )
    tmc(system, "sync", "resume", "-n", NS)
    assert contract.PAUSED_ANNOTATION not in system.kubectl().json("get", "namespace", NS)["metadata"].get(
        "annotations", {}
    )
    tmc(system, "sync", "resume", "deployment/web", "-n", NS)
    annotations = system.kubectl().json("get", "deployment", "web", "-n", NS)["metadata"].get("annotations", {})
    assert contract.PAUSED_ANNOTATION not in annotations


def test_health_and_debug_see_a_stopped_syncer(system: TmcUp) -> None:
    pid = system.pid_of(os.path.join("syncers", "cluster-3.pid"))
    os.kill(pid, signal.SIGSTOP)
    try:
        # Another cluster may be degraded for a reason of its own (a failed sync of another test's object), so
        # the wait is for cluster-3's row, not only for the exit code.
        degraded = wait_until(
            lambda: (
                (h := tmc(system, "health", code=None)).returncode == 1
                and re.search(r"cluster-3\s+\S+\s+HeartbeatStale", h.stdout)
                and h
            ),
            timeout=30,
            what="kubectl tmc health to say degraded (exit 1) with cluster-3's heartbeat stale",
        )
        assert degraded.stdout.startswith("Overall: degraded"), degraded.stdout
        debug = tmc(system, "debug", "syncer", "cluster-3", code=1).stdout
        assert "Verdict: syncer for cluster-3 is NOT healthy" in debug and "Try: " in debug, debug
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: tmc(system, "health", code=None).returncode == 0, timeout=30, what="healthy again")


def member_replicas(up: TmcUp, cluster: str) -> list[int]:
    items = up.kubectl(cluster).json("get", "deployments", "-A", "-l", "app=web")["items"]
    return [int(d["spec"]["replicas"]) for d in items]


def test_sync_pause_holds_the_syncer(system: TmcUp) -> None:
    """The syncer marks `sync.tmc.kcp.io/state.<key>: Paused`, holds writes to that target, and catches up on resume."""
    paused, other = sorted(targets_of(system, "web"))
    tmc(system, "sync", "pause", "deployment/web", "-n", NS, "--cluster", paused)
    try:
        wait_until(
            lambda: " Paused " in tmc(system, "sync", "status", "-n", NS, "--cluster", paused).stdout,
            timeout=20,
            what=f"the syncer of {paused} to mark web Paused",
        )
        system.kubectl().run("scale", "deployment", "web", "-n", NS, "--replicas", "2")
        # The unpaused target receiving the change bounds the time the paused one had to (wrongly) receive it.
        wait_until(lambda: member_replicas(system, other) == [2], timeout=30, what=f"{other} to get 2 replicas")
        assert member_replicas(system, paused) == [1], "a paused target must not receive the new spec"
    finally:
        tmc(system, "sync", "resume", "deployment/web", "-n", NS)
    wait_until(lambda: member_replicas(system, paused) == [2], timeout=30, what="the resumed target to catch up")


def test_sync_force_waits_for_the_syncers(system: TmcUp) -> None:
    """A copy edited by hand on a member cluster is restored by `sync force`, which returns once every target's syncer
    has echoed the token in `sync.tmc.kcp.io/forced.<key>` (even when the echoes came before it could watch)."""
    wanted = int(system.kubectl().json("get", "deployment", "web", "-n", NS)["spec"]["replicas"])
    edited = sorted(targets_of(system, "web"))[0]
    [copy] = system.kubectl(edited).json("get", "deployments", "-A", "-l", "app=web")["items"]
    md = copy["metadata"]
    system.kubectl(edited).run("scale", "deployment", md["name"], "-n", md["namespace"], "--replicas", "9")
    assert member_replicas(system, edited) == [9]
    out = tmc(system, "sync", "force", "deployment/web", "-n", NS, "--timeout", "30s")
    assert out.stdout.startswith("deployment/web: re-synced on 2 target(s)"), out.stdout
    assert member_replicas(system, edited) == [wanted]  # the acknowledgement comes after the re-apply


def test_placement_simulation_explains_candidates(system: TmcUp) -> None:
    """The hub's dry run returns `status.candidates`; simulate and debug placement explain them."""
    out = tmc(system, "placement", "simulate", "cli-web").stdout
    assert out.startswith("2 of 3 candidate SyncTargets selected."), out
    debug = tmc(system, "debug", "placement", "cli-web").stdout
    assert "Why the others were not chosen:" in debug, debug
    assert "cli-web" in system.kubectl().run("get", "placements").stdout  # the simulation stored nothing new
