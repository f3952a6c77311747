"""Per-kind rules applied on create and update: the defaults and server-owned fields a real cluster fills in."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from tmc.api.tenancy import GROUP as TENANCY_GROUP
from tmc.api.tenancy import WORKSPACE_FINALIZER
from tmc.apimachinery.crd_validation import crd_defaults
from tmc.apimachinery.meta import now_rfc3339

Strategy = Callable[[dict[str, Any], dict[str, Any] | None, str], None]


def _condition(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    }


def _pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            image = str(c.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _template_defaults(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _pod_spec_defaults(template["spec"])


def _deployment(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    _template_defaults(spec)


def _replicated(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template_defaults(spec)


def _statefulset(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    _replicated(obj, old, cluster)
    spec = obj["spec"]
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})


def _daemonset(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    _template_defaults(spec)


def _job(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if "completions" not in spec and spec.get("parallelism", 1) == 1:
        spec["completions"] = 1
    _template_defaults(spec)


def _pod(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    _pod_spec_defaults(obj.setdefault("spec", {}))
    if old is None:
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


def _service(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if old is not None:
        old_spec = old.get("spec") or {}
        for key in ("clusterIP", "clusterIPs"):
            if key in old_spec and key not in spec:
                spec[key] = old_spec[key]


def _secret(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    # stringData is a write-only convenience: it is folded into data (base64) and never stored.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    obj.setdefault("type", "Opaque")


def _namespace(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    if old is None:
        obj["status"] = {"phase": "Active"}
    labels = obj.setdefault("metadata", {}).setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def _crd(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    # There is no asynchronous naming controller: names are accepted and the API is served at once.
    stored = list(((old or {}).get("status") or {}).get("storedVersions") or [])
    obj["status"] = {"storedVersions": stored}
    crd_defaults(obj)
    names = (obj.get("spec") or {}).get("names") or {}
    obj["status"]["acceptedNames"] = dict(names)
    conditions = [
        _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        _condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    # A condition whose status stays keeps its transition time (upstream's SetCRDCondition): otherwise every write,
    # a re-apply of the same file among them, would change the CRD and its resourceVersion.
    previous = {
        c.get("type"): c for c in ((old or {}).get("status") or {}).get("conditions") or [] if isinstance(c, dict)
    }
    for condition in conditions:
        before = previous.get(condition["type"])
        if before is not None and before.get("status") == condition["status"] and before.get("lastTransitionTime"):
            condition["lastTransitionTime"] = before["lastTransitionTime"]
    obj["status"]["conditions"] = conditions


def _workspace(obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    md = obj.setdefault("metadata", {})
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", {"name": "universal", "path": "root"})
    child = f"{cluster}:{md.get('name', '')}"
    spec["cluster"] = child
    if old is None:
        finalizers = md.setdefault("finalizers", [])
        if WORKSPACE_FINALIZER not in finalizers:
            finalizers.append(WORKSPACE_FINALIZER)
        # A workspace is a key prefix: there is nothing to initialise, so it is Ready as soon as it exists.
        obj["status"] = {
            "phase": "Ready",
            "conditions": [_condition("WorkspaceScheduled", "True", "", ""), _condition("Ready", "True", "", "")],
        }
    else:
        obj["status"] = old.get("status", {})


STRATEGIES: dict[tuple[str, str], Strategy] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicated,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    (TENANCY_GROUP, "Workspace"): _workspace,
}


def apply_strategy(group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None, cluster: str) -> None:
    strategy = STRATEGIES.get((group, kind))
    if strategy is not None:
        strategy(obj, old, cluster)
