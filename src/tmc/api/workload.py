"""workload.kcp.io/v1alpha1 SyncTarget, and the label/annotation/finalizer protocol that assigns objects to targets.

The schema keeps kcp v0.11's field names and meanings
(https://github.com/kcp-dev/kcp/blob/v0.11.0/pkg/apis/workload/v1alpha1/synctarget_types.go) so SyncTargets written for
kcp apply unchanged, and adds TMC's fields (docs/placement.md): capabilities, taints, a resource filter, allocated
resources and syncer counters. Objects with `properties` are closed, so strict field validation names unknown fields;
value rules (enums, required keys) live in `tmc.api.validation` because the decoder only checks JSON types.

The schema-building helpers at the top are shared with `tmc.api.scheduling`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.schemas import Schema, builtin_definitions

GROUP = "workload.kcp.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# --- labels, annotations and finalizers --------------------------------------------------------------------------
# kcp v0.11's `.io` names: https://github.com/kcp-dev/kcp/blob/v0.11.0/pkg/apis/workload/v1alpha1/types.go

# Per-target state on namespaces and resources: "" (assigned, waiting for a coordinator), "Sync" or "Upsync".
STATE_LABEL_PREFIX = "state.workload.kcp.io/"
STATE_SYNC = "Sync"
STATE_UPSYNC = "Upsync"
STATE_PENDING = ""
# Added by the syncer before it creates the downstream copy, removed once that copy is gone.
SYNCER_FINALIZER_PREFIX = "workload.kcp.io/syncer-"
# A per-target deletion timestamp (RFC 3339); the syncer's view shows it as `metadata.deletionTimestamp`.
DELETION_ANNOTATION_PREFIX = "deletion.internal.workload.kcp.io/"
# "Soft" per-target finalizers (comma list) from coordinators; while set, the syncer does not see the deletion.
SOFT_FINALIZERS_ANNOTATION_PREFIX = "finalizers.workload.kcp.io/"
# Per-target spec override: an RFC 6902 JSON Patch rooted at `.spec` (replica division writes `/replicas`).
SPEC_DIFF_ANNOTATION_PREFIX = "experimental.spec-diff.workload.kcp.io/"
# Per-target "syncer view" JSON, e.g. {"status": {...}}, or {"status": "##promoted##"} once copied to `.status`.
STATUS_DIFF_ANNOTATION_PREFIX = "diff.syncer.internal.kcp.io/"
STATUS_PROMOTED = "##promoted##"
# On the SyncTarget: its key, for reverse lookup. (kcp's print column read the old `.dev` key by mistake.)
SYNC_TARGET_KEY_LABEL = "internal.workload.kcp.io/key"
# On downstream objects and namespaces, in place of the state label: the key of the target that owns them.
DOWNSTREAM_CLUSTER_LABEL = "internal.workload.kcp.io/cluster"
# On downstream namespaces (and cluster-scoped objects, with namespace ""): the locator JSON mapping back upstream.
NAMESPACE_LOCATOR_ANNOTATION = "kcp.io/namespace-locator"
# On downstream namespaces: the tenant ID the DNS NetworkPolicy selects on.
TENANT_ID_LABEL = "kcp.io/tenant-id"
# On namespaces, value "": at least one valid Placement selects this namespace.
PLACEMENT_ANNOTATION = "scheduling.kcp.io/placement"
# On a Placement: the key of the single target kcp chose (kept for kcp tooling; TMC lists all in status.decisions).
PLACEMENT_SYNC_TARGET_ANNOTATION = "internal.workload.kcp.io/synctarget"
# The logical cluster an object returned from the `/clusters/*` wildcard belongs to.
CLUSTER_ANNOTATION = "kcp.io/cluster"
# The apiVersion the syncer uses downstream, when it differs from the upstream one.
ORIGINAL_API_VERSION_ANNOTATION = "kcp.io/original-api-version"
# Namespaces never assigned to a target.
BLOCKED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "kcp-system"})

# --- sync control: pause, force, and what the syncer reports per target (docs/syncer.md, "Pausing and forcing") ---
# On a workload, a hub Namespace (every workload in it) or a SyncTarget (everything synced to it): "true" pauses for
# every SyncTarget; on a workload or Namespace a comma-separated list of SyncTarget names pauses only those. While
# paused the target's syncer writes nothing downstream for that scope; status still flows up.
SYNC_PAUSED_ANNOTATION = "sync.tmc.kcp.io/paused"
SYNC_PAUSED_ALL = "true"
# On a workload, set by a client (value: an opaque token): re-read the downstream copy and re-apply the spec.
SYNC_FORCE_ANNOTATION_PREFIX = "sync.tmc.kcp.io/force."
# Written by the target's syncer (through its virtual workspace) on the workload:
SYNC_FORCED_ANNOTATION_PREFIX = "sync.tmc.kcp.io/forced."  # the force token it has acted on
SYNC_STATE_ANNOTATION_PREFIX = "sync.tmc.kcp.io/state."  # "Paused" while it holds writes; absent otherwise
SYNC_LAST_SYNC_ANNOTATION_PREFIX = "sync.tmc.kcp.io/last-sync."  # RFC 3339: last downstream write on force/resume
SYNC_ERROR_ANNOTATION_PREFIX = "sync.tmc.kcp.io/error."  # the last error of a sync failing for 10 s; gone on success
SYNC_STATE_PAUSED = "Paused"
# Event reasons on the workload in the hub, from the target's syncer.
REASON_SYNC_PAUSED = "SyncPaused"
REASON_SYNC_RESUMED = "SyncResumed"
# Every sync-control annotation is hub-only: none is copied to member clusters.
SYNC_CONTROL_PREFIX = "sync.tmc.kcp.io/"
# The per-target annotations a syncer may write on a workload through its virtual workspace (its own key only).
SYNCER_WRITTEN_ANNOTATION_PREFIXES = (
    SYNC_FORCED_ANNOTATION_PREFIX,
    SYNC_STATE_ANNOTATION_PREFIX,
    SYNC_LAST_SYNC_ANNOTATION_PREFIX,
    SYNC_ERROR_ANNOTATION_PREFIX,
)
SYNC_TARGET_ANNOTATION_PREFIXES = (SYNC_FORCE_ANNOTATION_PREFIX, *SYNCER_WRITTEN_ANNOTATION_PREFIXES)

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"

# kcp's SyncTarget condition types and reasons; SyncerReady is set by the TMC syncer, kcp never did.
CONDITION_READY = "Ready"
# Seconds without a syncer heartbeat before a SyncTarget turns Ready=False and its syncer counts as unhealthy (kcp's
# --sync-target-heartbeat-threshold; the product plan's production default). `tmc up` passes its own, shorter one.
DEFAULT_HEARTBEAT_THRESHOLD = 120.0
CONDITION_HEARTBEAT_HEALTHY = "HeartbeatHealthy"
CONDITION_SYNCER_READY = "SyncerReady"
CONDITION_SYNCER_AUTHORIZED = "SyncerAuthorized"
CONDITION_API_IMPORTER_READY = "APIImporterReady"
# TMC's health monitor verdict (docs/observability.md, Health): reason Healthy, HeartbeatStale, Unreachable or
# SyncFailures. Not an input of Ready: sync failures alone must not move workloads away.
CONDITION_HEALTHY = "Healthy"
# Set by the syncer: False while its member cluster's API does not answer its probe (it then sends no heartbeats).
# Not an input of Ready either: the heartbeat threshold stays the one grace period before failover.
CONDITION_MEMBER_REACHABLE = "MemberClusterReachable"
REASON_MEMBER_UNREACHABLE = "MemberClusterUnreachable"
REASON_ERROR_HEARTBEAT = "ErrorHeartbeat"
REASON_SYNCER_UNAUTHORIZED = "SyncerUnauthorized"

TAINT_EFFECTS = ("NoSchedule", "NoExecute")
RESOURCE_STATES = ("Pending", "Accepted", "Incompatible")
CONDITION_STATUSES = ("True", "False", "Unknown")
CONDITION_SEVERITIES = ("", "Error", "Warning", "Info")


def state_label(key: str) -> str:
    """`state.workload.kcp.io/<key>`: the per-target state label on upstream namespaces and resources."""
    return STATE_LABEL_PREFIX + key


def syncer_finalizer(key: str) -> str:
    """`workload.kcp.io/syncer-<key>`: the finalizer the target's syncer holds on upstream resources."""
    return SYNCER_FINALIZER_PREFIX + key


# Tokens for hub identities must not be copied into member clusters; the member cluster issues its own.
_SKIPPED_SECRET_TYPES = frozenset({"kubernetes.io/service-account-token"})


def syncable(resource: str, obj: Mapping[str, Any]) -> bool:
    """Whether a syncer copies this upstream object at all (the hub adds no syncer finalizer to one it does not)."""
    return not (resource == "secrets" and obj.get("type") in _SKIPPED_SECRET_TYPES)


def synced_types(sync_target: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """(group, resource) pairs the target's syncer says it syncs: `status.syncedResources` in state Accepted."""
    entries = (sync_target.get("status") or {}).get("syncedResources") or ()
    return frozenset(
        (str(e.get("group") or ""), str(e.get("resource")))
        for e in entries
        if isinstance(e, dict) and e.get("state") == "Accepted" and e.get("resource")
    )


def deletion_annotation(key: str) -> str:
    return DELETION_ANNOTATION_PREFIX + key


def soft_finalizers_annotation(key: str) -> str:
    return SOFT_FINALIZERS_ANNOTATION_PREFIX + key


def spec_diff_annotation(key: str) -> str:
    return SPEC_DIFF_ANNOTATION_PREFIX + key


def status_diff_annotation(key: str) -> str:
    return STATUS_DIFF_ANNOTATION_PREFIX + key


def sync_force_annotation(key: str) -> str:
    return SYNC_FORCE_ANNOTATION_PREFIX + key


def sync_forced_annotation(key: str) -> str:
    return SYNC_FORCED_ANNOTATION_PREFIX + key


def sync_state_annotation(key: str) -> str:
    return SYNC_STATE_ANNOTATION_PREFIX + key


def sync_last_sync_annotation(key: str) -> str:
    return SYNC_LAST_SYNC_ANNOTATION_PREFIX + key


def sync_error_annotation(key: str) -> str:
    return SYNC_ERROR_ANNOTATION_PREFIX + key


def parse_paused(value: object) -> tuple[bool, frozenset[str]] | None:
    """A `sync.tmc.kcp.io/paused` value as (pauses every target, SyncTarget names it pauses); None when malformed.
    "" and "false" pause nothing; "true" pauses every target; otherwise DNS-1123 names separated by commas."""
    text = str(value).strip() if isinstance(value, str) else None
    if text is None:
        return None
    if text.lower() in ("", "false"):
        return False, frozenset()
    if text.lower() == SYNC_PAUSED_ALL:
        return True, frozenset()
    names = [n.strip() for n in text.split(",")]
    if not all(_DNS_1123.fullmatch(n) for n in names):
        return None
    return False, frozenset(names)


_DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def target_key_of(name: str) -> str | None:
    """The target key in a per-target label, annotation or finalizer name, or None when `name` is not one."""
    for prefix in (
        STATE_LABEL_PREFIX,
        SYNCER_FINALIZER_PREFIX,
        DELETION_ANNOTATION_PREFIX,
        SOFT_FINALIZERS_ANNOTATION_PREFIX,
        SPEC_DIFF_ANNOTATION_PREFIX,
        STATUS_DIFF_ANNOTATION_PREFIX,
    ):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


# --- schema building blocks (also used by tmc.api.scheduling) -------------------------------------------------

_DEFS = "#/$defs/io.k8s.apimachinery.pkg."
OBJECT_META_REF = {"$ref": _DEFS + "apis.meta.v1.ObjectMeta"}


def label_selector(description: str) -> dict[str, Any]:
    """A `metav1.LabelSelector` field: nil and {} differ (kcp: nil selects nothing, {} selects everything)."""
    return {"$ref": _DEFS + "apis.meta.v1.LabelSelector", "description": description}


def quantity_map(description: str) -> dict[str, Any]:
    """A `corev1.ResourceList`: resource name -> quantity (a string like "64Gi", or a number)."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"$ref": _DEFS + "api.resource.Quantity"},
    }


def string_field(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def enum_field(description: str, values: tuple[str, ...]) -> dict[str, Any]:
    # kubectl explain prints the enum itself, so the description does not repeat the values.
    return {"type": "string", "description": description, "enum": list(values)}


def int_field(description: str, fmt: str = "int32", **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "format": fmt, "description": description, **extra}


def time_field(description: str) -> dict[str, Any]:
    return {"type": "string", "format": "date-time", "description": description}


def object_field(description: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "description": description, "properties": properties}
    if required:
        out["required"] = list(required)
    return out


def list_field(description: str, items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items, **extra}


def kind_schema(
    group: str, version: str, kind: str, description: str, spec: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    """The top-level schema of a cluster-scoped kind with spec and status."""
    return {
        "description": description,
        "type": "object",
        "x-kubernetes-group-version-kind": [{"group": group, "version": version, "kind": kind}],
        "properties": {
            "apiVersion": string_field("APIVersion defines the versioned schema of this representation of an object."),
            "kind": string_field(f"Kind is the REST resource this object represents: {kind}."),
            "metadata": OBJECT_META_REF,
            "spec": spec,
            "status": status,
        },
    }


# kcp's conditions (third_party/conditions): cluster-api style, with a severity.
CONDITIONS = list_field(
    "Current state of the object, one condition per type.",
    object_field(
        "Condition defines an observation of the object's operational state.",
        {
            "type": string_field("Type of condition in CamelCase, e.g. Ready."),
            "status": enum_field("Status of the condition.", CONDITION_STATUSES),
            "severity": string_field("How to interpret a False status: Error, Warning or Info (empty when True)."),
            "reason": string_field("The reason for the last transition, in CamelCase."),
            "message": string_field("A human-readable message about the last transition."),
            "lastTransitionTime": time_field("When the condition last changed status."),
        },
        required=("type", "status"),
    ),
)

# --- SyncTarget -------------------------------------------------------------------------------------------------

_SPEC = object_field(
    "SyncTargetSpec holds the desired state of the SyncTarget (from the user and the CLI).",
    {
        "unschedulable": {
            "type": "boolean",
            "description": "No new workloads are placed on the target. As in kcp v0.11, workloads already there are "
            "moved off too (cordon). Defaults to false.",
        },
        "evictAfter": time_field(
            "Once this time has passed, the target is invalid for scheduling and its workloads are moved off (drain)."
        ),
        "cells": {
            "type": "object",
            "description": "Labels for 'same physical cluster' semantics (kept from kcp; nothing reads them).",
            "additionalProperties": {"type": "string"},
        },
        "supportedAPIExports": list_field(
            "The APIExports whose resources this target syncs. An empty path means the target's own workspace.",
            object_field(
                "APIExportReference names an APIExport by workspace path and name.",
                {
                    "path": string_field("Logical cluster path of the APIExport, e.g. root:compute."),
                    "export": string_field("Name of the APIExport, e.g. kubernetes."),
                },
                required=("export",),
            ),
        ),
        "capabilities": list_field(
            "What the member cluster offers; Placements require them through spec.capabilityRequirements.",
            object_field(
                "A capability of the member cluster, e.g. gpu.",
                {
                    "type": string_field(
                        "Name of the capability, e.g. gpu; Placements name it in spec.capabilityRequirements."
                    ),
                    "available": {
                        "type": "boolean",
                        "description": "Whether the capability is usable now: false counts as not offered; "
                        "absent means true.",
                    },
                },
                required=("type",),
            ),
        ),
        "taints": list_field(
            "Keep workloads off the target unless their Placement tolerates the taint.",
            object_field(
                "A taint, as on a Node.",
                {
                    "key": string_field("The taint key (a qualified name, e.g. maintenance) that tolerations match."),
                    "value": string_field(
                        "The taint value; a toleration with operator Equal must name the same value."
                    ),
                    "effect": enum_field(
                        "NoSchedule keeps new workloads off; NoExecute also moves existing ones away.", TAINT_EFFECTS
                    ),
                },
                required=("key", "effect"),
            ),
        ),
        "resourceFilter": object_field(
            "What the target's syncer syncs; absent fields do not narrow the selection.",
            {
                "resourceTypes": list_field(
                    "Resources to sync, as <resource>.<group> (core resources without the group), "
                    "e.g. deployments.apps, services.",
                    {"type": "string"},
                ),
                "namespaceSelector": label_selector("Only namespaces whose labels match are synced."),
                "labelSelector": label_selector("Only objects whose labels match are synced."),
                "annotationSelector": label_selector(
                    "Only objects whose annotations match (in label-selector form) are synced."
                ),
            },
        ),
    },
)

_STATUS = object_field(
    "SyncTargetStatus communicates the observed state of the SyncTarget (from the syncer and the hub).",
    {
        "capacity": quantity_map("Total resources of the member cluster, reported by the syncer."),
        "allocatable": quantity_map("Resources available for workloads, reported by the syncer."),
        "allocated": quantity_map("Resources requested by the workloads running on the member cluster."),
        "conditions": CONDITIONS,
        "lastSyncerHeartbeatTime": time_field("When the syncer last reported that it is alive."),
        "syncedResources": list_field(
            "The resources the target can sync, with their compatibility state.",
            object_field(
                "ResourceToSync is a resource the syncer syncs.",
                {
                    "group": string_field("API group; empty for the core group."),
                    "resource": string_field("Plural resource name."),
                    "versions": list_field("Versions, most preferred first.", {"type": "string"}, minItems=1),
                    "identityHash": string_field("Identity hash of the APIExport; empty for Kubernetes types."),
                    "state": enum_field("Whether the member cluster can serve the resource.", RESOURCE_STATES),
                },
                required=("resource", "versions"),
            ),
        ),
        "virtualWorkspaces": list_field(
            "Where the syncer reaches its virtual workspaces, one entry per shard.",
            object_field(
                "The syncer and upsyncer URLs of one shard.",
                {
                    "syncerURL": string_field("URL of the syncer virtual workspace."),
                    "upsyncerURL": string_field("URL of the upsyncer virtual workspace."),
                },
            ),
        ),
        "tunnelWorkspaces": list_field(
            "Tunnel endpoints, from kcp's last TMC branch: kept so kcp's objects apply; TMC does not fill it.",
            object_field("A tunnel endpoint.", {"url": string_field("URL of the tunnel workspace.")}),
        ),
        "syncerStatus": object_field(
            "Counters the syncer reports with its heartbeat.",
            {
                "syncedResources": int_field(
                    "Objects whose member-cluster copy is in sync, at the last heartbeat.", "int64", minimum=0
                ),
                "pendingResources": int_field(
                    "Objects assigned to the target and not yet synced, at the last heartbeat.", "int64", minimum=0
                ),
                "failedResources": int_field(
                    "Objects whose last sync attempt failed, at the last heartbeat.", "int64", minimum=0
                ),
            },
        ),
    },
)

SYNC_TARGET_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    "SyncTarget",
    "SyncTarget describes a member cluster that workloads are synced to by a syncer.",
    _SPEC,
    _STATUS,
)

# Region and Zone use the bracket form because the JSONPath evaluator splits `.a.b` on every dot.
SYNC_TARGET_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Region", "type": "string", "jsonPath": f".metadata.labels['{REGION_LABEL}']"},
    {"name": "Zone", "type": "string", "jsonPath": f".metadata.labels['{ZONE_LABEL}']"},
    {"name": "Health", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Healthy")].reason'},
    {"name": "Synced", "type": "integer", "jsonPath": ".status.syncerStatus.syncedResources"},
    {"name": "Key", "type": "string", "jsonPath": f".metadata.labels['{SYNC_TARGET_KEY_LABEL}']"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

SYNC_TARGETS = ResourceInfo(
    group=GROUP,
    version=VERSION,
    kind="SyncTarget",
    plural="synctargets",
    singular="synctarget",
    namespaced=False,
    short_names=("st",),
    categories=("kcp",),
    subresources=("status",),
    schema=Schema(SYNC_TARGET_SCHEMA, builtin_definitions()),
    definition_name="io.kcp.workload.v1alpha1.SyncTarget",
    printer_columns=SYNC_TARGET_COLUMNS,
)
