"""The canary controller: for each CanaryDeployment, observe the target Deployment, its stable copy and their
per-cluster reports, take the analysis measurements that are due, move the state machine (machine.py) and write
what it decided, routing first: an abort's weight 0 reaches the VirtualService or HTTPRoute in the same reconcile
as the verdict, before anything else is written.

Fed by CanaryDeployments and Deployments (a Deployment event queues the CanaryDeployment that targets it or its
stable copy, so per-cluster readiness reports move the rollout without polling).

With a first wave (spec.clusters.syncTargetSelector) the weights differ per cluster: the routing object on the hub
carries the rest of the fleet's weight and a per-target spec diff gives each first-wave cluster its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from tmc.api.canary import (
    ACTION_ANNOTATION,
    ACTIONS,
    CANARY_DEPLOYMENTS,
    FAILED,
    FIRST_WAVE,
    PENDING,
    PRIMARY_SUFFIX,
)
from tmc.api.workload import SPEC_DIFF_ANNOTATION_PREFIX, SYNC_TARGETS, spec_diff_annotation
from tmc.apimachinery import conditions
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.apimachinery.validation_common import selector_matches
from tmc.controllers.canary import analysis as a
from tmc.controllers.canary import metrics, routing
from tmc.controllers.canary.analysis.measurement import from_timestamp, timestamp
from tmc.controllers.canary.cluster_state import cluster_view, placed
from tmc.controllers.canary.machine import ACTIVE, Observation, Rollout, wave_weights
from tmc.controllers.canary.plan import Plan, parse_plan, revision
from tmc.controllers.placement.events import EventRecorder
from tmc.controllers.runtime import MultiPrefixController, Result, requeue
from tmc.protocol.keys import downstream_namespace, namespace_locator, sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions
from tmc.storage.interface import Event, Store

FIELD_MANAGER = "tmc-canary"
FINALIZER = "canary.tmc.kcp.io/release"  # hands the traffic back to the user's Deployment before the object goes
DEPLOYMENTS = next(r for r in BUILTIN_RESOURCES if r.group == "apps" and r.plural == "deployments")
SERVICES = next(r for r in BUILTIN_RESOURCES if r.group == "" and r.plural == "services")
RESYNC = 5.0  # seconds between looks at an active rollout even without events (a safety net, not the driver)
FAILURE_REASONS = ("AnalysisFailed", "AnalysisError", "ProgressDeadlineExceeded", "Aborted")

log = logging.getLogger("tmc.controllers.canary")


def _split(key: str) -> tuple[str, str, str]:
    """(workspace, namespace, name) of a namespaced storage key."""
    parts = key.split("/")
    return parts[-3], parts[-2], parts[-1]


class CanaryController(MultiPrefixController):
    name = "canary"
    # A reconcile waits on its analysis' providers (Prometheus, web endpoints): with one worker a slow answer for one
    # canary would hold every other canary's steps. The queue never hands one canary to two workers at once.
    workers = 8
    # A pause's end is a deadline: its wake-up goes ahead of the passes queued by Deployment status changes.
    due_first = True

    def __init__(
        self, store: Store, registry: ResourceRegistry, service: ObjectService, providers: a.Providers
    ) -> None:
        super().__init__(store)
        self.registry = registry
        self.service = service
        self.providers = providers
        self.events = EventRecorder(service, "tmc-canary")
        self.prefixes = (CANARY_DEPLOYMENTS.key_prefix(None), DEPLOYMENTS.key_prefix(None))
        self._targets: dict[tuple[str, str, str], str] = {}  # (ws, ns, deployment) -> CanaryDeployment key
        self._metric_names: dict[str, list[str]] = {}
        self.clock: Callable[[], float] = time.time  # tests drive time through this

    # ---------------------------------------------------------------- feeding

    def _index(self, key: str, obj: dict[str, Any] | None) -> None:
        ws, ns, _ = _split(key)
        for k in [k for k, v in self._targets.items() if v == key]:
            del self._targets[k]
        if obj is None:
            return
        target = str(((obj.get("spec") or {}).get("targetRef") or {}).get("name", ""))
        if target:
            self._targets[(ws, ns, target)] = key
            self._targets[(ws, ns, target + PRIMARY_SUFFIX)] = key

    def initial_keys(self) -> list[str]:
        keys = []
        for entry in self.store.list(CANARY_DEPLOYMENTS.key_prefix(None)):
            self._index(entry.key, entry.obj)
            keys.append(entry.key)
        return keys

    def keys_for(self, event: Event) -> tuple[str, ...]:
        if event.key.startswith(self.prefixes[0]):
            self._index(event.key, None if event.type == "DELETED" else event.obj)
            return (event.key,)
        found = self._targets.get(_split(event.key))
        return (found,) if found else ()

    async def stop(self) -> None:
        await super().stop()
        await self.providers.close()

    # ---------------------------------------------------------------- reading

    def _get(self, info: ResourceInfo, ws: str, ns: str, name: str) -> dict[str, Any] | None:
        entry = self.store.get(info.key(ws, ns, name))
        return None if entry is None else entry.obj

    def _sync_targets(self, ws: str) -> dict[str, dict[str, Any]]:
        """SyncTarget key -> object, for the targets of this workspace."""
        return {
            sync_target_key(ws, e.obj["metadata"]["name"]): e.obj for e in self.store.list(SYNC_TARGETS.key_prefix(ws))
        }

    def _member_namespaces(self, ws: str, ns: str, clusters: list[str]) -> list[str]:
        """The namespace's name in each member cluster the canary runs in, as its syncer names it (kcp-<hash> of
        the namespace locator)."""
        out = []
        for e in self.store.list(SYNC_TARGETS.key_prefix(ws)):
            md = e.obj["metadata"]
            if md["name"] in clusters:
                locator = namespace_locator(ws, md["name"], str(md.get("uid", "")), ws, ns)
                out.append(downstream_namespace(locator))
        return out

    def _router_info(self, ws: str, plan: Plan, kind: tuple[str, str] | None = None) -> ResourceInfo | None:
        group, plural = kind or (routing.ISTIO if plan.router == "istio" else routing.GATEWAY)
        versions = self.registry.all_versions(ws, group, plural)
        return versions[0] if versions else None

    # ---------------------------------------------------------------- reconcile

    async def reconcile(self, key: str) -> Result | None:
        entry = self.store.get(key)
        ws, ns, name = _split(key)
        if entry is None:
            metrics.forget(ns, name, self._metric_names.pop(key, []))
            return None
        cd = entry.obj
        finalizers = list((cd.get("metadata") or {}).get("finalizers") or [])
        if (cd.get("metadata") or {}).get("deletionTimestamp"):
            if FINALIZER in finalizers:
                await self._release(ws, cd, entry.rev, finalizers)
            return None
        if FINALIZER not in finalizers:
            body = {
                **cd,
                "metadata": {
                    **cd["metadata"],
                    "finalizers": [*finalizers, FINALIZER],
                    "resourceVersion": str(entry.rev),
                },
            }
            await self.service.update(CANARY_DEPLOYMENTS, ws, ns, name, body, WriteOptions(field_manager=FIELD_MANAGER))
            return None  # the write queues the next pass
        try:
            plan = parse_plan(cd)
        except a.SpecError as exc:  # admitted before the rules tightened: say so, do nothing
            await self._write_status(ws, entry.rev, cd, {**(cd.get("status") or {}), "message": f"invalid spec: {exc}"})
            return None
        self._metric_names[key] = list(plan.analysis.names) if plan.analysis else []
        status = dict(cd.get("status") or {})
        target = self._get(DEPLOYMENTS, ws, ns, plan.target)
        if target is None:
            msg = f"waiting for Deployment {plan.target}"
            if status.get("message") != msg:
                await self._write_status(ws, entry.rev, cd, {**status, "message": msg})
            return None
        stable = self._get(DEPLOYMENTS, ws, ns, plan.stable)
        targets = self._sync_targets(ws)
        names = {k: t["metadata"]["name"] for k, t in targets.items()}
        first = _first_wave(plan, placed(target) or placed(stable), targets)
        view = cluster_view(plan, target, stable, names, status, first)
        rollout = Rollout.load(plan, status)
        now = self.clock()
        # In the first wave the analysis judges the first wave's clusters only.
        judged = [names.get(k, k) for k in sorted(first or ())] if status.get("wave") == FIRST_WAVE else view.names
        await self._measure(ws, rollout, plan, judged, now)
        action = self._action(cd, status)
        template = (target.get("spec") or {}).get("template") or {}
        obs = Observation(
            now=now,
            revision=revision(template),
            requested_replicas=int((target.get("spec") or {}).get("replicas", 1) or 0),
            canary_ready=view.canary_ready,
            stable_ready=view.stable_ready,
            action=action.split("@", 1)[0] if action else "",
            paused=plan.paused,
            first_wave=tuple(names.get(k, k) for k in sorted(first or ())),
            action_token=action.partition("@")[2],
        )
        before = rollout.phase
        rollout.advance(obs)
        new = rollout.to_status()
        if action:
            new["handledAction"] = action
        router_error = await self._apply(
            ws, plan, cd, target, stable, template, new, obs.revision, first, str(status.get("promotingRevision") or "")
        )
        new["clusters"] = cluster_view(plan, target, stable, names, new, first).clusters
        new["observedGeneration"] = int((cd.get("metadata") or {}).get("generation", 1))
        if router_error:
            new["message"] = router_error
        empty = _first_wave_condition(plan, new, obs.first_wave, bool(view.names), now)
        await self._write_status(ws, entry.rev, cd, new)
        await self._announce(ws, cd, rollout, before, status)
        if empty and (conditions.find(status.get("conditions"), FIRST_WAVE_CONDITION) or {}).get("reason") != NO_MATCH:
            await self.events.record(ws, cd, "Warning", "NoFirstWaveClusters", empty)
        values = _last_values(new)
        metrics.record(ns, name, str(new.get("phase", "")), int(new.get("weight") or 0), values)
        wake = rollout.wake_at
        if new.get("phase") in (*ACTIVE, FAILED, PENDING) or router_error:
            wake = min(wake, now + RESYNC) if wake is not None else now + RESYNC
        if new.get("phase") == FAILED:
            wake = now  # scale the canary down right after weight 0 is stored
        return requeue(max(0.0, wake - self.clock())) if wake is not None else None

    def _action(self, cd: dict[str, Any], status: dict[str, Any]) -> str:
        value = str(((cd.get("metadata") or {}).get("annotations") or {}).get(ACTION_ANNOTATION, ""))
        if not value or value == status.get("handledAction") or value.split("@", 1)[0] not in ACTIONS:
            return ""
        return value

    async def _measure(self, ws: str, rollout: Rollout, plan: Plan, clusters: list[str], now: float) -> None:
        due = rollout.due(now)
        if not due:
            return
        args = plan.args(clusters, self._member_namespaces(ws, plan.namespace, clusters))
        by_name = {m.name: m for m in (plan.analysis.metrics if plan.analysis else ())}

        async def one(run: a.AnalysisRun, metric: str) -> tuple[a.AnalysisRun, str, a.Measurement]:
            if metric == a.COMPARISON and run.spec.comparison is not None:
                return (
                    run,
                    metric,
                    await a.measure_comparison(run.spec.comparison, args, self.providers, clock=self.clock),
                )
            spec = next((m for m in run.spec.metrics if m.name == metric), by_name[metric])
            return (
                run,
                metric,
                await a.measure_metric(spec, args, self.providers, clusters=clusters, clock=self.clock),
            )

        for run, metric, measurement in await asyncio.gather(*(one(r, m) for r, m in due)):
            run.record(metric, measurement)

    # ---------------------------------------------------------------- writing

    async def _apply(
        self,
        ws: str,
        plan: Plan,
        cd: dict[str, Any],
        target: dict[str, Any],
        stable: dict[str, Any] | None,
        template: dict[str, Any],
        status: dict[str, Any],
        rev: str,
        first: set[str] | None,
        recorded: str,
    ) -> str:
        """Routing first, then the stable copy, then the canary's size. An error message when the router's kind is
        not served on the hub. `recorded` is the promotingRevision of the stored status: the stable copy takes a
        promoted template only once the promotion is stored, so the reconcile that ends the last step writes its
        status alone (behind the stable copy's write and its fan-out to every cluster, 20 canaries promoting at once
        ended their last pause up to seconds late); the status write queues the pass that writes the template."""
        opts = WriteOptions(field_manager=FIELD_MANAGER)
        ns = plan.namespace
        weight = int(status.get("weight") or 0)
        problem = ""
        if plan.mesh:
            # While the stable copy is first set up, the routing is left alone: it still sends traffic wherever the
            # user pointed it, never to a stable Service without Ready pods.
            first_weight, rest_weight = wave_weights(status)
            diffs = dict.fromkeys(first or (), first_weight) if first_weight != rest_weight else {}
            problem = await self._route(
                ws, plan, cd, target, rest_weight, diffs, opts, router=status.get("phase") != PENDING
            )
        replicas = int(status.get("replicas") or 1)
        promoting = str(status.get("promotingRevision") or "")
        want_rev = promoting if promoting and promoting == recorded else str(status.get("stableRevision") or "")
        if stable is None:
            if want_rev == rev:  # a stable copy is only ever made of a template that is the target's now
                await self._create(
                    DEPLOYMENTS, ws, ns, routing.stable_copy(plan, cd, target, template, rev, replicas), opts
                )
        else:
            current_rev = str(
                ((stable.get("metadata") or {}).get("annotations") or {}).get(routing.REVISION_ANNOTATION)
            )
            spec = stable.get("spec") or {}
            take = current_rev != want_rev and want_rev == rev  # promotion: the stable copy takes the canary's template
            if take or spec.get("replicas") != replicas:
                tpl, tpl_rev = (template, rev) if take else (spec.get("template") or {}, current_rev)
                body = routing.stable_copy(plan, cd, target, tpl, tpl_rev, replicas)
                body["metadata"]["resourceVersion"] = stable["metadata"]["resourceVersion"]
                await self.service.update(DEPLOYMENTS, ws, ns, plan.stable, body, opts)
        active = status.get("phase") in (*ACTIVE, FAILED) and bool(status.get("canaryRevision"))
        size = routing.canary_replicas(plan, replicas, weight, active)
        if status.get("phase") in (FAILED, PENDING):
            # Failed: scaled down on the next pass, after weight 0 is stored. Pending: the Deployment keeps serving
            # until its stable copy is Ready.
            size = int((target.get("spec") or {}).get("replicas") or 0)
        change: dict[str, Any] = {}
        if (target.get("spec") or {}).get("replicas") != size:
            change["replicas"] = size
        labels = routing.canary_template_labels(plan, target) if active else None
        if labels is not None:  # subsets tell the canary's pods by this label; not a new revision (plan.revision)
            change["template"] = {"metadata": {"labels": labels}}
        if change:
            patch = orjson.dumps({"spec": change})
            await self.service.patch(DEPLOYMENTS, ws, ns, plan.target, MERGE_PATCH, patch, opts)
        status["canaryReplicas"] = size
        return problem

    async def _route(
        self,
        ws: str,
        plan: Plan,
        cd: dict[str, Any],
        target: dict[str, Any],
        weight: int,
        diffs: dict[str, int],
        opts: WriteOptions,
        *,
        router: bool,
    ) -> str:
        """The Services (or the DestinationRule's subsets), then the routing object: `weight` on the hub object and
        a spec diff for each target in `diffs` (key -> its weight); other spec diffs on it are removed."""
        main = self._get(SERVICES, ws, plan.namespace, plan.service)
        for svc in routing.services(plan, cd, target, main):
            current = self._get(SERVICES, ws, plan.namespace, svc["metadata"]["name"])
            if current is None:
                await self._create(SERVICES, ws, plan.namespace, svc, opts)
            elif (current.get("spec") or {}).get("selector") != svc["spec"]["selector"]:
                body = {**current, "spec": {**current["spec"], "selector": svc["spec"]["selector"]}}
                await self.service.update(SERVICES, ws, plan.namespace, svc["metadata"]["name"], body, opts)
        if plan.destination_rule is not None:
            problem = await self._destination_rule(ws, plan, cd, target, opts)
            if problem:
                return problem
        if not router:
            return ""
        info = self._router_info(ws, plan)
        if info is None:
            kind = "VirtualService" if plan.router == "istio" else "HTTPRoute"
            return f"the {kind} kind is not served by this workspace: install its CRD (deploy/crds/)"
        current = self._get(info, ws, plan.namespace, plan.router_object)
        build = routing.virtual_service if plan.router == "istio" else routing.http_route
        body = build(plan, cd, current, weight)
        _set_diffs(body, {key: routing.weight_diff(plan, body, w) for key, w in diffs.items()})
        await self._ensure(info, ws, plan.namespace, plan.router_object, current, body, opts)
        return ""

    async def _destination_rule(
        self, ws: str, plan: Plan, cd: dict[str, Any], target: dict[str, Any], opts: WriteOptions
    ) -> str:
        """The stable and canary subsets, written before the VirtualService names them (an undefined subset has no
        endpoints: Envoy answers 503)."""
        info = self._router_info(ws, plan, routing.DESTINATION_RULES)
        if info is None:
            return "the DestinationRule kind is not served by this workspace: install its CRD (deploy/crds/)"
        assert plan.destination_rule is not None
        name = plan.destination_rule[0]
        current = self._get(info, ws, plan.namespace, name)
        body = routing.destination_rule(plan, cd, target, current)
        await self._ensure(info, ws, plan.namespace, name, current, body, opts)
        return ""

    async def _release(self, ws: str, cd: dict[str, Any], rev: int, finalizers: list[str]) -> None:
        """Before a CanaryDeployment goes (its stable copy and Services go with it, by owner reference): the user's
        Deployment is given back its size and the routing object sends everything to the user's Service again, so
        deleting the CanaryDeployment never leaves traffic without pods."""
        opts = WriteOptions(field_manager=FIELD_MANAGER)
        md = cd["metadata"]
        try:
            plan = parse_plan(cd)
        except a.SpecError:
            plan = None
        if plan is not None:
            target = self._get(DEPLOYMENTS, ws, plan.namespace, plan.target)
            replicas = int((cd.get("status") or {}).get("replicas") or 0)
            if target is not None and replicas and (target.get("spec") or {}).get("replicas") != replicas:
                patch = orjson.dumps({"spec": {"replicas": replicas}})
                await self.service.patch(DEPLOYMENTS, ws, plan.namespace, plan.target, MERGE_PATCH, patch, opts)
            info = self._router_info(ws, plan) if plan.mesh else None
            current = self._get(info, ws, plan.namespace, plan.router_object) if info is not None else None
            if info is not None and current is not None:
                body = routing.released(plan, current)
                _set_diffs(body, {})
                if body != current:
                    await self.service.update(info, ws, plan.namespace, plan.router_object, body, opts)
        body = {
            **cd,
            "metadata": {**md, "finalizers": [f for f in finalizers if f != FINALIZER], "resourceVersion": str(rev)},
        }
        await self.service.update(CANARY_DEPLOYMENTS, ws, md["namespace"], md["name"], body, opts)

    async def _ensure(
        self,
        info: ResourceInfo,
        ws: str,
        ns: str,
        name: str,
        current: dict[str, Any] | None,
        body: dict[str, Any],
        opts: WriteOptions,
    ) -> None:
        """A routing object as `body` says: created when there is none, updated when it differs."""
        if current is None:
            body["apiVersion"] = info.api_version
            await self._create(info, ws, ns, body, opts)
        elif body != current:
            await self.service.update(info, ws, ns, name, body, opts)

    async def _create(self, info: ResourceInfo, ws: str, ns: str, body: dict[str, Any], opts: WriteOptions) -> None:
        # A 409 (created meanwhile) is retried shortly by the runtime, which then sees the object.
        await self.service.create(info, ws, ns, body, opts)

    async def _write_status(self, ws: str, rev: int, cd: dict[str, Any], status: dict[str, Any]) -> None:
        if status == cd.get("status"):
            return
        md = cd["metadata"]
        body = {**cd, "metadata": {**md, "resourceVersion": str(rev)}, "status": status}
        await self.service.update(
            CANARY_DEPLOYMENTS,
            ws,
            md["namespace"],
            md["name"],
            body,
            WriteOptions(field_manager=FIELD_MANAGER),
            "status",
        )

    async def _announce(self, ws: str, cd: dict[str, Any], rollout: Rollout, before: str, old: dict[str, Any]) -> None:
        for note in rollout.notes:
            await self.events.record(ws, cd, note.type, note.reason, note.message)
            if note.reason in FAILURE_REASONS:
                metrics.FAILURES.labels(note.reason).inc()
            if note.reason in ("Promoted", "RolledBack") and old.get("canaryStartedAt"):
                started = from_timestamp(old["canaryStartedAt"])
                metrics.DURATION.observe(max(0.0, self.clock() - started))
            if note.reason == "Promoted":
                metrics.SUCCESSES.inc()


FIRST_WAVE_CONDITION = "FirstWave"
NO_MATCH = "NoMatchingClusters"


def _first_wave(plan: Plan, keys: list[str], targets: dict[str, dict[str, Any]]) -> set[str] | None:
    """The placed targets spec.clusters.syncTargetSelector matches (None without a first wave)."""
    if plan.first_wave is None:
        return None
    return {
        k
        for k in keys
        if k in targets and selector_matches(plan.first_wave, (targets[k].get("metadata") or {}).get("labels") or {})
    }


def _first_wave_condition(
    plan: Plan, status: dict[str, Any], first: tuple[str, ...], placed_any: bool, now: float
) -> str:
    """Sets the FirstWave condition (with spec.clusters); returns its message when the target is placed but no
    cluster it is placed on matches (before it is placed anywhere nothing can match yet: reason NotPlaced)."""
    if not plan.waves:
        return ""
    if first:
        state, reason, message = True, "ClustersSelected", f"first wave: {', '.join(first)}"
    elif not placed_any:
        state, reason, message = False, "NotPlaced", "the target is not placed on any cluster yet"
    else:
        state, reason = False, NO_MATCH
        message = "no cluster the target is placed on matches spec.clusters.syncTargetSelector"
    wanted = conditions.condition(FIRST_WAVE_CONDITION, state, reason, message)
    status["conditions"] = conditions.set_condition(status.get("conditions"), wanted, timestamp(now))
    return message if reason == NO_MATCH else ""


def _set_diffs(body: dict[str, Any], diffs: dict[str, str]) -> None:
    """Make the routing object's spec diffs exactly `diffs` (key -> JSON Patch). The canary owns every spec diff on
    the routing object it manages: the Placement writes replica diffs only, which a routing object never has."""
    md = body.setdefault("metadata", {})
    annotations = {
        k: v for k, v in (md.get("annotations") or {}).items() if not k.startswith(SPEC_DIFF_ANNOTATION_PREFIX)
    }
    annotations.update({spec_diff_annotation(k): v for k, v in diffs.items()})
    if annotations or "annotations" in md:
        md["annotations"] = annotations


def _last_values(status: dict[str, Any]) -> dict[str, float]:
    """The last numeric value of each metric, from the step run when one is measured, else the background run."""
    out: dict[str, float] = {}
    for run in (status.get("analysis"), status.get("stepAnalysis")):
        for metric in (run or {}).get("metrics") or []:
            for m in reversed(metric.get("measurements") or []):
                try:
                    out[metric["name"]] = float(m.get("value", ""))
                    break
                except ValueError:
                    continue
    return out
