"""What the assignment controller needs to know about a workload object, without I/O: its pod template, the
ConfigMaps/Secrets/ServiceAccounts that template references, its replica count, and whether a given target
reports it available (from the syncer's per-target status annotation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tmc.api.workload import STATUS_PROMOTED, spec_diff_annotation, status_diff_annotation

# Kinds whose availability is read from replica counters; anything else with a pod template counts as available
# once its target reports any status for it.
_REPLICA_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})

Reference = tuple[str, str]  # (plural, name): ("configmaps", "web-config")

# (group, plural) never synced: events are per cluster, pods are run (and upsynced) by the member cluster, leases
# are local locks, WorkloadRevisions are the hub's record of a workload's history (placing them cost a label write,
# an Event and a namespace re-plan per revision for nothing).
NOT_SYNCED = frozenset(
    {
        ("", "events"),
        ("events.k8s.io", "events"),
        ("", "pods"),
        ("coordination.k8s.io", "leases"),
        ("tmc.kcp.io", "workloadrevisions"),
    }
)


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod spec a workload runs: spec.template.spec (Deployments, StatefulSets, DaemonSets, Jobs, and custom
    kinds that follow the convention), spec.jobTemplate.spec.template.spec (CronJobs) or a Pod's own spec."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if obj.get("kind") == "Pod" and obj.get("apiVersion") == "v1":
        return spec
    template = spec.get("template")
    if obj.get("kind") == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        template = job.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return template["spec"]
    return None


def replicas_of(obj: Mapping[str, Any]) -> int | None:
    """spec.replicas of a scalable workload (defaulting to 1 for the apps kinds), None for anything else."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    value = spec.get("replicas")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    if value is None and obj.get("kind") in _REPLICA_KINDS and str(obj.get("apiVersion", "")).startswith("apps/"):
        return 1
    return None


def is_workload(obj: Mapping[str, Any]) -> bool:
    """Something that runs: it has a pod template or a replica count. Other objects (ConfigMaps, Services...) are
    kept on a target as long as a workload in their namespace is."""
    return pod_spec(obj) is not None or replicas_of(obj) is not None


def references(obj: Mapping[str, Any]) -> set[Reference]:
    """ConfigMaps, Secrets and the ServiceAccount a workload's pods need: volumes (plain and projected), envFrom,
    env valueFrom, imagePullSecrets and serviceAccountName. Optional references are included too: if the object
    exists, the pods will use it."""
    spec = pod_spec(obj)
    if spec is None:
        return set()
    refs: set[Reference] = set()

    def add(plural: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs.add((plural, name))

    for volume in spec.get("volumes") or ():
        if not isinstance(volume, dict):
            continue
        add("configmaps", (volume.get("configMap") or {}).get("name"))
        add("secrets", (volume.get("secret") or {}).get("secretName"))
        for source in (volume.get("projected") or {}).get("sources") or ():
            if isinstance(source, dict):
                add("configmaps", (source.get("configMap") or {}).get("name"))
                add("secrets", (source.get("secret") or {}).get("name"))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or ():
            if not isinstance(container, dict):
                continue
            for source in container.get("envFrom") or ():
                if isinstance(source, dict):
                    add("configmaps", (source.get("configMapRef") or {}).get("name"))
                    add("secrets", (source.get("secretRef") or {}).get("name"))
            for env in container.get("env") or ():
                value_from = env.get("valueFrom") if isinstance(env, dict) else None
                if isinstance(value_from, dict):
                    add("configmaps", (value_from.get("configMapKeyRef") or {}).get("name"))
                    add("secrets", (value_from.get("secretKeyRef") or {}).get("name"))
    for pull in spec.get("imagePullSecrets") or ():
        if isinstance(pull, dict):
            add("secrets", pull.get("name"))
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account and account != "default":
        add("serviceaccounts", account)
    return refs


def target_status(obj: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The status the target `key` reports for this object: its `diff.syncer.internal.kcp.io/<key>` view, or the
    object's own .status when that view says the status was promoted (single-target case). None if nothing yet."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(status_diff_annotation(key))
    if not raw:
        return None
    try:
        view = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    status = view.get("status") if isinstance(view, dict) else None
    if status == STATUS_PROMOTED:
        promoted = obj.get("status")
        return promoted if isinstance(promoted, dict) else None
    return status if isinstance(status, dict) else None


def share_on(obj: Mapping[str, Any], key: str) -> int | None:
    """The replica count the target `key`'s spec-diff sets, None without one."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(spec_diff_annotation(key))
    if raw:
        try:
            ops = orjson.loads(raw)
        except orjson.JSONDecodeError:
            ops = []
        for op in ops if isinstance(ops, list) else ():
            if isinstance(op, dict) and op.get("path") == "/replicas" and isinstance(op.get("value"), int):
                return int(op["value"])
    return None


def desired_on(obj: Mapping[str, Any], key: str) -> int | None:
    """Replicas the target `key` should run: its spec-diff's /replicas when replicas are divided, else the spec's."""
    share = share_on(obj, key)
    return share if share is not None else replicas_of(obj)


def _int(status: Mapping[str, Any], field: str) -> int:
    value = status.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def available_on(obj: Mapping[str, Any], key: str, share: int | None = None) -> bool:
    """Whether target `key` reports the workload available: caught up with the hub's generation (when it says
    which it observed), and as many available (else ready) replicas as it should run (`share` when the caller is
    about to change it, else its spec-diff or the spec), a DaemonSet's pods available on every node it wants, or,
    for other kinds, any reported status without a False Available condition."""
    status = target_status(obj, key)
    if status is None:
        return False
    for cond in status.get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Available" and cond.get("status") == "False":
            return False
    observed = status.get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    if isinstance(observed, int) and isinstance(generation, int) and observed < generation:
        return False  # the report is about an older spec (or a replica share not yet acted on)
    if obj.get("kind") == "DaemonSet":
        want = status.get("desiredNumberScheduled")
        return isinstance(want, int) and _int(status, "numberAvailable") >= want
    desired = share if share is not None else desired_on(obj, key)
    if desired is None:
        return True
    if desired == 0:
        return True
    have = _int(status, "availableReplicas") if "availableReplicas" in status else _int(status, "readyReplicas")
    return have >= desired
