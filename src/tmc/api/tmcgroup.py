"""tmc.kcp.io/v1alpha1: the group of the kinds kcp never had (CanaryDeployment, WorkloadRevision, RollbackPolicy).
Each is namespaced, has a status subresource and belongs to the `tmc` category."""

from __future__ import annotations

from typing import Any

from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.schemas import Schema, builtin_definitions

GROUP = "tmc.kcp.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def tmc_kind(
    kind: str, plural: str, short_name: str, schema: dict[str, Any], columns: tuple[dict[str, Any], ...]
) -> ResourceInfo:
    return ResourceInfo(
        group=GROUP,
        version=VERSION,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=True,
        short_names=(short_name,),
        categories=("tmc",),
        subresources=("status",),
        schema=Schema(schema, builtin_definitions()),
        definition_name=f"io.kcp.tmc.{VERSION}.{kind}",
        printer_columns=columns,
    )
