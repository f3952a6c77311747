"""Library calls on fields of `self` worked out in Python (tmc.apimachinery.cel.folding): a rule answers exactly
what it answers when cel-cpp calls the library itself, for good values, bad values, missing fields and other types,
and the rules that are rewritten are the ones whose calls depend on `self`'s fields only."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.apimachinery.cel import folding
from tmc.apimachinery.cel.validator import CelValidator

RULES = [
    "quantity(self.memory).isLessThan(quantity('64Gi'))",
    "isURL(self.endpoint) && url(self.endpoint).getScheme() == 'https'",
    "url(self.endpoint).getHost() != '' || self.endpoint.startsWith('/')",
    "isQuantity(self.memory) && quantity(self.memory).compareTo(quantity('1Gi')) >= 0",
    "quantity(self.memory).add(quantity(self.extra)).isGreaterThan(quantity('1Gi'))",
    "quantity(self.memory).sub(1).sign() >= 0",
    "quantity(self.memory).isInteger() ? quantity(self.memory).asInteger() > 1024 : true",
    "self.tags.isSorted() && self.tags.indexOf('b') != 0",
    "self.tags.map(t, t.size()).sum() < 40",
    "self.image.find('[0-9]+') != '7'",
    "self.image.findAll('[a-z]', 2).size() <= 2",
    "self.nested.level.matches('^[a-z]+$') && quantity(self.nested.size).isLessThan(quantity('1'))",
    "self.tags.all(t, quantity(self.memory).isGreaterThan(quantity('1')) || t == 'a')",
    "[1, 2].indexOf(self.count) >= -1",
    "self.ports.map(p, p.name).isSorted() && self.ports.map(p, p.spec.port).sum() < 70000",
    "url(self.endpoint).getQuery().size() <= 1 && url(self.endpoint).getPort() in ['', '8443']",
]
PROPERTIES: dict[str, Any] = {
    "memory": {"type": "string"},
    "extra": {"type": "string"},
    "endpoint": {"type": "string"},
    "image": {"type": "string"},
    "count": {"type": "integer"},
    "ports": {
        "type": "array",
        "maxItems": 4,
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "spec": {"type": "object", "properties": {"port": {"type": "integer"}}},
            },
        },
    },
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
    "nested": {"type": "object", "properties": {"level": {"type": "string"}, "size": {"type": "string"}}},
}
GOOD = {
    "memory": "2Gi",
    "extra": "512Mi",
    "endpoint": "https://example.com:8443/a?b=c",
    "image": "nginx17",
    "count": 2,
    "tags": ["a", "b"],
    "nested": {"level": "low", "size": "500m"},
    "ports": [{"name": "grpc", "spec": {"port": 9090}}, {"name": "http", "spec": {"port": 80}}],
}
VARIANTS: list[dict[str, Any]] = [
    {},
    {"memory": "128Gi"},
    {"memory": "1500"},
    {"memory": "bogus"},
    {"memory": 5},
    {"memory": None},
    {"extra": "-3Gi"},
    {"endpoint": "http://example.com"},
    {"endpoint": "/just/a/path"},
    {"endpoint": "not a url"},
    {"endpoint": 3},
    {"tags": ["b", "a"]},
    {"tags": []},
    {"tags": ["b"]},
    {"image": "nginx"},
    {"image": "x7"},
    {"count": 1},
    {"nested": {"level": "LOW", "size": "2"}},
    {"nested": {}},
    {"ports": [{"name": "z", "spec": {"port": 1}}, {"name": "a", "spec": {"port": 2}}]},
    {"ports": [{"name": "a", "spec": {"port": 65535}}, {"name": "b", "spec": {"port": 65535}}]},
    {"ports": [{"name": "a"}]},
    {"ports": [{"name": 1, "spec": {"port": 1}}, {"name": "b", "spec": {"port": 2}}]},
    {"ports": []},
]
MISSING = ["memory", "endpoint", "tags", "nested", "image", "extra"]


def _schema(rules: list[str], description: str) -> dict[str, Any]:
    validations = [{"rule": r} for r in rules]
    schema = {"type": "object", "description": description, "properties": PROPERTIES}
    return {**schema, "x-kubernetes-validations": validations}


def _objects() -> list[dict[str, Any]]:
    out = [{**GOOD, **v} for v in VARIANTS]
    out += [{k: v for k, v in GOOD.items() if k != gone} for gone in MISSING]
    return out


def _messages(validator: CelValidator, obj: dict[str, Any]) -> list[str]:
    return sorted(c["message"] for c in validator.validate(obj, None, []))


def _build(rules: list[str], fold: bool = True) -> CelValidator:
    original = folding.rewrite
    if not fold:
        folding.rewrite = lambda *args, **kwargs: None
    try:
        # the description keeps the two apart in the validators' cache (keyed by the schema)
        validator, problems = CelValidator.build(_schema(rules, f"fold={fold}"))
    finally:
        folding.rewrite = original
    assert validator is not None and not problems
    assert fold or not validator.root.folds
    return validator


@pytest.fixture(scope="module")
def folded() -> CelValidator:
    return _build(RULES)


def test_same_answers_as_cel_calling_the_library(folded: CelValidator) -> None:
    plain = _build(RULES, fold=False)
    for obj in _objects():
        assert _messages(folded, obj) == _messages(plain, obj), obj
    assert any(_messages(folded, obj) for obj in _objects()) and not _messages(folded, GOOD)


def test_calls_on_self_fields_are_folded_and_the_rest_left_to_cel(folded: CelValidator) -> None:
    keys = {f.key for f in folded.root.folds}
    assert "isLessThan@(quantity(self.memory),quantity('64Gi'))" in keys
    assert "getScheme@(url(self.endpoint))" in keys
    assert "isLessThan@(quantity(self.nested.size),quantity('1'))" in keys
    # a call inside a comprehension that reads only `self` folds; one on the comprehension's variable does not
    assert "isGreaterThan@(quantity(self.memory),quantity('1'))" in keys
    assert "isSorted@(map(self.ports,name))" in keys and "sum@(map(self.ports,spec.port))" in keys
    # a projection that is not a field of the element is left to CEL
    assert not any("self.tags" in k and "map" in k for k in keys)
    fast = {r.source for r in folded.root.rules if r.program is not None and r.program.fast is not None}
    assert RULES[0] in fast and RULES[1] in fast and "self.tags.map(t, t.size()).sum() < 40" not in fast


def test_equal_calls_share_one_variable(folded: CelValidator) -> None:
    keys = [f.key for f in folded.root.folds]
    assert len(keys) == len(set(keys))
    assert "isURL(self.endpoint)" in keys


@pytest.mark.parametrize(
    "rule",
    [
        "(quantity(self.memory)).isLessThan(quantity('64Gi'))",
        "quantity( self.memory ) . isLessThan ( quantity('6' + '4Gi') )",
        "quantity(self.memory).isLessThan(quantity('64Gi')) // a comment (with a paren",
        'quantity(self.memory) \n  .isLessThan(quantity("64Gi"))',
        "quantity(self.memory).isLessThan(quantity(')'))",
    ],
)
def test_unusual_spelling_is_folded_or_left_alone_never_misread(rule: str) -> None:
    folded, plain = _build([rule]), _build([rule], fold=False)
    for obj in _objects():
        assert _messages(folded, obj) == _messages(plain, obj), obj
