"""x-kubernetes-validations on custom resources: where rules run, transition rules, messages, fieldPath/reason,
ratcheting, the cost limits, and CRD validation of the rules themselves."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tmc.apimachinery import errors
from tmc.apimachinery.cel import check_rules
from tmc.apimachinery.cel.cost import PER_RULE_LIMIT, Estimator
from tmc.apimachinery.cel.validator import CelValidator
from tmc.apimachinery.crd_schema import StructuralSchema
from tmc.apimachinery.crd_validation import crd_defaults, validate_crd
from tmc.apimachinery.validation import validate_custom_resource
from tmc.registry.admission import admit
from tmc.registry.resources import crd_resources
from tmc.registry.service import WriteOptions

Obj = dict[str, Any]
ROOT = "spec.versions[0].schema.openAPIV3Schema"


def widget_schema(spec_rules: list[Obj] | None = None, **extra_props: Obj) -> Obj:
    spec: Obj = {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer"},
            "max": {"type": "integer"},
            "mode": {"type": "string", "maxLength": 20},
            "ports": {
                "type": "array",
                "maxItems": 10,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 10},
                        "port": {
                            "type": "integer",
                            "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "port may only grow"}],
                        },
                    },
                },
            },
            "tags": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 10}},
            "labels": {"type": "object", "maxProperties": 5, "additionalProperties": {"type": "string"}},
            **extra_props,
        },
    }
    if spec_rules:
        spec["x-kubernetes-validations"] = spec_rules
    return {"type": "object", "properties": {"spec": spec, "status": {"type": "object", "properties": {}}}}


def widget(**spec: Any) -> Obj:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "d"}, "spec": spec}


def causes(schema: Obj, obj: Obj, old: Obj | None = None) -> list[dict[str, str]]:
    validator, problems = CelValidator.build(schema)
    assert not problems and validator is not None
    return validator.validate(obj, old, [])


def test_rule_failure_names_the_node_and_its_type() -> None:
    schema = widget_schema([{"rule": "self.replicas <= self.max", "message": "replicas above max"}])
    assert causes(schema, widget(replicas=2, max=3)) == []
    assert causes(schema, widget(replicas=4, max=3)) == [
        {"type": "FieldValueInvalid", "message": 'Invalid value: "object": replicas above max', "field": "spec"}
    ]


def test_default_message_and_string_node() -> None:
    schema = widget_schema(mode={"type": "string", "x-kubernetes-validations": [{"rule": "self != 'off'"}]})
    assert causes(schema, widget(mode="off")) == [
        {
            "type": "FieldValueInvalid",
            "message": "Invalid value: \"string\": failed rule: self != 'off'",
            "field": "spec.mode",
        }
    ]


def test_root_rule_sees_only_name_and_generate_name_of_metadata() -> None:
    schema = widget_schema()
    schema["x-kubernetes-validations"] = [
        {"rule": "self.metadata.name.size() <= 3 && !has(self.metadata.generateName)", "message": "short names"}
    ]
    assert causes(schema, widget()) == []
    obj = widget()
    obj["metadata"]["name"] = "toolong"
    assert causes(schema, obj) == [
        {"type": "FieldValueInvalid", "message": 'Invalid value: "object": short names', "field": "<nil>"}
    ]


def test_message_expression_field_path_and_reasons() -> None:
    rules = [
        {
            "rule": "self.replicas <= self.max",
            "messageExpression": "'replicas ' + string(self.replicas) + ' exceed ' + string(self.max)",
            "fieldPath": ".replicas",
        },
        {"rule": "self.mode != 'x'", "message": "mode x", "reason": "FieldValueForbidden", "fieldPath": ".mode"},
        {"rule": "has(self.tags)", "message": "tags needed", "reason": "FieldValueRequired", "fieldPath": ".tags"},
        {"rule": "self.tags.size() < 2", "reason": "FieldValueDuplicate", "fieldPath": ".tags"},
        {"rule": "self.mode != 'y'", "message": "fallback", "messageExpression": "1 / 0 == 1 ? 'a' : 'b'"},
    ]
    schema = widget_schema(rules)
    got = causes(schema, widget(replicas=5, max=1, mode="x"))
    assert got[:3] == [
        {
            "type": "FieldValueInvalid",
            "message": 'Invalid value: "object": replicas 5 exceed 1',
            "field": "spec.replicas",
        },
        {"type": "FieldValueForbidden", "message": "Forbidden: mode x", "field": "spec.mode"},
        {"type": "FieldValueRequired", "message": "Required value: tags needed", "field": "spec.tags"},
    ]
    # `self.tags` of an object without tags is an evaluation error, reported on the rule's node
    missing = 'Invalid value: "object": no such key: tags'
    assert got[3] == {"type": "FieldValueInvalid", "message": missing, "field": "spec"}
    assert len(got) == 4
    assert causes(schema, widget(replicas=0, max=1, mode="q", tags=["a", "b"]))[0] == {
        "type": "FieldValueDuplicate",
        "message": 'Duplicate value: "object"',
        "field": "spec.tags",
    }
    # a messageExpression that fails falls back to the message
    assert causes(schema, widget(replicas=0, max=1, mode="y", tags=[]))[0]["message"] == (
        'Invalid value: "object": fallback'
    )


def test_transition_rules_run_on_update_only() -> None:
    schema = widget_schema([{"rule": "self.mode == oldSelf.mode", "message": "field is immutable"}])
    assert causes(schema, widget(mode="a")) == []
    assert causes(schema, widget(mode="a"), widget(mode="a")) == []
    assert causes(schema, widget(mode="b", replicas=1), widget(mode="a")) == [
        {"type": "FieldValueInvalid", "message": 'Invalid value: "object": field is immutable', "field": "spec"}
    ]


def test_transition_rules_correlate_list_map_items_by_key() -> None:
    schema = widget_schema()
    old = widget(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    # reordered, one grown, one new: only an existing item that shrank fails
    new = widget(ports=[{"name": "https", "port": 444}, {"name": "new", "port": 1}, {"name": "http", "port": 79}])
    assert causes(schema, new, old) == [
        {
            "type": "FieldValueInvalid",
            "message": 'Invalid value: "integer": port may only grow',
            "field": "spec.ports[2].port",
        }
    ]
    assert causes(schema, new) == []  # create: no old values at all


def test_optional_old_self_runs_on_create() -> None:
    rule = {
        "rule": "oldSelf.hasValue() ? self.max >= oldSelf.value().max : self.max <= 10",
        "optionalOldSelf": True,
        "message": "max may not shrink, and starts at most 10",
    }
    schema = widget_schema([rule])
    assert causes(schema, widget(max=5)) == []
    assert len(causes(schema, widget(max=11))) == 1  # create: oldSelf is empty
    assert causes(schema, widget(max=20), widget(max=11)) == []
    assert len(causes(schema, widget(max=3, replicas=1), widget(max=11))) == 1
    orvalue = widget_schema([{"rule": "self.max >= oldSelf.orValue(self).max", "optionalOldSelf": True}])
    assert causes(orvalue, widget(max=1)) == []


def test_unchanged_values_are_ratcheted() -> None:
    schema = widget_schema([{"rule": "self.replicas <= self.max", "message": "replicas above max"}])
    stored = widget(replicas=5, max=1)  # stored before the rule existed
    assert causes(schema, copy.deepcopy(stored), stored) == []
    changed = widget(replicas=6, max=1)
    assert len(causes(schema, changed, stored)) == 1


def test_map_values_and_list_items_get_their_paths() -> None:
    schema = widget_schema()
    schema["properties"]["spec"]["properties"]["labels"]["additionalProperties"]["x-kubernetes-validations"] = [
        {"rule": "self.size() <= 3", "message": "short"}
    ]
    schema["properties"]["spec"]["properties"]["tags"]["items"]["x-kubernetes-validations"] = [
        {"rule": "self.lowerAscii() == self", "message": "lower case"}
    ]
    got = causes(schema, widget(labels={"a": "ok", "b": "toolong"}, tags=["x", "Y"]))
    assert [c["field"] for c in got] == ["spec.tags[1]", "spec.labels[b]"]


def test_rules_do_not_run_on_objects_with_type_errors() -> None:
    schema = widget_schema([{"rule": "self.replicas <= 1"}])
    validator, _ = CelValidator.build(schema)
    assert validator is not None
    prior = [{"type": "FieldValueTypeInvalid", "message": "x", "field": "spec.replicas"}]
    assert validator.validate(widget(replicas="a"), None, prior)[0]["message"].startswith(
        'Invalid value: "null": some validation rules were not checked'
    )


# --- CRD validation ----------------------------------------------------------------------------------------------


def crd(schema: Obj) -> Obj:
    return crd_defaults(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                        "subresources": {"status": {}},
                    }
                ],
            },
        }
    )


def test_crd_with_valid_rules_passes() -> None:
    schema = widget_schema([{"rule": "self.replicas <= self.max", "messageExpression": "'too many'"}])
    assert validate_crd(crd(schema)) == []


@pytest.mark.parametrize(
    ("rule", "field", "fragment"),
    [
        ({"rule": "self.replicas >"}, "rule", "compilation failed: ERROR: <input>:1:"),
        ({"rule": "self.replicas"}, "rule", ""),  # dyn: accepted, checked when it runs
        ({"rule": "'x'"}, "rule", "must evaluate to a bool"),
        ({"rule": ""}, "rule", "Required value"),
        ({"rule": "true", "reason": "Nope"}, "reason", "Unsupported value"),
        ({"rule": "true", "fieldPath": ".nothere"}, "fieldPath", "fieldPath must be a valid path"),
        ({"rule": "true", "messageExpression": "1 +"}, "messageExpression", "messageExpression compilation failed"),
        ({"rule": "true", "optionalOldSelf": True}, "optionalOldSelf", "may not be set if rule does not use oldSelf"),
        ({"rule": "true", "message": "a\nb"}, "message", "must not contain line breaks"),
    ],
)
def test_crd_rule_problems(rule: Obj, field: str, fragment: str) -> None:
    got = validate_crd(crd(widget_schema([rule])))
    if not fragment:
        assert got == []
        return
    path = f"{ROOT}.properties[spec].x-kubernetes-validations[0].{field}"
    assert [c["field"] for c in got] == [path]
    assert fragment in got[0]["message"]


def test_fields_the_schema_does_not_declare_do_not_compile() -> None:
    schema = widget_schema([{"rule": "self.replicas > 0 &&\n  self.replcas < 10"}])
    got = validate_crd(crd(schema))
    assert [c["field"] for c in got] == [f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule"]
    assert (
        "compilation failed: ERROR: <input>:2:7: undefined field 'replcas'\n |   self.replcas < 10\n | ......^"
        in (got[0]["message"])
    )
    # the root's metadata has only name and generateName, as upstream; maps, preserved and implicit fields are open
    root_rules = widget_schema()
    root_rules["x-kubernetes-validations"] = [{"rule": "has(self.metadata.namespace)"}]
    assert "undefined field 'namespace'" in validate_crd(crd(root_rules))[0]["message"]
    open_rules = widget_schema([{"rule": "self.labels.anything == 'x' && self.kind == 'Widget'"}])
    assert "undefined field 'kind'" in validate_crd(crd(open_rules))[0]["message"]
    root_rules["x-kubernetes-validations"] = [{"rule": "self.kind == 'Widget' && self.metadata.name != ''"}]
    assert validate_crd(crd(root_rules)) == []


def test_transition_rule_under_atomic_list_is_refused() -> None:
    schema = widget_schema()
    schema["properties"]["spec"]["properties"]["tags"]["items"]["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf"}
    ]
    got = validate_crd(crd(schema))
    assert len(got) == 1 and "oldSelf cannot be used on the uncorrelatable portion of the schema" in got[0]["message"]


def test_runaway_rule_is_refused_with_upstream_cost_message() -> None:
    schema = widget_schema(
        unbounded={"type": "array", "items": {"type": "string"}},
    )
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.unbounded.all(a, self.unbounded.all(b, a != b || a == b))"}
    ]
    got = validate_crd(crd(schema))
    fields = {c["field"]: c["message"] for c in got}
    rule_field = f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule"
    assert fields[rule_field].startswith(
        "Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule"
    )
    assert "estimated rule cost total for entire OpenAPIv3 schema exceeds budget" in fields[ROOT]


def test_runaway_message_expression_is_refused() -> None:
    schema = widget_schema(unbounded={"type": "array", "items": {"type": "string"}})
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {
            "rule": "true",
            "messageExpression": "self.unbounded.all(a, self.unbounded.all(b, a != b)) ? 'x' : 'y'",
        }
    ]
    got = validate_crd(crd(schema))
    assert [c["field"] for c in got] == [f"{ROOT}.properties[spec].x-kubernetes-validations[0].messageExpression"]
    assert got[0]["message"].startswith("Forbidden: estimated messageExpression cost exceeds budget by factor of")


def test_bounded_lists_keep_the_same_rule_within_budget() -> None:
    schema = widget_schema(bounded={"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}})
    schema["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.bounded.all(a, self.bounded.all(b, a != b || a == b))"}
    ]
    assert validate_crd(crd(schema)) == []


def test_per_crd_total_counts_rules_on_every_item() -> None:
    item_rule = {"rule": "self.all(x, x.size() < 5)"}
    schema = widget_schema(
        grid={
            "type": "array",
            "items": {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [item_rule]},
        }
    )
    got, _ = check_rules(schema, ROOT)
    assert any(c["field"] == ROOT and "cost total" in c["message"] for c in got)


def test_estimates_scale_with_declared_sizes() -> None:
    from tmc.apimachinery.cel.compiler import compile_expression

    rule = compile_expression("self.l.all(x, x.startsWith('a'))", "bool").tree
    small = {
        "type": "object",
        "properties": {"l": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}}},
    }
    big = copy.deepcopy(small)
    del big["properties"]["l"]["maxItems"]
    assert Estimator(small).cost(rule) < 100
    assert PER_RULE_LIMIT / 10 < Estimator(big).cost(rule) < PER_RULE_LIMIT  # ~1.5M items of a 3 MiB request
    # the runtime charge of an actual value of a few hundred bytes is small even for the unbounded schema
    assert Estimator(big, 512, cap=True).cost(rule) < 2000


def test_runtime_budget_stops_further_rules() -> None:
    # Each rule is affordable alone; many items of a big list together exceed the per-object budget.
    schema = widget_schema(
        rows={
            "type": "array",
            "items": {
                "type": "array",
                "maxItems": 100000,
                "items": {"type": "integer"},
                "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x >= 0))"}],
            },
        }
    )
    validator, _ = CelValidator.build(schema)
    assert validator is not None
    row = list(range(3000))
    got = validator.validate(widget(rows=[row, row, row]), None, [])
    assert got and any(
        "running out of cost budget" in c["message"] or "call cost exceeds limit" in c["message"] for c in got
    )


# --- through admission, as every write goes ----------------------------------------------------------------------


def test_admit_refuses_with_422_and_status_writes_validate_status() -> None:
    schema = widget_schema([{"rule": "self.replicas <= self.max", "message": "replicas above max"}])
    schema["properties"]["status"] = {
        "type": "object",
        "properties": {"ready": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.ready >= 0", "message": "ready is a count"}],
    }
    info = crd_resources(crd(schema))[0]
    admit(info, widget(replicas=1, max=2), None, WriteOptions())
    with pytest.raises(errors.StatusError) as refused:
        admit(info, widget(replicas=3, max=2), None, WriteOptions())
    assert refused.value.code == 422
    assert refused.value.details["causes"] == [
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "object": replicas above max', "field": "spec"}
    ]
    stored = widget(replicas=1, max=2)
    bad_status = {**copy.deepcopy(stored), "status": {"ready": -1}}
    with pytest.raises(errors.StatusError) as status_refused:
        admit(info, bad_status, stored, WriteOptions())
    assert status_refused.value.details["causes"][0]["field"] == "status"


def test_rules_compile_once_per_schema() -> None:
    schema = widget_schema([{"rule": "self.replicas <= self.max"}])
    first = StructuralSchema(schema).cel
    again = StructuralSchema(copy.deepcopy(schema)).cel
    assert first is not None and first is again
    assert (
        validate_custom_resource(crd_resources(crd(schema))[0], StructuralSchema(schema), widget(replicas=1, max=1))
        == []
    )


def test_only_the_fields_rules_read_are_handed_to_cel() -> None:
    from tmc.apimachinery.cel.ast import self_fields
    from tmc.apimachinery.cel.compiler import compile_expression

    def fields(rule: str) -> set[str] | None:
        return self_fields(compile_expression(rule, "bool").tree)

    assert fields("self.a > 1 && has(self.b) && self.c.all(x, x.d > 0)") == {"a", "b", "c"}
    assert fields("self == oldSelf") is None
    assert fields("self.size() > 1") is None
    assert fields("self.?a.orValue(1) == 1") is None
    schema = widget_schema()
    schema["x-kubernetes-validations"] = [{"rule": "self.metadata.name.startsWith('w')"}]
    validator, _ = CelValidator.build(schema)
    assert validator is not None and validator.root.fields == frozenset({"metadata"})
    assert causes(schema, widget(replicas=1, ports=[{"name": "a", "port": 1}])) == []


def test_number_fields_are_doubles_as_upstream_sees_them() -> None:
    schema = widget_schema(
        [{"rule": "self.ratio / 2.0 == 1.5 && self.weights.all(w, w / 2.0 == 0.5)", "message": "halves"}],
        ratio={"type": "number"},
        weights={"type": "array", "items": {"type": "number"}},
    )
    obj = widget(ratio=3, weights=[1, 1.0])
    assert causes(schema, obj) == []
    assert obj["spec"]["ratio"] == 3 and type(obj["spec"]["ratio"]) is int  # the stored object is not changed
