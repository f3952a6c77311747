"""The canary's acceptance scenarios end to end on one `tmc up` (three simulated clusters, Prometheus, simulated
traffic), each in its own namespace and all at once, then each test reads its scenario's outcome:

- examples/canary/ as they are: the bad version fails its analysis and is rolled back (weight 0 in all three
  clusters, canary scaled down) while the hub's stable copy stays fully available (polled every 100 ms); then the
  good version goes 10 -> 50 -> 100, is promoted, and every member runs only its pods;
- a version bad in one cluster only (`sim.tmc.io/fault-clusters`) fails everywhere;
- Mann-Whitney comparisons of the canary's latency against the stable copy's: clearly higher fails with its
  p-value, equal passes, and a score between marginalScore and passScore is Inconclusive and pauses;
- Prometheus stopped during a canary: Error measurements, then the configured outcome (abort), never Succeeded;
- Gateway API and no-mesh (replica share) routing each promote once and roll back once;
- a first wave of one cluster with a manual gate: the canary weight in that cluster only, Paused (WaveGate) until
  `kubectl tmc rollout promote`, then the rest of the fleet, then promotion;
- Istio DestinationRule subsets of one Service promote once.

The Prometheus scenario points its metric at a Prometheus of its own (the same scrape configuration as `tmc up`'s),
since `tmc up` stops when its own Prometheus exits. Needs the simulated clusters' traffic and the mesh CRDs
(deploy/crds/); skips where they are not present."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e import canary_manifests as m
from tests.e2e.harness import FAST_UP_ARGS, TmcUp, free_port, python_client
from tests.tools import require_prometheus
from tmc.cli import prometheus as prom

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "canary"
CLUSTERS = ("cluster-1", "cluster-2", "cluster-3")
REPLICAS = 3  # every scenario's Deployment; the Placement duplicates it, so each cluster runs all of them
LOCATOR = "kcp.io/namespace-locator"
REGION = "topology.kubernetes.io/region"  # a label `tmc up` gives each SyncTarget
FIRST_WAVE, FIRST_WAVE_REGION = "cluster-2", "eu-central-1"
VERDICT = 150.0  # seconds a scenario may take to its verdict
pytestmark = [
    pytest.mark.usefixtures("kubectl_binary"),
    pytest.mark.skipif(
        not (ROOT / "deploy" / "crds" / "istio-networking.yaml").exists(),
        reason="needs the simulated traffic and the mesh CRDs (deploy/crds/), which tmc up installs",
    ),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    require_prometheus("prometheus")
    up = TmcUp(str(tmp_path_factory.mktemp("up-canary")), free_port(), *FAST_UP_ARGS)
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


# ------------------------------------------------------------------ observing one scenario


def until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception as e:  # an object not created yet, a member not synced yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last error: {last!r}")


@dataclass
class Scenario:
    """One namespace's rollout, observed through the official client (hub and members) and kubectl."""

    system: TmcUp
    namespace: str
    history: list[tuple[str, int, str]] = field(default_factory=list)  # (phase, weight, pauseReason) as they changed
    clusters_at: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # weight -> last status.clusters seen

    def __post_init__(self) -> None:
        from kubernetes import client

        self.api = python_client(os.path.join(self.system.data_dir, "admin.kubeconfig"))
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.members = {
            c: python_client(os.path.join(self.system.data_dir, "clusters", f"{c}.kubeconfig")) for c in CLUSTERS
        }
        self._member_ns: dict[str, str] = {}

    def apply(self, *objects: dict[str, Any]) -> None:
        self.system.kubectl().run("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def status(self) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            "tmc.kcp.io", "v1alpha1", self.namespace, "canarydeployments", "web"
        )
        st = dict(obj.get("status") or {})
        seen = (str(st.get("phase", "")), int(st.get("weight") or 0), str(st.get("pauseReason", "")))
        if not self.history or self.history[-1] != seen:
            self.history.append(seen)
        if st.get("phase") in ("Progressing", "Analyzing", "Paused") and not st.get("promoting"):
            # (while promoting, the stable copy's pods are being replaced: its share moves)
            self.clusters_at[seen[1]] = list(st.get("clusters") or [])
        return st

    def wait(self, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = VERDICT) -> dict[str, Any]:
        return dict(until(lambda: (st := self.status()) and check(st) and st, timeout, f"{self.namespace}: {what}"))

    def initialised(self) -> dict[str, Any]:
        return self.wait(lambda st: st.get("phase") == "Succeeded", "the stable copy to serve", timeout=90)

    def promoted(self, stable: str) -> dict[str, Any]:
        return self.wait(
            lambda st: st.get("phase") == "Succeeded" and st.get("stableRevision") not in (None, stable),
            "promotion",
        )

    def rolled_back(self) -> dict[str, Any]:
        return self.wait(lambda st: st.get("phase") == "RolledBack", "the rollback")

    def rollout(self, action: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl tmc rollout ACTION web -n NAMESPACE ARGS...` (the plugin's own executable)."""
        cmd = [str(Path(sys.executable).parent / "kubectl-tmc"), "rollout", action, "web", "-n", self.namespace]
        env = {**os.environ, "KUBECONFIG": self.system.kubectl().kubeconfig}
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=90, env=env)

    def rollout_status(self) -> subprocess.CompletedProcess[str]:
        return self.rollout("status", "--timeout", "60s")

    def errors_aged_out(self, window: str) -> None:
        """Polls this scenario's Prometheus until no cluster has a 5xx of the canary (`web`) within `window`."""
        namespaces = "|".join(sorted({self.member_namespace(c) for c in CLUSTERS}))
        query = (
            f'sum by (cluster) (rate(istio_requests_total{{reporter="destination",destination_workload="web",'
            f'destination_workload_namespace=~"{namespaces}",response_code=~"5.."}}[{window}])) > 0'
        )
        with open(os.path.join(self.system.data_dir, "up.json"), "rb") as f:
            url = orjson.loads(f.read())["prometheus"]["url"]
        address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"

        def quiet() -> bool:
            with urllib.request.urlopen(address, timeout=5) as response:
                return orjson.loads(response.read())["data"]["result"] == []

        until(quiet, 60, f"{self.namespace}: the rolled-back canary's 5xx out of the {window} window", interval=1)

    # -------------------------------------------------------------- members

    def member_namespace(self, cluster: str) -> str:
        """The namespace the syncer made for this one in `cluster` (kcp-<hash>), by its namespace locator."""
        if cluster not in self._member_ns:
            from kubernetes import client

            def find() -> str | None:
                for ns in client.CoreV1Api(self.members[cluster]).list_namespace().items:
                    locator = (ns.metadata.annotations or {}).get(LOCATOR)
                    if locator and orjson.loads(locator).get("namespace") == self.namespace:
                        return str(ns.metadata.name)
                return None

            self._member_ns[cluster] = until(find, 60, f"{self.namespace}'s namespace in {cluster}")
        return self._member_ns[cluster]

    def member_weights(self, cluster: str) -> dict[str, int]:
        """{destination: weight} of the routing object in a member (the VirtualService's first route, the
        HTTPRoute's first rule)."""
        from kubernetes import client

        api = client.CustomObjectsApi(self.members[cluster])
        ns = self.member_namespace(cluster)
        try:
            vs = api.get_namespaced_custom_object("networking.istio.io", "v1", ns, "virtualservices", "web")
            return {r["destination"]["host"]: r.get("weight", 0) for r in vs["spec"]["http"][0]["route"]}
        except client.ApiException as e:
            if e.status != 404:
                raise
        route = api.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "web")
        return {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}

    def member_object(self, cluster: str, plural: str) -> dict[str, Any]:
        """The Istio object `web` of this kind as a member has it."""
        from kubernetes import client

        api = client.CustomObjectsApi(self.members[cluster])
        ns = self.member_namespace(cluster)
        return dict(api.get_namespaced_custom_object("networking.istio.io", "v1", ns, plural, "web"))

    def member_subsets(self, cluster: str) -> dict[str, int]:
        """{subset: weight} of the member's VirtualService's first route (DestinationRule subsets of one host)."""
        route = self.member_object(cluster, "virtualservices")["spec"]["http"][0]["route"]
        return {f"{r['destination']['host']}/{r['destination'].get('subset', '')}": r.get("weight", 0) for r in route}

    def weights_everywhere(self, want: dict[str, int]) -> None:
        for c in CLUSTERS:
            until(lambda c=c: self.member_weights(c) == want, 30, f"{self.namespace}: weights {want} in {c}")

    def member_images(self, cluster: str) -> list[str]:
        """The image of every pod of the namespace in a member (terminating ones included)."""
        from kubernetes import client

        pods = client.CoreV1Api(self.members[cluster]).list_namespaced_pod(self.member_namespace(cluster)).items
        return sorted(p.spec.containers[0].image for p in pods)

    def only_version_everywhere(self, image: str) -> None:
        """Every member runs the stable copy's pods of `image` and nothing else (the canary scaled to zero)."""
        want = [image] * REPLICAS
        for c in CLUSTERS:
            until(lambda c=c: self.member_images(c) == want, 60, f"{self.namespace}: only {want} in {c}")

    def canary_scaled_down(self) -> None:
        """The hub's canary Deployment at 0 and no canary pod left in any member."""
        from kubernetes import client

        until(lambda: self.apps.read_namespaced_deployment("web", self.namespace).spec.replicas == 0, 30, "web at 0")
        for c in CLUSTERS:
            apps = client.AppsV1Api(self.members[c])

            def gone(c: str = c, apps: Any = apps) -> bool:
                d = apps.read_namespaced_deployment("web", self.member_namespace(c))
                return bool(d.spec.replicas == 0 and not d.status.replicas)

            until(gone, 60, f"{self.namespace}: no canary pods in {c}")


# ------------------------------------------------------------------ the scenarios


@dataclass
class Availability:
    """The hub's `web-primary` as polled every 100 ms: (availableReplicas, unavailableReplicas, Available)."""

    samples: list[tuple[int, int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # requests that failed (not samples either way)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, s: Scenario) -> None:
        while not self.stop.is_set():
            try:
                d = s.apps.read_namespaced_deployment_status("web-primary", s.namespace).status
            except Exception as e:  # a slow answer on a loaded machine says nothing about the Deployment
                self.errors.append(repr(e))
            else:
                available = next((c.status for c in d.conditions or [] if c.type == "Available"), "")
                self.samples.append((d.available_replicas or 0, d.unavailable_replicas or 0, str(available)))
            self.stop.wait(0.1)


def examples(system: TmcUp) -> dict[str, Any]:
    """examples/canary/ as the walk-through applies them: bad version rolled back, then good version promoted."""
    s = Scenario(system, "shop")
    first = s.initialised()
    s.weights_everywhere({"web-primary": 100, "web-canary": 0})
    watch = Availability()
    watcher = threading.Thread(target=watch.run, args=(s,), daemon=True)
    watcher.start()
    try:
        system.kubectl().run("apply", "-f", str(EXAMPLES / "bad-version.yaml"))
        bad = s.rolled_back()
        s.weights_everywhere({"web-primary": 100, "web-canary": 0})
        s.canary_scaled_down()
    finally:
        watch.stop.set()
        watcher.join()
    bad_verdict = s.rollout_status()
    # The example's query rates the 5xx of workload `web` over 20 s, the bad canary's and the next one's alike: a
    # new version started sooner would be judged partly on the rolled-back one's errors.
    s.errors_aged_out("20s")
    mark = len(s.history)
    system.kubectl().run("apply", "-f", str(EXAMPLES / "good-version.yaml"))
    good = s.promoted(first["stableRevision"])
    s.only_version_everywhere("nginx:1.28")
    s.weights_everywhere({"web-primary": 100, "web-canary": 0})
    primary = s.apps.read_namespaced_deployment("web-primary", "shop")
    return {
        "first": first,
        "bad": bad,
        "bad_verdict": bad_verdict,
        "availability": watch.samples,
        "availability_errors": watch.errors,
        "good": good,
        "good_history": s.history[mark:],
        "good_verdict": s.rollout_status(),
        "primary_image": primary.spec.template.spec.containers[0].image,
    }


def one_cluster_fault(system: TmcUp) -> dict[str, Any]:
    s = Scenario(system, "fault")
    objects = m.app(
        s.namespace, "istio", [{"setWeight": 50}, {"pause": {"duration": "60s"}}], {"metrics": [m.error_rate_metric()]}
    )
    s.apply(*objects)
    first = s.initialised()
    bad = {"sim.tmc.io/error-rate": "0.5", "sim.tmc.io/fault-clusters": "cluster-2"}
    s.apply(m.new_version(objects, "nginx:1.29", bad))
    st = s.rolled_back()
    s.weights_everywhere({"web-primary": 100, "web-canary": 0})
    return {"first": first, "status": st}


def comparison(system: TmcUp, namespace: str, annotations: dict[str, str], *extra: dict[str, Any]) -> dict[str, Any]:
    """A canary at weight 50 judged once by a latency comparison; returns its status at the verdict."""
    s = Scenario(system, namespace)
    steps = [{"setWeight": 50}, {"pause": {"duration": "35s"}}]
    objects = m.app(namespace, "istio", steps, {"comparison": m.latency_comparison(*extra)})
    s.apply(*objects)
    first = s.initialised()
    s.apply(m.new_version(objects, "nginx:1.28", annotations))
    st = s.wait(
        lambda st: st.get("phase") in ("RolledBack", "Paused") or st.get("stableRevision") != first["stableRevision"],
        "the comparison's verdict",
    )
    return {"first": first, "status": st, "history": s.history}


def slower(system: TmcUp) -> dict[str, Any]:
    return comparison(system, "mw-slower", {"sim.tmc.io/latency": m.SLOW})


def same(system: TmcUp) -> dict[str, Any]:
    return comparison(system, "mw-same", {})


def borderline(system: TmcUp) -> dict[str, Any]:
    """Latency clearly higher (High, weight 1) but the 5xx share the same (both always 0: Pass, weight 4): score
    4/5 = 80, between marginalScore 75 and passScore 90. The score is the borderline, not the p-value, so the
    verdict does not hang on sampling noise."""
    errors = {
        "name": "errors",
        "canaryQuery": m.ERROR_RATE_QUERY % {"w": "canary"},
        "baselineQuery": m.ERROR_RATE_QUERY % {"w": "stable"},
        "direction": "increase",
        "weight": 4,
    }
    return comparison(system, "mw-borderline", {"sim.tmc.io/latency": m.SLOW}, errors)


def prometheus_stopped(system: TmcUp, tmp: Path) -> dict[str, Any]:
    """The metric reads a Prometheus this scenario runs; it is stopped once the analysis has measured twice."""
    with open(os.path.join(system.data_dir, "up.json"), "rb") as f:
        config_file = orjson.loads(f.read())["prometheus"]["config"]
    own = prom.Prometheus(str(prom.binary_path()), str(tmp / "prometheus"), free_port())
    with open(config_file) as f:
        own.write_config(yaml.safe_load(f))
    own.start()
    try:
        s = Scenario(system, "prom-down")
        metric = m.error_rate_metric(own.url, consecutiveErrorLimit=1)
        objects = m.app(
            s.namespace, "istio", [{"setWeight": 20}, {"pause": {"duration": "90s"}}], {"metrics": [metric]}
        )
        s.apply(*objects)
        first = s.initialised()
        s.apply(m.new_version(objects, "nginx:1.28"))
        before = s.wait(
            lambda st: any(x.get("successful", 0) >= 2 for x in (st.get("analysis") or {}).get("metrics") or []),
            "two successful measurements",
        )
        canary_history = len(s.history)
    finally:
        own.stop()
    st = s.rolled_back()
    s.weights_everywhere({"web-primary": 100, "web-canary": 0})
    return {"first": first, "before": before, "status": st, "history": s.history[canary_history - 1 :]}


def promote_then_roll_back(system: TmcUp, namespace: str, router: str, steps: list[Any]) -> dict[str, Any]:
    s = Scenario(system, namespace)
    objects = m.app(namespace, router, steps, {"metrics": [m.error_rate_metric()]})
    s.apply(*objects)
    first = s.initialised()
    mark = len(s.history)
    s.apply(m.new_version(objects, "nginx:1.28"))
    good = s.promoted(first["stableRevision"])
    good_history = s.history[mark:]
    s.only_version_everywhere("nginx:1.28")
    s.apply(m.new_version(objects, "nginx:1.29", {"sim.tmc.io/error-rate": "0.2"}))
    bad = s.rolled_back()
    s.canary_scaled_down()
    out = {"first": first, "good": good, "good_history": good_history, "bad": bad, "clusters_at": s.clusters_at}
    if router != "replicas":
        s.weights_everywhere({"web-primary": 100, "web-canary": 0})
        out["weights"] = {c: s.member_weights(c) for c in CLUSTERS}
    return out


def gateway_api(system: TmcUp) -> dict[str, Any]:
    return promote_then_roll_back(system, "gw", "gatewayAPI", [{"setWeight": 50}, {"pause": {"duration": "15s"}}])


def replica_share(system: TmcUp) -> dict[str, Any]:
    steps = [{"setWeight": 50}, {"pause": {"duration": "15s"}}, {"setWeight": 100}, {"pause": {"duration": "3s"}}]
    return promote_then_roll_back(system, "rs", "replicas", steps)


def first_wave(system: TmcUp) -> dict[str, Any]:
    """A first wave of one cluster (by the region label `tmc up` gives its SyncTarget), a manual gate, then the
    rest of the fleet, under the error-rate analysis narrowed to the wave's clusters."""
    s = Scenario(system, "waves")
    steps = [{"setWeight": 30}, {"pause": {"duration": "12s"}}]
    metric = m.error_rate_metric(query=m.FIRST_WAVE_ERROR_RATE_QUERY)
    clusters = {"syncTargetSelector": {"matchLabels": {REGION: FIRST_WAVE_REGION}}, "gate": "manual"}
    objects = m.app(s.namespace, "istio", steps, {"metrics": [metric]}, clusters=clusters)
    s.apply(*objects)
    first = s.initialised()
    s.apply(m.new_version(objects, "nginx:1.28"))
    # While the first wave runs: its member's VirtualService gets the canary weight; what the others have then.
    wave = until(lambda: (w := s.member_weights(FIRST_WAVE)).get("web-canary") and w, 60, "the first wave's weight")
    first_wave_weights = {c: wave if c == FIRST_WAVE else s.member_weights(c) for c in CLUSTERS}
    gate = s.wait(lambda st: st.get("pauseReason") == "WaveGate", "the gate")
    at_gate = {c: s.member_weights(c) for c in CLUSTERS}
    shown = s.rollout("get")
    promote = s.rollout("promote")
    rest = s.wait(lambda st: st.get("wave") == "Rest" and st.get("weight") == 30, "the rest of the fleet at 30")
    rest_weights = {
        c: until(lambda c=c: s.member_weights(c)["web-canary"] == 30 and s.member_weights(c), 30, c) for c in CLUSTERS
    }
    good = s.promoted(first["stableRevision"])
    s.only_version_everywhere("nginx:1.28")
    s.weights_everywhere({"web-primary": 100, "web-canary": 0})
    return {
        "first_wave_weights": first_wave_weights,
        "gate": gate,
        "at_gate": at_gate,
        "shown": shown,
        "promote": promote,
        "rest": rest,
        "rest_weights": rest_weights,
        "good": good,
        "history": s.history,
    }


def destination_rule_subsets(system: TmcUp) -> dict[str, Any]:
    """Routing by the subsets `stable` and `canary` of the user's Service `web`, promoted once."""
    s = Scenario(system, "subsets")
    objects = m.app(
        s.namespace,
        "istio-subsets",
        [{"setWeight": 40}, {"pause": {"duration": "12s"}}],
        {"metrics": [m.error_rate_metric()]},
    )
    s.apply(*objects)
    first = s.initialised()
    s.apply(m.new_version(objects, "nginx:1.28"))
    at_40 = {
        c: until(lambda c=c: (w := s.member_subsets(c)).get("web/canary") == 40 and w, 60, f"subsets: 40 in {c}")
        for c in CLUSTERS
    }
    rules = {c: s.member_object(c, "destinationrules")["spec"] for c in CLUSTERS}
    good = s.promoted(first["stableRevision"])
    s.only_version_everywhere("nginx:1.28")
    final = {c: until(lambda c=c: (w := s.member_subsets(c)).get("web/stable") == 100 and w, 30, c) for c in CLUSTERS}
    return {"first": first, "at_40": at_40, "rules": rules, "good": good, "final": final, "history": s.history}


@pytest.fixture(scope="module")
def outcomes(system: TmcUp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[dict[str, Any]]]]:
    """Every scenario started at once, each in a thread of its own; a test waits for the one it reads."""
    system.kubectl().run("apply", "-f", str(EXAMPLES / "app.yaml"))  # also the Placement every namespace uses
    tmp = tmp_path_factory.mktemp("canary-prometheus")
    scenarios: dict[str, Callable[[], dict[str, Any]]] = {
        "examples": lambda: examples(system),
        "fault": lambda: one_cluster_fault(system),
        "slower": lambda: slower(system),
        "same": lambda: same(system),
        "borderline": lambda: borderline(system),
        "prometheus": lambda: prometheus_stopped(system, tmp),
        "gateway": lambda: gateway_api(system),
        "replicas": lambda: replica_share(system),
        "waves": lambda: first_wave(system),
        "subsets": lambda: destination_rule_subsets(system),
    }
    started = time.monotonic()

    def timed(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        out = run()
        print(f"canary scenario {name}: {time.monotonic() - started:.0f}s to its last check", file=sys.stderr)
        return out

    with ThreadPoolExecutor(len(scenarios)) as pool:
        yield {name: pool.submit(timed, name, run) for name, run in scenarios.items()}


def outcome(outcomes: dict[str, Future[dict[str, Any]]], name: str) -> dict[str, Any]:
    return outcomes[name].result(timeout=300)


# ------------------------------------------------------------------ what the user sees


def test_bad_version_rolled_back_in_all_clusters_while_stable_stays_available(outcomes: Any) -> None:
    o = outcome(outcomes, "examples")
    st = o["bad"]
    assert st["weight"] == 0 and st["stableRevision"] == o["first"]["stableRevision"], st
    assert "error-rate" in st["message"] and "result < 0.05" in st["message"], st["message"]
    assert o["bad_verdict"].returncode == 1, o["bad_verdict"].stdout + o["bad_verdict"].stderr
    samples = o["availability"]
    assert len(samples) >= 30, f"only {len(samples)} availability samples; errors: {o['availability_errors'][:3]}"
    full = REPLICAS * len(CLUSTERS)
    dips = [x for x in samples if x[0] < full or x[1] > 0 or x[2] != "True"]
    assert not dips, f"{len(dips)} of {len(samples)} samples not fully available, e.g. {dips[:3]}"


def test_good_version_goes_10_50_100_and_only_it_runs_everywhere(outcomes: Any) -> None:
    o = outcome(outcomes, "examples")
    assert o["good_verdict"].returncode == 0, o["good_verdict"].stdout + o["good_verdict"].stderr
    weights = [w for _, w, _ in o["good_history"]]
    stepped = [w for i, w in enumerate(weights) if w and (i == 0 or weights[i - 1] != w)]
    assert stepped == [10, 50, 100], o["good_history"]
    assert o["good_history"][-1][0] == "Succeeded"
    measured = [x for metric in o["good"]["analysis"]["metrics"] for x in metric["measurements"]]
    assert measured and {c["cluster"] for c in measured[-1]["clusters"]} == set(CLUSTERS)
    assert o["primary_image"] == "nginx:1.28"


def test_version_bad_in_one_cluster_fails_everywhere(outcomes: Any) -> None:
    o = outcome(outcomes, "fault")
    st = o["status"]
    assert st["message"].find("AnalysisFailed: ") >= 0 and "in cluster cluster-2" in st["message"], st["message"]
    failed = [x for x in st["analysis"]["metrics"][0]["measurements"] if x["phase"] == "Failed"]
    assert failed, st["analysis"]
    phases = {c["cluster"]: c["phase"] for c in failed[-1]["clusters"]}
    assert phases == {"cluster-1": "Successful", "cluster-2": "Failed", "cluster-3": "Successful"}, failed[-1]
    assert st["stableRevision"] == o["first"]["stableRevision"] and st["weight"] == 0


def comparison_of(st: dict[str, Any]) -> dict[str, Any]:
    return dict(next(x for x in st["analysis"]["metrics"] if x["name"] == "comparison")["measurements"][-1])


def test_mann_whitney_higher_canary_latency_fails_with_its_p_value(outcomes: Any) -> None:
    st = outcome(outcomes, "slower")["status"]
    assert st["phase"] == "RolledBack" and st["message"].find("AnalysisFailed: ") >= 0, st
    assert "latency High" in st["message"] and "p=" in st["message"], st["message"]
    latency = comparison_of(st)["comparison"]["metrics"][0]
    assert latency["classification"] == "High" and float(latency["pValue"]) < 0.05, latency
    assert float(latency["canaryMedian"]) > 2 * float(latency["baselineMedian"]), latency


def test_mann_whitney_equal_latency_passes_and_is_promoted(outcomes: Any) -> None:
    o = outcome(outcomes, "same")
    st = o["status"]
    assert st["phase"] == "Succeeded" and st["stableRevision"] != o["first"]["stableRevision"], st
    judged = comparison_of(st)
    assert judged["phase"] == "Successful" and judged["comparison"]["metrics"][0]["classification"] == "Pass", judged


def test_mann_whitney_borderline_score_is_inconclusive_and_pauses(outcomes: Any) -> None:
    st = outcome(outcomes, "borderline")["status"]
    assert st["phase"] == "Paused" and st["pauseReason"] == "Inconclusive", st
    assert "score 80" in st["message"] and "< passScore 90" in st["message"], st["message"]
    assert st["weight"] == 50, st  # held where it was, for a human to promote or abort


def test_prometheus_stopped_gives_errors_then_abort_never_success(outcomes: Any) -> None:
    o = outcome(outcomes, "prometheus")
    st = o["status"]
    assert [p for p, _, _ in o["history"]].count("Succeeded") == 0, o["history"]
    assert st["message"].find("AnalysisError: ") >= 0 and "consecutiveErrorLimit 1" in st["message"], st["message"]
    metric = st["analysis"]["metrics"][0]
    assert metric["phase"] == "Error" and metric["successful"] >= 2, metric
    errors = [x for x in metric["measurements"] if x["phase"] == "Error"]
    assert len(errors) >= 2 and all("unreachable" in x["message"] for x in errors), errors
    assert st["stableRevision"] == o["first"]["stableRevision"] and st["weight"] == 0


@pytest.mark.parametrize("name", ["gateway", "replicas"])
def test_router_variant_promotes_and_rolls_back(outcomes: Any, name: str) -> None:
    o = outcome(outcomes, name)
    assert o["good"]["stableRevision"] != o["first"]["stableRevision"]
    assert o["good_history"][-1][0] == "Succeeded" and 50 in [w for _, w, _ in o["good_history"]], o["good_history"]
    bad = o["bad"]
    assert bad["message"].find("AnalysisFailed: ") >= 0 and bad["stableRevision"] == o["good"]["stableRevision"], bad
    if name == "gateway":
        assert all(w == {"web-primary": 100, "web-canary": 0} for w in o["weights"].values()), o["weights"]
    else:  # the last step's weight 100 runs as many canary pods as stable ones: a 50 % share in every cluster
        assert 100 in [w for _, w, _ in o["good_history"]], o["good_history"]
        shares = {c["cluster"]: c["weight"] for c in o["clusters_at"][100]}
        assert shares == dict.fromkeys(CLUSTERS, 50), o["clusters_at"][100]


def test_first_wave_carries_the_canary_then_a_manual_gate_then_the_fleet(outcomes: Any) -> None:
    o = outcome(outcomes, "waves")
    # While the first wave runs, only its cluster's VirtualService sends requests to the canary.
    assert o["first_wave_weights"] == {
        c: {"web-primary": 70, "web-canary": 30} if c == FIRST_WAVE else {"web-primary": 100, "web-canary": 0}
        for c in CLUSTERS
    }, o["first_wave_weights"]
    gate = o["gate"]
    assert (gate["phase"], gate["wave"], gate["weight"]) == ("Paused", "First", 30), gate
    assert o["at_gate"] == o["first_wave_weights"], o["at_gate"]  # held at the gate
    judged = gate["analysis"]["metrics"][0]["measurements"]
    assert judged and all(x["phase"] == "Successful" for x in judged), judged
    assert {c["cluster"] for x in judged for c in x["clusters"]} == {FIRST_WAVE}, judged  # only the wave's cluster
    shown = o["shown"].stdout
    assert o["shown"].returncode == 0 and "Paused (WaveGate)" in shown, shown + o["shown"].stderr
    assert f"first wave: {FIRST_WAVE}; gate manual" in shown, shown
    assert o["promote"].returncode == 0, o["promote"].stdout + o["promote"].stderr
    # Past the gate the rest of the fleet runs the steps again; the first wave keeps its 30.
    assert {c["cluster"]: (c["wave"], c["weight"]) for c in o["rest"]["clusters"]} == {
        c: ("First" if c == FIRST_WAVE else "Rest", 30) for c in CLUSTERS
    }, o["rest"]["clusters"]
    assert all(w == {"web-primary": 70, "web-canary": 30} for w in o["rest_weights"].values()), o["rest_weights"]
    good = o["good"]
    assert good["phase"] == "Succeeded" and "wave" not in good, good
    assert ("Paused", 30, "WaveGate") in o["history"], o["history"]


def test_destination_rule_subsets_route_one_service_and_promote(outcomes: Any) -> None:
    o = outcome(outcomes, "subsets")
    assert all(w == {"web/stable": 60, "web/canary": 40} for w in o["at_40"].values()), o["at_40"]
    for c, rule in o["rules"].items():  # the DestinationRule the controller made reached every member
        assert rule["host"] == "web", (c, rule)
        subsets = {x["name"]: x["labels"] for x in rule["subsets"]}
        assert subsets == {
            "stable": {"app": "web", "canary.tmc.kcp.io/role": "stable"},
            "canary": {"app": "web", "canary.tmc.kcp.io/role": "canary"},
        }, (c, rule)
    good = o["good"]
    assert good["stableRevision"] != o["first"]["stableRevision"], good
    measured = good["analysis"]["metrics"][0]["measurements"]
    assert measured and all(x["phase"] == "Successful" for x in measured), measured  # the subsets had endpoints
    assert all(w == {"web/stable": 100, "web/canary": 0} for w in o["final"].values()), o["final"]
