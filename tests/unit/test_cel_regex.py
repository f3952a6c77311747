"""Constant `matches` patterns worked out in Python (tmc.apimachinery.cel.regex): the answer is always the one
cel-cpp's own RE2 `matches` gives, and a rule whose field is missing or not a string fails exactly as before."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.apimachinery.cel.compiler import _rule_env, literal_pattern
from tmc.apimachinery.cel.regex import compile_pattern, rewrite, translate
from tmc.apimachinery.cel.rules import compile_expression
from tmc.apimachinery.cel.validator import CelValidator

# Patterns as real CRDs write them (image references, DNS names, durations, quantities, semver, emails).
PATTERNS = [
    r"^[a-z0-9./-]+(:[a-zA-Z0-9._-]+)?$",
    r"^([a-z0-9]+([._-][a-z0-9]+)*)(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[a-zA-Z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$",
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$",
    r"^\S+@\S+\.\w+$",
    r"\bprod\b",
    r"^\s*$",
    r"a.c",
    r"(?:ab|cd){2,3}?x",
    r"[^\d\s]+",
    r"^(?P<key>[a-z]+)=(?P<value>.*)$",
    r"^[\w.-]{1,63}$",
    r"é+",
    r"$",
]
SAMPLES = [
    "",
    "nginx",
    "registry.example.com/team/app:1.2.3",
    "registry.example.com/team/app:1.2.3\n",
    "Registry.Example.com/App",
    "a" * 64,
    "my-app.example.com",
    "-bad-.example",
    "1h30m",
    "1.5s",
    "v1.2.3-rc.1",
    "01.2.3",
    "user@example.com",
    "no at sign",
    "the prod cluster",
    "production",
    "   ",
    "\v",
    "\t\n",
    "abc",
    "a\nc",
    "ababx",
    "cdcdcdx",
    "١٢٣",  # Arabic-Indic digits: not \d for RE2
    "key=value=more",
    "é",
    "Ünïcode",
]


def cel_matches(value: str, pattern: str) -> bool:
    program = _rule_env().compile("self[0].matches(self[1])")
    return bool(program.eval(_rule_env().Activation(data={"self": [value, pattern]})).plain_value())


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_python_pattern_answers_as_re2_does(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    assert compiled is not None, f"{pattern!r} should be taken"
    for value in SAMPLES:
        assert (compiled.search(value) is not None) == cel_matches(value, pattern), (pattern, value)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)abc",  # flags: Unicode case folding differs
        r"\p{L}+",  # Unicode classes
        r"[[:alpha:]]+",  # POSIX class: a plain `[` for Python
        r"a{,3}",  # a literal for RE2, {0,3} for Python
        r"a*+",  # possessive: RE2 refuses it
        r"(a)\1",  # back-reference: RE2 refuses it
        r"\Qa.b\E",
        r"a{1001}",  # over RE2's repeat limit
        r"(?<name>a)",
    ],
)
def test_patterns_whose_meaning_might_differ_are_left_to_cel(pattern: str) -> None:
    assert translate(pattern) is None or compile_pattern(pattern) is None


def rewritten(source: str) -> tuple[str, frozenset[str]] | None:
    program = compile_expression(source, "bool")
    return rewrite(source, program.tree, [], literal_pattern)


def test_only_constant_matches_on_fields_of_self_are_rewritten() -> None:
    assert rewritten("self.image.matches('^[a-z]+$')") == ("(__tmc_re0)", frozenset({"__tmc_re0"}))
    assert rewritten("self.matches('^[a-z]+$') && self.size() < 5") == (
        "(__tmc_re0) && self.size() < 5",
        frozenset({"__tmc_re0"}),
    )
    assert rewritten(r"""!has(self.a.b) || self.a . b.matches(r'^\d+$')""") == (
        "!has(self.a.b) || (__tmc_re0)",
        frozenset({"__tmc_re0"}),
    )
    # a pattern from the object, a list element, a pattern RE2 refuses, a string that only looks like a call
    assert rewritten("self.image.matches(self.pattern)") is None
    assert rewritten("self.tags.all(t, t.matches('^[a-z]+$'))") is None
    assert rewritten("self.image.matches('a**')") is None
    assert rewritten("self.note == \"self.image.matches('x')\"") is None
    # a comprehension that names its variable `self`
    assert rewritten("self.tags.all(self, self.matches('^a'))") is None


def test_one_node_shares_a_variable_between_rules_with_the_same_match() -> None:
    bindings: list[Any] = []
    for source in ("self.a.matches('^x')", "self.b.matches('^x')", "self.a.matches('^x') || self.c == 1"):
        program = compile_expression(source, "bool")
        rewrite(source, program.tree, bindings, literal_pattern)
    assert [(b.name, b.path) for b in bindings] == [("__tmc_re0", ("a",)), ("__tmc_re1", ("b",))]


def schema(rules: list[dict[str, Any]], bounded: bool) -> dict[str, Any]:
    """Bounded strings make the rules cheap enough to share one evaluation; unbounded ones run one by one."""
    limit = {"maxLength": 64} if bounded else {}
    spec = {
        "type": "object",
        "properties": {"image": {"x-kubernetes-int-or-string": True, **limit}, "tag": {"type": "string", **limit}},
        "x-kubernetes-validations": rules,
    }
    return {"type": "object", "properties": {"spec": spec}}


RULES = [
    {"rule": "self.image.matches('^[a-z0-9./-]+(:[a-zA-Z0-9._-]+)?$')", "message": "bad image"},
    {"rule": "!has(self.tag) || self.tag.matches('^v[0-9]+$')", "message": "bad tag"},
    {"rule": "self.image.matches('^[a-z]') && self.tag.size() < 8", "message": "short tag"},
]


@pytest.mark.parametrize(
    "spec",
    [
        {"image": "nginx:1.25", "tag": "v1"},
        {"image": "Nginx", "tag": "v1"},
        {"image": "nginx", "tag": "latest"},
        {"image": "nginx"},  # a missing field: the original rule runs and errors as it did
        {"image": 5, "tag": "v1"},  # not a string: the same
        {"tag": "v12345678"},
        {"image": "nginx:1.25\n", "tag": "v1\n"},
    ],
)
@pytest.mark.parametrize("bounded", [True, False])
def test_a_validator_answers_the_same_with_and_without_precomputed_matches(spec: dict[str, Any], bounded: bool) -> None:
    validator, problems = CelValidator.build(schema(RULES, bounded))
    assert validator is not None and not problems
    node = validator.root.props["spec"]
    assert node.matches, "the rules' patterns are worked out in Python"
    if bounded:
        assert node.batch is not None and node.batch.fast is not None
    else:
        assert node.batch is None and all(r.program and r.program.fast for r in node.rules)
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec}
    with_matches = validator.validate(obj, None, [])
    saved = node.matches
    node.matches = ()  # the rules as cel-cpp runs them on its own
    try:
        plain = validator.validate(obj, None, [])
    finally:
        node.matches = saved
    assert with_matches == plain
