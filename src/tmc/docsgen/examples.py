"""One example manifest per TMC kind, written by hand in the shape kcp users know (`kubectl kcp bind compute`,
`kubectl kcp workload sync`), plus TMC's additions. The e2e suite applies every one of them to a real hub with
`kubectl apply --dry-run=server`, so they cannot drift from what the hub accepts.

A kind without a hand-written example (a CRD read from a running hub, or a TMC kind added since) gets a skeleton
built from its schema's required fields, marked as such on the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tmc.docsgen.model import Kind

EXAMPLES: Mapping[tuple[str, str], str] = {
    ("workload.kcp.io/v1alpha1", "SyncTarget"): """\
# A member cluster in eu-central-1a whose syncer syncs Deployments, Services, ConfigMaps and Secrets
# of the namespaces labelled for it. `kubectl tmc cluster register` writes one like this.
apiVersion: workload.kcp.io/v1alpha1
kind: SyncTarget
metadata:
  name: eu-central-1a
  labels:
    topology.kubernetes.io/region: eu-central-1
    topology.kubernetes.io/zone: eu-central-1a
spec:
  unschedulable: false
  supportedAPIExports:
    - export: kubernetes
  capabilities:
    - type: gpu
      available: true
  taints:
    - key: maintenance
      value: "true"
      effect: NoSchedule
  resourceFilter:
    resourceTypes: [deployments.apps, services, configmaps, secrets]
    namespaceSelector:
      matchLabels:
        tmc.kcp.io/sync: "true"
""",
    ("scheduling.kcp.io/v1alpha1", "Location"): """\
# The SyncTargets of one region, offered to Placements as a Location (kcp's compute workspace has one
# named "default" selecting every SyncTarget).
apiVersion: scheduling.kcp.io/v1alpha1
kind: Location
metadata:
  name: eu
  labels:
    region: eu
spec:
  resource:
    group: workload.kcp.io
    version: v1alpha1
    resource: synctargets
  description: Member clusters in eu-central-1
  availableSelectorLabels:
    - key: topology.kubernetes.io/zone
      values: [eu-central-1a, eu-central-1b]
      description: Availability zone of the member cluster
  instanceSelector:
    matchLabels:
      topology.kubernetes.io/region: eu-central-1
""",
    ("scheduling.kcp.io/v1alpha1", "Placement"): """\
# Place the namespaces labelled app=web on two SyncTargets of the "eu" Location, in different zones,
# dividing each Deployment's replicas by the capacity the targets report.
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata:
  name: web
spec:
  locationSelectors:
    - matchLabels:
        region: eu
  locationResource:
    group: workload.kcp.io
    version: v1alpha1
    resource: synctargets
  locationWorkspace: root
  namespaceSelector:
    matchLabels:
      app: web
  strategy: Spread
  numberOfTargets: 2
  replicaScheduling:
    type: Divided
    dynamicWeight: AvailableCapacity
  spreadConstraints:
    - topologyKey: topology.kubernetes.io/zone
      minGroups: 2
  tolerations:
    - key: maintenance
      operator: Exists
      effect: NoSchedule
""",
    ("tenancy.kcp.io/v1alpha1", "Workspace"): """\
# A child workspace of the current one (root:team-a when created in root), as `kubectl kcp ws create team-a`.
apiVersion: tenancy.kcp.io/v1alpha1
kind: Workspace
metadata:
  name: team-a
spec:
  type:
    name: universal
    path: root
""",
    ("tmc.kcp.io/v1alpha1", "CanaryDeployment"): """\
# Deployment web rolled out as a canary, first in the clusters labelled canary-wave=first, then (the gate passed)
# in the rest of the fleet: 20 % for a minute while its error rate is measured per cluster, then 50 %, then
# promoted (docs/canary.md; examples/canary/ for a runnable set).
apiVersion: tmc.kcp.io/v1alpha1
kind: CanaryDeployment
metadata:
  name: web
  namespace: default
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {name: web, port: 80}
  trafficRouting:
    istio:
      virtualService: {name: web}
  steps:
    - setWeight: 20
    - analysis:
        duration: 1m
        thresholds: [{metric: error-rate, operator: "<", value: 0.01}]
    - setWeight: 50
    - pause: {duration: 2m}
  clusters:
    syncTargetSelector: {matchLabels: {canary-wave: first}}
    gate: auto
  analysis:
    interval: 30s
    failureLimit: 1
    metrics:
      - name: error-rate
        successCondition: result < 0.05
        provider:
          prometheus:
            query: |
              sum by (cluster) (rate(istio_requests_total{cluster=~"{{ args.clusters }}",
                destination_workload="{{ args.canary }}", response_code=~"5.."}[1m]))
              / sum by (cluster) (rate(istio_requests_total{cluster=~"{{ args.clusters }}",
                destination_workload="{{ args.canary }}"}[1m]))
""",
    ("tmc.kcp.io/v1alpha1", "RollbackPolicy"): """\
# Roll the web Deployment back everywhere when a new revision is not available within 10 minutes on more than one
# cluster, or when its error ratio in Prometheus goes above 5 %.
apiVersion: tmc.kcp.io/v1alpha1
kind: RollbackPolicy
metadata:
  name: web
  namespace: default
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  progressDeadlineSeconds: 600
  maxUnavailableClusters: 1
  analysis:
    prometheus:
      query: >-
        sum(rate(istio_requests_total{destination_workload="web",response_code=~"5.."}[1m]))
        / sum(rate(istio_requests_total{destination_workload="web"}[1m]))
    failureThreshold: {operator: ">", value: 0.05}
    intervalSeconds: 30
""",
    ("tmc.kcp.io/v1alpha1", "WorkloadRevision"): """\
# Written by the hub's rollback controller, not by hand: revision 2 of Deployment web, as
# `kubectl get workloadrevision deployment-web-2 -o yaml` shows it (status left out).
apiVersion: tmc.kcp.io/v1alpha1
kind: WorkloadRevision
metadata:
  name: deployment-web-2
  namespace: default
  labels:
    rollback.tmc.kcp.io/workload-kind: deployment
    rollback.tmc.kcp.io/workload-name: web
    rollback.tmc.kcp.io/revision: "2"
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  revision: 2
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          envFrom: [{configMapRef: {name: web-config}}]
  configMaps:
    - {name: web-config, present: true, data: {greeting: hello}}
  author: {user: admin, fieldManager: kubectl-client-side-apply}
  changeCause: nginx 1.27
""",
}

_PLACEHOLDERS: dict[str, Any] = {"string": "example", "integer": 1, "number": 1, "boolean": False}


def _placeholder(type_text: str) -> Any:
    if type_text.startswith("[]"):
        return []
    if type_text.startswith("map[") or type_text == "object" or type_text[:1].isupper():
        return {}
    return _PLACEHOLDERS.get(type_text.split(" ", 1)[0], "example")


def skeleton(kind: Kind) -> str:
    """apiVersion, kind, a name and the required fields of spec (placeholders by type)."""
    metadata: dict[str, Any] = {"name": "example"}
    if kind.namespaced:
        metadata["namespace"] = "default"
    manifest: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata}
    spec = next((s for s in kind.sections if s.title == f"{kind.kind}.spec"), None)
    if spec is not None:
        manifest["spec"] = {f.name: _placeholder(f.type.text) for f in spec.fields if f.required}
    return yaml.safe_dump(manifest, sort_keys=False)


def example_for(kind: Kind) -> tuple[str, bool]:
    """(manifest YAML, hand-written or not)."""
    written = EXAMPLES.get((kind.api_version, kind.kind))
    return (written, True) if written is not None else (skeleton(kind), False)
