"""Simulated traffic end to end on `tmc up` with Prometheus: Istio routing applied to the hub with kubectl reaches both
members through their syncers, each member's simulated traffic follows its 80/20 weights, and a fault annotation
scoped to one cluster (edited into the hub's Deployment) makes the canary fail there only, as Prometheus shows; a
never-ready fault scoped to one cluster keeps a pod unready there only."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator

import orjson
import pytest

from tests.e2e.harness import TmcUp, free_port, wait_until
from tests.tools import require_prometheus

pytestmark = pytest.mark.usefixtures("kubectl_binary")

CLUSTERS = ("cluster-1", "cluster-2")
MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: mesh-shop, labels: {app: mesh-shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-stable, namespace: mesh-shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, version: stable}}
  template:
    metadata: {labels: {app: web, version: stable}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-canary, namespace: mesh-shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web, version: canary}}
  template:
    metadata: {labels: {app: web, version: canary}}
    spec:
      containers: [{name: web, image: nginx:1.28}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: probe, namespace: mesh-shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: probe}}
  template:
    metadata:
      labels: {app: probe}
      annotations: {sim.tmc.io/never-ready: "true", sim.tmc.io/fault-clusters: cluster-1}
    spec:
      containers: [{name: probe, image: busybox}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: mesh-shop
  annotations: {sim.tmc.io/request-rate: "60"}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: mesh-shop}
spec:
  host: web
  subsets:
  - {name: stable, labels: {version: stable}}
  - {name: canary, labels: {version: canary}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: mesh-shop}
spec:
  hosts: [web]
  http:
  - route:
    - {destination: {host: web, subset: stable}, weight: 80}
    - {destination: {host: web, subset: canary}, weight: 20}
---
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: mesh-shop}
spec:
  locationSelectors: [{}]
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  namespaceSelector: {matchLabels: {app: mesh-shop}}
  locationWorkspace: root
"""
# The canary turns bad in cluster-2 only: an edit of the hub's Deployment, so a new ReplicaSet rolls out everywhere.
BAD_CANARY = {
    "spec": {
        "template": {
            "metadata": {
                "annotations": {"sim.tmc.io/error-rate": "0.5", "sim.tmc.io/fault-clusters": "cluster-2"},
            }
        }
    }
}
WINDOW = "10s"  # five scrapes at tmc up's 2s interval


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmcUp]:
    require_prometheus("prometheus")
    args = ("--clusters", "2", "--sync-target-heartbeat-threshold", "5s", "--heartbeat-period", "1s")
    up = TmcUp(str(tmp_path_factory.mktemp("up-traffic")), free_port(), *args, "--ready-delay", "200ms")
    try:
        up.wait_up()
        yield up
    finally:
        assert up.stop() == 0, up.output()


def query(prometheus: str, expr: str) -> dict[tuple[str, ...], float]:
    """An instant query's vector as {label values in label-name order: value}."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = orjson.loads(response.read())
    assert body["status"] == "success", body
    return {tuple(v for _, v in sorted(r["metric"].items())): float(r["value"][1]) for r in body["data"]["result"]}


def shares(prometheus: str) -> dict[str, dict[str, float]]:
    """Per cluster, each destination workload's requests per second."""
    selector = f'istio_requests_total{{reporter="destination"}}[{WINDOW}]'
    rates = query(prometheus, f"sum by (cluster, destination_workload) (rate({selector}))")
    out: dict[str, dict[str, float]] = {}
    for (cluster, workload), rate in rates.items():
        out.setdefault(cluster, {})[workload] = rate
    return out


def test_istio_weights_from_the_hub_split_traffic_in_every_member_and_a_scoped_fault_fails_one(
    system: TmcUp,
) -> None:
    hub = system.kubectl()
    prometheus = system.prometheus_url()
    assert prometheus is not None, system.output()
    assert {c["metadata"]["name"] for c in hub.json("get", "crds")["items"]} >= {
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "httproutes.gateway.networking.k8s.io",
    }
    hub.run("apply", "-f", "-", input=MANIFESTS)

    # The routing objects reach every member as custom resources, weights intact.
    for cluster in CLUSTERS:
        member = system.kubectl(cluster)
        found = wait_until(
            lambda member=member: member.json("get", "virtualservices", "-A")["items"],
            timeout=30,
            what=f"the VirtualService on {cluster}",
        )
        assert [d["weight"] for d in found[0]["spec"]["http"][0]["route"]] == [80, 20]
        assert member.json("get", "destinationrules", "-A")["items"][0]["spec"]["host"] == "web"

    # never-ready scoped to cluster-1: the probe's pod is Running but not Ready there, Ready in cluster-2.
    def probe_ready() -> dict[str, str] | None:
        found = {}
        for cluster in CLUSTERS:
            items = system.kubectl(cluster).json("get", "pods", "-A", "-l", "app=probe")["items"]
            conditions = (
                {c["type"]: c["status"] for c in (items[0].get("status") or {}).get("conditions", [])} if items else {}
            )
            if items and items[0]["status"].get("phase") == "Running":
                found[cluster] = conditions.get("Ready", "")
        return found if len(found) == 2 else None

    assert wait_until(probe_ready, timeout=30, what="the probe running in both clusters") == {
        "cluster-1": "False",
        "cluster-2": "True",
    }

    def split_80_20() -> dict[str, dict[str, float]] | None:
        now = shares(prometheus)
        for cluster in CLUSTERS:
            rates = now.get(cluster, {})
            total = sum(rates.values())
            canary = rates.get("web-canary", 0.0)
            if set(rates) != {"web-stable", "web-canary"} or total < 40 or not 0.12 <= canary / total <= 0.28:
                return None
        return now

    split = wait_until(split_80_20, timeout=60, interval=1, what="an 80/20 split of ~60 req/s in both clusters")
    assert set(split) == set(CLUSTERS)
    # No pod answered an error (a 503 from the calling side while the pods were still starting may exist).
    answered_errors = 'istio_requests_total{reporter="destination", response_code=~"5.."}'
    assert query(prometheus, f"count({answered_errors})") == {}

    hub.run(
        "patch",
        "deployment",
        "web-canary",
        "-n",
        "mesh-shop",
        "--type",
        "merge",
        "-p",
        orjson.dumps(BAD_CANARY).decode(),
    )

    def canary_failing_in_cluster_2() -> dict[tuple[str, ...], float] | None:
        canary = 'istio_requests_total{destination_workload="web-canary"'
        ratio = query(
            prometheus,
            f'sum by (cluster) (rate({canary}, response_code=~"5.."}}[{WINDOW}]))'
            f" / sum by (cluster) (rate({canary}}}[{WINDOW}]))",
        )
        value = ratio.get(("cluster-2",))
        return ratio if value is not None and 0.3 <= value <= 0.7 else None

    ratio = wait_until(canary_failing_in_cluster_2, timeout=60, interval=1, what="half the canary's answers 5xx")
    assert ("cluster-1",) not in ratio, ratio
    # No 5xx was ever answered in cluster-1, although its canary runs the edited template and gets its 20%.
    assert query(prometheus, f"count by (cluster) ({answered_errors})") == {("cluster-2",): 1}
    assert shares(prometheus).get("cluster-1", {}).get("web-canary", 0.0) > 5
    edited = {
        cluster: {
            p["metadata"]["labels"]["pod-template-hash"]
            for p in system.kubectl(cluster).json("get", "pods", "-A", "-l", "version=canary")["items"]
            if p["metadata"].get("annotations", {}).get("sim.tmc.io/fault-clusters") == "cluster-2"
        }
        for cluster in CLUSTERS
    }
    assert all(edited.values()), edited  # the edited template runs in both members
    # Latency is reported too, through Istio's histogram.
    p99 = query(
        prometheus,
        f"histogram_quantile(0.99, sum by (le, cluster) (rate(istio_request_duration_milliseconds_bucket[{WINDOW}])))",
    )
    assert set(p99) == {("cluster-1",), ("cluster-2",)} and all(25 < v <= 1000 for v in p99.values()), p99
