"""The columns and cells kube-apiserver prints for built-in kinds (pkg/printers/internalversion), for `kubectl get`."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import Any

from tmc.apimachinery.meta import parse_rfc3339
from tmc.apimachinery.schemas import builtin_definitions

Row = list[Any]
RowFn = Callable[[dict[str, Any], datetime.datetime], Row]
_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE, _APPS, _BATCH = "io.k8s.api.core.v1.", "io.k8s.api.apps.v1.", "io.k8s.api.batch.v1."

# ------------------------------------------------------------------------------------------------ formatting


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration: ~2-3 significant figures ("5s", "3m12s", "2d4h", "3y45d")."""
    s = int(seconds)  # Go truncates toward zero
    if s < -1:
        return "<invalid>"  # further in the future than the tolerated clock skew
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def since(value: Any, now: datetime.datetime) -> str:
    """translateTimestampSince: the age of a timestamp, "<unknown>" when unset."""
    t = parse_time(value)
    return "<unknown>" if t is None else human_duration((now - t).total_seconds())


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _name(o: dict[str, Any]) -> Any:
    return _get(o, "metadata", "name")


def _age(o: dict[str, Any], now: datetime.datetime) -> str:
    return since(_get(o, "metadata", "creationTimestamp"), now)


def _condition(status: Any, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in _get(status, "conditions") or [])


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, "<none>" when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def selector_string(selector: Any) -> str:
    """labels.Selector.String() of a metav1.LabelSelector: requirements sorted by key, "" when empty."""
    if not isinstance(selector, dict):
        return ""
    reqs = [(str(k), f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = str(expr.get("key", "")), expr.get("operator"), ",".join(sorted(expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(str(op))
        reqs.append((key, text if text is not None else f"!{key}"))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def _containers(pod_spec: Any) -> list[str]:
    """layoutContainerCells: container names and images, comma-joined."""
    containers = _get(pod_spec, "containers") or []
    return [",".join(str(c.get(field, "")) for c in containers) for field in ("name", "image")]


def _lb_addresses(o: dict[str, Any]) -> list[str]:
    ingress = _get(o, "status", "loadBalancer", "ingress") or []
    return sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})


# ------------------------------------------------------------------------------------------------ printers

# A column is (name, description, type, priority). A description "<definition>:<field>" stands for that field's
# SwaggerDoc, which is what upstream's printers use.
_Col = tuple[str, str, str, int]
_PRINTERS: dict[tuple[str, str], tuple[tuple[_Col, ...], RowFn]] = {}


def _c(name: str, description: str, typ: str = "string", priority: int = 0) -> _Col:
    return (name, description, typ, priority)


def _prints(group: str, kind: str, *columns: _Col) -> Callable[[RowFn], RowFn]:
    """Registers a kind's columns next to the function producing its cells (wide cells included)."""

    def register(fn: RowFn) -> RowFn:
        _PRINTERS[(group, kind)] = (columns, fn)
        return fn

    return register


_NAME = _c("Name", _META + ":name")
_AGE = _c("Age", _META + ":creationTimestamp")
_TEMPLATE = (
    _c("Containers", "Names of each container in the template.", priority=1),
    _c("Images", "Images referenced by each container in the template.", priority=1),
)
_EVENT = (
    _c("Last Seen", _CORE + "Event:lastTimestamp"),
    _c("Type", _CORE + "Event:type"),
    _c("Reason", _CORE + "Event:reason"),
    _c("Object", _CORE + "Event:involvedObject"),
    _c("Subobject", _CORE + "ObjectReference:fieldPath", priority=1),
    _c("Source", _CORE + "Event:source", priority=1),
    _c("Message", _CORE + "Event:message"),
    _c("First Seen", _CORE + "Event:firstTimestamp", priority=1),
    _c("Count", _CORE + "Event:count", priority=1),
    _c("Name", _META + ":name", priority=1),
)
_BINDING = (
    _NAME,
    _c("Role", "io.k8s.api.rbac.v1.RoleBinding:roleRef"),
    _AGE,
    _c("Users", "Users in the roleBinding", priority=1),
    _c("Groups", "Groups in the roleBinding", priority=1),
    _c("ServiceAccounts", "ServiceAccounts in the roleBinding", priority=1),
)
_READY = "Number of the pod with ready state"


@_prints("", "Namespace", _NAME, _c("Status", "The status of the namespace"), _AGE)
def _namespace(o: dict[str, Any], now: datetime.datetime) -> Row:
    return [_name(o), _get(o, "status", "phase") or "", _age(o, now)]


@_prints("", "ConfigMap", _NAME, _c("Data", _CORE + "ConfigMap:data"), _AGE)
def _configmap(o: dict[str, Any], now: datetime.datetime) -> Row:
    return [_name(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}), _age(o, now)]


@_prints("", "Secret", _NAME, _c("Type", _CORE + "Secret:type"), _c("Data", _CORE + "Secret:data"), _AGE)
def _secret(o: dict[str, Any], now: datetime.datetime) -> Row:
    # stringData is write-only upstream (merged into data); count it in case a stored object still carries it.
    keys = set(o.get("data") or {}) | set(o.get("stringData") or {})
    return [_name(o), o.get("type") or "Opaque", len(keys), _age(o, now)]


@_prints(
    "",
    "Service",
    _NAME,
    _c("Type", _CORE + "ServiceSpec:type"),
    _c("Cluster-IP", _CORE + "ServiceSpec:clusterIP"),
    _c("External-IP", _CORE + "ServiceSpec:externalIPs"),
    _c("Port(s)", _CORE + "ServiceSpec:ports"),
    _AGE,
    _c("Selector", _CORE + "ServiceSpec:selector", priority=1),
)
def _service(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec = o.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"  # defaulted upstream
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    external = list(spec.get("externalIPs") or [])
    if svc_type in ("ClusterIP", "NodePort"):
        external_ip = ",".join(external) or "<none>"
    elif svc_type == "LoadBalancer":
        external_ip = ",".join([*_lb_addresses(o), *external]) or "<pending>"
    elif svc_type == "ExternalName":
        external_ip = str(spec.get("externalName", ""))
    else:
        external_ip = "<unknown>"
    ports = []
    for p in spec.get("ports") or []:
        node_port = f":{p['nodePort']}" if _int(p.get("nodePort")) > 0 else ""
        ports.append(f"{p.get('port', 0)}{node_port}/{p.get('protocol') or 'TCP'}")
    cluster_ip = cluster_ips[0] if cluster_ips else "<none>"
    ports_text = ",".join(ports) or "<none>"
    return [_name(o), svc_type, cluster_ip, external_ip, ports_text, _age(o, now), format_labels(spec.get("selector"))]


@_prints("", "ServiceAccount", _NAME, _c("Secrets", _CORE + "ServiceAccount:secrets"), _AGE)
def _service_account(o: dict[str, Any], now: datetime.datetime) -> Row:
    return [_name(o), len(o.get("secrets") or []), _age(o, now)]


@_prints("", "Event", *_EVENT)
@_prints("events.k8s.io", "Event", *_EVENT)
def _event(o: dict[str, Any], now: datetime.datetime) -> Row:
    if str(o.get("apiVersion", "")).startswith("events.k8s.io/"):
        # The same object upstream, under the new API's field names.
        renamed = {
            "involvedObject": o.get("regarding") or {},
            "message": o.get("note", ""),
            "source": o.get("deprecatedSource") or {},
            "firstTimestamp": o.get("deprecatedFirstTimestamp"),
            "lastTimestamp": o.get("deprecatedLastTimestamp"),
            "count": o.get("deprecatedCount"),
        }
        o = {**o, **renamed}
    first = since(o.get("firstTimestamp") or o.get("eventTime"), now)
    last = since(o["lastTimestamp"], now) if o.get("lastTimestamp") else first
    count = _int(o.get("count"))
    if isinstance(o.get("series"), dict):
        last, count = since(o["series"].get("lastObservedTime"), now), _int(o["series"].get("count"))
    elif count == 0:
        count = 1  # singleton events carry no count in the new API
    involved = o.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = _get(o, "source", "component") or o.get("reportingController") or ""
    host = _get(o, "source", "host") or o.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    cells = [last, o.get("type", ""), o.get("reason", ""), target, involved.get("fieldPath", ""), source]
    return [*cells, str(o.get("message") or "").strip(), first, count, _name(o)]


def _terminated_reason(term: dict[str, Any], prefix: str) -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    signal = _int(term.get("signal"))
    return prefix + (f"Signal:{signal}" if signal else f"ExitCode:{_int(term.get('exitCode'))}")


def _pod_status(o: dict[str, Any]) -> tuple[str, int, int, str]:
    """(STATUS, ready containers, restarts, last restart time) exactly as kube's printPod derives them."""
    spec, status = o.get("spec") or {}, o.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    sidecars = {c.get("name") for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    ready, restarts, sidecar_restarts, last, sidecar_last = 0, 0, 0, "", ""
    initializing = False
    for i, c in enumerate(status.get("initContainerStatuses") or []):
        finished = str(_get(c, "lastState", "terminated", "finishedAt") or "")
        restarts, last = restarts + _int(c.get("restartCount")), max(last, finished)
        if c.get("name") in sidecars:
            sidecar_restarts, sidecar_last = sidecar_restarts + _int(c.get("restartCount")), max(sidecar_last, finished)
        term, waiting = _get(c, "state", "terminated"), _get(c, "state", "waiting") or {}
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if c.get("name") in sidecars and c.get("started"):
            ready += 1 if c.get("ready") else 0
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing or _condition(status, "Initialized"):
        restarts, last, running = sidecar_restarts, sidecar_last, False
        for c in reversed(status.get("containerStatuses") or []):
            restarts += _int(c.get("restartCount"))
            last = max(last, str(_get(c, "lastState", "terminated", "finishedAt") or ""))
            term, waiting = _get(c, "state", "terminated"), _get(c, "state", "waiting") or {}
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None:
                reason = _terminated_reason(term, "")
            elif c.get("ready") and _get(c, "state", "running") is not None:
                running, ready = True, ready + 1
        if reason == "Completed" and running:
            reason = "Running" if _condition(status, "Ready") else "NotReady"
    if _get(o, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, restarts, last


@_prints(
    "",
    "Pod",
    _NAME,
    _c("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _c("Status", "The aggregate status of the containers in this pod."),
    _c(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the last container in this pod "
        "has restarted.",
    ),
    _AGE,
    _c("IP", _CORE + "PodStatus:podIP", priority=1),
    _c("Node", _CORE + "PodSpec:nodeName", priority=1),
    _c("Nominated Node", _CORE + "PodStatus:nominatedNodeName", priority=1),
    _c("Readiness Gates", _CORE + "PodSpec:readinessGates", priority=1),
)
def _pod(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    reason, ready, restarts, last = _pod_status(o)
    sidecars = sum(1 for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always")
    total = len(spec.get("containers") or []) + sidecars
    restarts_text = f"{restarts} ({since(last, now)} ago)" if restarts and last else str(restarts)
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    true_conditions = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    gates_text = f"{sum(1 for g in gates if g.get('conditionType') in true_conditions)}/{len(gates)}" if gates else ""
    cells = [_name(o), f"{ready}/{total}", reason, restarts_text, _age(o, now)]
    wide = [(ips[0].get("ip") if ips else ""), spec.get("nodeName"), status.get("nominatedNodeName"), gates_text]
    return [*cells, *(w or "<none>" for w in wide)]


def pod_conditions(o: dict[str, Any]) -> list[dict[str, str]]:
    phase = _get(o, "status", "phase")
    messages = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}
    if phase not in messages:
        return []
    return [{"type": "Completed", "status": "True", "reason": str(phase), "message": messages[str(phase)]}]


@_prints(
    "",
    "Node",
    _NAME,
    _c("Status", "The status of the node"),
    _c("Roles", "The roles of the node"),
    _AGE,
    _c("Version", _CORE + "NodeSystemInfo:kubeletVersion"),
    _c("Internal-IP", _CORE + "NodeStatus:addresses", priority=1),
    _c("External-IP", _CORE + "NodeStatus:addresses", priority=1),
    _c("OS-Image", _CORE + "NodeSystemInfo:osImage", priority=1),
    _c("Kernel-Version", _CORE + "NodeSystemInfo:kernelVersion", priority=1),
    _c("Container-Runtime", _CORE + "NodeSystemInfo:containerRuntimeVersion", priority=1),
)
def _node(o: dict[str, Any], now: datetime.datetime) -> Row:
    ready = [c for c in _get(o, "status", "conditions") or [] if c.get("type") == "Ready"]
    states = ["Ready" if ready[-1].get("status") == "True" else "NotReady"] if ready else ["Unknown"]
    if _get(o, "spec", "unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (_get(o, "metadata", "labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info, addresses = _get(o, "status", "nodeInfo") or {}, _get(o, "status", "addresses") or []
    ips = [
        next((a.get("address", "") for a in addresses if a.get("type") == t), "<none>")
        for t in ("InternalIP", "ExternalIP")
    ]
    system = [info.get(f) or "<unknown>" for f in ("osImage", "kernelVersion", "containerRuntimeVersion")]
    cells = [
        _name(o),
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        _age(o, now),
        info.get("kubeletVersion", ""),
    ]
    return [*cells, *ips, *system]


@_prints(
    "apps",
    "Deployment",
    _NAME,
    _c("Ready", _READY),
    _c("Up-to-date", _APPS + "DeploymentStatus:updatedReplicas"),
    _c("Available", _APPS + "DeploymentStatus:availableReplicas"),
    _AGE,
    *_TEMPLATE,
    _c("Selector", _APPS + "DeploymentSpec:selector", priority=1),
)
def _deployment(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ready = f"{_int(st.get('readyReplicas'))}/{_int(spec.get('replicas', 1))}"
    cells = [_name(o), ready, _int(st.get("updatedReplicas")), _int(st.get("availableReplicas")), _age(o, now)]
    return [*cells, *_containers(_get(spec, "template", "spec")), selector_string(spec.get("selector"))]


@_prints(
    "apps",
    "ReplicaSet",
    _NAME,
    _c("Desired", _APPS + "ReplicaSetSpec:replicas", "integer"),
    _c("Current", _APPS + "ReplicaSetStatus:replicas", "integer"),
    _c("Ready", _APPS + "ReplicaSetStatus:readyReplicas", "integer"),
    _AGE,
    *_TEMPLATE,
    _c("Selector", _APPS + "ReplicaSetSpec:selector", priority=1),
)
def _replicaset(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    cells = [_name(o), _int(spec.get("replicas", 1)), _int(st.get("replicas")), _int(st.get("readyReplicas"))]
    return [*cells, _age(o, now), *_containers(_get(spec, "template", "spec")), selector_string(spec.get("selector"))]


@_prints("apps", "StatefulSet", _NAME, _c("Ready", _READY), _AGE, *_TEMPLATE)
def _statefulset(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    ready = f"{_int(st.get('readyReplicas'))}/{_int(spec.get('replicas', 1))}"
    return [_name(o), ready, _age(o, now), *_containers(_get(spec, "template", "spec"))]


@_prints(
    "apps",
    "DaemonSet",
    _NAME,
    _c("Desired", _APPS + "DaemonSetStatus:desiredNumberScheduled", "integer"),
    _c("Current", _APPS + "DaemonSetStatus:currentNumberScheduled", "integer"),
    _c("Ready", _APPS + "DaemonSetStatus:numberReady", "integer"),
    _c("Up-to-date", _APPS + "DaemonSetStatus:updatedNumberScheduled", "integer"),
    _c("Available", _APPS + "DaemonSetStatus:numberAvailable", "integer"),
    _c("Node Selector", _CORE + "PodSpec:nodeSelector"),
    _AGE,
    *_TEMPLATE,
    _c("Selector", _APPS + "DaemonSetSpec:selector", priority=1),
)
def _daemonset(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    fields = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled")
    counts = [_int(st.get(f)) for f in (*fields, "numberAvailable")]
    template = _get(spec, "template", "spec")
    node_selector = format_labels(_get(template, "nodeSelector"))
    return [
        _name(o),
        *counts,
        node_selector,
        _age(o, now),
        *_containers(template),
        selector_string(spec.get("selector")),
    ]


@_prints(
    "batch",
    "Job",
    _NAME,
    _c("Status", "Status of the job."),
    _c("Completions", _BATCH + "JobStatus:succeeded"),
    _c("Duration", "Time required to complete the job."),
    _AGE,
    *_TEMPLATE,
    _c("Selector", _BATCH + "JobSpec:selector", priority=1),
)
def _job(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    succeeded, parallelism = _int(st.get("succeeded")), _int(spec.get("parallelism", 1))
    if "completions" in spec or parallelism <= 1:
        # Upstream defaults completions to 1 when neither it nor parallelism is set.
        completions = f"{succeeded}/{_int(spec.get('completions', 1))}"
    else:
        completions = f"{succeeded}/1 of {parallelism}"
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    duration = human_duration(((end or now) - start).total_seconds()) if start else ""
    if _condition(st, "Complete"):
        state = "Complete"
    elif _condition(st, "Failed"):
        state = "Failed"
    elif _get(o, "metadata", "deletionTimestamp"):
        state = "Terminating"
    else:
        later = ("Suspended", "FailureTarget", "SuccessCriteriaMet")
        state = next((c for c in later if _condition(st, c)), "Running")
    selector = selector_string(spec.get("selector")) or "<none>"
    return [
        _name(o),
        state,
        completions,
        duration,
        _age(o, now),
        *_containers(_get(spec, "template", "spec")),
        selector,
    ]


@_prints(
    "batch",
    "CronJob",
    _NAME,
    _c("Schedule", _BATCH + "CronJobSpec:schedule"),
    _c("Timezone", _BATCH + "CronJobSpec:timeZone"),
    _c("Suspend", _BATCH + "CronJobSpec:suspend", "boolean"),
    _c("Active", _BATCH + "CronJobStatus:active", "integer"),
    _c("Last Schedule", _BATCH + "CronJobStatus:lastScheduleTime"),
    _AGE,
    *_TEMPLATE,
    _c("Selector", _BATCH + "JobSpec:selector", priority=1),
)
def _cronjob(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    last = since(st["lastScheduleTime"], now) if st.get("lastScheduleTime") else "<none>"
    job = _get(spec, "jobTemplate", "spec")
    suspend = "True" if spec.get("suspend") else "False"  # defaulted to false upstream
    cells = [_name(o), spec.get("schedule", ""), spec.get("timeZone") or "<none>", suspend, len(st.get("active") or [])]
    selector = selector_string(_get(job, "selector")) or "<none>"
    return [*cells, last, _age(o, now), *_containers(_get(job, "template", "spec")), selector]


@_prints(
    "networking.k8s.io",
    "Ingress",
    _NAME,
    _c("Class", "The name of the IngressClass resource that should be used for additional configuration"),
    _c("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
    _c("Address", "Address is a list containing ingress points for the load-balancer"),
    _c("Ports", "Ports of TLS configurations that open"),
    _AGE,
)
def _ingress(o: dict[str, Any], now: datetime.datetime) -> Row:
    spec = o.get("spec") or {}
    rules = spec.get("rules") or []
    hosts = ",".join(r["host"] for r in rules[:3] if r.get("host")) or "*"
    if len(rules) > 3:
        hosts += f" + {len(rules) - 3} more..."
    ports = "80, 443" if spec.get("tls") else "80"
    return [_name(o), spec.get("ingressClassName") or "<none>", hosts, ",".join(_lb_addresses(o)), ports, _age(o, now)]


@_prints(
    "coordination.k8s.io", "Lease", _NAME, _c("Holder", "io.k8s.api.coordination.v1.LeaseSpec:holderIdentity"), _AGE
)
def _lease(o: dict[str, Any], now: datetime.datetime) -> Row:
    return [_name(o), _get(o, "spec", "holderIdentity") or "", _age(o, now)]


@_prints("rbac.authorization.k8s.io", "RoleBinding", *_BINDING)
@_prints("rbac.authorization.k8s.io", "ClusterRoleBinding", *_BINDING)
def _rolebinding(o: dict[str, Any], now: datetime.datetime) -> Row:
    ref, subjects = o.get("roleRef") or {}, o.get("subjects") or []

    def names(kind: str) -> str:
        picked = [s for s in subjects if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in picked)
        return ", ".join(str(s.get("name", "")) for s in picked)

    role = f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return [_name(o), role, _age(o, now), names("User"), names("Group"), names("ServiceAccount")]


def _created_at(o: dict[str, Any], now: datetime.datetime) -> Row:
    # Upstream's default convertor sends the timestamp itself (UTC RFC 3339), not an age.
    t = parse_time(_get(o, "metadata", "creationTimestamp"))
    return [
        _name(o),
        "0001-01-01T00:00:00Z" if t is None else t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]


_DEFAULT: tuple[tuple[_Col, ...], RowFn] = (
    (_NAME, _c("Created At", _META + ":creationTimestamp", "date")),
    _created_at,
)


@functools.cache
def column_description(ref: str) -> str:
    definition, sep, field = ref.partition(":")
    if not sep or not definition.startswith("io.k8s."):
        return ref
    node = builtin_definitions().get(definition, {}).get("properties", {}).get(field, {})
    return str(node.get("description", ""))


def column_definitions(cols: Sequence[_Col]) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "type": t,
            "format": "name" if n == "Name" else "",
            "description": column_description(d),
            "priority": p,
        }
        for n, d, t, p in cols
    ]


def builtin_printer(group: str, kind: str) -> tuple[list[dict[str, Any]], RowFn]:
    """(column definitions, row function) for a built-in kind; upstream's Name / Created At for any other."""
    cols, row = _PRINTERS.get((group, kind), _DEFAULT)
    return column_definitions(cols), row


def name_column() -> dict[str, Any]:
    return column_definitions([_NAME])[0]


def name_of(o: dict[str, Any]) -> Any:
    return _name(o)
