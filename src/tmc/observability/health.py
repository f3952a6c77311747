"""Health: named checks with a reason, rendered the way kube-apiserver renders `/livez`, `/readyz` and `/healthz`,
and the health monitor's rules: each component (storage, watch cache, a controller, a syncer) is healthy, degraded
or unhealthy with a reason, and the whole system's state follows from theirs. Pure: no I/O, no clocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"
# tmc_component_health's value for each state.
STATE_VALUES: dict[str, float] = {HEALTHY: 1.0, DEGRADED: 0.5, UNHEALTHY: 0.0}

# Reasons of a syncer's state, also the reasons of its SyncTarget's `Healthy` condition.
REASON_HEALTHY = "Healthy"
REASON_HEARTBEAT_STALE = "HeartbeatStale"
REASON_UNREACHABLE = "Unreachable"
REASON_SYNC_FAILURES = "SyncFailures"
# A syncer is unhealthy when more than this fraction of its synced objects failed (the product plan's 10 %).
FAILED_RATIO_LIMIT = 0.10
SYNCER_PREFIX = "syncer/"
OVERALL = "overall"

CONTENT_TYPE = "text/plain; charset=utf-8"
HEADERS: dict[str, str] = {"Content-Type": CONTENT_TYPE, "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class ComponentHealth:
    component: str
    state: str
    reason: str
    message: str = ""

    @property
    def value(self) -> float:
        return STATE_VALUES[self.state]


# ---------------------------------------------------------------------------------------------- kube-apiserver format


def render(endpoint: str, checks: Sequence[Check], query: Mapping[str, Sequence[str]]) -> tuple[int, str]:
    """Status and body of `/<endpoint>` (livez, readyz or healthz) as kube-apiserver's healthz.go writes them:
    `ok` with 200, or with `?verbose` one `[+]name ok` line per check and `<endpoint> check passed`; any failing
    check gives 500 with the list (reasons withheld, as upstream: the endpoint is public) and `<endpoint> check
    failed`. `?exclude=name` (repeatable) skips a check."""
    excluded = list(dict.fromkeys(query.get("exclude", ())))
    lines: list[str] = []
    failed = False
    for check in checks:
        if check.name in excluded:
            excluded.remove(check.name)
            lines.append(f"[+]{check.name} excluded: ok\n")
        elif check.ok:
            lines.append(f"[+]{check.name} ok\n")
        else:
            failed = True
            lines.append(f"[-]{check.name} failed: reason withheld\n")
    if excluded:
        names = ",".join(_go_quote(name) for name in sorted(excluded))
        lines.append(f"warn: some health checks cannot be excluded: no matches for {names}\n")
    if failed:
        # Go's http.Error adds the trailing newline.
        return 500, "".join(lines) + f"{endpoint} check failed\n"
    if "verbose" not in query:
        return 200, "ok"
    return 200, "".join(lines) + f"{endpoint} check passed\n"


def render_one(checks: Sequence[Check], name: str) -> tuple[int, str] | None:
    """`/<endpoint>/<name>`: `ok`, or 500 `internal server error: <reason>`; None when there is no such check."""
    check = next((c for c in checks if c.name == name), None)
    if check is None:
        return None
    if check.ok:
        return 200, "ok"
    return 500, f"internal server error: {check.message or 'failed'}\n"


def failures(checks: Iterable[Check]) -> str:
    """The failing checks and their reasons, for the log (the response withholds them)."""
    return "; ".join(f"{c.name}: {c.message or 'failed'}" for c in checks if not c.ok)


def _go_quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------- the monitor's rules


def from_check(component: str, check: Check) -> ComponentHealth:
    """A hub component judged by a yes/no check: healthy or unhealthy."""
    if check.ok:
        return ComponentHealth(component, HEALTHY, REASON_HEALTHY, check.message)
    return ComponentHealth(component, UNHEALTHY, "CheckFailed", check.message or "failed")


def syncer_health(
    name: str,
    *,
    heartbeat_age: float | None,
    threshold: float,
    synced: int,
    failed: int,
    last_heartbeat: str = "",
    unreachable: str = "",
) -> ComponentHealth:
    """A syncer (its SyncTarget) is unhealthy when its last heartbeat is older than `threshold` (or it never sent
    one) or when its failed objects exceed 10 % of its synced ones. `unreachable`, the syncer's own report that its
    member cluster's API does not answer, names the cause of a stale heartbeat."""
    component = SYNCER_PREFIX + name
    if heartbeat_age is None:
        return ComponentHealth(component, UNHEALTHY, REASON_HEARTBEAT_STALE, "no heartbeat yet seen")
    if heartbeat_age > threshold:
        if unreachable:
            return ComponentHealth(component, UNHEALTHY, REASON_UNREACHABLE, unreachable)
        # Stable while the heartbeat stays stale, so the condition is not rewritten on every look.
        message = f"no heartbeat since {last_heartbeat or 'start'} (threshold {threshold:g}s)"
        return ComponentHealth(component, UNHEALTHY, REASON_HEARTBEAT_STALE, message)
    if failed > FAILED_RATIO_LIMIT * synced:
        message = f"{failed} of {synced} synced objects failed (more than {FAILED_RATIO_LIMIT:.0%})"
        return ComponentHealth(component, UNHEALTHY, REASON_SYNC_FAILURES, message)
    return ComponentHealth(component, HEALTHY, REASON_HEALTHY, "heartbeat fresh, sync failures within bounds")


def overall(components: Iterable[ComponentHealth]) -> ComponentHealth:
    """The system's state: unhealthy when a hub component is, or when every syncer is; degraded when some syncers
    are unhealthy (or a hub component is degraded); healthy otherwise. No syncers at all is not a failure."""
    hub: list[ComponentHealth] = []
    syncers: list[ComponentHealth] = []
    for c in components:
        (syncers if c.component.startswith(SYNCER_PREFIX) else hub).append(c)
    broken = [c.component for c in hub if c.state == UNHEALTHY]
    if broken:
        return ComponentHealth(OVERALL, UNHEALTHY, "ComponentUnhealthy", "unhealthy: " + ", ".join(broken))
    down = [c.component for c in syncers if c.state == UNHEALTHY]
    if syncers and len(down) == len(syncers):
        return ComponentHealth(OVERALL, UNHEALTHY, "AllSyncersUnhealthy", "unhealthy: " + ", ".join(down))
    if down:
        message = f"{len(down)} of {len(syncers)} syncers unhealthy: " + ", ".join(down)
        return ComponentHealth(OVERALL, DEGRADED, "SyncersUnhealthy", message)
    degraded = [c.component for c in hub if c.state == DEGRADED]
    if degraded:
        return ComponentHealth(OVERALL, DEGRADED, "ComponentDegraded", "degraded: " + ", ".join(degraded))
    return ComponentHealth(OVERALL, HEALTHY, REASON_HEALTHY, "all components healthy")


# Weights of the cluster health score's penalties (points out of 100); docs/observability.md `## Health`.
HEARTBEAT_WEIGHT = 20.0
FAILED_WEIGHT = 40.0
PENDING_WEIGHT = 10.0
SATURATION_WEIGHT = 20.0
SATURATION_START = 0.9


def health_score(
    ready: bool,
    heartbeat_age: float | None,
    threshold: float,
    synced: int,
    pending: int,
    failed: int,
    utilization: float,
) -> float:
    """A member cluster's health from 0 to 100: 0 when not Ready; otherwise 100 minus up to 20 points as the
    heartbeat ages towards the threshold, up to 40 for failed and up to 10 for pending objects (as fractions of all
    the syncer counts), and up to 20 for saturation (utilization from 90 % to 100 %). Only sync failures can take a
    Ready cluster below 50."""
    if not ready:
        return 0.0
    score = 100.0
    if heartbeat_age is not None and threshold > 0:
        score -= HEARTBEAT_WEIGHT * min(1.0, max(0.0, heartbeat_age) / threshold)
    total = synced + pending + failed
    if total > 0:
        score -= FAILED_WEIGHT * failed / total + PENDING_WEIGHT * pending / total
    if utilization > SATURATION_START:
        score -= SATURATION_WEIGHT * min(1.0, (utilization - SATURATION_START) / (1.0 - SATURATION_START))
    return round(max(0.0, min(100.0, score)), 1)
