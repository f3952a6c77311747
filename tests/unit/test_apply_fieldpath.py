"""Field sets in the FieldsV1 wire format: how objects map to sets, the set algebra, paths and validation."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.apimachinery.fieldpath import (
    applied_set,
    difference,
    intersection,
    object_set,
    object_type,
    path_string,
    paths,
    union,
    valid_set,
)
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.apimachinery.schemas import Schema

DEPLOY = next(r for r in BUILTIN_RESOURCES if r.plural == "deployments")
T = object_type(DEPLOY.schema)


def deployment(*containers: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "3", "labels": {"a": "b"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers)}},
        },
    }


def test_applied_set_keys_containers_by_name_and_ports_by_port_and_protocol() -> None:
    obj = deployment({"name": "c", "image": "x", "ports": [{"containerPort": 80}]})
    s = applied_set(obj, T)
    assert s["f:metadata"] == {"f:labels": {"f:a": {}}}  # name, namespace, uid, resourceVersion are nobody's
    assert s["f:spec"]["f:selector"] == {}  # LabelSelector is an atomic map
    containers = s["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {
        'k:{"name":"c"}': {
            ".": {},
            "f:name": {},
            "f:image": {},
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
        }
    }


def test_object_set_marks_new_maps_and_lists_as_members_but_not_structs() -> None:
    s = object_set(deployment({"name": "c", "image": "x", "env": [{"name": "E", "value": "1"}]}), T)
    assert s["f:metadata"]["f:labels"] == {".": {}, "f:a": {}}
    assert "." not in s["f:spec"]
    container = s["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert "." not in s["f:spec"]["f:template"]["f:spec"]["f:containers"]  # required: always there upstream
    assert container["f:env"] == {".": {}, 'k:{"name":"E"}': {".": {}, "f:name": {}, "f:value": {}}}


def test_sets_of_scalars_are_keyed_by_value() -> None:
    schema = Schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "atomic": {"type": "array", "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }
            },
        },
        {},
    )
    s = applied_set({"spec": {"tags": ["a", "b"], "atomic": ["x"], "free": {"k": {"n": [1]}}}}, object_type(schema))
    assert s == {"f:spec": {"f:tags": {'v:"a"': {}, 'v:"b"': {}}, "f:atomic": {}, "f:free": {"f:k": {"f:n": {}}}}}


def test_union_difference_intersection() -> None:
    a = {"f:spec": {"f:replicas": {}, "f:paused": {}}}
    b = {"f:spec": {"f:replicas": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}
    assert union(a, b) == {
        "f:spec": {"f:replicas": {}, "f:paused": {}},
        "f:metadata": {"f:labels": {".": {}, "f:x": {}}},
    }
    assert difference(a, b) == {"f:spec": {"f:paused": {}}}
    assert intersection(a, b) == {"f:spec": {"f:replicas": {}}}
    assert difference(a, {"f:status": {}}) is a  # nothing taken: the same object back
    assert difference(a, a) == {}
    assert intersection(a, {"f:status": {}}) == {}


def test_union_of_a_member_leaf_and_its_children_keeps_the_member() -> None:
    assert union({"f:labels": {}}, {"f:labels": {"f:x": {}}}) == {"f:labels": {"f:x": {}, ".": {}}}
    assert difference({"f:labels": {".": {}, "f:x": {}}}, {"f:labels": {"f:x": {}}}) == {"f:labels": {}}
    assert difference({"f:labels": {".": {}, "f:x": {}}}, {"f:labels": {}}) == {"f:labels": {"f:x": {}}}


def test_paths_render_as_upstream() -> None:
    s = {
        "f:spec": {
            "f:replicas": {},
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}}}}},
            "f:ports": {'k:{"port":80,"protocol":"TCP"}': {}},
            "f:tags": {'v:"a"': {}},
        }
    }
    rendered = [path_string(p) for p in paths(s)]
    assert rendered == [
        '.spec.ports[port=80,protocol="TCP"]',
        ".spec.replicas",
        '.spec.tags[="a"]',
        '.spec.template.spec.containers[name="c"]',
        '.spec.template.spec.containers[name="c"].image',
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"f:spec": {"f:replicas": {}}},
        {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}},
        {"f:list": {'k:{"name":"c"}': {".": {}}, 'v:"x"': {}, "i:3": {}}},
    ],
)
def test_valid_sets(fields: dict[str, Any]) -> None:
    assert valid_set(fields)


@pytest.mark.parametrize(
    "fields",
    ["garbage", {"spec": {}}, {"f:spec": []}, {"k:{bad": {}}, {"f:x": {".": {"f:y": {}}}}, {"i:x": {}}, {"f:": {}}],
)
def test_malformed_sets(fields: Any) -> None:
    assert not valid_set(fields)


def test_map_values_share_one_type_whatever_the_key() -> None:
    labels = T.child("metadata").child("labels")
    assert labels.child("a") is labels.child("b")
    assert not labels._children  # keys of maps are data, not schema: nothing cached per key
