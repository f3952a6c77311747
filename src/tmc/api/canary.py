"""tmc.kcp.io/v1alpha1 CanaryDeployment: a canary rollout of a Deployment across every cluster it is placed on.

kcp never had this kind. The shape follows Flagger (the user's Deployment is the canary; the controller keeps a
stable copy, `<name>-primary`, that serves traffic) and Argo Rollouts' step set (`setWeight`, `pause`, `analysis`)
and analysis fields; docs/canary.md explains each field. Value rules live in `tmc.api.canary_validation`; the
analysis block is checked by the analysis engine at admission (see the canary controller's wiring).
"""

from __future__ import annotations

from typing import Any

from tmc.api.tmcgroup import GROUP, VERSION, tmc_kind
from tmc.api.workload import (
    CONDITIONS,
    enum_field,
    int_field,
    kind_schema,
    label_selector,
    list_field,
    object_field,
    string_field,
    time_field,
)

KIND = "CanaryDeployment"

PENDING, PROGRESSING, ANALYZING, PAUSED, SUCCEEDED, FAILED, ROLLED_BACK = (
    "Pending",
    "Progressing",
    "Analyzing",
    "Paused",
    "Succeeded",
    "Failed",
    "RolledBack",
)
PHASES = (PENDING, PROGRESSING, ANALYZING, PAUSED, SUCCEEDED, FAILED, ROLLED_BACK)
OPERATORS = ("<", "<=", ">", ">=", "==")
STEP_KINDS = ("setWeight", "pause", "analysis")
ROUTERS = ("istio", "gatewayAPI", "replicas")
GATES = ("auto", "manual")
# Waves of clusters (spec.clusters): the first wave carries the canary before the rest of the fleet.
FIRST_WAVE, REST_WAVE = "First", "Rest"

# What `kubectl tmc rollout promote|abort|retry` ask for: "<action>@<token>". The controller acts on a token once and
# records it in status.handledAction, so a repeated request (same token) does nothing.
ACTION_ANNOTATION = "canary.tmc.kcp.io/action"
ACTIONS = ("promote", "promote-full", "abort", "retry")
# Labels the controller puts on what it creates: which CanaryDeployment, and the stable copy's pods.
CANARY_LABEL = "canary.tmc.kcp.io/name"
PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
# Pod label that tells the stable copy's pods (`stable`) from the canary's (`canary`, added to the target's template
# only when DestinationRule subsets need it); never part of a revision's hash.
ROLE_LABEL = "canary.tmc.kcp.io/role"

_DURATION = {
    "x-kubernetes-int-or-string": True,
    "description": "Seconds (a number) or a duration string with s, m or h (30s, 2m).",
}
_THRESHOLD = object_field(
    "The measurement of `metric` succeeds during this step only while `result <operator> value`.",
    {
        "metric": string_field("Name of a metric of spec.analysis.metrics."),
        "operator": enum_field("Comparison of the measured value against `value`.", OPERATORS),
        "value": {"type": "number", "description": "The bound."},
    },
    required=("metric", "operator", "value"),
)
_STEP = object_field(
    "One step of the plan; exactly one of setWeight, pause, analysis.",
    {
        "setWeight": int_field("Percent of traffic for the canary, the same in every cluster (0-100).", minimum=0),
        "pause": object_field(
            "Wait: for `duration`, or, without one, until promoted (`kubectl tmc rollout promote`).",
            {"duration": _DURATION},
        ),
        "analysis": object_field(
            "Measure spec.analysis' metrics at the current weight; the next step comes when they succeed. Failed or "
            "Error aborts; Inconclusive pauses for a human.",
            {
                "duration": _DURATION,
                "thresholds": list_field("Extra success conditions on named metrics for this step.", _THRESHOLD),
            },
        ),
    },
)
_ROUTING = object_field(
    "How traffic is shifted: exactly one of istio, gatewayAPI, replicas.",
    {
        "istio": object_field(
            "Weights in an Istio VirtualService's route to the stable and canary Services.",
            {
                "virtualService": object_field(
                    "The VirtualService (created when missing).",
                    {
                        "name": string_field("Its name, in the CanaryDeployment's namespace."),
                        "routes": list_field(
                            "Names of the http routes to manage (default: the first).", {"type": "string"}
                        ),
                    },
                    required=("name",),
                ),
                "destinationRule": object_field(
                    "Route to subsets of one host (the user's Service) instead of two Services, as Argo Rollouts "
                    "does: the DestinationRule (created when missing) gets the two subsets, by pod labels.",
                    {
                        "name": string_field("The DestinationRule's name, in the CanaryDeployment's namespace."),
                        "stableSubsetName": string_field("The stable version's subset (default stable)."),
                        "canarySubsetName": string_field("The canary's subset (default canary)."),
                    },
                    required=("name",),
                ),
            },
            required=("virtualService",),
        ),
        "gatewayAPI": object_field(
            "Weights of a Gateway API HTTPRoute's backendRefs to the stable and canary Services.",
            {"httpRoute": string_field("The HTTPRoute's name (created when missing).")},
            required=("httpRoute",),
        ),
        "replicas": object_field(
            "No mesh: the weight is the canary's share of the Ready pods behind the Service, per cluster.", {}
        ),
    },
)
_SPEC = object_field(
    "CanaryDeploymentSpec: the workload, how its traffic is shifted, the steps and the analysis.",
    {
        "targetRef": object_field(
            "The Deployment the user edits; a change of its pod template starts a canary of the new revision.",
            {
                "apiVersion": string_field("apps/v1."),
                "kind": enum_field("Kind of the workload.", ("Deployment",)),
                "name": string_field("Name of the workload in this namespace."),
            },
            required=("kind", "name"),
        ),
        "service": object_field(
            "The Service clients call; the controller adds `<name>-primary` (stable) and `<name>-canary`.",
            {
                "name": string_field("The Service's name (default: the target's name)."),
                "port": int_field("Port routed to (default 80).", minimum=1, maximum=65535),
            },
        ),
        "trafficRouting": _ROUTING,
        "steps": list_field("The plan, run in order once the canary's pods are Ready.", _STEP),
        "clusters": object_field(
            "Which clusters carry the canary first (default: every cluster the target is placed on, together).",
            {
                "syncTargetSelector": label_selector(
                    "The first wave: the placed SyncTargets with these labels run the steps first; the rest of the "
                    "fleet keeps weight 0 until the gate, then runs the steps itself. Needs istio or gatewayAPI."
                ),
                "gate": enum_field(
                    "Between the waves: auto (go on once the first wave's analysis passed) or manual (also wait for "
                    "`kubectl tmc rollout promote`). Default auto.",
                    GATES,
                ),
            },
        ),
        "analysis": {
            "type": "object",
            "description": "Background analysis over the whole rollout (docs/canary.md, Analysis): metrics, "
            "comparison, and defaults for every metric: interval, failureLimit, consecutiveErrorLimit, "
            "inconclusiveLimit.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        "progressDeadlineSeconds": int_field(
            "Seconds the canary (or the promoted stable copy) may take to become Ready before the rollout is "
            "aborted (default 600).",
            minimum=1,
        ),
        "autoPromote": {
            "type": "boolean",
            "description": "Promote after the last step when the analysis passed (default true); false: Paused.",
        },
        "paused": {"type": "boolean", "description": "Hold the rollout where it is (`kubectl tmc rollout pause`)."},
    },
    required=("targetRef", "trafficRouting"),
)
_CLUSTER_STATE = object_field(
    "The rollout in one cluster the workload is placed on.",
    {
        "cluster": string_field("SyncTarget name."),
        "wave": enum_field("With spec.clusters: the wave the cluster is in.", (FIRST_WAVE, REST_WAVE)),
        "weight": int_field("Canary weight the routing applies there.", minimum=0),
        "canaryReplicas": int_field("Canary replicas desired there.", minimum=0),
        "canaryReady": int_field("Canary replicas Ready there.", minimum=0),
        "stableReplicas": int_field("Stable replicas desired there.", minimum=0),
        "stableReady": int_field("Stable replicas Ready there.", minimum=0),
    },
)
_RUN = {
    "type": "object",
    "description": "An analysis run: phase, message, per metric counts and the last measurements (value, phase, "
    "time, cluster; for a comparison the statistic and p-value).",
    "x-kubernetes-preserve-unknown-fields": True,
}
_STATUS = object_field(
    "CanaryDeploymentStatus: where the rollout is.",
    {
        "phase": enum_field("Where the rollout is.", PHASES),
        "message": string_field("One line on the phase."),
        "observedGeneration": int_field("The generation last acted on.", "int64"),
        "currentStepIndex": int_field("Index of the step running (= len(steps) when all are done).", minimum=0),
        "weight": int_field(
            "Canary weight written to the routing (with spec.clusters: in the clusters of the wave running).",
            minimum=0,
        ),
        "wave": enum_field("With spec.clusters: the wave running (First, then Rest).", (FIRST_WAVE, REST_WAVE)),
        "firstWaveWeight": int_field(
            "With spec.clusters, in the Rest wave: the weight the first wave keeps (the highest it reached).",
            minimum=0,
        ),
        "replicas": int_field("Replicas the workload should run (the stable copy's spec.replicas).", minimum=0),
        "canaryReplicas": int_field("The target's spec.replicas as the controller last wrote it.", minimum=0),
        "promotingRevision": string_field("The revision the stable copy is being updated to."),
        "stableRevision": string_field("Hash of the pod template the stable copy runs."),
        "canaryRevision": string_field("Hash of the pod template under test."),
        "abortedRevision": string_field("The revision last rolled back; it does not start again by itself."),
        "pauseReason": string_field(
            "Why it is Paused: PauseStep, Inconclusive, WaitingForPromotion, Manual, WaveGate."
        ),
        "handledAction": string_field("The last action annotation acted on."),
        "canaryStartedAt": time_field("When the canary of canaryRevision started."),
        "promoting": {"type": "boolean", "description": "The stable copy is being updated to the canary."},
        "steps": list_field(
            "When each step started.",
            object_field("", {"index": int_field("Step index.", minimum=0), "startedAt": time_field("Start.")}),
        ),
        "clusters": list_field("Per-cluster state.", _CLUSTER_STATE),
        "analysis": _RUN,
        "stepAnalysis": _RUN,
        "conditions": CONDITIONS,
    },
)

CANARY_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    KIND,
    "CanaryDeployment rolls a new revision of a Deployment out as a canary in every cluster it is placed on, "
    "shifting traffic by steps while an analysis judges it, and promotes it or rolls it back.",
    _SPEC,
    _STATUS,
)

CANARY_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStepIndex"},
    {"name": "Wave", "type": "string", "jsonPath": ".status.wave", "priority": 1},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.weight"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableRevision"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryRevision"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

CANARY_DEPLOYMENTS = tmc_kind(KIND, "canarydeployments", "cd", CANARY_SCHEMA, CANARY_COLUMNS)
