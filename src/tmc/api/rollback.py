"""tmc.kcp.io/v1alpha1 WorkloadRevision and RollbackPolicy: the revision history of placed workloads and the policy
that rolls a workload back when a new revision does not become available across the fleet.

kcp never had these kinds. A WorkloadRevision is the hub's ControllerRevision for a whole fleet: besides the pod
template it holds the ConfigMaps the pods read (their content) and, for Secrets, a digest and a reference to a copy
kept as a Secret in the workspace's `kcp-system` namespace (never placed on a cluster), plus who made the change and,
in status, how the revision fared in each cluster. docs/rollback.md explains each field and why these are new kinds
rather than Kubernetes' ControllerRevision.
"""

from __future__ import annotations

from typing import Any

from tmc.api.tmcgroup import GROUP, VERSION, tmc_kind
from tmc.api.workload import (
    CONDITIONS,
    enum_field,
    int_field,
    kind_schema,
    list_field,
    object_field,
    string_field,
    time_field,
)
from tmc.apimachinery.validation_common import forbidden, invalid, not_supported, required

REVISION_KIND = "WorkloadRevision"
POLICY_KIND = "RollbackPolicy"

# Labels on every WorkloadRevision: which workload (kind in lower case, name) it belongs to, and its number.
WORKLOAD_KIND_LABEL = "rollback.tmc.kcp.io/workload-kind"
WORKLOAD_NAME_LABEL = "rollback.tmc.kcp.io/workload-name"
REVISION_LABEL = "rollback.tmc.kcp.io/revision"
# Where Secret content of revisions is kept: a namespace the scheduler never places.
SNAPSHOT_NAMESPACE = "kcp-system"
SNAPSHOT_SECRET_TYPE = "tmc.kcp.io/revision-snapshot"
SNAPSHOT_NAMESPACE_LABEL = "rollback.tmc.kcp.io/namespace"

# What `kubectl tmc rollout undo` asks for on the workload: "<revision|previous>@<token>". The rollback controller
# acts on a token once and answers in UNDO_RESULT_ANNOTATION: "<token> ok <new revision>" or "<token> error <why>".
UNDO_ANNOTATION = "rollback.tmc.kcp.io/undo"
UNDO_RESULT_ANNOTATION = "rollback.tmc.kcp.io/undo-result"
UNDO_PREVIOUS = "previous"
# Who last changed what a revision is made of (a pod template, an opted-in spec, ConfigMap or Secret content, or
# asked for an undo), stamped by the hub in that same write: {"user", "fieldManager", "time"} as JSON.
AUTHOR_ANNOTATION = "rollback.tmc.kcp.io/changed-by"
# The token of the canary abort an undo asks for (`canary.tmc.kcp.io/action: abort@rollout-undo-<hex>`), so the
# canary's status can say who aborted it.
CANARY_ABORT_TOKEN_PREFIX = "rollout-undo-"
# Kubernetes' change-cause annotation: copied into the revision it belongs to.
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
# A custom resource opts in to revisions with this annotation set to "true".
OPT_IN_ANNOTATION = "rollback.tmc.kcp.io/revisions"
DEFAULT_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600

# Revision phases and per-cluster states.
PROGRESSING, AVAILABLE, FAILED, SUPERSEDED, ROLLED_BACK = (
    "Progressing",
    "Available",
    "Failed",
    "Superseded",
    "RolledBack",
)
REVISION_PHASES = (PROGRESSING, AVAILABLE, FAILED, SUPERSEDED, ROLLED_BACK)
CLUSTER_STATES = (PROGRESSING, AVAILABLE, FAILED)

# The condition the rollback controller sets on the workload's status (the status aggregator keeps it).
CONDITION_ROLLED_BACK = "RolledBack"
HUB_CONDITIONS = frozenset({CONDITION_ROLLED_BACK})
# Reasons, also the `reason` label of tmc_rollbacks_total.
REASON_PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
REASON_ANALYSIS = "AnalysisFailed"
REASON_USER = "UserRequested"
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")

_PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

_REVISION_SPEC = object_field(
    "WorkloadRevisionSpec: what the workload and the configuration it reads were at this revision. Immutable.",
    {
        "workloadRef": object_field(
            "The workload, in the revision's namespace.",
            {
                "apiVersion": string_field("Its API version, e.g. apps/v1."),
                "kind": string_field("Deployment, StatefulSet, DaemonSet, or an opted-in custom resource's kind."),
                "name": string_field("Its name."),
                "uid": string_field("Its UID when recorded."),
            },
            required=("kind", "name"),
        ),
        "revision": int_field("The revision number, from 1; `kubectl tmc rollout history` lists them.", "int64"),
        "template": {
            **_PRESERVE,
            "description": "The pod template (built-in kinds) or the whole spec (custom resources) at this revision.",
        },
        "configMaps": list_field(
            "The ConfigMaps the pod template references, as they were when the revision was recorded.",
            object_field(
                "One ConfigMap.",
                {
                    "name": string_field("Its name."),
                    "present": {"type": "boolean", "description": "False when it did not exist then."},
                    "data": {**_PRESERVE, "description": "Its data."},
                    "binaryData": {**_PRESERVE, "description": "Its binaryData."},
                },
                required=("name",),
            ),
        ),
        "secrets": list_field(
            "The Secrets the pod template references: a digest here, the content in a Secret in kcp-system.",
            object_field(
                "One Secret.",
                {
                    "name": string_field("Its name."),
                    "present": {"type": "boolean", "description": "False when it did not exist then."},
                    "sha256": string_field("SHA-256 of its type and data, to compare without reading it."),
                    "keys": list_field("Its data keys.", {"type": "string"}),
                },
                required=("name",),
            ),
        ),
        "snapshotSecret": string_field("The kcp-system Secret holding the Secrets' content (empty when none)."),
        "fingerprint": string_field("SHA-256 of the template and the referenced content: equal means same revision."),
        "author": object_field(
            "Who made the change.",
            {
                "user": string_field("The request's user (empty for the hub's own writes)."),
                "fieldManager": string_field("The request's field manager."),
            },
        ),
        "changeCause": string_field("The kubernetes.io/change-cause annotation, or what the rollback controller did."),
        "rollbackTo": int_field("When this revision is a rollback: the revision it restored.", "int64"),
        "automatic": {"type": "boolean", "description": "True when a RollbackPolicy made this revision."},
    },
    required=("workloadRef", "revision"),
)
_CLUSTER = object_field(
    "How the revision fared on one SyncTarget.",
    {
        "name": string_field("The SyncTarget."),
        "state": enum_field(
            "Progressing, Available or Failed (not available by the progress deadline).", CLUSTER_STATES
        ),
        "since": time_field("When it entered that state."),
        "seconds": {"type": "number", "description": "From the revision's start to available (Available only)."},
    },
    required=("name", "state"),
)
_REVISION_STATUS = object_field(
    "WorkloadRevisionStatus: the revision's rollout across the fleet.",
    {
        "phase": enum_field(
            "Progressing; Available (available on every cluster); Failed; Superseded by a newer revision before it "
            "was available; RolledBack (a RollbackPolicy or an undo replaced it).",
            REVISION_PHASES,
        ),
        "healthy": {"type": "boolean", "description": "Whether it has been available on every cluster."},
        "startedAt": time_field("When it was recorded."),
        "completedAt": time_field("When it became available on every cluster."),
        "clusters": list_field("One entry per SyncTarget the workload is placed on.", _CLUSTER),
        "message": string_field("Why it is in its phase."),
    },
)
REVISION_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    REVISION_KIND,
    "WorkloadRevision records one revision of a placed workload: its spec, the configuration it reads, its author, "
    "and where it became available.",
    _REVISION_SPEC,
    _REVISION_STATUS,
)
REVISION_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Workload", "type": "string", "jsonPath": ".spec.workloadRef.name"},
    {"name": "Revision", "type": "integer", "jsonPath": ".spec.revision"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "User", "type": "string", "jsonPath": ".spec.author.user"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
WORKLOAD_REVISIONS = tmc_kind(REVISION_KIND, "workloadrevisions", "wrev", REVISION_SCHEMA, REVISION_COLUMNS)

_POLICY_SPEC = object_field(
    "RollbackPolicySpec: which workload to watch and when a new revision counts as a regression.",
    {
        "targetRef": object_field(
            "The workload, in the policy's namespace.",
            {
                "apiVersion": string_field("Its API version (default apps/v1)."),
                "kind": string_field("Its kind."),
                "name": string_field("Its name."),
            },
            required=("kind", "name"),
        ),
        "progressDeadlineSeconds": int_field(
            "How long a new revision has to become available on a cluster (default 600).", minimum=1
        ),
        "maxUnavailableClusters": int_field(
            "How many clusters may miss the deadline without a rollback (default 0).", minimum=0
        ),
        "analysis": object_field(
            "Optional: a Prometheus query watched while the revision spreads, with the canary analysis' provider.",
            {
                "prometheus": object_field(
                    "Where and what to query.",
                    {
                        "address": string_field("Prometheus' base URL (default: the hub's --prometheus-url)."),
                        "query": string_field("An instant PromQL query; every series' value is compared."),
                    },
                    required=("query",),
                ),
                "failureThreshold": object_field(
                    "Roll back when a value satisfies `value <operator> threshold`.",
                    {
                        "operator": enum_field("The comparison.", OPERATORS),
                        "value": {"type": "number", "description": "The threshold."},
                    },
                    required=("operator", "value"),
                ),
                "intervalSeconds": int_field("Seconds between queries (default 30).", minimum=1),
            },
            required=("prometheus", "failureThreshold"),
        ),
    },
    required=("targetRef",),
)
_POLICY_STATUS = object_field(
    "RollbackPolicyStatus: what the policy last saw and did.",
    {
        "observedRevision": int_field("The revision it is watching.", "int64"),
        "lastRollback": object_field(
            "The last rollback it made.",
            {
                "from": int_field("The revision rolled back.", "int64"),
                "to": int_field("The healthy revision restored.", "int64"),
                "reason": string_field("ProgressDeadlineExceeded or AnalysisFailed."),
                "message": string_field("Which clusters, or which value."),
                "time": time_field("When."),
            },
        ),
        "conditions": CONDITIONS,
    },
)
POLICY_SCHEMA: dict[str, Any] = kind_schema(
    GROUP,
    VERSION,
    POLICY_KIND,
    "RollbackPolicy rolls a workload back everywhere to its last revision that was healthy everywhere when a new "
    "revision is not available in time on too many clusters, or a Prometheus query crosses its threshold.",
    _POLICY_SPEC,
    _POLICY_STATUS,
)
POLICY_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Kind", "type": "string", "jsonPath": ".spec.targetRef.kind"},
    {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name"},
    {"name": "Deadline", "type": "integer", "jsonPath": ".spec.progressDeadlineSeconds"},
    {"name": "Last-Rollback", "type": "string", "jsonPath": ".status.lastRollback.reason"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)
ROLLBACK_POLICIES = tmc_kind(POLICY_KIND, "rollbackpolicies", "rbp", POLICY_SCHEMA, POLICY_COLUMNS)

RESOURCES = (WORKLOAD_REVISIONS, ROLLBACK_POLICIES)


def revision_name(kind: str, workload: str, revision: int) -> str:
    """`<kind>-<workload>-<n>`, e.g. deployment-web-3 (names longer than 253 are cut; the labels still match)."""
    return f"{kind.lower()}-{workload}-{revision}"[:253]


def parse_undo(value: str) -> tuple[int | None, str] | None:
    """`<revision|previous>@<token>` -> (revision or None for previous, token); None when malformed."""
    target, sep, token = value.partition("@")
    if not sep or not token:
        return None
    if target == UNDO_PREVIOUS:
        return None, token
    return (int(target), token) if target.isdigit() and int(target) > 0 else None


def _bag(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def validate_revision(obj: dict[str, Any], old: dict[str, Any] | None, out: list[dict[str, str]]) -> None:
    """A revision's spec is a record: set once, never changed."""
    spec = _bag(obj.get("spec"))
    ref = _bag(spec.get("workloadRef"))
    for name in ("kind", "name"):
        if not ref.get(name):
            out.append(required(f"spec.workloadRef.{name}"))
    revision = spec.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 1:
        out.append(invalid("spec.revision", revision, "must be greater than or equal to 1"))
    if old is not None and old.get("spec") != obj.get("spec"):
        out.append(forbidden("spec", "a revision's spec is immutable"))


def validate_policy(obj: dict[str, Any], old: dict[str, Any] | None, out: list[dict[str, str]]) -> None:
    spec = _bag(obj.get("spec"))
    ref = _bag(spec.get("targetRef"))
    for name in ("kind", "name"):
        if not ref.get(name):
            out.append(required(f"spec.targetRef.{name}"))
    analysis = spec.get("analysis")
    if isinstance(analysis, dict):
        if not _bag(analysis.get("prometheus")).get("query"):
            out.append(required("spec.analysis.prometheus.query"))
        threshold = analysis.get("failureThreshold")
        if not isinstance(threshold, dict):
            out.append(required("spec.analysis.failureThreshold"))
        elif threshold.get("operator") not in OPERATORS:
            out.append(not_supported("spec.analysis.failureThreshold.operator", threshold.get("operator"), OPERATORS))
