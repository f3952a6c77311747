"""CRD validation of `x-kubernetes-validations`: rules must compile, name a valid fieldPath and reason, use
`oldSelf` only where an old value can be found, and fit the cost limits (each rule's own estimate, and the sum over
the schema of each rule's estimate times how often it can run in one object)."""

from __future__ import annotations

from typing import Any

from tmc.apimachinery.cel.cost import PER_CRD_LIMIT, PER_RULE_LIMIT, cost_factor_message
from tmc.apimachinery.cel.rules import REASONS, Node, Problem, Rule
from tmc.apimachinery.cel.validator import CelValidator
from tmc.apimachinery.validation_common import Cause, forbidden, invalid, not_supported, required

_UNCORRELATABLE = "oldSelf cannot be used on the uncorrelatable portion of the schema within {}"


def _schema_path(base: str, where: tuple[str, ...]) -> str:
    out = base
    i = 0
    while i < len(where):
        if where[i] == "properties":
            out += f".properties[{where[i + 1]}]"
            i += 2
        else:
            out += f".{where[i]}"
            i += 1
    return out


def _rules(node: Node | None) -> list[Rule]:
    if node is None:
        return []
    out = list(node.rules)
    for child in node.props.values():
        out.extend(_rules(child))
    out.extend(_rules(node.values))
    out.extend(_rules(node.items))
    return out


def _problem_cause(path: str, problem: Problem) -> Cause:
    field = f"{path}.x-kubernetes-validations[{problem.index}]" + (f".{problem.key}" if problem.key else "")
    if problem.kind == "required":
        return required(field)
    if problem.kind == "not_supported":
        return not_supported(field, problem.value, REASONS)
    if problem.kind == "forbidden":
        return forbidden(field, problem.detail)
    return invalid(field, problem.value, problem.detail)


def check_rules(schema: dict[str, Any], path: str) -> tuple[list[Cause], CelValidator | None]:
    """Causes for the rules of one version's `openAPIV3Schema` at `path`, and the compiled validator."""
    validator, problems = CelValidator.build(schema)
    out: list[Cause] = []
    for where, found in problems.items():
        out.extend(_problem_cause(_schema_path(path, where), p) for p in found)
    total = 0
    for rule in _rules(validator.root if validator is not None else None):
        rule_path = f"{_schema_path(path, rule.where)}.x-kubernetes-validations[{rule.index}].rule"
        if rule.program is not None and rule.program.uses_old and not rule.correlatable:
            out.append(invalid(rule_path, rule.source, _UNCORRELATABLE.format(_schema_path(path, rule.where))))
        if rule.cost > PER_RULE_LIMIT:
            out.append(forbidden(rule_path, cost_factor_message("estimated rule cost", rule.cost, PER_RULE_LIMIT)))
        total += rule.cost * rule.cardinality
    if total > PER_CRD_LIMIT:
        what = "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema"
        out.append(forbidden(path, cost_factor_message(what, total, PER_CRD_LIMIT)))
    return out, validator
