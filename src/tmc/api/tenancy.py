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
    "required": ["type", "status"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string"},
        "severity": {"type": "string"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
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
                    "properties": {"name": {"type": "string"}, "path": {"type": "string"}},
                },
                "location": {
                    "type": "object",
                    "description": "Constraints on where the workspace is scheduled (shards).",
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "cluster": {"type": "string", "description": "The logical cluster backing this workspace."},
                "URL": {"type": "string", "description": "The address of the workspace's API."},
                "mount": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {
            "type": "object",
            "description": "WorkspaceStatus communicates the observed state of the Workspace.",
            "additionalProperties": False,
            "properties": {
                "phase": {"type": "string", "description": "Scheduling, Initializing, Ready or Terminating."},
                "conditions": {"type": "array", "items": _CONDITION},
                "initializers": {"type": "array", "items": {"type": "string"}},
                "terminators": {"type": "array", "items": {"type": "string"}},
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
