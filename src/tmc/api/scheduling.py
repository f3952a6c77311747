"""scheduling.kcp.io/v1alpha1 Location and Placement.

kcp v0.11's fields keep their names and meanings
(https://github.com/kcp-dev/kcp/tree/v0.11.0/pkg/apis/scheduling/v1alpha1), so `kubectl kcp bind compute` Placements and
compute-workspace Locations apply unchanged. Placement gains TMC's additions (docs/placement.md): workload and target
selectors, a strategy, several targets, replica division, spread constraints, capability requirements, tolerations and
`status.decisions`. Value rules live in `tmc.api.validation`.
"""

from __future__ import annotations

from typing import Any

from tmc.api.workload import (
    CONDITIONS,
    TAINT_EFFECTS,
    enum_field,
    int_field,
    kind_schema,
    label_selector,
    list_field,
    object_field,
    string_field,
)
from tmc.api.workload import GROUP as WORKLOAD_GROUP
from tmc.api.workload import VERSION as WORKLOAD_VERSION
from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.schemas import Schema, builtin_definitions

GROUP = "scheduling.kcp.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Location annotation: its own labels as "k=v k2=v2" (sorted), for a print column.
LOCATION_LABELS_ANNOTATION = "scheduling.kcp.io/labels"

# The only resource a Location can stand for (kcp's GroupVersionResource is an enum of exactly this).
LOCATION_RESOURCE = {"group": WORKLOAD_GROUP, "version": WORKLOAD_VERSION, "resource": "synctargets"}

PLACEMENT_PHASES = ("Pending", "Unbound", "Bound")

# Placement simulation (docs/placement.md, "Simulating a Placement"): a server-side dry run (`dryRun=All`) of a
# Placement create, update or patch answers with the decisions the scheduler would make now, plus this status field:
# one entry per SyncTarget {syncTarget, selected, score, reason, scores}. Never stored.
SIMULATION_CANDIDATES_FIELD = "candidates"
# Candidate reasons for SyncTargets a filter excluded start with this; chosen ones with "chosen" or "kept".
CANDIDATE_EXCLUDED_PREFIX = "excluded: "
STRATEGIES = ("RoundRobin", "Spread", "Affinity", "Binpack")
REPLICA_SCHEDULING_TYPES = ("Duplicated", "Divided")
DYNAMIC_WEIGHTS = ("AvailableCapacity",)
TOLERATION_OPERATORS = ("Exists", "Equal")

# Placement condition types and kcp's reasons.
CONDITION_READY = "Ready"
CONDITION_SCHEDULED = "Scheduled"
REASON_LOCATION_NOT_FOUND = "LocationNotFound"
REASON_LOCATION_INVALID = "LocationInvalid"
REASON_LOCATION_NO_MATCH = "LocationNoMatch"
REASON_SCHEDULE_LOCATION_NOT_FOUND = "ScheduleLocationNotFound"
REASON_NO_VALID_TARGET = "NoValidTarget"

_GVR = object_field(
    "GroupVersionResource of the location resource; only workload.kcp.io/v1alpha1 synctargets exists.",
    {
        "group": enum_field("API group of the resource.", (WORKLOAD_GROUP,)),
        "version": enum_field("Version of the resource.", (WORKLOAD_VERSION,)),
        "resource": enum_field("Plural name of the resource.", ("synctargets",)),
    },
    required=("version", "resource"),
)

# --- Location ---------------------------------------------------------------------------------------------------

_LOCATION_SPEC = object_field(
    "LocationSpec describes a set of SyncTargets in the Location's workspace that Placements can choose from.",
    {
        "resource": _GVR,
        "description": string_field("Human-readable description of the location."),
        "availableSelectorLabels": list_field(
            "Labels users can select on, with their values (informational).",
            object_field(
                "An available label: its key, the values it takes and what it means.",
                {
                    "key": string_field("The label key."),
                    "values": list_field("The values the label takes.", {"type": "string"}, minItems=1),
                    "description": string_field("What the label means."),
                },
                required=("key", "values"),
            ),
        ),
        "instanceSelector": label_selector(
            "Which SyncTargets in this workspace belong to the location: absent selects none, {} selects all."
        ),
    },
    required=("resource",),
)

_LOCATION_STATUS = object_field(
    "LocationStatus counts the instances of the location.",
    {
        "instances": int_field("Number of SyncTargets the instanceSelector matches.", minimum=0),
        "availableInstances": int_field("Number of those that are Ready and schedulable.", minimum=0),
    },
)

LOCATION_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    "Location",
    "Location is a set of SyncTargets, selected by labels, that Placements choose from.",
    _LOCATION_SPEC,
    _LOCATION_STATUS,
)

LOCATION_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Resource", "type": "string", "jsonPath": ".spec.resource.resource"},
    {"name": "Available", "type": "integer", "jsonPath": ".status.availableInstances"},
    {"name": "Instances", "type": "integer", "jsonPath": ".status.instances"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

LOCATIONS = ResourceInfo(
    group=GROUP,
    version=VERSION,
    kind="Location",
    plural="locations",
    singular="location",
    namespaced=False,
    categories=("kcp",),
    subresources=("status",),
    schema=Schema(LOCATION_SCHEMA, builtin_definitions()),
    definition_name="io.kcp.scheduling.v1alpha1.Location",
    printer_columns=LOCATION_COLUMNS,
)

# --- Placement --------------------------------------------------------------------------------------------------

_PLACEMENT_SPEC = object_field(
    "PlacementSpec says which namespaces (and workloads in them) go to which SyncTargets, and how.",
    {
        "locationSelectors": list_field(
            "Which Locations may be used, ORed: [] matches none, [{}] matches all.",
            label_selector("Selects Locations by their labels."),
        ),
        "locationResource": _GVR,
        "namespaceSelector": label_selector(
            "Which namespaces of this workspace are placed: absent selects none (as kcp's code), {} selects all."
        ),
        "locationWorkspace": string_field(
            "Workspace path holding the Locations, e.g. root:compute; empty means this workspace."
        ),
        "workloadSelector": label_selector("Narrows placement to the workloads in those namespaces that match."),
        "syncTargetSelector": label_selector("Narrows the candidate SyncTargets by their labels."),
        "strategy": enum_field("How targets are chosen among the eligible ones.", STRATEGIES),
        "numberOfTargets": int_field("How many targets to choose; absent means all eligible targets.", minimum=1),
        "replicaScheduling": object_field(
            "How the replicas of scalable workloads are spread over the chosen targets.",
            {
                "type": enum_field(
                    "Duplicated (the default) runs the full replica count on every target; Divided splits it.",
                    REPLICA_SCHEDULING_TYPES,
                ),
                "weights": list_field(
                    "Static weights for Divided; targets no entry selects get weight 0. Absent means even.",
                    object_field(
                        "The weight of the targets a selector matches.",
                        {
                            "syncTargetSelector": label_selector("Which targets get this weight."),
                            "weight": int_field(
                                "Relative share of the replicas; a target takes the highest weight among the "
                                "entries that select it.",
                                "int64",
                                minimum=0,
                            ),
                        },
                        required=("syncTargetSelector", "weight"),
                    ),
                ),
                "dynamicWeight": enum_field(
                    "Instead of static weights, weigh targets by what they report.", DYNAMIC_WEIGHTS
                ),
            },
        ),
        "spreadConstraints": list_field(
            "Spread targets over the values of a topology label.",
            object_field(
                "How many distinct values of topologyKey the chosen targets must cover.",
                {
                    "topologyKey": string_field("Target label to spread by, e.g. topology.kubernetes.io/zone."),
                    "minGroups": int_field("At least this many distinct values; absent means no minimum.", minimum=1),
                    "maxGroups": int_field("At most this many distinct values; absent means no maximum.", minimum=1),
                },
                required=("topologyKey",),
            ),
        ),
        "capabilityRequirements": list_field(
            "Capabilities the targets must (required) or should (preferred) offer.",
            object_field(
                "A capability requirement.",
                {
                    "type": string_field("Name of the capability, as in SyncTarget spec.capabilities."),
                    "required": {
                        "type": "boolean",
                        "description": "True filters targets without it; false only prefers targets with it.",
                    },
                },
                required=("type",),
            ),
        ),
        "tolerations": list_field(
            "Taints of SyncTargets this Placement tolerates.",
            object_field(
                "A toleration, as in a Pod.",
                {
                    "key": string_field("Taint key to match; empty with operator Exists matches every taint."),
                    "operator": enum_field(
                        "Equal (the default) compares values; Exists ignores them.", TOLERATION_OPERATORS
                    ),
                    "value": string_field("Taint value to match (Equal only)."),
                    "effect": enum_field("Taint effect to match; empty matches all effects.", TAINT_EFFECTS),
                },
            ),
        ),
    },
    required=("locationResource",),
)

_PLACEMENT_STATUS = object_field(
    "PlacementStatus is the Location selected and the SyncTargets chosen.",
    {
        "phase": enum_field(
            "Pending: no Location selected; Unbound: a Location is selected but no namespace uses it; Bound: in use.",
            PLACEMENT_PHASES,
        ),
        "selectedLocation": object_field(
            "The Location chosen.",
            {
                "path": string_field("Logical cluster of the Location."),
                "locationName": string_field("Name of the Location."),
            },
            required=("path", "locationName"),
        ),
        "decisions": list_field(
            "The SyncTargets chosen, with their score and share of the replicas.",
            object_field(
                "One scheduling decision.",
                {
                    "syncTarget": object_field(
                        "The SyncTarget chosen.",
                        {
                            "workspace": string_field("Logical cluster of the SyncTarget."),
                            "name": string_field("Name of the SyncTarget."),
                        },
                        required=("name",),
                    ),
                    "key": string_field("The SyncTarget's key, as in state.workload.kcp.io/<key>."),
                    "score": int_field(
                        "Scheduler score of the target, 0 to 100 (higher is better); the strategy sets it.", "int64"
                    ),
                    "weight": int_field(
                        "Weight used to divide replicas (Divided): the matching static weight or the capacity-based "
                        "one.",
                        "int64",
                        minimum=0,
                    ),
                    "replicas": int_field("Replicas assigned when dividing.", minimum=0),
                },
                required=("syncTarget",),
            ),
        ),
        "conditions": CONDITIONS,
        SIMULATION_CANDIDATES_FIELD: list_field(
            "Only in the answer to a server-side dry run: every SyncTarget the Placement could draw from, "
            "whether the scheduler would choose it now, and why.",
            object_field(
                "One SyncTarget as the scheduler judges it for this Placement.",
                {
                    "syncTarget": object_field(
                        "The SyncTarget.",
                        {
                            "workspace": string_field("Logical cluster of the SyncTarget."),
                            "name": string_field("Name of the SyncTarget."),
                        },
                    ),
                    "selected": {"type": "boolean", "description": "Whether the scheduler would choose it now."},
                    "score": {"type": "number", "description": "Scheduler score (higher is better); 0 if excluded."},
                    "reason": string_field("Why it is chosen, or the filter that excluded it."),
                    "scores": {
                        "type": "object",
                        "description": "The score's components by name.",
                        "additionalProperties": {"type": "number"},
                    },
                    "replicas": int_field("Replicas it would get when dividing.", minimum=0),
                },
            ),
        ),
    },
)

PLACEMENT_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    "Placement",
    "Placement places the namespaces of its workspace on SyncTargets of the selected Location.",
    _PLACEMENT_SPEC,
    _PLACEMENT_STATUS,
)

# No column lists the decisions: a column shows only the first value a JSONPath selects, and a count is not JSONPath.
PLACEMENT_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Strategy", "type": "string", "jsonPath": ".spec.strategy"},
    {"name": "Location", "type": "string", "jsonPath": ".status.selectedLocation.locationName", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

PLACEMENTS = ResourceInfo(
    group=GROUP,
    version=VERSION,
    kind="Placement",
    plural="placements",
    singular="placement",
    namespaced=False,
    categories=("kcp",),
    subresources=("status",),
    schema=Schema(PLACEMENT_SCHEMA, builtin_definitions()),
    definition_name="io.kcp.scheduling.v1alpha1.Placement",
    printer_columns=PLACEMENT_COLUMNS,
)
