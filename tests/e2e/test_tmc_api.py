"""SyncTarget, Location and Placement served by a real hub: kcp v0.11 manifests, tables, explain, validation."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import yaml

import tmc.registry.admission
from tests.e2e.conftest import Workspace
from tests.e2e.harness import Hub, Kubectl, wait_until
from tmc.api.workload import SYNC_TARGET_KEY_LABEL
from tmc.protocol.keys import sync_target_key

# Written for kcp v0.11 (what `kubectl kcp workload sync` and `kubectl kcp bind compute` create, and a compute
# workspace's Location); applied byte for byte.
KCP_SYNC_TARGET = """\
apiVersion: workload.kcp.io/v1alpha1
kind: SyncTarget
metadata:
  name: us-west1
  labels:
    topology.kubernetes.io/region: us-west1
    topology.kubernetes.io/zone: us-west1-a
spec:
  unschedulable: false
  supportedAPIExports:
  - export: kubernetes
    path: root:compute
  cells:
    rack: r1
"""

KCP_LOCATION = """\
apiVersion: scheduling.kcp.io/v1alpha1
kind: Location
metadata:
  name: default
  labels:
    region: us-west1
spec:
  description: all sync targets of this workspace
  resource:
    group: workload.kcp.io
    version: v1alpha1
    resource: synctargets
  instanceSelector: {}
  availableSelectorLabels:
  - key: region
    values: [us-west1, us-east1]
    description: cloud region
"""

KCP_BIND_COMPUTE_PLACEMENT = """\
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata:
  name: placement-1pfxsevk
spec:
  locationResource:
    group: workload.kcp.io
    resource: synctargets
    version: v1alpha1
  locationSelectors:
  - {}
  locationWorkspace: root:compute
  namespaceSelector: {}
"""

# A kcp v0.11 SyncTarget status as the heartbeat controller, the API importer and the TMC syncer write it.
SYNC_TARGET_STATUS: dict[str, Any] = {
    "conditions": [
        {"type": "HeartbeatHealthy", "status": "True", "lastTransitionTime": "2023-02-01T10:00:00Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2023-02-01T10:00:00Z"},
        {
            "type": "SyncerAuthorized",
            "status": "False",
            "severity": "Error",
            "reason": "SyncerUnauthorized",
            "message": "SSAR check failed for gvrs: deployments.apps",
            "lastTransitionTime": "2023-02-01T10:00:00Z",
        },
    ],
    "lastSyncerHeartbeatTime": "2023-02-01T10:05:00Z",
    "syncedResources": [
        {"group": "apps", "resource": "deployments", "versions": ["v1"], "identityHash": "", "state": "Accepted"},
        {"resource": "services", "versions": ["v1"], "state": "Pending"},
    ],
    "virtualWorkspaces": [
        {
            "syncerURL": "https://kcp.example:6443/services/syncer/root:compute/us-west1",
            "upsyncerURL": "https://kcp.example:6443/services/upsyncer/root:compute/us-west1",
        }
    ],
    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "330"},
    "allocatable": {"cpu": "15500m", "memory": "60Gi", "pods": 330},
    "allocated": {"cpu": "2500m", "memory": "6Gi", "pods": "12"},
    "syncerStatus": {"syncedResources": 12, "pendingResources": 0, "failedResources": 1},
}

_VALIDATION_WIRED = "validate_tmc" in inspect.getsource(tmc.registry.admission)


def _apply_text(kubectl: Kubectl, text: str, *extra: str) -> Any:
    return kubectl.run("apply", "-f", "-", *extra, input=text, check=False)


def test_api_resources_list_the_tmc_kinds(kubectl: Kubectl) -> None:
    rows = {tuple(line.split()) for line in kubectl.run("api-resources").stdout.splitlines()[1:]}
    assert ("synctargets", "st", "workload.kcp.io/v1alpha1", "false", "SyncTarget") in rows
    assert ("locations", "scheduling.kcp.io/v1alpha1", "false", "Location") in rows
    assert ("placements", "scheduling.kcp.io/v1alpha1", "false", "Placement") in rows
    kcp = kubectl.run("api-resources", "--categories", "kcp", "-o", "name").stdout.split()
    assert {"synctargets.workload.kcp.io", "locations.scheduling.kcp.io", "placements.scheduling.kcp.io"} <= set(kcp)


def test_kcp_manifests_apply_unchanged(hub: Hub, make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-api")
    for text in (KCP_SYNC_TARGET, KCP_LOCATION, KCP_BIND_COMPUTE_PLACEMENT):
        result = _apply_text(ws.kubectl, text)
        assert result.returncode == 0, result.stderr
        assert "created" in result.stdout and not result.stderr, result.stdout + result.stderr
    for text, resource in (
        (KCP_SYNC_TARGET, "synctarget"),
        (KCP_LOCATION, "location"),
        (KCP_BIND_COMPUTE_PLACEMENT, "placement"),
    ):
        sent = yaml.safe_load(text)
        stored = ws.kubectl.json("get", resource, sent["metadata"]["name"])
        assert stored["spec"] == sent["spec"], resource
        # Controllers may add their own labels (the SyncTarget's key); the user's labels are kept as sent.
        stored_labels = stored["metadata"].get("labels") or {}
        for k, v in (sent["metadata"].get("labels") or {}).items():
            assert stored_labels.get(k) == v, resource

    # A second apply computes a merge patch from the last-applied annotation.
    changed = KCP_SYNC_TARGET.replace("unschedulable: false", "unschedulable: true")
    result = _apply_text(ws.kubectl, changed)
    assert result.returncode == 0 and "configured" in result.stdout, result.stderr
    assert ws.kubectl.json("get", "st", "us-west1")["spec"]["unschedulable"] is True

    # The kinds are per workspace: root does not see these objects.
    status, _ = hub.request("GET", "/clusters/root/apis/workload.kcp.io/v1alpha1/synctargets/us-west1")
    assert status == 404


def test_synctarget_status_and_printer_columns(hub: Hub, make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-cols")
    assert _apply_text(ws.kubectl, KCP_SYNC_TARGET).returncode == 0
    base = f"/clusters/root:{ws.name}/apis/workload.kcp.io/v1alpha1/synctargets/us-west1"
    # The heartbeat controller labels each SyncTarget with its kcp key.
    key = sync_target_key(f"root:{ws.name}", "us-west1")

    def labelled() -> Any:
        status, current = hub.request("GET", base)
        return status == 200 and current["metadata"].get("labels", {}).get(SYNC_TARGET_KEY_LABEL) == key and current

    wait_until(labelled, what="the key label on the SyncTarget")

    def write_status() -> Any:
        # Controllers write this status too; retry on a conflict with a fresh resourceVersion.
        _, current = hub.request("GET", base)
        status, updated = hub.request(
            "PUT", base + "/status?fieldValidation=Strict", {**current, "status": SYNC_TARGET_STATUS}
        )
        assert status in (200, 409), updated
        return status == 200 and updated

    updated = wait_until(write_status, what="a status write")
    assert updated["status"] == SYNC_TARGET_STATUS

    lines = ws.kubectl.run("get", "synctargets").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "REGION", "ZONE", "HEALTH", "SYNCED", "KEY", "AGE"]
    row = lines[1].split()
    # READY and HEALTH are the heartbeat controller's verdicts on the 2023 heartbeat (stale), so they are checked
    # once it has looked at the new status.
    assert [row[0], *row[2:4], *row[5:7]] == ["us-west1", "us-west1", "us-west1-a", "12", key]
    wait_until(
        lambda: ws.kubectl.run("get", "synctargets").stdout.splitlines()[1].split()[4] == "HeartbeatStale",
        what="HEALTH to say HeartbeatStale",
    )
    # The category lists every TMC kind at once.
    assert "synctarget.workload.kcp.io/us-west1" in ws.kubectl.run("get", "kcp", "-o", "name").stdout.split()

    # A status write with an unknown field is rejected in strict mode, and the main resource ignores status.
    unconditional = {**updated, "metadata": {k: v for k, v in updated["metadata"].items() if k != "resourceVersion"}}
    bad = {**unconditional, "status": {**SYNC_TARGET_STATUS, "heartbeat": "now"}}
    status, body = hub.request("PUT", base + "/status?fieldValidation=Strict", bad)
    assert status == 400 and 'unknown field "status.heartbeat"' in body["message"], body


def test_location_and_placement_columns(make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-sched")
    assert _apply_text(ws.kubectl, KCP_LOCATION).returncode == 0
    assert _apply_text(ws.kubectl, KCP_BIND_COMPUTE_PLACEMENT).returncode == 0
    header = ws.kubectl.run("get", "locations").stdout.splitlines()[0].split()
    assert header == ["NAME", "RESOURCE", "AVAILABLE", "INSTANCES", "AGE"]
    row = ws.kubectl.run("get", "locations", "default", "--no-headers").stdout.split()
    assert row[:2] == ["default", "synctargets"]
    header = ws.kubectl.run("get", "placements").stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "STRATEGY", "AGE"]
    wide = ws.kubectl.run("get", "placements", "-o", "wide").stdout.splitlines()[0].split()
    assert wide == ["NAME", "PHASE", "STRATEGY", "LOCATION", "AGE"]


def test_tmc_placement_fields_round_trip(make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-fields")
    placement = {
        "apiVersion": "scheduling.kcp.io/v1alpha1",
        "kind": "Placement",
        "metadata": {"name": "web"},
        "spec": {
            "locationSelectors": [{}],
            "locationResource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"},
            "namespaceSelector": {"matchLabels": {"app": "web"}},
            "locationWorkspace": "root",
            "workloadSelector": {},
            "syncTargetSelector": {"matchLabels": {"topology.kubernetes.io/region": "eu-central-1"}},
            "strategy": "Spread",
            "numberOfTargets": 3,
            "replicaScheduling": {
                "type": "Divided",
                "weights": [
                    {
                        "syncTargetSelector": {"matchLabels": {"topology.kubernetes.io/region": "eu-central-1"}},
                        "weight": 2,
                    }
                ],
            },
            "spreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone", "minGroups": 2, "maxGroups": 3}],
            "capabilityRequirements": [{"type": "gpu", "required": True}],
            "tolerations": [{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
    ws.kubectl.apply(placement)
    assert ws.kubectl.json("get", "placement", "web")["spec"] == placement["spec"]
    row = ws.kubectl.run("get", "placement", "web", "--no-headers").stdout.split()
    assert row[:3] == ["web", "Pending", "Spread"]  # no SyncTarget in this workspace: nothing to bind to


def test_explain_uses_the_published_schema(kubectl: Kubectl) -> None:
    spec = kubectl.run("explain", "synctarget.spec").stdout
    for field in ("unschedulable", "evictAfter", "supportedAPIExports", "taints", "capabilities", "resourceFilter"):
        assert field in spec, spec
    effect = kubectl.run("explain", "synctargets.spec.taints.effect").stdout
    assert "NoSchedule" in effect and "NoExecute" in effect, effect
    placement = kubectl.run("explain", "placement.spec").stdout
    assert "locationSelectors" in placement and "replicaScheduling" in placement and "<[]LabelSelector>" in placement
    status = kubectl.run("explain", "placement.status.decisions").stdout
    assert "syncTarget" in status and "replicas" in status, status


def test_unknown_field_is_rejected_naming_it(make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-strict")
    typo = KCP_BIND_COMPUTE_PLACEMENT.replace("namespaceSelector: {}", "namespaceSelecter: {}")
    result = _apply_text(ws.kubectl, typo)
    assert result.returncode != 0
    assert 'unknown field "spec.namespaceSelecter"' in result.stderr, result.stderr
    assert ws.kubectl.run("get", "placements", "-o", "name").stdout.strip() == ""
    # A wrongly typed value is a decode error (400) in every mode.
    wrong = KCP_SYNC_TARGET.replace("unschedulable: false", "unschedulable: sometimes")
    result = _apply_text(ws.kubectl, wrong, "--validate=false")
    assert result.returncode != 0 and "spec.unschedulable" in result.stderr, result.stderr


@pytest.mark.skipif(
    not _VALIDATION_WIRED, reason="tmc.registry.admission.admit does not call tmc.api.validation.validate_tmc yet"
)
def test_invalid_values_are_422(hub: Hub, make_workspace: Callable[[str], Workspace]) -> None:
    ws = make_workspace("tmc-invalid")
    path = f"/clusters/root:{ws.name}/apis/scheduling.kcp.io/v1alpha1/placements"
    placement = yaml.safe_load(KCP_BIND_COMPUTE_PLACEMENT)
    placement["spec"]["strategy"] = "Random"
    placement["spec"]["numberOfTargets"] = 0
    status, body = hub.request("POST", path, placement)
    assert status == 422, body
    assert body["reason"] == "Invalid" and body["details"]["kind"] == "Placement"
    causes = {c["field"]: c for c in body["details"]["causes"]}
    assert causes["spec.strategy"]["reason"] == "FieldValueNotSupported"
    assert '"RoundRobin", "Spread", "Affinity", "Binpack"' in causes["spec.strategy"]["message"]
    assert causes["spec.numberOfTargets"]["reason"] == "FieldValueInvalid"

    taint = KCP_SYNC_TARGET.replace("  cells:", "  taints:\n  - {key: maintenance, effect: NoWay}\n  cells:")
    result = _apply_text(ws.kubectl, taint)
    assert result.returncode != 0 and 'spec.taints[0].effect: Unsupported value: "NoWay"' in result.stderr
