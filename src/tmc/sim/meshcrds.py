"""The mesh routing CRDs a simulated cluster serves from start (as if Istio and Gateway API were installed): Istio's
VirtualService and DestinationRule, Gateway API's HTTPRoute. The manifests ship with the package (sim/crds/, so an
installed `tmc` has them too); deploy/crds/ links to them, where `kubectl apply -f deploy/crds/` installs them on any
cluster, and `tmc up` installs them on the hub."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from tmc.apimachinery import errors
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.registry.service import ObjectService, WriteOptions

log = logging.getLogger("tmc.sim")

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRDS = next(r for r in BUILTIN_RESOURCES if r.plural == "customresourcedefinitions")
# `<resource>.<group>` of each routing type, as `tmc syncer --resource-types` names them.
MESH_RESOURCE_TYPES = (
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "httproutes.gateway.networking.k8s.io",
)


def mesh_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    """Every CRD manifest under `directory` (empty when it is missing)."""
    if not directory.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        with path.open() as f:
            out.extend(doc for doc in yaml.safe_load_all(f) if isinstance(doc, dict))
    return out


async def ensure_mesh_crds(service: ObjectService, cluster: str, directory: Path = CRD_DIR) -> list[str]:
    """Create the mesh CRDs that do not exist yet in `cluster`; returns the names of all of them."""
    crds = mesh_crds(directory)
    if not crds:
        log.warning("mesh CRDs not found; VirtualService and HTTPRoute are not served", extra={"path": str(directory)})
    for crd in crds:
        name = crd["metadata"]["name"]
        if service.store.get(CRDS.key(cluster, None, name)) is not None:
            continue
        try:
            await service.create(CRDS, cluster, None, crd, WriteOptions(field_manager="tmc-sim"))
        except errors.StatusError as e:
            if e.code != 409:
                raise
    return [crd["metadata"]["name"] for crd in crds]
