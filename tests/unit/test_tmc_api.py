"""TMC kinds: kcp's identity formulas (against kcp's test vectors), the SyncTarget/Location/Placement schemas,
their tables and OpenAPI, and the value rules of tmc.api.validation."""

from __future__ import annotations

import copy
import datetime
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tmc.api import scheduling, workload
from tmc.api.scheduling import LOCATIONS, PLACEMENTS
from tmc.api.validation import validate_tmc
from tmc.api.workload import SYNC_TARGETS
from tmc.apimachinery import errors
from tmc.apimachinery.jsonpath import jsonpath
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.apimachinery.tables import to_table
from tmc.apimachinery.validation import check_fields
from tmc.apiserver import discovery, openapi
from tmc.protocol import keys
from tmc.registry.resources import STATIC_RESOURCES

Obj = dict[str, Any]
NOW = datetime.datetime(2023, 2, 1, 12, 0, tzinfo=datetime.UTC)

# --- keys ---------------------------------------------------------------------------------------------------------


def test_sync_target_key_matches_kcp_vectors() -> None:
    assert keys.sync_target_key("", "c1") == "aQtdeEWVcqU7h7AKnYMm3KRQ96U4oU2W04yeOa"
    assert keys.sync_target_key("", "c2") == "aPkhvUbGK0xoZIjMnM2pA0AuV1g7i4tBwxu5m4"


def test_sync_target_key_hashes_cluster_colon_name() -> None:
    digest = hashlib.sha224(b"root:org:ws:us-west1").digest()
    key = keys.sync_target_key("root:org:ws", "us-west1")
    assert key == keys.base62(digest)
    assert int.from_bytes(digest, "big") == _from_base62(key)
    # v0.7-v0.10 hashed without the colon; v0.11 keys differ from those.
    assert key != keys.base62(hashlib.sha224(b"root:org:wsus-west1").digest())


def _from_base62(text: str) -> int:
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    n = 0
    for ch in text:
        n = n * 62 + digits.index(ch)
    return n


def test_base62_and_base36_follow_go() -> None:
    assert keys.base62(b"") == keys.base62(b"\0") == "0"
    assert keys.base62(bytes([61])) == "Z" and keys.base62(bytes([62])) == "10"
    # martinlindhe/base36: digits of the integer, then one "0" per leading zero byte.
    assert keys.base36_lower(b"\x00\x00") == "00"
    assert keys.base36_lower(b"\x00\x01") == "01"
    assert keys.base36_lower(b"\x00\x00\x24") == "0010"
    assert keys.base36_lower(bytes([35])) == "z"


LOCATOR = keys.namespace_locator("root:org:ws", "us-west1", "syncTargetUID", "root:org:ws", "test")


def test_downstream_namespace_matches_kcp_vector() -> None:
    assert keys.locator_json(LOCATOR) == (
        '{"syncTarget":{"cluster":"root:org:ws","name":"us-west1","uid":"syncTargetUID"},'
        '"cluster":"root:org:ws","namespace":"test"}'
    )
    assert keys.downstream_namespace(LOCATOR) == "kcp-33jbiactwhg0"
    # A locator decoded from an annotation may come in any key order; the hash must not change.
    shuffled = {
        "namespace": "test",
        "cluster": "root:org:ws",
        "syncTarget": dict(reversed(LOCATOR["syncTarget"].items())),
    }
    assert keys.downstream_namespace(shuffled) == "kcp-33jbiactwhg0"


def test_tenant_id_ignores_the_namespace() -> None:
    other = keys.namespace_locator("root:org:ws", "us-west1", "syncTargetUID", "root:org:ws", "other")
    cluster_wide = {**LOCATOR, "namespace": ""}
    expected = keys.base62(hashlib.sha224(keys.go_json(cluster_wide).encode()).digest())
    assert keys.tenant_id(LOCATOR) == keys.tenant_id(other) == expected
    assert '"namespace":""' in keys.go_json(cluster_wide)
    elsewhere = keys.namespace_locator("root:org:ws", "us-west1", "syncTargetUID", "root:org:other", "test")
    assert keys.tenant_id(elsewhere) != keys.tenant_id(LOCATOR)


def test_syncer_and_dns_ids_match_kcp_vector() -> None:
    assert keys.dns_id("us-west1", "syncTargetUID", "root:org:ws") == "kcp-dns-us-west1-1nuzj7pw-2fcy2vpi"
    assert keys.syncer_id("us-west1", "syncTargetUID") == "kcp-syncer-us-west1-1nuzj7pw"


def test_go_json_escapes_html_like_encoding_json() -> None:
    assert keys.go_json({"a": "<&>", "b": "\u2028"}) == '{"a":"\\u003c\\u0026\\u003e","b":"\\u2028"}'
    assert keys.go_json({"a": "é"}) == '{"a":"é"}'


def test_per_target_names() -> None:
    key = keys.sync_target_key("root", "eu-1")
    assert workload.state_label(key) == f"state.workload.kcp.io/{key}"
    assert workload.syncer_finalizer(key) == f"workload.kcp.io/syncer-{key}"
    assert workload.deletion_annotation(key) == f"deletion.internal.workload.kcp.io/{key}"
    assert workload.spec_diff_annotation(key) == f"experimental.spec-diff.workload.kcp.io/{key}"
    assert workload.status_diff_annotation(key) == f"diff.syncer.internal.kcp.io/{key}"
    assert workload.soft_finalizers_annotation(key) == f"finalizers.workload.kcp.io/{key}"
    for name in (workload.state_label(key), workload.syncer_finalizer(key), workload.status_diff_annotation(key)):
        assert workload.target_key_of(name) == key
    assert workload.target_key_of(workload.SYNC_TARGET_KEY_LABEL) is None
    assert workload.target_key_of(workload.STATE_LABEL_PREFIX) is None


# --- manifests ----------------------------------------------------------------------------------------------------

# What `kubectl kcp bind compute root:compute` creates in kcp v0.11.
KCP_PLACEMENT = """
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: placement-1pfxsevk}
spec:
  locationResource: {group: workload.kcp.io, resource: synctargets, version: v1alpha1}
  locationSelectors: [{}]
  locationWorkspace: root:compute
  namespaceSelector: {}
"""

KCP_LOCATION = """
apiVersion: scheduling.kcp.io/v1alpha1
kind: Location
metadata: {name: default, labels: {region: us-west1}}
spec:
  resource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  instanceSelector: {}
  availableSelectorLabels: [{key: region, values: [us-west1], description: cloud region}]
  description: the compute service's targets
status: {instances: 2, availableInstances: 1}
"""

# A SyncTarget using every field TMC adds to kcp's, status included.
DESIGN_SYNC_TARGET = """
apiVersion: workload.kcp.io/v1alpha1
kind: SyncTarget
metadata:
  name: eu-1
  labels: {topology.kubernetes.io/region: eu-central-1, topology.kubernetes.io/zone: eu-central-1a}
spec:
  unschedulable: false
  evictAfter: null
  supportedAPIExports: [{export: kubernetes}]
  cells: {rack: r1}
  capabilities: [{type: gpu, available: true}]
  taints: [{key: maintenance, value: "true", effect: NoSchedule}]
  resourceFilter:
    resourceTypes: [deployments.apps, services, configmaps, secrets]
    namespaceSelector: {}
    labelSelector: {}
    annotationSelector: {}
status:
  conditions:
  - {type: Ready, status: "True", lastTransitionTime: "2023-02-01T10:00:00Z"}
  - {type: HeartbeatHealthy, status: "False", severity: Warning, reason: ErrorHeartbeat, message: No heartbeat yet seen,
     lastTransitionTime: "2023-02-01T10:00:00Z"}
  lastSyncerHeartbeatTime: "2023-02-01T10:05:00Z"
  capacity: {cpu: "16", memory: 64Gi, pods: "330"}
  allocatable: {cpu: 15500m, memory: 60Gi, pods: 330}
  allocated: {cpu: 2500m, memory: 6Gi, pods: "12"}
  syncerStatus: {syncedResources: 12, pendingResources: 0, failedResources: 0}
  syncedResources:
  - {group: apps, resource: deployments, versions: [v1], identityHash: "", state: Accepted}
  virtualWorkspaces: [{syncerURL: "https://hub/services/syncer/root/eu-1", upsyncerURL: "https://hub/services/upsyncer"}]
"""

DESIGN_PLACEMENT = """
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: web}
spec:
  locationSelectors: [{}]
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  namespaceSelector: {matchLabels: {app: web}}
  locationWorkspace: root
  workloadSelector: {}
  syncTargetSelector: {matchLabels: {topology.kubernetes.io/region: eu-central-1}}
  strategy: Spread
  numberOfTargets: 3
  replicaScheduling:
    type: Divided
    weights:
    - {syncTargetSelector: {matchLabels: {topology.kubernetes.io/region: eu-central-1}}, weight: 2}
  spreadConstraints: [{topologyKey: topology.kubernetes.io/zone, minGroups: 2, maxGroups: 3}]
  capabilityRequirements: [{type: gpu, required: true}]
  tolerations: [{key: maintenance, operator: Exists, effect: NoSchedule}]
status:
  phase: Bound
  selectedLocation: {path: root, locationName: default}
  decisions:
  - {syncTarget: {workspace: root, name: eu-1}, key: aQtdeEWVcqU7h7AKnYMm3KRQ96U4oU2W04yeOa, score: 87, weight: 2,
     replicas: 4}
  conditions: [{type: Ready, status: "True"}, {type: Scheduled, status: "True"}]
"""

CASES: list[tuple[ResourceInfo, str]] = [
    (SYNC_TARGETS, DESIGN_SYNC_TARGET),
    (LOCATIONS, KCP_LOCATION),
    (PLACEMENTS, KCP_PLACEMENT),
    (PLACEMENTS, DESIGN_PLACEMENT),
]


def load(text: str) -> Obj:
    obj: Obj = yaml.safe_load(text)
    return obj


# --- registration and schemas -----------------------------------------------------------------------------------


def test_kinds_are_served_statically() -> None:
    for info in (SYNC_TARGETS, LOCATIONS, PLACEMENTS):
        assert any(r is info for r in STATIC_RESOURCES), info.kind
    assert SYNC_TARGETS.short_names == ("st",)
    for info, plural in ((SYNC_TARGETS, "synctargets"), (LOCATIONS, "locations"), (PLACEMENTS, "placements")):
        assert info.plural == plural and not info.namespaced and not info.crd
        assert info.subresources == ("status",) and info.categories == ("kcp",)
        assert info.schema is not None
        gvk = info.schema.raw["x-kubernetes-group-version-kind"]
        assert gvk == [{"group": info.group, "version": "v1alpha1", "kind": info.kind}]
    assert (SYNC_TARGETS.group, LOCATIONS.group) == ("workload.kcp.io", "scheduling.kcp.io")


@pytest.mark.parametrize(("info", "text"), CASES, ids=lambda v: getattr(v, "kind", ""))
def test_manifests_pass_strict_decoding_and_validation(info: ResourceInfo, text: str) -> None:
    obj = load(text)
    assert info.schema is not None
    sent = copy.deepcopy(obj)
    assert check_fields(obj, info.schema, "Strict") == []
    assert obj == sent
    assert validate_tmc(info, obj) == []


@pytest.mark.parametrize(
    ("info", "text", "mutate", "field"),
    [
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"].update(evictAfterr="x"), "spec.evictAfterr"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["taints"][0].update(time="x"), "spec.taints[0].time"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["syncerStatus"].update(x=1), "status.syncerStatus.x"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["metadata"].update(labelz={}), "metadata.labelz"),
        (LOCATIONS, KCP_LOCATION, lambda o: o["spec"]["resource"].update(kind="x"), "spec.resource.kind"),
        (
            PLACEMENTS,
            DESIGN_PLACEMENT,
            lambda o: o["spec"]["replicaScheduling"].update(mode=1),
            "spec.replicaScheduling.mode",
        ),
        (
            PLACEMENTS,
            DESIGN_PLACEMENT,
            lambda o: o["spec"]["namespaceSelector"].update(x=1),
            "spec.namespaceSelector.x",
        ),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o.update(extra=True), "extra"),
    ],
)
def test_unknown_fields_are_named(info: ResourceInfo, text: str, mutate: Callable[[Obj], None], field: str) -> None:
    obj = load(text)
    mutate(obj)
    assert info.schema is not None
    with pytest.raises(errors.StatusError) as e:
        check_fields(copy.deepcopy(obj), info.schema, "Strict")
    assert e.value.code == 400 and f'strict decoding error: unknown field "{field}"' in e.value.message
    # Warn mode drops the field and says so.
    assert check_fields(obj, info.schema, "Warn") == [f'unknown field "{field}"']


@pytest.mark.parametrize(
    ("mutate", "text"),
    [
        (lambda o: o["status"]["capacity"].update(cpu="lots"), "quantities must match"),
        (lambda o: o["spec"].update(unschedulable="yes"), "cannot unmarshal string"),
        (lambda o: o["status"].update(lastSyncerHeartbeatTime="yesterday"), 'parsing time "yesterday"'),
        (lambda o: o["spec"].update(taints={"key": "a"}), "cannot unmarshal object"),
    ],
)
def test_wrong_types_are_decode_errors(mutate: Callable[[Obj], None], text: str) -> None:
    obj = load(DESIGN_SYNC_TARGET)
    mutate(obj)
    assert SYNC_TARGETS.schema is not None
    with pytest.raises(errors.StatusError) as e:
        check_fields(obj, SYNC_TARGETS.schema, "Ignore")
    assert e.value.code == 400 and text in e.value.message


# --- tables, JSONPath, OpenAPI, discovery -------------------------------------------------------------------------


def test_bracket_jsonpath_reads_dotted_label_keys() -> None:
    obj = load(DESIGN_SYNC_TARGET)
    assert jsonpath(".metadata.labels['topology.kubernetes.io/region']", obj) == ["eu-central-1"]
    # The escaped-dot form is split on every dot, which is why the columns use brackets.
    assert jsonpath(".metadata.labels.topology\\.kubernetes\\.io/region", obj) == []


def _cells(info: ResourceInfo, obj: Obj) -> tuple[list[str], list[Any]]:
    table = to_table(info, [obj], list_meta={}, now=NOW)
    return [c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"]


def test_sync_target_columns() -> None:
    obj = load(DESIGN_SYNC_TARGET)
    obj["metadata"]["creationTimestamp"] = "2023-02-01T11:00:00Z"
    obj["metadata"]["labels"][workload.SYNC_TARGET_KEY_LABEL] = keys.sync_target_key("root", "eu-1")
    names, cells = _cells(SYNC_TARGETS, obj)
    assert names == ["Name", "Ready", "Region", "Zone", "Health", "Synced", "Key", "Age"]
    key = keys.sync_target_key("root", "eu-1")
    assert cells == ["eu-1", "True", "eu-central-1", "eu-central-1a", None, 12, key, "60m"]
    # HEALTH is the Healthy condition's reason.
    stale = {"type": "Healthy", "status": "False", "reason": "HeartbeatStale", "message": "no heartbeat since ..."}
    obj["status"]["conditions"].append(stale)
    assert _cells(SYNC_TARGETS, obj)[1][4] == "HeartbeatStale"
    obj.pop("status")
    assert _cells(SYNC_TARGETS, obj)[1][1] is None and _cells(SYNC_TARGETS, obj)[1][5] is None


def test_location_and_placement_columns() -> None:
    names, cells = _cells(LOCATIONS, load(KCP_LOCATION))
    assert names == ["Name", "Resource", "Available", "Instances", "Age"]
    assert cells[:4] == ["default", "synctargets", 1, 2]
    names, cells = _cells(PLACEMENTS, load(DESIGN_PLACEMENT))
    assert names == ["Name", "Phase", "Strategy", "Location", "Age"]
    assert cells[:4] == ["web", "Bound", "Spread", "default"]
    columns = to_table(PLACEMENTS, [], list_meta={})["columnDefinitions"]
    assert [c["priority"] for c in columns] == [0, 0, 0, 1, 0]


def test_openapi_documents() -> None:
    doc = openapi.group_version_document(STATIC_RESOURCES, "apis/scheduling.kcp.io/v1alpha1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    placement = schemas["io.kcp.scheduling.v1alpha1.Placement"]
    spec = placement["properties"]["spec"]["properties"]
    assert spec["strategy"]["enum"] == ["RoundRobin", "Spread", "Affinity", "Binpack"]
    assert spec["numberOfTargets"]["minimum"] == 1
    assert (
        spec["namespaceSelector"]["$ref"] == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
    )
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector" in schemas
    assert "io.kcp.scheduling.v1alpha1.Location" in schemas and "io.kcp.scheduling.v1alpha1.PlacementList" in schemas
    doc = openapi.group_version_document(STATIC_RESOURCES, "apis/workload.kcp.io/v1alpha1")
    assert doc is not None
    status = doc["components"]["schemas"]["io.kcp.workload.v1alpha1.SyncTarget"]["properties"]["status"]
    capacity = status["properties"]["capacity"]["additionalProperties"]
    assert capacity == {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}
    assert set(openapi.index(STATIC_RESOURCES)["paths"]) >= {
        "apis/workload.kcp.io/v1alpha1",
        "apis/scheduling.kcp.io/v1alpha1",
    }


def test_discovery_lists_the_groups() -> None:
    versions = dict(discovery.group_versions(list(STATIC_RESOURCES)))
    assert versions["workload.kcp.io"] == ["v1alpha1"] and versions["scheduling.kcp.io"] == ["v1alpha1"]


# --- value validation ---------------------------------------------------------------------------------------------


BAD_SELECTOR = {"matchExpressions": [{"key": "a", "operator": "Is"}]}


def _causes(info: ResourceInfo, text: str, mutate: Callable[[Obj], None]) -> list[dict[str, str]]:
    obj = load(text)
    mutate(obj)
    return validate_tmc(info, obj)


@pytest.mark.parametrize(
    ("info", "text", "mutate", "field", "cause_type"),
    [
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["taints"][0].update(effect="PreferNoSchedule"),
         "spec.taints[0].effect", "FieldValueNotSupported"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["taints"][0].pop("effect"),
         "spec.taints[0].effect", "FieldValueRequired"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["taints"][0].update(key="bad key"),
         "spec.taints[0].key", "FieldValueInvalid"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["taints"].append(dict(o["spec"]["taints"][0])),
         "spec.taints[1]", "FieldValueDuplicate"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["capabilities"].append({"type": "gpu"}),
         "spec.capabilities[1].type", "FieldValueDuplicate"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["spec"]["supportedAPIExports"][0].pop("export"),
         "spec.supportedAPIExports[0].export", "FieldValueRequired"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET,
         lambda o: o["spec"]["resourceFilter"].update(labelSelector=BAD_SELECTOR),
         "spec.resourceFilter.labelSelector.matchExpressions[0].operator", "FieldValueInvalid"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["syncedResources"][0].update(state="Maybe"),
         "status.syncedResources[0].state", "FieldValueNotSupported"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["syncedResources"][0].update(versions=[]),
         "status.syncedResources[0].versions", "FieldValueRequired"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["syncerStatus"].update(failedResources=-1),
         "status.syncerStatus.failedResources", "FieldValueInvalid"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["conditions"][0].update(status="Yes"),
         "status.conditions[0].status", "FieldValueNotSupported"),
        (SYNC_TARGETS, DESIGN_SYNC_TARGET, lambda o: o["status"]["conditions"][1].update(type="Ready"),
         "status.conditions[1].type", "FieldValueDuplicate"),
        (LOCATIONS, KCP_LOCATION, lambda o: o["spec"]["resource"].update(resource="clusters"),
         "spec.resource.resource", "FieldValueNotSupported"),
        (LOCATIONS, KCP_LOCATION, lambda o: o["spec"].pop("resource"), "spec.resource", "FieldValueRequired"),
        (LOCATIONS, KCP_LOCATION, lambda o: o["spec"]["availableSelectorLabels"][0].update(values=[]),
         "spec.availableSelectorLabels[0].values", "FieldValueRequired"),
        (LOCATIONS, KCP_LOCATION, lambda o: o["status"].update(instances=-2), "status.instances", "FieldValueInvalid"),
        (PLACEMENTS, KCP_PLACEMENT, lambda o: o["spec"].pop("locationResource"),
         "spec.locationResource", "FieldValueRequired"),
        (PLACEMENTS, KCP_PLACEMENT, lambda o: o["spec"].update(locationWorkspace="Root/Compute"),
         "spec.locationWorkspace", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"].update(strategy="Random"),
         "spec.strategy", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"].update(numberOfTargets=0),
         "spec.numberOfTargets", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["replicaScheduling"].update(type="Split"),
         "spec.replicaScheduling.type", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["replicaScheduling"]["weights"][0].update(weight=-1),
         "spec.replicaScheduling.weights[0].weight", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["replicaScheduling"].update(type="Duplicated"),
         "spec.replicaScheduling.weights", "FieldValueForbidden"),
        (PLACEMENTS, DESIGN_PLACEMENT,
         lambda o: o["spec"]["replicaScheduling"].update(dynamicWeight="AvailableCapacity"),
         "spec.replicaScheduling.dynamicWeight", "FieldValueForbidden"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["replicaScheduling"].update(dynamicWeight="Random"),
         "spec.replicaScheduling.dynamicWeight", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["spreadConstraints"][0].update(maxGroups=1),
         "spec.spreadConstraints[0].maxGroups", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["spreadConstraints"][0].pop("topologyKey"),
         "spec.spreadConstraints[0].topologyKey", "FieldValueRequired"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["capabilityRequirements"][0].pop("type"),
         "spec.capabilityRequirements[0].type", "FieldValueRequired"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["tolerations"][0].update(operator="In"),
         "spec.tolerations[0].operator", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["tolerations"][0].update(value="x"),
         "spec.tolerations[0].operator", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["tolerations"][0].update(key="", operator="Equal"),
         "spec.tolerations[0].operator", "FieldValueInvalid"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"]["tolerations"][0].update(effect="NoRun"),
         "spec.tolerations[0].effect", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["status"].update(phase="Scheduled"),
         "status.phase", "FieldValueNotSupported"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["status"]["decisions"][0]["syncTarget"].pop("name"),
         "status.decisions[0].syncTarget.name", "FieldValueRequired"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["status"]["decisions"].append(dict(o["status"]["decisions"][0])),
         "status.decisions[1].syncTarget", "FieldValueDuplicate"),
        (PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["status"]["decisions"][0].update(replicas=-1),
         "status.decisions[0].replicas", "FieldValueInvalid"),
    ],
)  # fmt: skip
def test_invalid_values(
    info: ResourceInfo, text: str, mutate: Callable[[Obj], None], field: str, cause_type: str
) -> None:
    causes = _causes(info, text, mutate)
    assert {"field": field, "type": cause_type} in [{"field": c["field"], "type": c["type"]} for c in causes], causes


def test_enum_message_lists_the_supported_values() -> None:
    [cause] = _causes(PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"].update(strategy="Random"))
    assert cause["field"] == "spec.strategy"
    assert cause["message"] == (
        'Unsupported value: "Random": supported values: "RoundRobin", "Spread", "Affinity", "Binpack"'
    )


def test_absent_optional_fields_are_valid() -> None:
    for info in (SYNC_TARGETS, PLACEMENTS):
        bare: Obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "x"}}
        if info is PLACEMENTS:
            bare["spec"] = {"locationResource": dict(scheduling.LOCATION_RESOURCE)}
        assert validate_tmc(info, bare) == []
    # An empty toleration key with Exists tolerates every taint, as on Pods.
    causes = _causes(PLACEMENTS, DESIGN_PLACEMENT, lambda o: o["spec"].update(tolerations=[{"operator": "Exists"}]))
    assert causes == []


def test_other_kinds_are_left_alone() -> None:
    deployments = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")
    assert validate_tmc(deployments, {"spec": {"strategy": "Random"}}) == []
