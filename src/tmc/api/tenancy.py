"""tenancy.kcp.io/v1alpha1 Workspace: a child logical cluster created by an object in its parent workspace."""

from __future__ import annotations

from typing import Any

from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.schemas import Schema, builtin_definitions

GROUP = "tenancy.kcp.io"
VERSION = "v1alpha1"
WORKSPACE_FINALIZER = "tenancy.kcp.io/workspace-content"

_META_REF = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
_CONDITION = {
    "type": "object",
    "description": "Condition defines an observation of the workspace's state.",
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string", "description": "Type of condition in CamelCase, e.g. Ready."},
        "status": {"type": "string", "description": "Status of the condition: True, False or Unknown."},
        "severity": {
            "type": "string",
            "description": "How to interpret a False status: Error, Warning or Info (empty when True).",
        },
        "reason": {"type": "string", "description": "The reason for the last transition, in CamelCase."},
        "message": {"type": "string", "description": "A human-readable message about the last transition."},
        "lastTransitionTime": {
            "type": "string",
            "format": "date-time",
            "description": "When the condition last changed status.",
        },
    },
}

WORKSPACE_SCHEMA: dict[str, Any] = {
    "description": "Workspace defines a generic Kubernetes-cluster-like endpoint, with its own discovery, "
    "OpenAPI and objects, nested in its parent workspace.",
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": GROUP, "version": VERSION, "kind": "Workspace"}],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"type": "string", "description": "APIVersion of this representation of the object."},
        "kind": {"type": "string", "description": "Kind of this object: Workspace."},
        "metadata": _META_REF,
        "spec": {
            "type": "object",
            "description": "WorkspaceSpec holds the desired state of the Workspace.",
            "additionalProperties": False,
            "properties": {
                "type": {
                    "type": "object",
                    "description": "The type of the workspace (kcp WorkspaceType reference); defaults to universal.",
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "description": "Name of the WorkspaceType, e.g. universal."},
                        "path": {
                            "type": "string",
                            "description": "Workspace path holding the WorkspaceType; empty means the parent's.",
                        },
                    },
                },
                "location": {
                    "type": "object",
                    "description": "Constraints on where the workspace is scheduled (shards).",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "cluster": {"type": "string", "description": "The logical cluster backing this workspace."},
                "URL": {"type": "string", "description": "The address of the workspace's API."},
                "mount": {
                    "type": "object",
                    "description": "kcp's reference to an object that serves the workspace instead of a logical "
                    "cluster (kept so kcp manifests apply; TMC does not mount workspaces).",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
            },
        },
        "status": {
            "type": "object",
            "description": "WorkspaceStatus communicates the observed state of the Workspace.",
            "additionalProperties": False,
            "properties": {
                "phase": {"type": "string", "description": "Scheduling, Initializing, Ready or Terminating."},
                "conditions": {
                    "type": "array",
                    "description": "Current state of the workspace, one condition per type.",
                    "items": _CONDITION,
                },
                "initializers": {
                    "type": "array",
                    "description": "Initializers that must finish before the workspace is Ready (kcp's; TMC sets "
                    "none, a child workspace is ready at once).",
                    "items": {"type": "string"},
                },
                "terminators": {
                    "type": "array",
                    "description": "Terminators that must finish before a deleted workspace goes away (kcp's; TMC "
                    "sets none).",
                    "items": {"type": "string"},
                },
            },
        },
    },
}

WORKSPACE_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Type", "type": "string", "jsonPath": ".spec.type.name"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "URL", "type": "string", "jsonPath": ".spec.URL"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

WORKSPACES = ResourceInfo(
    group=GROUP,
    version=VERSION,
    kind="Workspace",
    plural="workspaces",
    singular="workspace",
    namespaced=False,
    short_names=("ws",),
    categories=("kcp",),
    subresources=("status",),
    schema=Schema(WORKSPACE_SCHEMA, builtin_definitions()),
    definition_name="io.kcp.tenancy.v1alpha1.Workspace",
    printer_columns=WORKSPACE_COLUMNS,
)


def child_cluster(parent: str, name: str) -> str:
    return f"{parent}:{name}"
