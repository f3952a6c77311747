"""Rules decided in Python (cel/decide.py) give cel-cpp's answer wherever they give one: the same rules and values
run through both, and a valid object passes its common rules without a trip into cel-cpp."""

from __future__ import annotations

import random
import zlib
from typing import Any

import pytest

from tmc.apimachinery.cel import validator as validator_module
from tmc.apimachinery.cel.compiler import activation, compile_expression
from tmc.apimachinery.cel.decide import decider
from tmc.apimachinery.cel.folding import Unknown
from tmc.apimachinery.cel.rules import typed
from tmc.apimachinery.cel.validator import CelValidator

RULES = [
    "self.a >= 0 && self.a <= self.b",
    "self.a + self.b < 10",
    "self.a - self.b > -5",
    "self.a * self.b != 12",
    "self.a / self.b == -2",
    "self.a % self.b == 1",
    "-self.a < 0",
    "self.a == self.b || self.a != 3",
    "self.s.startsWith('ab') || self.s.endsWith('z')",
    "self.s.contains('é') == (self.s.size() > 2)",
    "self.s.size() <= 3",
    "size(self.l) == 2",
    "self.s in ['x', 'ab', 'é']",
    "self.a in self.l",
    "self.l.all(x, x > 0)",
    "self.l.exists(x, x == 2)",
    "self.l.exists_one(x, x == 2)",
    "self.l.map(x, x * 2).all(y, y < 10)",
    "self.l.filter(x, x > 1).size() == 1",
    "self.m.all(k, self.m[k] > 0)",
    "'k' in self.m",
    "has(self.opt) ? self.opt : true",
    "!has(self.p) || !self.p || self.a == 0",
    "self.l[0] == 1",
    "self.s < 'm' && self.s >= ''",
    "self.f > 1.5 || self.f <= -0.5",
    "self.n == null",
    "cel.bind(t, self.a + 1, t > 1)",
    "self.items.all(i, i.name.size() < 16 && i.port > 0)",
    "self.items.map(i, i.name).exists(n, n == 'http')",
    "self.a > 2 ? self.s != '' : self.l.size() >= 0",
]
NOT_MODELLED = [
    "self.a == 1u",  # uint
    "self.s.matches('^a')",  # a pattern not precomputed
    "int(self.f) == 1",
    "self.m == {'k': 1}",
    "self == oldSelf",
    "self.?opt.orValue(true)",
]
# Within int64: deciders are only given where the schema types every value (integers beyond it fail validation).
_EDGES = [0, 1, 2, 3, -1, -7, 9, (1 << 63) - 1, -(1 << 63), (1 << 62) + 1]
_STRINGS = ["", "x", "ab", "abz", "é", "aé", "zzzz", "m", "héé"]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return rng.choice(_EDGES)
    if kind == 1:
        return rng.choice(_STRINGS)
    if kind == 2:
        return rng.choice([True, False])
    if kind == 3:
        return rng.choice([0.0, 1.5, 2.5, -0.5, -3.25])
    if kind == 4:
        return None
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 6:
        return {rng.choice("kxy"): _random_value(rng, depth + 1) for _ in range(rng.randrange(3))}
    return [{"name": rng.choice(_STRINGS), "port": rng.choice(_EDGES[:6])} for _ in range(rng.randrange(3))]


def _typed_value(rng: random.Random) -> dict[str, Any]:
    """An object of the shape the rules expect, mostly: the decided path's common case."""
    return {
        "a": rng.randrange(-4, 8),
        "b": rng.choice([1, 2, 3, -2, 0]),
        "s": rng.choice(_STRINGS),
        "l": [rng.randrange(-1, 5) for _ in range(rng.randrange(4))],
        "m": {k: rng.randrange(-1, 3) for k in rng.sample("kxy", rng.randrange(3))},
        "f": rng.choice([0.0, 1.5, 2.5, -0.5]),
        "n": None,
        "items": [{"name": rng.choice(["http", "grpc", "a" * 20]), "port": rng.randrange(-1, 3)} for _ in range(2)],
        **({"opt": rng.choice([True, False])} if rng.random() < 0.5 else {}),
        **({"p": rng.choice([True, False])} if rng.random() < 0.5 else {}),
    }


def _values(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(count):
        if rng.random() < 0.5:
            out.append(_typed_value(rng))
        else:
            keys = ["a", "b", "s", "l", "m", "opt", "p", "f", "n", "items"]
            out.append({k: _random_value(rng) for k in keys if rng.random() < 0.85})
    return out


@pytest.mark.parametrize("source", RULES)
def test_a_decided_rule_is_what_cel_cpp_answers(source: str) -> None:
    program = compile_expression(source, "bool")
    decide = decider(program.tree, frozenset())
    assert decide is not None, f"{source} should be modelled"
    decided = 0
    for value in _values(zlib.crc32(source.encode()), 300):
        result, error = program.run(activation(value, None, False, False))
        try:
            verdict = decide({"self": value})
        except Unknown:
            continue
        decided += 1
        # A pass is a pass in cel-cpp; anything else (false, another type) is left to cel-cpp to word.
        assert (error is None and result is True) == verdict, (source, value, result, error, verdict)
    assert decided >= 60, f"only {decided} of 300 values decided for {source}"


@pytest.mark.parametrize("source", NOT_MODELLED)
def test_what_is_not_modelled_gets_no_decider(source: str) -> None:
    program = compile_expression(source, "bool")
    assert decider(program.tree, frozenset()) is None


def test_a_valid_object_passes_library_rules_without_cel_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [
        "self.replicas >= 0 && self.replicas <= self.maxReplicas",
        "self.image.matches('^[a-z0-9./-]+(:[a-zA-Z0-9._-]+)?$')",
        "self.ports.all(p, p.port > 0 && p.port < 65536)",
        "self.ports.map(p, p.name).isSorted()",
        "quantity(self.memory).isLessThan(quantity('64Gi'))",
        "isURL(self.endpoint) && url(self.endpoint).getScheme() == 'https'",
    ]
    spec_schema = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": r} for r in rules],
        "properties": {
            "replicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"},
            "image": {"type": "string", "maxLength": 64},
            "memory": {"type": "string", "maxLength": 16},
            "endpoint": {"type": "string", "maxLength": 64},
            "ports": {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 15}, "port": {"type": "integer"}},
                },
            },
        },
    }
    built, problems = CelValidator.build({"type": "object", "properties": {"spec": spec_schema}})
    assert built is not None and not problems
    spec = {
        "replicas": 3,
        "maxReplicas": 10,
        "image": "registry.example.com/app:1.2",
        "memory": "512Mi",
        "endpoint": "https://api.example.com/v1",
        "ports": [{"name": "grpc", "port": 9090}, {"name": "http", "port": 80}],
    }
    trips: list[Any] = []
    real = validator_module.activation
    monkeypatch.setattr(validator_module, "activation", lambda *a, **k: trips.append(a) or real(*a, **k))
    assert built.validate({"spec": spec}, None, []) == []
    assert trips == []
    # A failing object still goes to cel-cpp, and reads as it always did.
    broken = {**spec, "memory": "128Gi", "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 0}]}
    causes = built.validate({"spec": broken}, None, [])
    assert trips
    assert [c["message"] for c in causes] == [
        'Invalid value: "object": failed rule: self.ports.all(p, p.port > 0 && p.port < 65536)',
        'Invalid value: "object": failed rule: self.ports.map(p, p.name).isSorted()',
        "Invalid value: \"object\": failed rule: quantity(self.memory).isLessThan(quantity('64Gi'))",
    ]


def test_only_fully_typed_values_are_decided() -> None:
    scalar = {"type": "integer"}
    assert typed({"type": "object", "properties": {"a": scalar, "l": {"type": "array", "items": scalar}}})
    assert not typed({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    assert not typed({"type": "object", "properties": {"a": {"x-kubernetes-int-or-string": True}}})
    assert not typed({"type": "object", "additionalProperties": True})
    loose = {"type": "object", "properties": {"a": scalar, "free": {"type": "object", "additionalProperties": True}}}
    assert not typed(loose)
    assert typed(loose, frozenset({"a"}))  # a node whose rules read only `a` is handed only `a`
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-validations": [{"rule": "self.all(k, k != 'x')"}],
            }
        },
    }
    built, _ = CelValidator.build(schema)
    assert built is not None
    node = built.root.props["spec"]
    assert [rule.decide for rule in node.rules] == [None]
    assert built.validate({"spec": {"a": 1 << 63}}, None, []) == []  # cel-cpp's answer
    assert "failed rule" in built.validate({"spec": {"x": 1}}, None, [])[0]["message"]
