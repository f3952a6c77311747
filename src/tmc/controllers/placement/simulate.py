"""Placement simulation: what a server-side dry run of a Placement create or update answers.

`kubectl create --dry-run=server -o yaml` (and `PUT`/`PATCH ...?dryRun=All`) gets the Placement with the status the
scheduler would write now (`PlacementController.decide`, the same code and the same inputs as a real decision:
targets, other Placements' load, this Placement's current decisions for stickiness) plus `status.candidates`, one
entry per SyncTarget of the workspace the candidates come from:

    {syncTarget, selected, score, reason, scores: {component: value}}

Nothing is written and the controller's indexes are left as they are. `reason` names the filter that excluded a
target (the scheduler's own filter, recorded as it drops it), or why an eligible one was or was not chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tmc.api.scheduling import CANDIDATE_EXCLUDED_PREFIX, PLACEMENTS, SIMULATION_CANDIDATES_FIELD
from tmc.controllers.placement.algorithm import scorer
from tmc.controllers.placement.controller import Decided, PlacementController

NOT_IN_LOCATION = "not in the selected Locations"
_REASONS = {"unschedulable": "unschedulable (cordoned)"}


def simulation(controller: PlacementController) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """The ObjectService dry-run view for Placements."""

    def simulate(ws: str, obj: dict[str, Any]) -> dict[str, Any]:
        key = PLACEMENTS.key(ws, None, str(obj["metadata"]["name"]))
        why: dict[int, str] = {}
        decided = controller.decide(ws, key, obj, why)
        status = obj.get("status") or {}
        new_status = controller.status_for(status, decided)
        new_status[SIMULATION_CANDIDATES_FIELD] = candidates(decided, why)
        return {**obj, "status": new_status}

    return simulate


def candidates(decided: Decided, why: dict[int, str]) -> list[dict[str, Any]]:
    """One entry per SyncTarget the Placement could draw from, in (workspace, name) order."""
    targets = decided.targets
    ts = targets.targets
    source, result, policy = decided.source, decided.result, decided.policy
    chosen = {d.key: d for d in decided.decisions}
    previous = {d.key for d in decided.previous}
    within = source.within
    eligible = [] if result is None else [i for i in range(len(ts)) if i not in why and (within is None or i in within)]
    holding = {i for k in decided.holding if (i := targets.index_of_key.get(k)) is not None}
    score_of = scorer(policy, targets, holding, decided.load, eligible)
    preferred = policy.preferred_capabilities
    if result is None:
        not_chosen = ""
    elif result.error:
        not_chosen = f"eligible, not chosen: {result.error}"
    else:
        wanted = policy.number_of_targets
        filled = f"numberOfTargets {wanted} filled by higher-ranked targets" if wanted else "not chosen"
        if policy.spread:
            filled += " (or a spread constraint's maxGroups is reached)"
        not_chosen = f"eligible, not chosen: {filled}; see scores"
    # 1,000 targets per simulation: reasons shared between entries are built once, details only for chosen ones.
    excluded = {reason: CANDIDATE_EXCLUDED_PREFIX + _REASONS.get(reason, reason) for reason in set(why.values())}
    outside = f"no candidates: {source.error}" if source.error or result is None else NOT_IN_LOCATION
    eligible_set = set(eligible)
    out = []
    for i, t in enumerate(ts):
        entry: dict[str, Any] = {
            "syncTarget": {"workspace": t.workspace, "name": t.name},
            "selected": False,
            "score": 0,
            "reason": outside,
            "scores": {},
        }
        out.append(entry)
        if i not in eligible_set:
            reason = why.get(i)
            if reason is not None:
                entry["reason"] = excluded[reason]
            continue
        score, parts = score_of(i)
        scores: dict[str, float] = dict(parts)
        scores["alreadyChosen"] = int(t.key in previous)
        if preferred:
            scores["preferredCapabilities"] = int(preferred <= t.capabilities)
        entry["scores"] = scores
        decision = chosen.get(t.key)
        if decision is None:
            entry["score"] = score
            entry["reason"] = not_chosen
            continue
        detail = ", ".join(f"{k}={v}" for k, v in scores.items())
        entry["selected"] = True
        entry["score"] = decision.score
        kept = "kept (already chosen)" if t.key in previous else "chosen"
        entry["reason"] = f"{kept}: score {decision.score} by {policy.strategy} ({detail})"
        if policy.divided:
            entry["replicas"] = decision.replicas
    return out
