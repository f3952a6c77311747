"""Building a Placement from command-line flags: selectors, strategy, replicas, weights, spread, capabilities.

Each flag's text is parsed here, and a bad value is a `click.BadParameter` naming the flag and the expected form,
so `placement create` and `placement update` (in `kubectl tmc` and `tmcctl`) read flags identically.
"""

from __future__ import annotations

from typing import Any

import click

from tmc.api.scheduling import API_VERSION, LOCATION_RESOURCE, STRATEGIES

_OPS = {"=": "In", "in": "In", "!=": "NotIn", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist"}


def selector_object(text: str, flag: str) -> dict[str, Any]:
    """A label selector string (`a=b,c in (d,e),!f`) as a metav1.LabelSelector; "" selects everything ({})."""
    from tmc.apimachinery.errors import StatusError
    from tmc.apimachinery.selectors import parse_label_selector

    try:
        parsed = parse_label_selector(text)
    except (ValueError, StatusError) as e:
        raise click.BadParameter(f"{text!r}: {getattr(e, 'message', e)}", param_hint=flag) from None
    labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for req in parsed.requirements:
        if req.operator == "=" and len(req.values) == 1:
            labels[req.key] = req.values[0]
        elif req.operator in _OPS:
            expr: dict[str, Any] = {"key": req.key, "operator": _OPS[req.operator]}
            if req.values:
                expr["values"] = sorted(req.values)
            expressions.append(expr)
        else:
            raise click.BadParameter(f"{text!r}: operator {req.operator} has no LabelSelector form", param_hint=flag)
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if expressions:
        out["matchExpressions"] = expressions
    return out


def strategy(value: str) -> str:
    for s in STRATEGIES:
        if s.lower() == value.lower():
            return s
    raise click.BadParameter(f"{value!r} is not one of {', '.join(STRATEGIES)}", param_hint="--strategy")


def weights(text: str) -> list[dict[str, Any]]:
    """`region=eu:3,region=us:1` -> static weights per SyncTarget label."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        selector, colon, weight = part.rpartition(":")
        if not colon or "=" not in selector or not weight.isdigit():
            raise click.BadParameter(f"{part!r} is not LABEL=VALUE:WEIGHT (e.g. region=eu:3)", param_hint="--weights")
        key, _, value = selector.partition("=")
        out.append({"syncTargetSelector": {"matchLabels": {key: value}}, "weight": int(weight)})
    return out


def spread(text: str) -> list[dict[str, Any]]:
    """`topology.kubernetes.io/zone:2[:3]` -> spread constraints (min and optional max groups)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split(":")
        if not pieces[0] or len(pieces) > 3 or not all(p.isdigit() and int(p) > 0 for p in pieces[1:]):
            raise click.BadParameter(f"{part!r} is not TOPOLOGYKEY[:MIN[:MAX]]", param_hint="--spread")
        entry: dict[str, Any] = {"topologyKey": pieces[0]}
        if len(pieces) > 1:
            entry["minGroups"] = int(pieces[1])
        if len(pieces) > 2:
            entry["maxGroups"] = int(pieces[2])
        out.append(entry)
    return out


def capabilities(text: str) -> list[dict[str, Any]]:
    """`gpu:true,ssd:false` -> required (true) or preferred (false) capabilities; a bare name is required."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, colon, value = part.partition(":")
        if not name or (colon and value.lower() not in ("true", "false")):
            raise click.BadParameter(f"{part!r} is not NAME[:true|false]", param_hint="--capabilities")
        out.append({"type": name, "required": not colon or value.lower() == "true"})
    return out


def spec_from_flags(values: dict[str, Any]) -> dict[str, Any]:
    """The spec fields the given flags set (None: flag not given)."""
    spec: dict[str, Any] = {}
    if values.get("namespace_selector") is not None:
        spec["namespaceSelector"] = selector_object(values["namespace_selector"], "--namespace-selector")
    if values.get("sync_target_selector") is not None:
        spec["syncTargetSelector"] = selector_object(values["sync_target_selector"], "--sync-target-selector")
    if values.get("strategy"):
        spec["strategy"] = strategy(values["strategy"])
    if values.get("targets"):
        spec["numberOfTargets"] = values["targets"]
    replicas: dict[str, Any] = {}
    if values.get("replicas"):
        replicas["type"] = values["replicas"].capitalize()
    if values.get("weights"):
        replicas["weights"] = weights(values["weights"])
        replicas.setdefault("type", "Divided")
    if replicas:
        spec["replicaScheduling"] = replicas
    if values.get("spread"):
        spec["spreadConstraints"] = spread(values["spread"])
    if values.get("capabilities"):
        spec["capabilityRequirements"] = capabilities(values["capabilities"])
    return spec


def new_placement(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Placement",
        "metadata": {"name": name},
        "spec": {"locationSelectors": [{}], "locationResource": dict(LOCATION_RESOURCE), **spec},
    }


def spec_options(command: Any) -> Any:
    """The flags `placement create|update` share."""
    for option in reversed(
        [
            click.option("--namespace-selector", default=None, help="Namespaces to place, e.g. team=a ('' = all)."),
            click.option("--sync-target-selector", default=None, help="Candidate SyncTargets, e.g. region=eu."),
            click.option("--strategy", default=None, help=f"One of {', '.join(STRATEGIES)}."),
            click.option("--targets", type=click.IntRange(1), default=None, help="How many targets (default: all)."),
            click.option(
                "--replicas",
                type=click.Choice(["duplicated", "divided"], case_sensitive=False),
                default=None,
                help="Duplicated: every target runs all replicas; divided: they are split.",
            ),
            click.option("--weights", default=None, help="Static weights for divided, LABEL=VALUE:WEIGHT,..."),
            click.option("--spread", default=None, help="Spread over a label: TOPOLOGYKEY[:MIN[:MAX]],..."),
            click.option("--capabilities", default=None, help="NAME[:true|false],... (false: preferred only)."),
        ]
    ):
        command = option(command)
    return command
