"""The scheduler's inputs and outputs as plain values: SyncTargets (`Target`), a Placement's spec (`Policy`) and the
chosen targets (`Decision`), parsed once from API objects so the scheduling code never touches raw dicts.

Parsing is lenient on purpose: admission has already validated the objects, and a value this code cannot read
(a malformed time, an unknown effect) is ignored rather than allowed to break scheduling for everyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tmc.api.scheduling import STRATEGIES
from tmc.api.workload import CONDITION_READY, TAINT_EFFECTS
from tmc.apimachinery.conditions import is_true
from tmc.apimachinery.meta import parse_time
from tmc.apimachinery.quantity import parse_resource_list
from tmc.apimachinery.selectors import EVERYTHING, LabelSelector, label_selector_from_object

STRATEGY_ROUND_ROBIN, STRATEGY_SPREAD, STRATEGY_AFFINITY, STRATEGY_BINPACK = STRATEGIES
DEFAULT_STRATEGY = STRATEGY_SPREAD
NO_SCHEDULE, NO_EXECUTE = TAINT_EFFECTS
DYNAMIC_AVAILABLE_CAPACITY = "AvailableCapacity"


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' rule: an empty key with Exists matches every taint, an empty effect every effect."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class Target:
    """A SyncTarget as the scheduler sees it. `allocatable`/`allocated` are cores, bytes and counts."""

    workspace: str
    name: str
    key: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    unschedulable: bool = False
    evict_after: float | None = None
    taints: tuple[Taint, ...] = ()
    capabilities: frozenset[str] = frozenset()
    allocatable: Mapping[str, float] = field(default_factory=dict)
    allocated: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], workspace: str, key: str) -> Target:
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        taints = tuple(
            Taint(str(t.get("key", "")), str(t.get("value", "") or ""), str(t.get("effect", "")))
            for t in spec.get("taints") or ()
            if isinstance(t, dict) and t.get("effect") in TAINT_EFFECTS
        )
        caps = frozenset(
            str(c["type"])
            for c in spec.get("capabilities") or ()
            # A listed capability without `available` counts as available: listing it is the claim.
            if isinstance(c, dict) and c.get("type") and c.get("available", True) is not False
        )
        return cls(
            workspace=workspace,
            name=str(md.get("name", "")),
            key=key,
            labels=MappingProxyType(dict(md.get("labels") or {})),
            ready=is_true(status.get("conditions"), CONDITION_READY),
            unschedulable=bool(spec.get("unschedulable")),
            evict_after=parse_time(spec.get("evictAfter")),
            taints=taints,
            capabilities=caps,
            # Syncers that only report capacity still give the scheduler something to weigh.
            allocatable=MappingProxyType(parse_resource_list(status.get("allocatable") or status.get("capacity"))),
            allocated=MappingProxyType(parse_resource_list(status.get("allocated"))),
        )

    def utilization(self) -> float:
        """Mean allocated/allocatable over cpu and memory (those reported), 0 when nothing is reported."""
        ratios = [
            min(1.0, self.allocated.get(r, 0.0) / total)
            for r in ("cpu", "memory")
            if (total := self.allocatable.get(r, 0.0)) > 0
        ]
        return sum(ratios) / len(ratios) if ratios else 0.0

    def available_units(self) -> int:
        """Free capacity as a replica-division weight: tenths of a free core, else free pod slots. Coarse on
        purpose, so small allocation changes do not reshuffle replicas."""
        cpu = self.allocatable.get("cpu")
        if cpu is not None:
            return max(0, int((cpu - self.allocated.get("cpu", 0.0)) * 10))
        pods = self.allocatable.get("pods")
        if pods is not None:
            return max(0, int(pods - self.allocated.get("pods", 0.0)))
        return 0


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    topology_key: str
    min_groups: int = 0
    max_groups: int | None = None


@dataclass(frozen=True, slots=True)
class WeightRule:
    selector: LabelSelector
    weight: int


@dataclass(frozen=True)
class Policy:
    """The scheduling-relevant part of a Placement spec."""

    strategy: str = DEFAULT_STRATEGY
    target_selector: LabelSelector = EVERYTHING
    number_of_targets: int | None = None
    divided: bool = False
    weights: tuple[WeightRule, ...] = ()
    dynamic_weight: str | None = None
    spread: tuple[SpreadConstraint, ...] = ()
    required_capabilities: frozenset[str] = frozenset()
    preferred_capabilities: frozenset[str] = frozenset()
    tolerations: tuple[Toleration, ...] = ()
    # RoundRobin's starting offset; a stable hash of the Placement so it survives restarts without a counter.
    rotation: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], identity: str = "") -> Policy:
        """Parse a Placement spec; `identity` ("<workspace>/<name>") seeds RoundRobin's rotation."""
        strategy = str(spec.get("strategy") or DEFAULT_STRATEGY)
        if strategy not in STRATEGIES:
            strategy = DEFAULT_STRATEGY
        # Unlike the namespace and location selectors, an absent syncTargetSelector does not narrow anything.
        raw_selector = spec.get("syncTargetSelector")
        selector = label_selector_from_object(raw_selector) if raw_selector is not None else EVERYTHING
        count = spec.get("numberOfTargets")
        rs = spec.get("replicaScheduling") or {}
        weights = tuple(
            WeightRule(label_selector_from_object(w.get("syncTargetSelector") or {}), max(0, int(w.get("weight", 0))))
            for w in rs.get("weights") or ()
            if isinstance(w, dict)
        )
        spread = tuple(
            SpreadConstraint(
                str(c["topologyKey"]),
                int(c.get("minGroups") or 0),
                int(c["maxGroups"]) if c.get("maxGroups") else None,
            )
            for c in spec.get("spreadConstraints") or ()
            if isinstance(c, dict) and c.get("topologyKey")
        )
        caps = [c for c in spec.get("capabilityRequirements") or () if isinstance(c, dict) and c.get("type")]
        tolerations = tuple(
            Toleration(
                str(t.get("key", "") or ""),
                str(t.get("operator") or "Equal"),
                str(t.get("value", "") or ""),
                str(t.get("effect", "") or ""),
            )
            for t in spec.get("tolerations") or ()
            if isinstance(t, dict)
        )
        return cls(
            strategy=strategy,
            target_selector=selector,
            number_of_targets=int(count)
            if isinstance(count, int) and not isinstance(count, bool) and count > 0
            else None,
            divided=rs.get("type") == "Divided",
            weights=weights,
            dynamic_weight=str(rs["dynamicWeight"]) if rs.get("dynamicWeight") else None,
            spread=spread,
            required_capabilities=frozenset(str(c["type"]) for c in caps if c.get("required", True) is not False),
            preferred_capabilities=frozenset(str(c["type"]) for c in caps if c.get("required", True) is False),
            tolerations=tolerations,
            rotation=stable_hash(identity) if identity else 0,
        )

    def tolerates(self, taint: Taint) -> bool:
        return any(t.tolerates(taint) for t in self.tolerations)


def stable_hash(text: str) -> int:
    """A process-independent hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class Decision:
    workspace: str
    name: str
    key: str
    score: int
    weight: int
    replicas: int = 0

    def to_status(self) -> dict[str, Any]:
        return {
            "syncTarget": {"workspace": self.workspace, "name": self.name},
            "key": self.key,
            "score": self.score,
            "weight": self.weight,
            "replicas": self.replicas,
        }

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> Decision | None:
        target = entry.get("syncTarget") or {}
        if not isinstance(target, dict) or not entry.get("key"):
            return None
        return cls(
            workspace=str(target.get("workspace", "")),
            name=str(target.get("name", "")),
            key=str(entry["key"]),
            score=int(entry.get("score") or 0),
            weight=int(entry.get("weight") or 0),
            replicas=int(entry.get("replicas") or 0),
        )


@dataclass
class ScheduleResult:
    decisions: list[Decision]
    considered: int
    eligible: int
    # Why candidates were dropped: reason -> how many, in filter order.
    excluded: dict[str, int] = field(default_factory=dict)
    # Why scheduling failed although candidates were eligible (a spread constraint that cannot be met).
    error: str = ""
    # When the result may change by itself (the next evictAfter of a candidate): the caller requeues then.
    next_check: float | None = None

    @property
    def scheduled(self) -> bool:
        return bool(self.decisions)

    def explain(self) -> str:
        """One sentence on what was decided and why, for conditions and Events."""
        if self.decisions:
            names = ", ".join(d.name for d in self.decisions[:10])
            more = f" and {len(self.decisions) - 10} more" if len(self.decisions) > 10 else ""
            text = f"{len(self.decisions)} of {self.eligible} eligible SyncTargets chosen: {names}{more}"
        elif self.error:
            text = self.error
        elif self.considered == 0:
            text = "No SyncTarget in the selected Location"
        else:
            text = f"No valid SyncTarget among {self.considered}"
        dropped = "; ".join(f"{n} {reason}" for reason, n in self.excluded.items())
        return f"{text} ({dropped})" if dropped else text
