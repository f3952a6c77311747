"""Pod status as a kubelet reports it at each stage of a simulated pod's life, as pure functions.

Stages: unschedulable (written by the scheduler), ContainerCreating (just bound), Running (Ready unless a fault
says otherwise), CrashLoopBackOff, and terminated (Succeeded or Failed) for pods that run to completion.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from typing import Any

from tmc.apimachinery.meta import parse_rfc3339

NEVER_READY = "sim.tmc.io/never-ready"
CRASH_LOOP = "sim.tmc.io/crash-loop"
# Limits every fault annotation of a pod to the simulated clusters named (comma separated); absent: everywhere.
FAULT_CLUSTERS = "sim.tmc.io/fault-clusters"
_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def annotation_flag(pod: Mapping[str, Any], name: str) -> bool:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(name)
    return str(value).lower() == "true"


def faults_apply(pod: Mapping[str, Any], cluster: str) -> bool:
    """Whether the pod's fault annotations act in the simulated cluster `cluster` (its SyncTarget's name under
    `tmc up`): always without `sim.tmc.io/fault-clusters`, else only in the clusters it lists."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(FAULT_CLUSTERS)
    if value is None:
        return True
    return cluster in {name.strip() for name in str(value).split(",") if name.strip()}


def fault_flag(pod: Mapping[str, Any], name: str, cluster: str) -> bool:
    """A boolean fault annotation that is set and applies in `cluster`."""
    return annotation_flag(pod, name) and faults_apply(pod, cluster)


def runs_to_completion(pod: Mapping[str, Any]) -> bool:
    """Pods that are not restarted forever (Job pods, `restartPolicy: Never|OnFailure`) finish after running."""
    return (pod.get("spec") or {}).get("restartPolicy", "Always") != "Always"


def is_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def ready_since(pod: Mapping[str, Any]) -> float | None:
    """When the pod last became Ready (epoch seconds), None when it is not Ready."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            stamp = c.get("lastTransitionTime")
            return parse_rfc3339(str(stamp)).timestamp() if stamp else 0.0
    return None


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: float) -> bool:
    since = ready_since(pod)
    return since is not None and (min_ready_seconds <= 0 or since + min_ready_seconds <= now)


def qos_class(pod: Mapping[str, Any]) -> str:
    containers = [
        *((pod.get("spec") or {}).get("containers") or []),
        *((pod.get("spec") or {}).get("initContainers") or []),
    ]
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            limit = limits.get(name)
            if limit is None or str(requests.get(name, limit)) != str(limit):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def node_index(node_name: str) -> int:
    tail = node_name.rsplit("-", 1)[-1]
    return int(tail) % 250 if tail.isdigit() else zlib.crc32(node_name.encode()) % 250


def node_ip(node_name: str) -> str:
    return f"10.96.0.{node_index(node_name) + 2}"


def pod_ip(pod: Mapping[str, Any], node_name: str) -> str:
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    return f"10.244.{node_index(node_name)}.{zlib.crc32(uid.encode()) % 250 + 2}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def normalized_image(image: str) -> str:
    """What containerd reports: `nginx` -> `docker.io/library/nginx:latest`."""
    name, _, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _image_id(image: str) -> str:
    normal = normalized_image(image)
    repo = normal.split("@", 1)[0].rsplit(":", 1)[0] if "@" not in normal else normal.split("@", 1)[0]
    return f"{repo}@sha256:{_digest('image', normal)}"


def _condition(ctype: str, status: bool, now: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": "True" if status else "False", "lastProbeTime": None}
    cond["lastTransitionTime"] = now
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def merge_conditions(old: list[dict[str, Any]] | None, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep each condition's lastTransitionTime while its status does not change, as the kubelet does."""
    previous = {str(c.get("type")): c for c in old or []}
    out = []
    for cond in new:
        before = previous.get(str(cond["type"]))
        if before is not None and before.get("status") == cond["status"] and before.get("lastTransitionTime"):
            cond = {**cond, "lastTransitionTime": before["lastTransitionTime"]}
        out.append(cond)
    return out


def unschedulable_status(
    pod: Mapping[str, Any], message: str, now: str, reason: str = "Unschedulable"
) -> dict[str, Any]:
    """Status the scheduler writes for a pod no node can take (reason Unschedulable or SchedulingGated)."""
    status = dict(pod.get("status") or {})
    status["phase"] = "Pending"
    others = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    scheduled = _condition("PodScheduled", False, now, reason, message)
    status["conditions"] = [*others, *merge_conditions(status.get("conditions"), [scheduled])]
    status.setdefault("qosClass", qos_class(pod))
    return status


def _container_names(pod: Mapping[str, Any], key: str = "containers") -> list[str]:
    return [str(c.get("name")) for c in (pod.get("spec") or {}).get(key) or []]


def _not_ready_message(names: list[str]) -> str:
    return f"containers with unready status: [{' '.join(names)}]"


def _base(pod: Mapping[str, Any], node: str, now: str) -> dict[str, Any]:
    old = pod.get("status") or {}
    host = node_ip(node)
    return {
        "hostIP": host,
        "hostIPs": [{"ip": host}],
        "startTime": old.get("startTime") or now,
        "qosClass": qos_class(pod),
    }


def _with_conditions(pod: Mapping[str, Any], status: dict[str, Any], conditions: list[dict[str, Any]]) -> None:
    ordered = sorted(conditions, key=lambda c: _CONDITION_ORDER.index(c["type"]))
    status["conditions"] = merge_conditions((pod.get("status") or {}).get("conditions"), ordered)


def _container(pod: Mapping[str, Any], c: Mapping[str, Any], state: dict[str, Any], **fields: Any) -> dict[str, Any]:
    uid = str((pod.get("metadata") or {}).get("uid", ""))
    image = str(c.get("image", ""))
    restarts = int(fields.pop("restartCount", 0))
    out: dict[str, Any] = {
        "name": c.get("name"),
        "state": state,
        "lastState": fields.pop("lastState", {}),
        "ready": bool(fields.pop("ready", False)),
        "restartCount": restarts,
        "image": normalized_image(image),
        "imageID": "",
        "started": bool(fields.pop("started", False)),
    }
    if "waiting" not in state or state["waiting"].get("reason") != "ContainerCreating":
        out["imageID"] = _image_id(image)
        out["containerID"] = "containerd://" + _digest(uid, str(c.get("name")), str(restarts))
    return out


def creating_status(pod: Mapping[str, Any], node: str, now: str) -> dict[str, Any]:
    """Just bound: the sandbox and images are being set up."""
    names = _container_names(pod)
    inits = _container_names(pod, "initContainers")
    status = {"phase": "Pending", **_base(pod, node, now)}
    _with_conditions(
        pod,
        status,
        [
            _condition("PodReadyToStartContainers", False, now),
            _condition(
                "Initialized",
                not inits,
                now,
                "ContainersNotInitialized" if inits else "",
                f"containers with incomplete status: [{' '.join(inits)}]" if inits else "",
            ),
            _condition("Ready", False, now, "ContainersNotReady", _not_ready_message(names)),
            _condition("ContainersReady", False, now, "ContainersNotReady", _not_ready_message(names)),
            _condition("PodScheduled", True, now),
        ],
    )
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    status["containerStatuses"] = [_container(pod, c, waiting) for c in (pod.get("spec") or {}).get("containers") or []]
    if inits:
        init_waiting = {"waiting": {"reason": "PodInitializing"}}
        status["initContainerStatuses"] = [
            _container(pod, c, init_waiting) for c in (pod.get("spec") or {}).get("initContainers") or []
        ]
    return status


def _started_at(pod: Mapping[str, Any], now: str) -> str:
    return str((pod.get("status") or {}).get("startTime") or now)


def _init_done(pod: Mapping[str, Any], node: str, now: str) -> list[dict[str, Any]]:
    started = _started_at(pod, now)
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now}}
    return [_container(pod, c, done) for c in (pod.get("spec") or {}).get("initContainers") or []]


def _started(
    pod: Mapping[str, Any], node: str, now: str, ready: bool, reason: str = "ContainersNotReady", sandbox: bool = True
) -> dict[str, Any]:
    """Common part of started pods: init containers done, pod IP assigned; `sandbox` False once all exited."""
    ip = pod_ip(pod, node)
    status = {"phase": "Running", **_base(pod, node, now), "podIP": ip, "podIPs": [{"ip": ip}]}
    # Completed pods report only the reason; pods with unready containers also name them.
    message = "" if ready or reason != "ContainersNotReady" else _not_ready_message(_container_names(pod))
    _with_conditions(
        pod,
        status,
        [
            _condition("PodReadyToStartContainers", sandbox, now),
            _condition("Initialized", True, now),
            _condition("Ready", ready, now, "" if ready else reason, message),
            _condition("ContainersReady", ready, now, "" if ready else reason, message),
            _condition("PodScheduled", True, now),
        ],
    )
    if (pod.get("spec") or {}).get("initContainers"):
        status["initContainerStatuses"] = _init_done(pod, node, now)
    return status


def running_status(pod: Mapping[str, Any], node: str, now: str, ready: bool) -> dict[str, Any]:
    """Containers running; `ready` False models a failing readiness probe (the never-ready fault)."""
    status = _started(pod, node, now, ready)
    started = {"running": {"startedAt": now}}
    old = {str(c.get("name")): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
    statuses = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        prev = old.get(str(c.get("name"))) or {}
        prev_state = prev.get("state") or {}
        state = prev_state if "running" in prev_state else started
        restarts = int(prev.get("restartCount") or 0)
        statuses.append(_container(pod, c, state, ready=ready, started=True, restartCount=restarts))
    status["containerStatuses"] = statuses
    return status


def crash_loop_status(pod: Mapping[str, Any], node: str, now: str, restarts: int, backoff: float) -> dict[str, Any]:
    """Every container keeps exiting with an error; the kubelet waits `backoff` seconds before the next restart."""
    status = _started(pod, node, now, False)
    md = pod.get("metadata") or {}
    statuses = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        message = (
            f"back-off {round(backoff)}s restarting failed container={c.get('name')} "
            f"pod={md.get('name')}_{md.get('namespace')}({md.get('uid')})"
        )
        last = {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": _started_at(pod, now),
                "finishedAt": now,
                "containerID": "containerd://" + _digest(str(md.get("uid")), str(c.get("name")), str(restarts - 1)),
            }
        }
        waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        statuses.append(_container(pod, c, waiting, restartCount=restarts, lastState=last))
    status["containerStatuses"] = statuses
    return status


def terminated_status(pod: Mapping[str, Any], node: str, now: str, succeeded: bool) -> dict[str, Any]:
    """All containers exited: 0 (Succeeded, reason Completed) or 1 (Failed, reason Error)."""
    status = _started(pod, node, now, False, reason="PodCompleted" if succeeded else "PodFailed", sandbox=False)
    status["phase"] = "Succeeded" if succeeded else "Failed"
    old = {str(c.get("name")): c for c in (pod.get("status") or {}).get("containerStatuses") or []}
    statuses = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        running = ((old.get(str(c.get("name"))) or {}).get("state") or {}).get("running") or {}
        terminated = {
            "exitCode": 0 if succeeded else 1,
            "reason": "Completed" if succeeded else "Error",
            "startedAt": running.get("startedAt") or _started_at(pod, now),
            "finishedAt": now,
        }
        entry = _container(pod, c, {"terminated": terminated})
        terminated["containerID"] = entry["containerID"]
        statuses.append(entry)
    status["containerStatuses"] = statuses
    return status
