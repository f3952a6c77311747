"""Deterministic placement scheduling: filter the SyncTargets, rank them by strategy, apply spread constraints and the
target count, weigh them for replica division. No randomness anywhere; every tie falls to (workspace, name) order.

Speed matters (one decision per Placement change, thousands of Placements over a thousand targets), so a
`TargetSet` indexes the targets once: label selectors become set operations, health and capabilities are
precomputed sets, and per decision only the surviving candidates are ranked, lazily, as far as needed.

Decisions are sticky: a target that is already chosen stays chosen while it remains eligible, whatever the
strategy, so a Placement does not move because another Placement or a capacity figure changed. Targets leave a
decision only when they become ineligible (NotReady, cordoned, evicting, a NoExecute taint, no longer selected)
or when the Placement asks for fewer targets.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

from tmc.api.workload import REGION_LABEL, ZONE_LABEL
from tmc.apimachinery.selectors import LabelSelector
from tmc.controllers.placement.model import (
    DYNAMIC_AVAILABLE_CAPACITY,
    NO_EXECUTE,
    NO_SCHEDULE,
    STRATEGY_AFFINITY,
    STRATEGY_BINPACK,
    STRATEGY_ROUND_ROBIN,
    Decision,
    Policy,
    ScheduleResult,
    Target,
)

# Ranking tiers: already chosen (or, for Affinity, already holding the workload), then targets offering every
# preferred capability, then the rest.
_TIER_REST = 2


class TargetSet:
    """Targets indexed for scheduling. Indices follow (workspace, name) order, so index order is the tie-break."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self.targets: list[Target] = sorted(targets, key=lambda t: (t.workspace, t.name))
        self.index_of_key: dict[str, int] = {t.key: i for i, t in enumerate(self.targets)}
        self.all: frozenset[int] = frozenset(range(len(self.targets)))
        self._by_label: dict[str, dict[str, set[int]]] = {}
        for i, t in enumerate(self.targets):
            for k, v in t.labels.items():
                self._by_label.setdefault(k, {}).setdefault(v, set()).add(i)
        self._has_label: dict[str, frozenset[int]] = {
            k: frozenset().union(*values.values()) for k, values in self._by_label.items()
        }
        self.ready = frozenset(i for i, t in enumerate(self.targets) if t.ready)
        self.unschedulable = frozenset(i for i, t in enumerate(self.targets) if t.unschedulable)
        self.evicting: list[tuple[float, int]] = sorted(
            (t.evict_after, i) for i, t in enumerate(self.targets) if t.evict_after is not None
        )
        self.tainted: list[int] = [i for i, t in enumerate(self.targets) if t.taints]
        caps: dict[str, set[int]] = {}
        for i, t in enumerate(self.targets):
            for cap in t.capabilities:
                caps.setdefault(cap, set()).add(i)
        self._capability = {cap: frozenset(s) for cap, s in caps.items()}
        self.utilization: list[float] = [t.utilization() for t in self.targets]
        self.available_units: list[int] = [t.available_units() for t in self.targets]
        # Binpack's order (most allocated first) does not depend on the Placement, so it is ranked once here.
        self.binpack_order: list[int] = sorted(range(len(self.targets)), key=lambda i: (-self.utilization[i], i))
        # Spread's buckets: one per (region, zone), numbered; a target's region and zone are read through them.
        bucket_ids: dict[tuple[str, str], int] = {}
        self.bucket_of: list[int] = []
        for t in self.targets:
            where = (t.labels.get(REGION_LABEL, ""), t.labels.get(ZONE_LABEL, ""))
            self.bucket_of.append(bucket_ids.setdefault(where, len(bucket_ids)))
        self.bucket_region: list[str] = [region for region, _ in bucket_ids]
        members: list[set[int]] = [set() for _ in bucket_ids]
        for i, b in enumerate(self.bucket_of):
            members[b].add(i)
        self.bucket_members: list[frozenset[int]] = [frozenset(m) for m in members]

    def __len__(self) -> int:
        return len(self.targets)

    def select(self, selector: LabelSelector) -> frozenset[int]:
        """The targets whose labels match, by index lookups rather than a scan where the operator allows."""
        if selector.matches_nothing:
            return frozenset()
        result: frozenset[int] | set[int] = self.all
        for req in selector.requirements:
            values = self._by_label.get(req.key, {})
            op = req.operator
            if op in ("=", "in"):
                hit: set[int] | frozenset[int] = set().union(*(values.get(v, ()) for v in req.values))
            elif op in ("!=", "notin"):
                hit = self.all - set().union(*(values.get(v, ()) for v in req.values))
            elif op == "exists":
                hit = self._has_label.get(req.key, frozenset())
            elif op == "!":
                hit = self.all - self._has_label.get(req.key, frozenset())
            else:  # gt / lt: numeric comparisons cannot use the index
                hit = {i for i in self._has_label.get(req.key, ()) if req.matches(self.targets[i].labels)}
            result = result & hit
            if not result:
                break
        return frozenset(result)

    def with_label(self, key: str) -> frozenset[int]:
        return self._has_label.get(key, frozenset())

    def with_capability(self, cap: str) -> frozenset[int]:
        return self._capability.get(cap, frozenset())


def schedule(
    policy: Policy,
    targets: TargetSet,
    *,
    now: float,
    within: Collection[int] | None = None,
    current: Collection[str] = (),
    holding: Collection[str] = (),
    load: Mapping[str, int] | None = None,
    why: dict[int, str] | None = None,
) -> ScheduleResult:
    """Choose targets for one Placement.

    within: indices the Placement may use at all (its Locations' instances); None means every target.
    current: keys the Placement has chosen before (kept while eligible; NoSchedule taints do not remove them).
    holding: keys whose target already runs the Placement's workloads (what Affinity prefers).
    load: key -> how many other Placements chose the target (what Spread and Affinity balance).
    why: when given, filled with index -> the filter that excluded that target (a simulation's explanation; the
        same filters in the same order as the decision, so the explanation cannot disagree with it).
    """
    load = load or {}
    cand: set[int] = set(targets.all if within is None else within)
    considered = len(cand)
    excluded: dict[str, int] = {}
    current_idx = {i for k in current if (i := targets.index_of_key.get(k)) is not None}

    def drop(reason: str, removed: Iterable[int]) -> None:
        gone = cand.intersection(removed)
        if gone:
            excluded[reason] = excluded.get(reason, 0) + len(gone)
            cand.difference_update(gone)
            if why is not None:
                why.update(dict.fromkeys(gone, reason))

    if not policy.target_selector.empty:
        drop("not matching syncTargetSelector", cand - targets.select(policy.target_selector))
    drop("not Ready", cand - targets.ready)
    drop("unschedulable", targets.unschedulable)
    next_check: float | None = None
    evicting: list[int] = []
    for when, i in targets.evicting:
        if i not in cand:
            continue
        if when <= now:
            evicting.append(i)
        elif next_check is None:
            next_check = when  # the list is sorted: the first future one is the earliest
    drop("evicting (evictAfter has passed)", evicting)
    for i in targets.tainted:
        if i not in cand:
            continue
        for taint in targets.targets[i].taints:
            if policy.tolerates(taint):
                continue
            # NoSchedule only keeps new Placements away; NoExecute also moves existing ones off.
            if taint.effect == NO_EXECUTE or (taint.effect == NO_SCHEDULE and i not in current_idx):
                drop(f"with untolerated taint {taint}", (i,))
                break
    for cap in sorted(policy.required_capabilities):
        drop(f"without capability {cap}", cand - targets.with_capability(cap))
    for constraint in policy.spread:
        drop(f"without label {constraint.topology_key}", cand - targets.with_label(constraint.topology_key))
    static_weights: dict[int, int] = {}
    if policy.divided and policy.weights and policy.dynamic_weight is None:
        static_weights = _static_weights(policy, targets, cand)
        if any(static_weights.values()):
            drop("with replica weight 0", [i for i in cand if static_weights.get(i, 0) == 0])
        else:
            static_weights = {}  # no rule matches any candidate: divide evenly rather than not at all
    eligible = len(cand)
    result = ScheduleResult([], considered, eligible, excluded, next_check=next_check)
    if not cand:
        return result

    holding_idx = {i for k in holding if (i := targets.index_of_key.get(k)) is not None}
    sticky = (current_idx | holding_idx if policy.strategy == STRATEGY_AFFINITY else current_idx) & cand
    tiers = [sticky]
    if policy.preferred_capabilities:
        preferred = set(cand)
        for cap in policy.preferred_capabilities:
            preferred &= targets.with_capability(cap)
        tiers.append(preferred - sticky)
    wanted = policy.number_of_targets or eligible
    if wanted >= eligible and not policy.spread:
        chosen, error = list(cand), ""  # every candidate is taken: their order does not matter
    else:
        chosen, error = _choose(policy, targets, _rank(policy, targets, cand, tiers, load), wanted)
    if error:
        result.error = error
        return result
    result.decisions = _decisions(policy, targets, chosen, static_weights, holding_idx, load, cand)
    return result


def _static_weights(policy: Policy, targets: TargetSet, cand: Collection[int]) -> dict[int, int]:
    """Karmada's rule: a target's weight is the highest weight among the rules selecting it, else 0."""
    weights: dict[int, int] = {}
    for rule in policy.weights:
        for i in targets.select(rule.selector):
            if i in cand and rule.weight > weights.get(i, 0):
                weights[i] = rule.weight
    return weights


def _rank(
    policy: Policy, targets: TargetSet, cand: set[int], tiers: Sequence[set[int]], load: Mapping[str, int]
) -> Iterator[int]:
    """Candidates best first, lazily: most decisions need the first few, so the order is built with C-level sorts
    on precomputed indices (no per-target Python key function), and Binpack just walks its precomputed order."""
    strategy = policy.strategy
    if strategy == STRATEGY_BINPACK:
        return _tiered(tiers, cand, lambda rest: (i for i in targets.binpack_order if i in rest))
    if strategy == STRATEGY_ROUND_ROBIN:
        by_name = sorted(cand)
        offset = policy.rotation % len(by_name)
        position = by_name[offset:] + by_name[:offset]
        return _tiered(tiers, cand, lambda rest: (i for i in position if i in rest))
    # Affinity and Spread: fewest placements first, then (workspace, name); a stable sort by load of the
    # index-sorted candidates gives exactly that.
    loads = [0] * len(targets)
    index_of = targets.index_of_key
    for key, n in load.items():
        i = index_of.get(key)
        if i is not None:
            loads[i] = n
    by_load = loads.__getitem__

    def ordered(group: Iterable[int]) -> list[int]:
        return sorted(sorted(group), key=by_load)

    if strategy == STRATEGY_AFFINITY:
        return _tiered(tiers, cand, lambda rest: iter(ordered(rest)))
    order = [i for group in (*tiers, cand.difference(*tiers)) for i in ordered(group)]
    tier_of = {i: n for n, group in enumerate(tiers) for i in group}
    return _balanced(order, tier_of, targets)


def _tiered(
    tiers: Sequence[set[int]], cand: set[int], rest_order: Callable[[set[int]], Iterator[int]]
) -> Iterator[int]:
    """Each tier in the strategy's order, then the remaining candidates."""
    rest = cand.difference(*tiers)
    for tier in tiers:
        if tier:
            yield from rest_order(tier)
    yield from rest_order(rest)


def _balanced(order: list[int], tier: Mapping[int, int], targets: TargetSet) -> Iterator[int]:
    """Spread: take targets round-robin over regions, and over zones within a region, keeping `order` inside each
    (region, zone) bucket. Greedy on (tier, picks in the region, picks in the bucket, position). Buckets are filled
    lazily from `order`, so choosing a few targets reads only until every bucket has shown its best candidate; a
    lazy heap works because a bucket's key only grows."""
    bucket_of, bucket_region = targets.bucket_of, targets.bucket_region
    nonempty = {bucket_of[i] for i in order} if len(order) < 64 else None
    if nonempty is None:
        members = targets.bucket_members
        present = set(order)
        nonempty = {b for b, m in enumerate(members) if not m.isdisjoint(present)}
    stream = iter(enumerate(order))
    queues: dict[int, deque[tuple[int, int]]] = {b: deque() for b in nonempty}

    def fill(b: int) -> bool:
        queue = queues[b]
        while not queue:
            nxt = next(stream, None)
            if nxt is None:
                return False
            queues[bucket_of[nxt[1]]].append(nxt)
        return True

    region_picks: dict[str, int] = {}
    bucket_picks: dict[int, int] = {}

    def key(b: int) -> tuple[int, int, int, int]:
        pos, head = queues[b][0]
        return (tier.get(head, _TIER_REST), region_picks.get(bucket_region[b], 0), bucket_picks.get(b, 0), pos)

    heap = [(key(b), b) for b in nonempty if fill(b)]
    heapq.heapify(heap)
    while heap:
        k, b = heapq.heappop(heap)
        fresh = key(b)
        if fresh != k:
            heapq.heappush(heap, (fresh, b))
            continue
        _, i = queues[b].popleft()
        region_picks[bucket_region[b]] = region_picks.get(bucket_region[b], 0) + 1
        bucket_picks[b] = bucket_picks.get(b, 0) + 1
        if fill(b):
            heapq.heappush(heap, (key(b), b))
        yield i


class _Replay:
    """A lazily consumed iterator that can be walked again from the start (for the constraint passes)."""

    def __init__(self, source: Iterator[int]) -> None:
        self._source = source
        self._seen: list[int] = []

    def __iter__(self) -> Iterator[int]:
        yield from self._seen
        for i in self._source:
            self._seen.append(i)
            yield i

    def __len__(self) -> int:
        self._seen.extend(self._source)
        return len(self._seen)


def _choose(policy: Policy, targets: TargetSet, ranked: Iterator[int], wanted: int) -> tuple[list[int], str]:
    """The first `wanted` ranked targets that keep every spread constraint within maxGroups, after first covering
    each constraint's minGroups with the best target of each new group."""
    if not policy.spread:
        return [i for _, i in zip(range(wanted), ranked, strict=False)], ""
    need = max(c.min_groups for c in policy.spread)
    if need > wanted:
        return [], f"numberOfTargets {wanted} is below the spread constraints' minGroups {need}"
    order = _Replay(ranked)
    keys = [c.topology_key for c in policy.spread]
    ts = targets.targets
    groups: list[set[str]] = [set() for _ in policy.spread]
    chosen: list[int] = []
    taken: set[int] = set()

    def fits(i: int) -> bool:
        labels = ts[i].labels
        return all(
            c.max_groups is None or labels[c.topology_key] in groups[n] or len(groups[n]) < c.max_groups
            for n, c in enumerate(policy.spread)
        )

    def take(i: int) -> None:
        chosen.append(i)
        taken.add(i)
        for n, key in enumerate(keys):
            groups[n].add(ts[i].labels[key])

    for n, c in enumerate(policy.spread):
        for i in order:
            if len(groups[n]) >= c.min_groups:
                break
            if i not in taken and ts[i].labels[c.topology_key] not in groups[n] and fits(i):
                take(i)
        if len(groups[n]) < c.min_groups:
            available = len({ts[i].labels[c.topology_key] for i in order})
            return [], (
                f"spread constraint on {c.topology_key} needs at least {c.min_groups} groups, "
                f"{available} available among {len(order)} eligible SyncTargets"
            )
    for i in order:
        if len(chosen) >= wanted:
            break
        if i not in taken and fits(i):
            take(i)
    return chosen, ""


def _decisions(
    policy: Policy,
    targets: TargetSet,
    chosen: list[int],
    static_weights: Mapping[int, int],
    holding: Collection[int],
    load: Mapping[str, int],
    cand: Collection[int],
) -> list[Decision]:
    ts = targets.targets
    weight_of: Callable[[int], int] = _one
    if policy.divided and static_weights:
        weight_of = static_weights.__getitem__
    elif policy.divided and policy.dynamic_weight == DYNAMIC_AVAILABLE_CAPACITY:
        units = targets.available_units
        if any(units[i] for i in chosen):  # else nobody reports capacity: divide evenly
            weight_of = units.__getitem__
    score_of = scorer(policy, targets, holding, load, cand)
    out = []
    for i in sorted(chosen):
        t = ts[i]
        out.append(Decision(t.workspace, t.name, t.key, score_of(i)[0], weight_of(i)))
    return out


def scorer(
    policy: Policy,
    targets: TargetSet,
    holding: Collection[int],
    load: Mapping[str, int],
    cand: Collection[int],
) -> Callable[[int], tuple[int, tuple[tuple[str, float], ...]]]:
    """index -> (score, its components) under the Placement's strategy, for eligible candidates `cand`. The one
    scoring rule: decisions take the score, a simulation shows the components too."""
    ts = targets.targets
    strategy = policy.strategy
    if strategy == STRATEGY_BINPACK:

        def binpack(i: int) -> tuple[int, tuple[tuple[str, float], ...]]:
            utilization = round(targets.utilization[i] * 100)
            return utilization, (("utilizationPercent", utilization),)

        return binpack
    if strategy == STRATEGY_ROUND_ROBIN:
        by_name = sorted(cand)
        offset = policy.rotation % len(by_name) if by_name else 0

        def round_robin(i: int) -> tuple[int, tuple[tuple[str, float], ...]]:
            position = (bisect.bisect_left(by_name, i) - offset) % len(by_name)
            return 100 - (100 * position) // len(by_name), (("rotationPosition", position),)

        return round_robin

    def balanced(i: int) -> tuple[int, tuple[tuple[str, float], ...]]:
        placements = load.get(ts[i].key, 0)
        if strategy == STRATEGY_AFFINITY and i in holding:
            return 100, (("holdsWorkloads", 1), ("otherPlacements", placements))
        score = round(100 / (1 + placements))
        if strategy == STRATEGY_AFFINITY:
            return score // 2, (("holdsWorkloads", 0), ("otherPlacements", placements))  # below every holder
        return score, (("otherPlacements", placements),)

    return balanced


def _one(i: int) -> int:
    return 1


def divide(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` in proportion to `weights` by largest remainder. Ties in the remainder go to the larger weight,
    then to the earlier entry, so the result is a pure function of the inputs. All-zero weights divide evenly."""
    n = len(weights)
    if n == 0 or total <= 0:
        return [0] * n
    if not any(w > 0 for w in weights):
        weights = [1] * n
    weight_sum = sum(max(0, w) for w in weights)
    shares = [total * max(0, w) // weight_sum for w in weights]
    left = total - sum(shares)
    if left:
        by_remainder = sorted(range(n), key=lambda j: (-(total * max(0, weights[j]) % weight_sum), -weights[j], j))
        for j in by_remainder[:left]:
            shares[j] += 1
    return shares


def rotated(decisions: Sequence[Decision], rotation: int) -> list[int]:
    """RoundRobin hands division remainders out starting at the Placement's rotation offset, so Placements that
    divide the same odd counts do not all favour the same target. Returns the order as indices."""
    if not decisions:
        return []
    offset = rotation % len(decisions)
    return [*range(offset, len(decisions)), *range(offset)]


def divide_for(policy: Policy, decisions: Sequence[Decision], total: int) -> list[int]:
    """Replicas per decision (same order) for one workload of `total` replicas under this policy."""
    if not policy.divided:
        return [total] * len(decisions)
    if policy.strategy != STRATEGY_ROUND_ROBIN:
        return divide(total, [d.weight for d in decisions])
    order = rotated(decisions, policy.rotation)
    shares = divide(total, [decisions[j].weight for j in order])
    out = [0] * len(decisions)
    for pos, j in enumerate(order):
        out[j] = shares[pos]
    return out


def with_replicas(policy: Policy, decisions: Sequence[Decision], totals: Iterable[int]) -> list[Decision]:
    """Decisions whose `replicas` is the sum, over the Placement's scalable workloads, of each target's share."""
    sums = [0] * len(decisions)
    # Many workloads share a replica count: divide each distinct count once.
    for total, times in Counter(totals).items():
        for j, n in enumerate(divide_for(policy, decisions, total)):
            sums[j] += n * times
    return [Decision(d.workspace, d.name, d.key, d.score, d.weight, sums[j]) for j, d in enumerate(decisions)]
