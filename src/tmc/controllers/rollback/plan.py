"""Planning an undo (pure, no I/O): which ConfigMaps and Secrets to write back, which to remove, what the workload's
template becomes. The rollback controller carries a plan out; `kubectl tmc rollout undo --dry-run` prints one.

Cleanup rule: a ConfigMap or Secret is removed only when the current revision references it, the target revision
does not, no other workload in the namespace references it, it first appeared in a revision newer than the target
(so it came with the change being undone), and it still holds exactly what the newest revision recorded (nobody
edited it since). Objects no revision ever recorded, i.e. created by hand and never used, are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tmc.controllers.rollback.snapshot import referenced, secret_digest, template_of


@dataclass
class UndoPlan:
    target: int  # the revision restored
    template: Any  # what spec.template (or the custom resource's spec) becomes
    template_changes: bool
    configmaps: list[dict[str, Any]] = field(default_factory=list)  # {name, data, binaryData, create: bool}
    secrets: list[str] = field(default_factory=list)  # names written back from the snapshot
    created_secrets: list[str] = field(default_factory=list)  # of those, the ones that are gone now
    delete_configmaps: list[str] = field(default_factory=list)
    delete_secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(
            self.template_changes or self.configmaps or self.secrets or self.delete_configmaps or self.delete_secrets
        )


def _spec(rev: Mapping[str, Any]) -> dict[str, Any]:
    spec = rev.get("spec")
    return spec if isinstance(spec, dict) else {}


def revision_number(rev: Mapping[str, Any]) -> int:
    value = _spec(rev).get("revision")
    return int(value) if isinstance(value, int) else 0


def choose_target(revisions: list[dict[str, Any]], current_fingerprint: str, wanted: int | None) -> dict[str, Any]:
    """The revision an undo goes to: `wanted`, or the newest one whose content differs from the current state.
    ValueError with the message a user sees when there is none."""
    if not revisions:
        raise ValueError("no rollout history found")
    ordered = sorted(revisions, key=revision_number)
    if wanted is not None:
        for rev in ordered:
            if revision_number(rev) == wanted:
                return rev
        known = ", ".join(str(revision_number(r)) for r in ordered)
        raise ValueError(f"unable to find the specified revision {wanted} (revisions: {known})")
    for rev in reversed(ordered):
        if _spec(rev).get("fingerprint") != current_fingerprint:
            return rev
    raise ValueError("no previous revision to roll back to")


def _newest_recording(revisions: Iterable[dict[str, Any]], section: str, name: str) -> tuple[int, dict[str, Any]]:
    """(first revision that recorded `name` present, the newest recording of it)."""
    first, newest, newest_n = 0, {}, 0
    for rev in revisions:
        n = revision_number(rev)
        for entry in _spec(rev).get(section) or ():
            if entry.get("name") == name and entry.get("present"):
                first = n if not first else min(first, n)
                if n > newest_n:
                    newest, newest_n = entry, n
    return first, newest


def plan_undo(
    workload: Mapping[str, Any],
    target: dict[str, Any],
    revisions: list[dict[str, Any]],
    live_configmaps: Mapping[str, Mapping[str, Any]],
    live_secrets: Mapping[str, Mapping[str, Any]],
    other_references: set[tuple[str, str]],
) -> UndoPlan:
    """`live_*`: the namespace's ConfigMaps / Secrets by name; `other_references`: (plural, name) pairs the other
    workloads of the namespace reference."""
    spec = _spec(target)
    n = revision_number(target)
    template = spec.get("template") or {}
    plan = UndoPlan(target=n, template=template, template_changes=template_of(workload) != template)
    for entry in spec.get("configMaps") or ():
        name = str(entry.get("name"))
        if not entry.get("present"):
            continue
        wanted = {"data": entry.get("data") or {}, "binaryData": entry.get("binaryData") or {}}
        live = live_configmaps.get(name)
        if live is None:
            plan.warnings.append(f"ConfigMap {name} was deleted since revision {n}: restored from the revision")
        elif {"data": live.get("data") or {}, "binaryData": live.get("binaryData") or {}} == wanted:
            continue
        plan.configmaps.append({"name": name, **wanted, "create": live is None})
    for entry in spec.get("secrets") or ():
        name = str(entry.get("name"))
        if not entry.get("present"):
            continue
        live_secret = live_secrets.get(name)
        if live_secret is None:
            plan.warnings.append(f"Secret {name} was deleted since revision {n}: restored from the revision")
            plan.created_secrets.append(name)
        elif secret_digest(live_secret) == entry.get("sha256"):
            continue
        plan.secrets.append(name)
    _plan_cleanup(plan, workload, target, revisions, live_configmaps, live_secrets, other_references)
    return plan


def _plan_cleanup(
    plan: UndoPlan,
    workload: Mapping[str, Any],
    target: dict[str, Any],
    revisions: list[dict[str, Any]],
    live_configmaps: Mapping[str, Mapping[str, Any]],
    live_secrets: Mapping[str, Mapping[str, Any]],
    other_references: set[tuple[str, str]],
) -> None:
    current_cms, current_secrets = referenced(workload)
    target_cms, target_secrets = referenced(
        {"apiVersion": workload.get("apiVersion"), "spec": {"template": plan.template}}
    )
    n = plan.target
    for name in set(current_cms) - set(target_cms):
        live = live_configmaps.get(name)
        if live is None or ("configmaps", name) in other_references:
            continue
        first, newest = _newest_recording(revisions, "configMaps", name)
        same = (newest.get("data") or {}) == (live.get("data") or {}) and (newest.get("binaryData") or {}) == (
            live.get("binaryData") or {}
        )
        if first > n and same:
            plan.delete_configmaps.append(name)
    for name in set(current_secrets) - set(target_secrets):
        live_secret = live_secrets.get(name)
        if live_secret is None or ("secrets", name) in other_references:
            continue
        first, newest = _newest_recording(revisions, "secrets", name)
        if first > n and newest.get("sha256") == secret_digest(live_secret):
            plan.delete_secrets.append(name)
    plan.delete_configmaps.sort()
    plan.delete_secrets.sort()
