"""The mesh routing CRDs of deploy/crds: valid structural CRDs with Istio's and Gateway API's names and versions, whose
typed fields take the manifests users write for real Istio and Gateway API, and which `tmc up`'s syncers sync."""

from __future__ import annotations

from typing import Any

from tmc.apimachinery.crd_schema import StructuralSchema
from tmc.apimachinery.crd_validation import validate_crd
from tmc.cli.up import synced_resource_types
from tmc.registry.resources import crd_resources
from tmc.sim.meshcrds import MESH_RESOURCE_TYPES, mesh_crds
from tmc.syncer.resources import parse_resource_types


def by_name() -> dict[str, dict[str, Any]]:
    return {crd["metadata"]["name"]: crd for crd in mesh_crds()}


def test_the_crds_are_valid_and_named_as_istio_and_gateway_api_name_them() -> None:
    crds = by_name()
    assert sorted(crds) == sorted(MESH_RESOURCE_TYPES)
    for name, crd in crds.items():
        assert validate_crd(crd) == [], name
        served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
        assert [v["name"] for v in crd["spec"]["versions"] if v["storage"]] == ["v1"], name
        assert "v1beta1" in served, name
        # Each version serves the status subresource, which the syncer copies up.
        assert all(info.subresources == ("status",) for info in crd_resources(crd)), name
    assert crds["virtualservices.networking.istio.io"]["spec"]["names"]["shortNames"] == ["vs"]
    assert crds["destinationrules.networking.istio.io"]["spec"]["names"]["shortNames"] == ["dr"]


def test_istio_and_gateway_api_manifests_validate_and_get_gateway_api_defaults() -> None:
    schemas = {}
    for crd in mesh_crds():
        schema = StructuralSchema.from_crd(crd, "v1")
        assert schema is not None
        schemas[crd["spec"]["names"]["plural"]] = schema
    vs = {
        "hosts": ["reviews"],
        "gateways": ["mesh"],
        "http": [
            {
                "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
                "retries": {"attempts": 3},  # kept as written: Istio's schema is open there
            },
            {
                "route": [
                    {"destination": {"host": "reviews", "subset": "v1", "port": {"number": 9080}}, "weight": 75},
                    {"destination": {"host": "reviews", "subset": "v3"}, "weight": 25},
                ]
            },
        ],
    }
    schema = schemas["virtualservices"]
    assert schema.validate({"spec": vs}) == [] and schema.unknown_paths({"spec": vs}) == []
    assert schema.validate({"spec": {"http": [{"route": [{"destination": {"host": "r"}, "weight": "x"}]}]}}) != []
    route = {
        "parentRefs": [{"kind": "Service", "group": "", "name": "web"}],
        "rules": [{"backendRefs": [{"name": "a"}]}],
    }
    gateway = schemas["httproutes"]
    assert gateway.validate({"spec": route}) == []
    obj = {"spec": route}
    gateway.apply_defaults(obj)
    assert obj["spec"]["rules"][0]["backendRefs"][0] == {"name": "a", "weight": 1, "kind": "Service", "group": ""}


def test_tmc_up_syncs_the_mesh_types_besides_the_defaults() -> None:
    wanted = parse_resource_types(synced_resource_types())
    assert {
        ("networking.istio.io", "virtualservices"),
        ("networking.istio.io", "destinationrules"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("apps", "deployments"),
        ("", "services"),
    } <= set(wanted)
