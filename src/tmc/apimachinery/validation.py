"""Object validation, the API layer's single entry point.

On create/update the API layer runs, in this order (upstream's decode -> default -> validate):
1. `check_fields(obj, schema, mode)`: unknown fields are pruned (Ignore/Warn, returning warnings) or rejected
   (Strict), type mismatches rejected - 400 BadRequest either way. `schema` is `info.schema` for built-ins and
   the CRD version's (cached) `StructuralSchema` for custom resources.
2. Defaults: `structural.apply_defaults(obj)` for custom resources, `crd_defaults(obj)` for CRDs.
3. `validate_builtin(info, obj, old)` (custom resources: `validate_custom_resource`); a non-empty list becomes
   `errors.invalid(...)` (422).

Field rules live in field_validation, pod/workload rules in workload_validation, CRDs in crd_schema and
crd_validation; this module holds the core/networking/rbac/coordination/events rules and the dispatch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from tmc.apimachinery.crd_schema import StructuralSchema, crd_version_schema
from tmc.apimachinery.crd_validation import crd_defaults, validate_crd
from tmc.apimachinery.field_validation import (
    FIELD_VALIDATION_MODES,
    check_fields,
    unknown_fields,
    validate_field_validation_param,
)
from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.validation_common import (
    IMMUTABLE,
    PORT_RANGE,
    Cause,
    NameFn,
    duplicate,
    forbidden,
    immutable,
    in_port_range,
    invalid,
    is_config_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_port_name,
    is_qualified_name,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
    non_negative,
    not_supported,
    required,
    too_long,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from tmc.apimachinery.workload_validation import (
    validate_cronjob,
    validate_daemonset,
    validate_deployment,
    validate_job,
    validate_pod,
    validate_replicaset,
    validate_statefulset,
)

__all__ = [
    "FIELD_VALIDATION_MODES",
    "Cause",
    "StructuralSchema",
    "check_fields",
    "crd_defaults",
    "crd_version_schema",
    "unknown_fields",
    "validate_builtin",
    "validate_crd",
    "validate_custom_resource",
    "validate_field_validation_param",
]

Rule = Callable[[dict[str, Any], dict[str, Any] | None, list[Cause]], None]
MAX_DATA_SIZE = 1024 * 1024  # ConfigMap and Secret payloads (upstream MaxSecretSize)
_RBAC = "rbac.authorization.k8s.io"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- core/v1 ----------------------------------------------------------------------------------------------


def _validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    for finalizer in _dict(obj.get("spec")).get("finalizers") or []:
        finalizer = str(finalizer)
        msgs = is_qualified_name(finalizer)
        if not msgs and "/" not in finalizer and finalizer != "kubernetes":
            msgs = ["name is neither a standard finalizer name nor is it fully qualified"]
        out.extend(invalid("spec.finalizers", finalizer, m) for m in msgs)


def _check_keys(bag: dict[str, Any], field: str, out: list[Cause]) -> None:
    for key in bag:
        out.extend(invalid(f"{field}[{key}]", key, m) for m in is_config_key(key))


def _text_size(bag: dict[str, Any]) -> int:
    return sum(len(v.encode()) for v in bag.values() if isinstance(v, str))


def _base64_size(bag: dict[str, Any]) -> int:
    return sum(len(v) * 3 // 4 for v in bag.values() if isinstance(v, str))  # decoded size, near enough


def _validate_configmap(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    data, binary = _dict(obj.get("data")), _dict(obj.get("binaryData"))
    _check_keys(data, "data", out)
    _check_keys(binary, "binaryData", out)
    out.extend(invalid(f"data[{k}]", k, "duplicate of key present in binaryData") for k in data if k in binary)
    if _text_size(data) + _base64_size(binary) > MAX_DATA_SIZE:
        out.append(too_long("", MAX_DATA_SIZE))
    _immutable_payload(obj, old, ("data", "binaryData"), out)


def _immutable_payload(
    obj: dict[str, Any], old: dict[str, Any] | None, bags: tuple[str, ...], out: list[Cause]
) -> None:
    if old is None or not old.get("immutable"):
        return
    msg = "field is immutable when `immutable` is set"
    if not obj.get("immutable"):
        out.append(forbidden("immutable", msg))
    for bag in bags:
        if (obj.get(bag) or {}) != (old.get(bag) or {}):
            out.append(forbidden(bag, msg))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_secret(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    # stringData is merged into data before upstream validates, so its keys count as data keys.
    data, string_data = _dict(obj.get("data")), _dict(obj.get("stringData"))
    _check_keys(data, "data", out)
    _check_keys({k: v for k, v in string_data.items() if k not in data}, "data", out)
    overridden = {k: v for k, v in data.items() if k not in string_data}
    if _base64_size(overridden) + _text_size(string_data) > MAX_DATA_SIZE:
        out.append(too_long("data", MAX_DATA_SIZE))
    keys = set(data) | set(string_data)
    stype = obj.get("type") or "Opaque"
    for key in _SECRET_REQUIRED_KEYS.get(stype, ()):
        if key not in keys:
            out.append(required(f"data[{key}]"))
    if stype == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
        out.extend([required("data[username]"), required("data[password]")])
    if stype == "kubernetes.io/service-account-token":
        annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            out.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None:
        immutable(out, "type", stype, old.get("type") or "Opaque")
        _immutable_payload(obj, old, ("data",), out)


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _validate_service(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        out.append(required("spec"))
        return
    stype = spec.get("type") or "ClusterIP"
    if stype not in _SERVICE_TYPES:
        out.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    cluster_ip = spec.get("clusterIP") or ""
    if stype == "ExternalName":
        name = str(spec.get("externalName") or "")
        if not name:
            out.append(required("spec.externalName"))
        else:
            out.extend(invalid("spec.externalName", name, m) for m in is_dns1123_subdomain(name.rstrip(".")))
    elif cluster_ip and cluster_ip != "None" and not _is_ip(cluster_ip):
        out.append(
            invalid("spec.clusterIP", cluster_ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        )
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and cluster_ip != "None":
        out.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        _validate_service_port(_dict(port), f"spec.ports[{i}]", stype, len(ports) > 1, names, out)
        key = (_dict(port).get("port"), _dict(port).get("protocol") or "TCP")
        if key in seen:
            out.append(duplicate(f"spec.ports[{i}]", port))
        seen.add(key)
    affinity = spec.get("sessionAffinity")
    if affinity is not None and affinity not in ("None", "ClientIP"):
        out.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    policy = spec.get("externalTrafficPolicy")
    if policy and stype not in ("NodePort", "LoadBalancer"):
        detail = "may only be set when `type` is 'NodePort' or 'LoadBalancer'"
        out.append(invalid("spec.externalTrafficPolicy", policy, detail))
    elif policy and policy not in ("Cluster", "Local"):
        out.append(not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local")))
    validate_labels(spec.get("selector"), "spec.selector", out)
    if old is not None:
        old_spec = _dict(old.get("spec"))
        old_ip = old_spec.get("clusterIP") or ""
        # An omitted clusterIP keeps the allocated one (upstream fills it in); ExternalName has none to keep.
        changes_type = "ExternalName" in (stype, old_spec.get("type"))
        if cluster_ip and old_ip and cluster_ip != old_ip and not changes_type:
            out.append(invalid("spec.clusterIP", cluster_ip, IMMUTABLE))


def _validate_service_port(
    port: dict[str, Any], p: str, stype: str, named: bool, names: set[str], out: list[Cause]
) -> None:
    name = port.get("name") or ""
    if not name:
        if named:
            out.append(required(f"{p}.name"))
    else:
        out.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(name))
        if name in names:
            out.append(duplicate(f"{p}.name", name))
        names.add(name)
    number = port.get("port")
    if not in_port_range(number):
        out.append(invalid(f"{p}.port", number if number is not None else 0, PORT_RANGE))
    protocol = port.get("protocol")
    if protocol is not None and protocol not in ("SCTP", "TCP", "UDP"):
        out.append(not_supported(f"{p}.protocol", protocol, ("SCTP", "TCP", "UDP")))
    target = port.get("targetPort")
    if isinstance(target, str):
        out.extend(invalid(f"{p}.targetPort", target, m) for m in is_port_name(target))
    elif target is not None and target != 0 and not in_port_range(target):
        out.append(invalid(f"{p}.targetPort", target, PORT_RANGE))
    node_port = port.get("nodePort")
    if node_port:
        if stype in ("ClusterIP", "ExternalName"):
            out.append(forbidden(f"{p}.nodePort", f"may not be used when `type` is '{stype}'"))
        elif not in_port_range(node_port):
            out.append(invalid(f"{p}.nodePort", node_port, PORT_RANGE))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_EVENT_TYPES = ("Normal", "Warning")


def _validate_core_event(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    namespace = _dict(obj.get("metadata")).get("namespace") or ""
    involved = _dict(obj.get("involvedObject")).get("namespace") or ""
    if not obj.get("eventTime"):
        # Legacy events: cluster-scoped objects' events live in "default" (or nowhere), others in their namespace.
        if (not involved and namespace not in ("", "default")) or (involved and involved != namespace):
            out.append(invalid("involvedObject.namespace", involved, "does not match event.namespace"))
    else:
        for key in ("reportingComponent", "reportingInstance", "action", "reason"):
            if not obj.get(key):
                out.append(required(key))
    etype = obj.get("type")
    if etype and etype not in _EVENT_TYPES:
        out.append(not_supported("type", etype, _EVENT_TYPES))


def _validate_events_event(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    for key in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(key):
            out.append(required(key))
    etype = obj.get("type")
    if etype and etype not in _EVENT_TYPES:
        out.append(not_supported("type", etype, _EVENT_TYPES))


# --- networking, coordination, rbac -------------------------------------------------------------------------

_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _validate_ingress(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    if spec.get("defaultBackend") is not None:
        _validate_backend(_dict(spec["defaultBackend"]), "spec.defaultBackend", out)
    elif not spec.get("rules"):
        out.append(invalid("spec.rules", [], "either `defaultBackend` or `rules` must be specified"))
    class_name = spec.get("ingressClassName")
    if class_name:
        out.extend(invalid("spec.ingressClassName", class_name, m) for m in is_dns1123_subdomain(class_name))
    for i, rule in enumerate(spec.get("rules") or []):
        p = f"spec.rules[{i}]"
        rule = _dict(rule)
        host = rule.get("host") or ""
        if host:
            if _is_ip(host):
                out.append(invalid(f"{p}.host", host, "must be a DNS name, not an IP address"))
            else:
                name = host[2:] if host.startswith("*.") else host
                out.extend(invalid(f"{p}.host", host, m) for m in is_dns1123_subdomain(name))
        http = rule.get("http")
        if http is None:
            continue
        paths = _dict(http).get("paths") or []
        if not paths:
            out.append(required(f"{p}.http.paths"))
        for j, entry in enumerate(paths):
            pp = f"{p}.http.paths[{j}]"
            entry = _dict(entry)
            ptype = entry.get("pathType")
            if not ptype:
                out.append(required(f"{pp}.pathType", "pathType must be specified"))
            elif ptype not in _PATH_TYPES:
                out.append(not_supported(f"{pp}.pathType", ptype, _PATH_TYPES))
            path = entry.get("path") or ""
            if ptype in ("Exact", "Prefix") and not path.startswith("/"):
                out.append(invalid(f"{pp}.path", path, "must be an absolute path"))
            _validate_backend(_dict(entry.get("backend")), f"{pp}.backend", out)


def _validate_backend(backend: dict[str, Any], p: str, out: list[Cause]) -> None:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        out.append(invalid(p, backend, "cannot set both resource and service backends"))
    elif service is None and resource is None:
        out.append(invalid(p, backend, "resource or service backend is required"))
    if not isinstance(service, dict):
        return
    name = service.get("name") or ""
    if not name:
        out.append(required(f"{p}.service.name"))
    else:
        out.extend(invalid(f"{p}.service.name", name, m) for m in is_dns1123_label(name))
    port = _dict(service.get("port"))
    pname, number = port.get("name"), port.get("number")
    if pname and number:
        out.append(invalid(f"{p}.service.port", port, "cannot set both port name & port number"))
    elif pname:
        out.extend(invalid(f"{p}.service.port.name", pname, m) for m in is_port_name(pname))
    elif number:
        if not in_port_range(number):
            out.append(invalid(f"{p}.service.port.number", number, PORT_RANGE))
    else:
        out.append(invalid(f"{p}.service.port", port, "port name or number is required"))


def _validate_lease(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    spec = _dict(obj.get("spec"))
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        out.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    non_negative(spec, "leaseTransitions", "spec", out)


def _validate_rules(obj: dict[str, Any], namespaced: bool, out: list[Cause]) -> None:
    for i, rule in enumerate(obj.get("rules") or []):
        p = f"rules[{i}]"
        rule = _dict(rule)
        if not rule.get("verbs"):
            out.append(required(f"{p}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs")
        if urls:
            if namespaced:
                out.append(invalid(f"{p}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                detail = "rules cannot apply to both regular resources and non-resource URLs"
                out.append(invalid(f"{p}.nonResourceURLs", urls, detail))
            continue
        if not rule.get("apiGroups"):
            out.append(required(f"{p}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            out.append(required(f"{p}.resources", "resource rules must supply at least one resource"))


def _validate_role(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    _validate_rules(obj, True, out)


def _validate_cluster_role(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    if obj.get("aggregationRule") is None:  # aggregated roles get their rules from the aggregation controller
        _validate_rules(obj, False, out)


def _validate_binding(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause], cluster: bool) -> None:
    ref = _dict(obj.get("roleRef"))
    if ref.get("apiGroup") != _RBAC:
        out.append(not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (_RBAC,)))
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if ref.get("kind") not in kinds:
        out.append(not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    if not ref.get("name"):
        out.append(required("roleRef.name"))
    else:
        out.extend(invalid("roleRef.name", ref["name"], m) for m in name_is_path_segment(ref["name"], False))
    for i, subject in enumerate(obj.get("subjects") or []):
        p = f"subjects[{i}]"
        subject = _dict(subject)
        kind, group = subject.get("kind"), subject.get("apiGroup") or ""
        if not subject.get("name"):
            out.append(required(f"{p}.name"))
        if kind == "ServiceAccount":
            if group:
                out.append(not_supported(f"{p}.apiGroup", group, ("",)))
            if cluster and not subject.get("namespace"):
                out.append(required(f"{p}.namespace"))
        elif kind in ("User", "Group"):
            if group != _RBAC:
                out.append(not_supported(f"{p}.apiGroup", group, (_RBAC,)))
        else:
            out.append(not_supported(f"{p}.kind", kind or "", ("ServiceAccount", "User", "Group")))
    if old is not None and obj.get("roleRef") != old.get("roleRef"):
        out.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))


def _validate_role_binding(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    _validate_binding(obj, old, out, cluster=False)


def _validate_cluster_role_binding(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    _validate_binding(obj, old, out, cluster=True)


def _validate_crd_rule(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    out.extend(validate_crd(obj, old))


# --- dispatch ---------------------------------------------------------------------------------------------

_RULES: dict[tuple[str, str], Rule] = {
    ("", "Namespace"): _validate_namespace,
    ("", "ConfigMap"): _validate_configmap,
    ("", "Secret"): _validate_secret,
    ("", "Service"): _validate_service,
    ("", "Pod"): validate_pod,
    ("", "Event"): _validate_core_event,
    ("events.k8s.io", "Event"): _validate_events_event,
    ("apps", "Deployment"): validate_deployment,
    ("apps", "ReplicaSet"): validate_replicaset,
    ("apps", "StatefulSet"): validate_statefulset,
    ("apps", "DaemonSet"): validate_daemonset,
    ("batch", "Job"): validate_job,
    ("batch", "CronJob"): validate_cronjob,
    ("networking.k8s.io", "Ingress"): _validate_ingress,
    ("coordination.k8s.io", "Lease"): _validate_lease,
    (_RBAC, "Role"): _validate_role,
    (_RBAC, "ClusterRole"): _validate_cluster_role,
    (_RBAC, "RoleBinding"): _validate_role_binding,
    (_RBAC, "ClusterRoleBinding"): _validate_cluster_role_binding,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _validate_crd_rule,
}

_NAME_RULES: dict[tuple[str, str], NameFn] = {
    ("", "Namespace"): name_is_dns_label,
    ("", "Service"): name_is_dns1035_label,
    (_RBAC, "Role"): name_is_path_segment,
    (_RBAC, "ClusterRole"): name_is_path_segment,
    (_RBAC, "RoleBinding"): name_is_path_segment,
    (_RBAC, "ClusterRoleBinding"): name_is_path_segment,
}


def validate_builtin(info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Semantic validation of a create (`old` None) or update; an empty list means valid.

    Runs after `check_fields` and defaulting, with `metadata.namespace` already set from the request path and
    (on update) system metadata carried over from `old`. CRDs include `validate_crd`; for custom resources only
    metadata is checked here - use `validate_custom_resource` for them.
    """
    out: list[Cause] = []
    meta = obj.get("metadata")
    name_fn = _NAME_RULES.get((info.group, info.kind), name_is_dns_subdomain)
    validate_object_meta(meta, out, namespaced=info.namespaced, name_fn=name_fn)
    if old is not None:
        validate_object_meta_update(meta, old.get("metadata"), out)
    if not info.crd:
        rule = _RULES.get((info.group, info.kind))
        if rule is not None:
            rule(obj, old, out)
    return out


def validate_custom_resource(
    info: ResourceInfo, schema: StructuralSchema | None, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[Cause]:
    """Metadata rules, the CRD schema's value validations, then its CEL rules (call after pruning and
    `apply_defaults`)."""
    out = validate_builtin(info, obj, old)
    if schema is not None:
        out.extend(schema.validate(obj))
        rules = schema.cel
        if rules is not None:
            out.extend(rules.validate(obj, old, out))
    return out
