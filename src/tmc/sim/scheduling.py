"""The scheduler's decision as pure functions: what a pod requests, which nodes it fits, and the upstream-style
"0/N nodes are available" message when none does.

Filters run in upstream's plugin order (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit) and,
like the framework, a node reports the reasons of the first filter that rejects it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmc.apimachinery.quantity import cpu_millis, memory_bytes
from tmc.apimachinery.selectors import Requirement

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# Scoring counts a container without requests as 100m CPU / 200Mi (upstream's non-zero defaults), so BestEffort
# pods still spread over nodes instead of piling onto the first.
_SCORE_CPU = 100
_SCORE_MEMORY = 200 * 2**20
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


@dataclass(frozen=True)
class Resources:
    cpu: int = 0  # millicores
    memory: int = 0  # bytes
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.pods + other.pods)


@dataclass
class NodeState:
    name: str
    labels: dict[str, str]
    allocatable: Resources
    unschedulable: bool = False
    taints: list[dict[str, Any]] = field(default_factory=list)
    used: Resources = field(default_factory=Resources)
    scored: Resources = field(default_factory=Resources)  # `used` with the non-zero defaults, for scoring only

    def place(self, pod: Mapping[str, Any]) -> None:
        self.used = self.used + pod_requests(pod)
        self.scored = self.scored + score_requests(pod)

    def score(self) -> float:
        """Least-allocated: the emptier node scores lower and wins, which spreads pods like the default scorer."""
        cpu = self.scored.cpu / self.allocatable.cpu if self.allocatable.cpu else 1.0
        memory = self.scored.memory / self.allocatable.memory if self.allocatable.memory else 1.0
        return (cpu + memory) / 2


def _quantity(resources: Mapping[str, Any], name: str) -> Any:
    # The API server defaults a missing request to the limit, so a limit alone counts as the request.
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    return requests.get(name, limits.get(name))


def container_requests(container: Mapping[str, Any]) -> Resources:
    resources = container.get("resources") or {}
    cpu = _quantity(resources, "cpu")
    memory = _quantity(resources, "memory")
    return Resources(cpu_millis(cpu) if cpu is not None else 0, memory_bytes(memory) if memory is not None else 0)


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """Sum of the app containers' requests, or the largest init container's if that is more (they run first)."""
    spec = pod.get("spec") or {}
    total = Resources()
    for c in spec.get("containers") or []:
        total = total + container_requests(c)
    cpu, memory = total.cpu, total.memory
    for c in spec.get("initContainers") or []:
        init = container_requests(c)
        cpu, memory = max(cpu, init.cpu), max(memory, init.memory)
    return Resources(cpu, memory, 1)


def score_requests(pod: Mapping[str, Any]) -> Resources:
    total = Resources()
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = container_requests(c)
        total = total + Resources(req.cpu or _SCORE_CPU, req.memory or _SCORE_MEMORY, 1)
    return total


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def node_state(node: Mapping[str, Any]) -> NodeState:
    md = node.get("metadata") or {}
    spec = node.get("spec") or {}
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return NodeState(
        name=str(md.get("name", "")),
        labels={str(k): str(v) for k, v in (md.get("labels") or {}).items()},
        allocatable=Resources(
            cpu_millis(allocatable.get("cpu", 0)),
            memory_bytes(allocatable.get("memory", 0)),
            int(allocatable.get("pods", 110)),
        ),
        unschedulable=bool(spec.get("unschedulable")),
        taints=[t for t in spec.get("taints") or [] if isinstance(t, dict)],
    )


@dataclass(frozen=True)
class PodFacts:
    """What the scheduler needs to know about one pod revision."""

    pod: dict[str, Any]
    node: str  # "" while unbound
    terminal: bool
    used: Resources
    scored: Resources

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodFacts:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        return cls(pod, node, is_terminal(pod), pod_requests(pod), score_requests(pod))


class PodIndex:
    """The scheduler's view of the cluster's pods, kept current from their watch events (and its own binds): per
    node, the sums of what its bound, unfinished pods request; and the pods without a node. A scheduling pass then
    costs what is pending rather than what the cluster holds; walking every pod on each pass was a quarter of a
    simulated cluster's CPU at a thousand pods. Updates carry the pod's revision, so a late event never undoes a
    newer write."""

    def __init__(self) -> None:
        self._pods: dict[str, tuple[int, PodFacts]] = {}
        self._sums: dict[str, list[int]] = {}  # node -> used cpu, memory, pods, then the same for scoring
        self._bound: dict[str, set[str]] = {}  # node -> keys of the pods bound to it, finished ones included
        self._unbound: set[str] = set()

    def reset(self) -> None:
        for index in (self._pods, self._sums, self._bound, self._unbound):
            index.clear()

    def put(self, key: str, rev: int, pod: dict[str, Any]) -> None:
        old = self._pods.get(key)
        if old is not None:
            if old[0] >= rev:
                return
            self._count(key, old[1], -1)
        facts = PodFacts.of(pod)
        self._pods[key] = (rev, facts)
        self._count(key, facts, 1)

    def remove(self, key: str, rev: int) -> None:
        old = self._pods.get(key)
        if old is not None and old[0] <= rev:
            del self._pods[key]
            self._count(key, old[1], -1)

    def _count(self, key: str, f: PodFacts, sign: int) -> None:
        if not f.node:
            if sign > 0:
                self._unbound.add(key)
            else:
                self._unbound.discard(key)
            return
        keys = self._bound.setdefault(f.node, set())
        if sign > 0:
            keys.add(key)
        else:
            keys.discard(key)
            if not keys:
                del self._bound[f.node]
        if f.terminal:
            return
        t = self._sums.setdefault(f.node, [0, 0, 0, 0, 0, 0])
        for i, v in enumerate((f.used.cpu, f.used.memory, f.used.pods, f.scored.cpu, f.scored.memory, f.scored.pods)):
            t[i] += sign * v

    def unbound(self) -> list[dict[str, Any]]:
        return [self._pods[k][1].pod for k in self._unbound]

    def orphans(self, nodes: Collection[str]) -> list[dict[str, Any]]:
        """Pods bound to a node that does not exist."""
        return [self._pods[k][1].pod for node, keys in self._bound.items() if node not in nodes for k in keys]

    def account(self, nodes: Iterable[NodeState]) -> dict[str, NodeState]:
        """Nodes by name with what their bound, unfinished pods request already counted as used."""
        by_name = {n.name: n for n in nodes}
        for name, node in by_name.items():
            t = self._sums.get(name)
            if t:
                node.used = node.used + Resources(t[0], t[1], t[2])
                node.scored = node.scored + Resources(t[3], t[4], t[5])
        return by_name


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        operator = t.get("operator") or "Equal"
        if operator == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if (
            operator == "Equal"
            and t.get("key") == taint.get("key")
            and (t.get("value") or "") == (taint.get("value") or "")
        ):
            return True
    return False


def _term_matches(term: Mapping[str, Any], node: NodeState) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node (upstream semantics)
    for expr in expressions:
        req = Requirement(
            str(expr.get("key")), _OPERATORS.get(str(expr.get("operator")), "?"), tuple(expr.get("values") or ())
        )
        if not req.matches(node.labels):
            return False
    for expr in fields:
        req = Requirement(
            str(expr.get("key")), _OPERATORS.get(str(expr.get("operator")), "?"), tuple(expr.get("values") or ())
        )
        if not req.matches({"metadata.name": node.name}):
            return False
    return True


def matches_node_affinity(pod: Mapping[str, Any], node: NodeState) -> bool:
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if node.labels.get(str(key)) != str(value):
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(_term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


def filter_node(pod: Mapping[str, Any], request: Resources, node: NodeState) -> list[str]:
    """Why `pod` cannot go on `node` (empty when it fits)."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    if node.unschedulable and not tolerates(tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        return ["node(s) were unschedulable"]
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"]
    if not matches_node_affinity(pod, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    reasons = []
    if node.used.pods + request.pods > node.allocatable.pods:
        reasons.append("Too many pods")
    if request.cpu and node.used.cpu + request.cpu > node.allocatable.cpu:
        reasons.append("Insufficient cpu")
    if request.memory and node.used.memory + request.memory > node.allocatable.memory:
        reasons.append("Insufficient memory")
    return reasons


def unschedulable_message(total_nodes: int, reasons: Counter[str]) -> str:
    """Upstream's FitError text (without the preemption postscript), reasons sorted as upstream sorts them."""
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."


def choose_node(pod: Mapping[str, Any], nodes: Mapping[str, NodeState]) -> tuple[NodeState | None, str]:
    """The node to bind to (least allocated, then by name), or None and the FailedScheduling message."""
    request = pod_requests(pod)
    reasons: Counter[str] = Counter()
    feasible: list[NodeState] = []
    for node in nodes.values():
        why = filter_node(pod, request, node)
        if why:
            reasons.update(why)
        else:
            feasible.append(node)
    if not feasible:
        if not nodes:
            return None, "no nodes available to schedule pods"
        return None, unschedulable_message(len(nodes), reasons)
    best = min(feasible, key=lambda n: (n.score(), n.used.pods, n.name))
    best.place(pod)
    return best, ""
