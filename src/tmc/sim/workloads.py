"""StatefulSet, DaemonSet and Job controllers: ordinal pods, one pod per eligible node, run-to-completion pods,
each with the status fields upstream's controller writes."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tmc.controllers.runtime import Result, requeue
from tmc.sim.base import (
    DAEMONSETS,
    JOBS,
    NODES,
    PODS,
    STATEFULSETS,
    SimController,
    deleting,
    now,
    pod_from_template,
    split_key,
)
from tmc.sim.jobplan import INDEX_ANNOTATION, plan_job
from tmc.sim.podstatus import is_ready
from tmc.sim.scheduling import matches_node_affinity, node_state, tolerates
from tmc.sim.status import (
    availability_recheck,
    daemonset_status,
    resolve_int_or_percent,
    statefulset_status,
    template_hash,
)
from tmc.storage.interface import Event

REVISION_LABEL = "controller-revision-hash"
# What upstream's DaemonSet controller adds to every daemon pod, so daemons survive node conditions.
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase", ""))


def _label(obj: dict[str, Any], key: str) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(key, ""))


class StatefulSetController(SimController):
    name = "sim-statefulset"
    info = STATEFULSETS

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or deleting(entry.obj):
            return None
        sts = entry.obj
        namespace, name = split_key(key)
        spec = sts.get("spec") or {}
        update_revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods = {str(p["metadata"]["name"]): p for p in self.owned(PODS, namespace, sts["metadata"]["uid"])}
        failed = [p for p in pods.values() if _phase(p) == "Failed"]
        if failed:
            await self.delete_all(PODS, failed)  # replaced on the next sync, under the same name
            return None
        if await self._step(sts, name, namespace, pods, update_revision):
            pods = {str(p["metadata"]["name"]): p for p in self.owned(PODS, namespace, sts["metadata"]["uid"])}
        current = str((sts.get("status") or {}).get("currentRevision") or "")
        t = now()
        status = statefulset_status(sts, list(pods.values()), current, update_revision, t)
        await self.write_status(STATEFULSETS, sts, status)
        wait = availability_recheck(pods.values(), int(spec.get("minReadySeconds") or 0), t)
        return requeue(wait) if wait is not None and spec.get("minReadySeconds") else None

    async def _step(
        self, sts: dict[str, Any], name: str, namespace: str | None, pods: dict[str, dict[str, Any]], revision: str
    ) -> bool:
        """One move: create missing ordinals, remove surplus ones, or replace one outdated pod. True if it wrote."""
        spec = sts.get("spec") or {}
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        wanted = [f"{name}-{i}" for i in range(start, start + replicas)]
        missing = []
        for pod_name in wanted:
            pod = pods.get(pod_name)
            if pod is None:
                missing.append(self._pod(sts, pod_name, revision))
                if ordered:
                    break  # OrderedReady: one at a time, each after its predecessors are Ready
            elif ordered and not is_ready(pod):
                break
        if missing:
            await self.create_all(PODS, namespace, missing)
            return True
        surplus = sorted(
            (p for n, p in pods.items() if n not in wanted and not deleting(p)),
            key=lambda p: int(str(p["metadata"]["name"]).rsplit("-", 1)[-1]),
            reverse=True,
        )
        if surplus:
            await self.delete_all(PODS, surplus[:1] if ordered else surplus)
            return True
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        if not all(is_ready(pods[n]) for n in wanted if n in pods):
            return False
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        outdated = [n for n in wanted[partition:] if _label(pods[n], REVISION_LABEL) != revision]
        if outdated:
            await self.delete(PODS, pods[outdated[-1]])  # highest ordinal first; recreated at the new revision
            return True
        return False

    def _pod(self, sts: dict[str, Any], pod_name: str, revision: str) -> dict[str, Any]:
        spec = sts.get("spec") or {}
        body = pod_from_template(sts, spec.get("template") or {}, name=pod_name)
        labels = body["metadata"]["labels"]
        labels[REVISION_LABEL] = revision
        labels["statefulset.kubernetes.io/pod-name"] = pod_name
        labels["apps.kubernetes.io/pod-index"] = pod_name.rsplit("-", 1)[-1]
        pod_spec = body["spec"]
        pod_spec.setdefault("hostname", pod_name)
        if spec.get("serviceName"):
            pod_spec.setdefault("subdomain", spec["serviceName"])
        # Claims are not provisioned here, but the pods name them as upstream does so their mounts resolve.
        volumes = pod_spec.setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = str((claim.get("metadata") or {}).get("name"))
            if not any(v.get("name") == claim_name for v in volumes):
                volumes.append({"name": claim_name, "persistentVolumeClaim": {"claimName": f"{claim_name}-{pod_name}"}})
        if not volumes:
            del pod_spec["volumes"]
        return body


class DaemonSetController(SimController):
    name = "sim-daemonset"
    info = DAEMONSETS

    def keys_for(self, event: Event) -> Iterable[str]:
        if event.key.startswith(NODES.key_prefix(self.cluster)):
            return self.initial_keys()  # a node came, went or changed labels: every daemon may need a pod there
        return super().keys_for(event)

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or deleting(entry.obj):
            return None
        ds = entry.obj
        namespace, name = split_key(key)
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        update_hash = template_hash(template)
        nodes = [e.obj for e in self.store.list(NODES.key_prefix(self.cluster))]
        eligible = [str(n["metadata"]["name"]) for n in nodes if self._runs_on(template, n)]
        pods = [p for p in self.owned(PODS, namespace, ds["metadata"]["uid"]) if not deleting(p)]
        by_node: dict[str, list[dict[str, Any]]] = {n: [] for n in eligible}
        stray = []
        for pod in pods:
            node = target_node(pod)
            if node in by_node and _phase(pod) != "Failed":
                by_node[node].append(pod)
            else:
                stray.append(pod)
        extra = [p for ps in by_node.values() for p in ps[1:]]
        create = [self._pod(ds, name, node, update_hash) for node, ps in by_node.items() if not ps]
        outdated = self._outdated(ds, by_node, update_hash)
        if stray or extra or create or outdated:
            await self.delete_all(PODS, stray + extra + outdated)
            await self.create_all(PODS, namespace, create)
            pods = [p for p in self.owned(PODS, namespace, ds["metadata"]["uid"]) if not deleting(p)]
            by_node = {n: [p for p in pods if target_node(p) == n and _phase(p) != "Failed"] for n in eligible}
            stray = [p for p in pods if target_node(p) not in by_node]
        t = now()
        status = daemonset_status(ds, len(eligible), by_node, len(stray), update_hash, t)
        await self.write_status(DAEMONSETS, ds, status)
        wait = availability_recheck(pods, int(spec.get("minReadySeconds") or 0), t)
        return requeue(wait) if wait is not None and spec.get("minReadySeconds") else None

    def _runs_on(self, template: dict[str, Any], node: dict[str, Any]) -> bool:
        """nodeShouldRunDaemonPod: node selector/affinity match and every NoSchedule/NoExecute taint tolerated."""
        pod = {"spec": template.get("spec") or {}}
        state = node_state(node)
        tolerations = [*(pod["spec"].get("tolerations") or []), *DAEMON_TOLERATIONS]
        if any(t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, t) for t in state.taints):
            return False
        return matches_node_affinity(pod, state)

    def _outdated(
        self, ds: dict[str, Any], by_node: dict[str, list[dict[str, Any]]], update_hash: str
    ) -> list[dict[str, Any]]:
        """Old-revision pods to replace now: unavailable ones at once, others within maxUnavailable."""
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []
        current = [ps[0] for ps in by_node.values() if ps]
        old = [p for p in current if _label(p, REVISION_LABEL) != update_hash]
        if not old:
            return []
        max_unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
        budget = resolve_int_or_percent(max_unavailable, len(by_node), True)
        unavailable = len(by_node) - sum(1 for p in current if is_ready(p))
        picked = [p for p in old if not is_ready(p)]
        for pod in old:
            if pod in picked:
                continue
            if unavailable >= max(budget, 1):
                break
            picked.append(pod)
            unavailable += 1
        return picked

    def _pod(self, ds: dict[str, Any], name: str, node: str, update_hash: str) -> dict[str, Any]:
        spec = ds.get("spec") or {}
        body = pod_from_template(ds, spec.get("template") or {}, generate_name=f"{name}-")
        body["metadata"]["labels"][REVISION_LABEL] = update_hash
        body["metadata"]["labels"]["pod-template-generation"] = str(ds["metadata"].get("generation", 1))
        pod_spec = body["spec"]
        # Like upstream, pin the pod to its node through affinity and let the scheduler bind it (and account it).
        affinity = pod_spec.setdefault("affinity", {})
        affinity["nodeAffinity"] = {
            **(affinity.get("nodeAffinity") or {}),
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
            },
        }
        tolerations = pod_spec.setdefault("tolerations", [])
        tolerations.extend(copy.deepcopy(t) for t in DAEMON_TOLERATIONS if t not in tolerations)
        return body


def target_node(pod: dict[str, Any]) -> str:
    """The node a daemon pod is for: where it is bound, else the node its affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return str(field["values"][0])
    return ""


class JobController(SimController):
    name = "sim-job"
    info = JOBS

    async def reconcile(self, key: str) -> Result | None:
        entry = self.entry(key)
        if entry is None or deleting(entry.obj):
            return None
        job = entry.obj
        namespace, name = split_key(key)
        pods = self.owned(PODS, namespace, job["metadata"]["uid"])
        plan = plan_job(job, pods, now())
        if plan.delete:
            await self.delete_all(PODS, [p for p in pods if p["metadata"]["name"] in plan.delete])
        if plan.create:
            await self.create_all(PODS, namespace, [self._pod(job, name, index) for index in plan.create])
        await self.write_status(JOBS, job, plan.status)
        return requeue(plan.recheck) if plan.recheck is not None else None

    def _pod(self, job: dict[str, Any], name: str, index: int | None) -> dict[str, Any]:
        spec = job.get("spec") or {}
        prefix = f"{name}-" if index is None else f"{name}-{index}-"
        body = pod_from_template(job, spec.get("template") or {}, generate_name=prefix)
        labels = body["metadata"]["labels"]
        uid = job["metadata"]["uid"]
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )
        if index is not None:
            labels[INDEX_ANNOTATION] = str(index)
            body["metadata"].setdefault("annotations", {})[INDEX_ANNOTATION] = str(index)
            body["spec"].setdefault("hostname", f"{name}-{index}")
        return body
