"""The pure scheduler: filters, strategies, spread constraints, target counts, replica division, determinism."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tmc.controllers.placement.algorithm import TargetSet, divide, divide_for, schedule, with_replicas
from tmc.controllers.placement.model import Decision, Policy, Taint, Target, Toleration

REGION = "topology.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
NOW = 1_000_000.0


def t(name: str, region: str = "", zone: str = "", **kw: Any) -> Target:
    labels = dict(kw.pop("labels", {}))
    if region:
        labels[REGION] = region
    if zone:
        labels[ZONE] = zone
    return Target("root", name, f"key-{name}", labels, **kw)


def names(result: Any) -> list[str]:
    return [d.name for d in result.decisions]


def run(spec: dict[str, Any], targets: list[Target], **kw: Any) -> Any:
    return schedule(Policy.from_spec(spec, "root/p"), TargetSet(targets), now=NOW, **kw)


FLEET = [
    t("eu-1", "eu", "eu-a"),
    t("eu-2", "eu", "eu-a"),
    t("eu-3", "eu", "eu-b"),
    t("us-1", "us", "us-a"),
    t("us-2", "us", "us-b"),
    t("ap-1", "ap", "ap-a"),
]


# ------------------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize(
    ("target", "spec", "reason"),
    [
        (t("x", ready=False), {}, "not Ready"),
        (t("x", unschedulable=True), {}, "unschedulable"),
        (t("x", evict_after=NOW - 1), {}, "evicting (evictAfter has passed)"),
        (t("x", taints=(Taint("gpu", "true", "NoSchedule"),)), {}, "with untolerated taint gpu=true:NoSchedule"),
        (t("x", taints=(Taint("maint", "", "NoExecute"),)), {}, "with untolerated taint maint:NoExecute"),
        (t("x"), {"capabilityRequirements": [{"type": "gpu"}]}, "without capability gpu"),
        (
            t("x", labels={"env": "dev"}),
            {"syncTargetSelector": {"matchLabels": {"env": "prod"}}},
            "not matching syncTargetSelector",
        ),
        (t("x"), {"spreadConstraints": [{"topologyKey": ZONE, "minGroups": 1}]}, f"without label {ZONE}"),
    ],
)
def test_filters_exclude_with_reason(target: Target, spec: dict[str, Any], reason: str) -> None:
    result = run(spec, [target, t("ok", "eu", "eu-a", labels={"env": "prod"}, capabilities=frozenset({"gpu"}))])
    assert names(result) == ["ok"]
    assert result.excluded == {reason: 1}
    assert reason in result.explain()


@pytest.mark.parametrize(
    ("taint", "toleration", "tolerated"),
    [
        (Taint("maint", "true", "NoSchedule"), Toleration("maint", "Equal", "true", "NoSchedule"), True),
        (Taint("maint", "true", "NoSchedule"), Toleration("maint", "Equal", "false", "NoSchedule"), False),
        (Taint("maint", "true", "NoSchedule"), Toleration("maint", "Exists", "", ""), True),
        (Taint("maint", "true", "NoExecute"), Toleration("maint", "Exists", "", "NoSchedule"), False),
        (Taint("maint", "true", "NoExecute"), Toleration("", "Exists", "", ""), True),
        (Taint("other", "x", "NoSchedule"), Toleration("maint", "Exists", "", ""), False),
    ],
)
def test_tolerations(taint: Taint, toleration: Toleration, tolerated: bool) -> None:
    tol = {
        "key": toleration.key,
        "operator": toleration.operator,
        "value": toleration.value,
        "effect": toleration.effect,
    }
    result = run({"tolerations": [tol]}, [t("tainted", taints=(taint,))])
    assert names(result) == (["tainted"] if tolerated else [])


def test_no_schedule_keeps_existing_but_no_execute_moves() -> None:
    soft = t("soft", taints=(Taint("m", "", "NoSchedule"),))
    hard = t("hard", taints=(Taint("m", "", "NoExecute"),))
    assert names(run({}, [soft, hard, t("fresh")], current=["key-soft", "key-hard"])) == ["fresh", "soft"]
    assert names(run({}, [soft, hard, t("fresh")])) == ["fresh"]


def test_eviction_in_the_future_is_reported_as_next_check() -> None:
    result = run({}, [t("a", evict_after=NOW + 30), t("b", evict_after=NOW + 10), t("c")])
    assert names(result) == ["a", "b", "c"]
    assert result.next_check == NOW + 10


def test_capabilities_required_filter_and_preferred_rank() -> None:
    targets = [t("a"), t("b", capabilities=frozenset({"ssd"})), t("c", capabilities=frozenset({"gpu", "ssd"}))]
    assert names(run({"capabilityRequirements": [{"type": "gpu", "required": True}]}, targets)) == ["c"]
    spec = {"capabilityRequirements": [{"type": "ssd", "required": False}], "numberOfTargets": 2}
    assert names(run(spec, targets)) == ["b", "c"]


def test_selector_operators_use_the_index() -> None:
    targets = [t("a", labels={"tier": "1"}), t("b", labels={"tier": "2"}), t("c")]
    ts = TargetSet(targets)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"matchLabels": {"tier": "1"}}, {"a"}),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["1", "2"]}]}, {"a", "b"}),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["1"]}]}, {"b", "c"}),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"a", "b"}),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"c"}),
        ({"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}, {"b"}),
        ({}, {"a", "b", "c"}),
    ]
    for selector, want in cases:
        assert set(names(schedule(Policy.from_spec({"syncTargetSelector": selector}), ts, now=NOW))) == want, selector


def test_location_scope_limits_candidates() -> None:
    ts = TargetSet(FLEET)
    within = {ts.index_of_key["key-us-1"], ts.index_of_key["key-us-2"]}
    result = schedule(Policy(), ts, now=NOW, within=within)
    assert names(result) == ["us-1", "us-2"]
    assert result.considered == 2


def test_nothing_eligible_explains_why() -> None:
    result = run({}, [t("a", ready=False), t("b", ready=False), t("c", unschedulable=True)])
    assert not result.scheduled
    assert result.explain() == "No valid SyncTarget among 3 (2 not Ready; 1 unschedulable)"
    assert run({}, []).explain() == "No SyncTarget in the selected Location"


# ------------------------------------------------------------------------------------------------ strategies


def test_spread_covers_regions_then_zones() -> None:
    assert names(run({"strategy": "Spread", "numberOfTargets": 3}, FLEET)) == ["ap-1", "eu-1", "us-1"]
    # Four: a second target in the first region, from a zone not used yet.
    assert names(run({"strategy": "Spread", "numberOfTargets": 4}, FLEET)) == ["ap-1", "eu-1", "eu-3", "us-1"]


def test_spread_prefers_targets_with_fewest_placements() -> None:
    load = {"key-eu-1": 5, "key-us-1": 2}
    assert names(run({"strategy": "Spread", "numberOfTargets": 3}, FLEET, load=load)) == ["ap-1", "eu-2", "us-2"]


def test_binpack_fills_the_most_allocated_first() -> None:
    def loaded(name: str, cpu: float) -> Target:
        return t(name, allocatable={"cpu": 10.0, "memory": 100.0}, allocated={"cpu": cpu, "memory": 10 * cpu})

    targets = [loaded("idle", 1), loaded("busy", 8), loaded("half", 5)]
    result = run({"strategy": "Binpack", "numberOfTargets": 2}, targets)
    assert names(result) == ["busy", "half"]
    assert [d.score for d in result.decisions] == [80, 50]


def test_affinity_prefers_targets_already_holding_the_workload() -> None:
    spec = {"strategy": "Affinity", "numberOfTargets": 1}
    assert names(run(spec, FLEET, holding=["key-us-2"])) == ["us-2"]
    assert names(run(spec, FLEET)) == ["ap-1"]  # nothing held: fewest placements, then name
    held = run({"strategy": "Affinity"}, FLEET[:2], holding=["key-eu-2"])
    assert {d.name: d.score for d in held.decisions} == {"eu-1": 50, "eu-2": 100}


def test_round_robin_rotates_by_placement() -> None:
    firsts = set()
    for n in range(12):
        result = schedule(
            Policy.from_spec({"strategy": "RoundRobin", "numberOfTargets": 1}, f"root/p{n}"), TargetSet(FLEET), now=NOW
        )
        firsts.add(names(result)[0])
    assert len(firsts) >= 4  # different Placements start at different targets
    again = [names(run({"strategy": "RoundRobin", "numberOfTargets": 2}, FLEET)) for _ in range(3)]
    assert again[0] == again[1] == again[2]


def test_decisions_are_sticky_while_eligible() -> None:
    spec = {"strategy": "Binpack", "numberOfTargets": 1}
    targets = [t("a", allocatable={"cpu": 10.0}, allocated={"cpu": 9.0}), t("b")]
    assert names(run(spec, targets, current=["key-b"])) == ["b"]
    assert names(run(spec, targets, current=["key-gone"])) == ["a"]


@pytest.mark.parametrize("strategy", ["RoundRobin", "Spread", "Affinity", "Binpack"])
def test_every_strategy_is_deterministic_and_order_independent(strategy: str) -> None:
    spec = {"strategy": strategy, "numberOfTargets": 3}
    results = {tuple(names(run(spec, list(perm)))) for perm in itertools.permutations(FLEET[:5])}
    assert len(results) == 1


def test_number_of_targets_defaults_to_all_eligible() -> None:
    assert len(run({}, FLEET).decisions) == len(FLEET)
    assert len(run({"numberOfTargets": 2}, FLEET).decisions) == 2
    assert len(run({"numberOfTargets": 50}, FLEET).decisions) == len(FLEET)


# ------------------------------------------------------------------------------------------------ spread constraints


@pytest.mark.parametrize(
    ("strategy", "constraint", "count", "regions"),
    [
        ("Binpack", {"topologyKey": REGION, "minGroups": 3}, 3, {"eu", "us", "ap"}),
        ("Binpack", {"topologyKey": REGION, "maxGroups": 1}, 3, {"ap"}),
        ("RoundRobin", {"topologyKey": REGION, "minGroups": 2, "maxGroups": 2}, 4, 2),
    ],
)
def test_spread_constraints(strategy: str, constraint: dict[str, Any], count: int, regions: Any) -> None:
    result = run({"strategy": strategy, "numberOfTargets": count, "spreadConstraints": [constraint]}, FLEET)
    chosen = {d.name.split("-")[0] for d in result.decisions}
    if isinstance(regions, set):
        assert chosen == regions
    else:
        assert len(chosen) == regions
    assert len(result.decisions) <= count


def test_max_groups_limits_all_targets() -> None:
    result = run({"spreadConstraints": [{"topologyKey": ZONE, "maxGroups": 2}]}, FLEET)
    assert len({d.name for d in result.decisions}) == 3  # ap-a and eu-a hold three targets
    assert len({n.rsplit("-", 1)[0] for n in names(result)}) <= 2


def test_unsatisfiable_min_groups_fails_with_message() -> None:
    result = run({"spreadConstraints": [{"topologyKey": REGION, "minGroups": 4}]}, FLEET)
    assert not result.scheduled
    assert "needs at least 4 groups, 3 available" in result.explain()
    short = run({"numberOfTargets": 1, "spreadConstraints": [{"topologyKey": REGION, "minGroups": 2}]}, FLEET)
    assert "below the spread constraints' minGroups 2" in short.error


# ------------------------------------------------------------------------------------------------ replicas


@pytest.mark.parametrize(
    ("total", "weights", "want"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (10, [2, 1, 1], [5, 3, 2]),
        (7, [0, 0], [4, 3]),
        (5, [3, 3, 1], [2, 2, 1]),
        (1, [1, 1, 1], [1, 0, 0]),
        (0, [1, 2], [0, 0]),
        (9, [1, 2, 0], [3, 6, 0]),
        (100, [1, 1, 1, 1, 1, 1, 1], [15, 15, 14, 14, 14, 14, 14]),
        (3, [1, 5, 5], [0, 2, 1]),
    ],
)
def test_divide_largest_remainder(total: int, weights: list[int], want: list[int]) -> None:
    assert divide(total, weights) == want
    assert sum(want) == total


@pytest.mark.parametrize("total", range(0, 40))
def test_divide_always_sums_and_stays_within_quota(total: int) -> None:
    weights = [3, 1, 4, 1, 5]
    shares = divide(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights, strict=True):
        exact = total * weight / sum(weights)
        assert int(exact) <= share <= int(exact) + 1


def test_static_weights_take_the_highest_matching_rule_and_drop_zero() -> None:
    spec = {
        "replicaScheduling": {
            "type": "Divided",
            "weights": [
                {"syncTargetSelector": {"matchLabels": {REGION: "eu"}}, "weight": 2},
                {"syncTargetSelector": {"matchLabels": {ZONE: "eu-b"}}, "weight": 5},
                {"syncTargetSelector": {"matchLabels": {REGION: "us"}}, "weight": 1},
            ],
        }
    }
    result = run(spec, FLEET)
    assert {d.name: d.weight for d in result.decisions} == {"eu-1": 2, "eu-2": 2, "eu-3": 5, "us-1": 1, "us-2": 1}
    assert result.excluded == {"with replica weight 0": 1}
    policy = Policy.from_spec(spec)
    assert divide_for(policy, result.decisions, 22) == [4, 4, 10, 2, 2]


def test_dynamic_weights_follow_available_capacity() -> None:
    targets = [
        t("small", allocatable={"cpu": 4.0}, allocated={"cpu": 3.0}),
        t("large", allocatable={"cpu": 16.0}, allocated={"cpu": 4.0}),
        t("full", allocatable={"cpu": 8.0}, allocated={"cpu": 8.0}),
    ]
    spec = {"replicaScheduling": {"type": "Divided", "dynamicWeight": "AvailableCapacity"}}
    result = run(spec, targets)
    assert {d.name: d.weight for d in result.decisions} == {"full": 0, "large": 120, "small": 10}
    assert with_replicas(Policy.from_spec(spec), result.decisions, [13])[1].replicas == 12
    unknown = run(spec, [t("a"), t("b")])
    assert [d.weight for d in unknown.decisions] == [1, 1]


def test_duplicated_gives_every_target_all_replicas() -> None:
    decisions = run({}, FLEET[:3]).decisions
    assert [d.replicas for d in with_replicas(Policy(), decisions, [3, 2])] == [5, 5, 5]


def test_divided_remainders_are_deterministic_and_rotate_for_round_robin() -> None:
    decisions = [Decision("root", n, f"k{n}", 0, 1) for n in ("a", "b", "c")]
    even = Policy.from_spec({"replicaScheduling": {"type": "Divided"}})
    assert divide_for(even, decisions, 4) == [2, 1, 1]
    starts = set()
    for n in range(10):
        rr = Policy.from_spec({"strategy": "RoundRobin", "replicaScheduling": {"type": "Divided"}}, f"root/p{n}")
        shares = divide_for(rr, decisions, 4)
        assert sum(shares) == 4
        starts.add(shares.index(2))
    assert len(starts) > 1


def test_decisions_round_trip_through_status() -> None:
    d = Decision("root", "eu-1", "abc", 87, 2, 4)
    assert d.to_status() == {
        "syncTarget": {"workspace": "root", "name": "eu-1"},
        "key": "abc",
        "score": 87,
        "weight": 2,
        "replicas": 4,
    }
    assert Decision.from_status(d.to_status()) == d


def test_target_from_object() -> None:
    obj = {
        "metadata": {"name": "eu-1", "labels": {REGION: "eu"}},
        "spec": {
            "unschedulable": True,
            "evictAfter": "1970-01-12T13:46:40Z",
            "taints": [{"key": "m", "effect": "NoSchedule"}, {"key": "bad", "effect": "PreferNoSchedule"}],
            "capabilities": [{"type": "gpu", "available": True}, {"type": "fpga", "available": False}, {"type": "ssd"}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocated": {"cpu": "1500m", "memory": "2Gi"},
        },
    }
    target = Target.from_object(obj, "root", "k")
    assert target.ready and target.unschedulable
    assert target.evict_after == NOW
    assert target.taints == (Taint("m", "", "NoSchedule"),)
    assert target.capabilities == {"gpu", "ssd"}
    assert target.utilization() == pytest.approx((1.5 / 4 + 0.25) / 2)
    assert target.available_units() == 25
