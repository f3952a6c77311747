"""Semantic validation of pods and workloads (apps/v1, batch/v1): the rules users actually hit.

Each `validate_*` takes the new object, the stored one on update (else None) and appends causes to `out`.
"""

from __future__ import annotations

import copy
import functools
import re
import zoneinfo
from typing import Any

from tmc.apimachinery.validation_common import (
    PORT_RANGE,
    Cause,
    duplicate,
    forbidden,
    immutable,
    in_port_range,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_port_name,
    non_negative,
    not_found,
    not_supported,
    required,
    selector_is_empty,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
)

_RESTART_ANY = ("Always", "OnFailure", "Never")
_RESTART_JOB = ("OnFailure", "Never")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("SCTP", "TCP", "UDP")
_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_MAX_INT32 = 2**31 - 1


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- pod spec ---------------------------------------------------------------------------------------------


def validate_pod_spec(
    spec: Any, path: str, out: list[Cause], restart: tuple[str, ...] = _RESTART_ANY, require_restart: bool = False
) -> None:
    spec = _dict(spec)
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        p = f"{path}.volumes[{i}].name"
        name = _dict(volume).get("name") or ""
        if not name:
            out.append(required(p))
            continue
        out.extend(invalid(p, name, m) for m in is_dns1123_label(name))
        if name in volumes:
            out.append(duplicate(p, name))
        volumes.add(name)
    if not spec.get("containers"):
        out.append(required(f"{path}.containers"))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field) or []):
            if isinstance(container, dict):
                _validate_container(container, f"{path}.{field}[{i}]", names, volumes, out)
    policy = spec.get("restartPolicy") or ""
    if not policy:
        if require_restart:
            out.append(required(f"{path}.restartPolicy", "valid values: " + ", ".join(f'"{r}"' for r in restart)))
    elif policy not in restart:
        out.append(not_supported(f"{path}.restartPolicy", policy, restart))
    dns = spec.get("dnsPolicy")
    if dns and dns not in _DNS_POLICIES:
        out.append(not_supported(f"{path}.dnsPolicy", dns, _DNS_POLICIES))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= _MAX_INT32:
        out.append(invalid(f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {_MAX_INT32}, inclusive"))
    validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector", out)
    for key, check in (("hostname", is_dns1123_label), ("subdomain", is_dns1123_label)):
        if spec.get(key):
            out.extend(invalid(f"{path}.{key}", spec[key], m) for m in check(spec[key]))
    if spec.get("serviceAccountName"):
        sa = spec["serviceAccountName"]
        out.extend(invalid(f"{path}.serviceAccountName", sa, m) for m in is_dns1123_subdomain(sa))


def _validate_container(c: dict[str, Any], p: str, names: set[str], volumes: set[str], out: list[Cause]) -> None:
    name = c.get("name") or ""
    if not name:
        out.append(required(f"{p}.name"))
    else:
        out.extend(invalid(f"{p}.name", name, m) for m in is_dns1123_label(name))
        if name in names:
            out.append(duplicate(f"{p}.name", name))
        names.add(name)
    image = c.get("image")
    if not image:
        out.append(required(f"{p}.image"))
    elif isinstance(image, str) and image != image.strip():
        out.append(invalid(f"{p}.image", image, "must not have leading or trailing whitespace"))
    policy = c.get("imagePullPolicy")
    if policy and policy not in _PULL_POLICIES:
        out.append(not_supported(f"{p}.imagePullPolicy", policy, _PULL_POLICIES))
    port_names: set[str] = set()
    for j, port in enumerate(c.get("ports") or []):
        pp = f"{p}.ports[{j}]"
        port = _dict(port)
        cport = port.get("containerPort")
        if not cport:
            out.append(required(f"{pp}.containerPort"))
        elif not in_port_range(cport):
            out.append(invalid(f"{pp}.containerPort", cport, PORT_RANGE))
        host = port.get("hostPort")
        if host and not in_port_range(host):
            out.append(invalid(f"{pp}.hostPort", host, PORT_RANGE))
        protocol = port.get("protocol")
        if protocol is not None and protocol not in _PROTOCOLS:
            out.append(not_supported(f"{pp}.protocol", protocol, _PROTOCOLS))
        pname = port.get("name")
        if pname:
            out.extend(invalid(f"{pp}.name", pname, m) for m in is_port_name(pname))
            if pname in port_names:
                out.append(duplicate(f"{pp}.name", pname))
            port_names.add(pname)
    for j, env in enumerate(c.get("env") or []):
        if not _dict(env).get("name"):
            out.append(required(f"{p}.env[{j}].name"))
    for j, mount in enumerate(c.get("volumeMounts") or []):
        mp = f"{p}.volumeMounts[{j}]"
        mount = _dict(mount)
        mname = mount.get("name") or ""
        if not mname:
            out.append(required(f"{mp}.name"))
        elif mname not in volumes:
            out.append(not_found(f"{mp}.name", mname))
        if not mount.get("mountPath"):
            out.append(required(f"{mp}.mountPath"))


_POD_UPDATE_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _mutable_pod_fields_cleared(spec: Any) -> dict[str, Any]:
    spec = copy.deepcopy(_dict(spec))
    for field in ("containers", "initContainers"):
        for c in spec.get(field) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "nodeName"):
        spec.pop(key, None)
    return spec


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    validate_pod_spec(obj.get("spec"), "spec", out)
    if old is not None and _mutable_pod_fields_cleared(obj.get("spec")) != _mutable_pod_fields_cleared(old.get("spec")):
        out.append(forbidden("spec", _POD_UPDATE_MSG))


# --- apps -------------------------------------------------------------------------------------------------


def _validate_template(
    spec: dict[str, Any],
    path: str,
    out: list[Cause],
    restart: tuple[str, ...],
    require_restart: bool = False,
) -> None:
    template = spec.get("template")
    if not isinstance(template, dict):
        out.append(required(f"{path}.template"))
        return
    meta = _dict(template.get("metadata"))
    labels = _dict(meta.get("labels"))
    validate_labels(labels, f"{path}.template.metadata.labels", out)
    validate_annotations(meta.get("annotations"), f"{path}.template.metadata.annotations", out)
    selector = spec.get("selector")
    if isinstance(selector, dict) and not selector_is_empty(selector) and not selector_matches(selector, labels):
        out.append(invalid(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    validate_pod_spec(template.get("spec"), f"{path}.template.spec", out, restart, require_restart)


def _validate_set(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause], word: str, scaled: bool) -> bool:
    """What Deployments, ReplicaSets, StatefulSets and DaemonSets share; False when there is no spec at all."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        out.append(required("spec"))
        return False
    if scaled:
        non_negative(spec, "replicas", "spec", out)
    non_negative(spec, "minReadySeconds", "spec", out)
    non_negative(spec, "revisionHistoryLimit", "spec", out)
    selector = spec.get("selector")
    if selector is None:
        out.append(required("spec.selector"))
    else:
        validate_label_selector(selector, "spec.selector", out)
        if selector_is_empty(selector):
            out.append(invalid("spec.selector", selector, f"empty selector is invalid for {word}"))
    _validate_template(spec, "spec", out, ("Always",))
    if old is not None:
        immutable(out, "spec.selector", selector, _dict(old.get("spec")).get("selector"))
    return True


_PERCENT = re.compile(r"[0-9]+%")


def _int_or_percent(value: Any, path: str, out: list[Cause], max_percent: bool) -> int | None:
    """The value of an int-or-percent field when it is usable for comparisons (percent as a negative marker)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            out.append(invalid(path, value, "must be greater than or equal to 0"))
        return value
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            detail = (
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
                "regex used for validation is '[0-9]+%')"
            )
            out.append(invalid(path, value, detail))
            return None
        pct = int(value[:-1])
        if max_percent and pct > 100:
            out.append(invalid(path, value, "must not be greater than 100%"))
        return pct
    return None


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    if not _validate_set(obj, old, out, "deployment", True):
        return
    spec = obj["spec"]
    strategy = _dict(spec.get("strategy"))
    stype = strategy.get("type")
    if stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        out.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif stype not in (None, "Recreate", "RollingUpdate"):
        out.append(not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate")))
    rolling = strategy.get("rollingUpdate")
    if isinstance(rolling, dict):
        p = "spec.strategy.rollingUpdate"
        unavailable = _int_or_percent(rolling.get("maxUnavailable"), f"{p}.maxUnavailable", out, True)
        surge = _int_or_percent(rolling.get("maxSurge"), f"{p}.maxSurge", out, False)
        if unavailable == 0 and surge == 0:
            out.append(
                invalid(f"{p}.maxUnavailable", rolling.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0")
            )
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        if deadline <= 0:
            out.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than 0"))
        elif isinstance(spec.get("minReadySeconds"), int) and deadline <= spec["minReadySeconds"]:
            out.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    _validate_set(obj, old, out, "deployment", True)  # upstream's ReplicaSet message says "deployment" too


def validate_daemonset(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    if _validate_set(obj, old, out, "daemonset", False):
        _update_strategy(obj["spec"], out)


def _update_strategy(spec: dict[str, Any], out: list[Cause]) -> None:
    stype = _dict(spec.get("updateStrategy")).get("type")
    if stype is not None and stype not in ("RollingUpdate", "OnDelete"):
        out.append(not_supported("spec.updateStrategy.type", stype, ("OnDelete", "RollingUpdate")))


_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)
_STS_DEFAULTS = {"podManagementPolicy": "OrderedReady", "serviceName": ""}
_STS_UPDATE_MSG = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def validate_statefulset(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    if not _validate_set(obj, None, out, "statefulset", True):
        return
    spec = obj["spec"]
    policy = spec.get("podManagementPolicy")
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        out.append(not_supported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel")))
    _update_strategy(spec, out)
    if old is not None:
        old_spec = _dict(old.get("spec"))
        keys = (set(spec) | set(old_spec)) - set(_STS_MUTABLE)
        # Absent defaulted fields count as their default, so a PUT without them is not a change.
        if any(spec.get(k, _STS_DEFAULTS.get(k)) != old_spec.get(k, _STS_DEFAULTS.get(k)) for k in keys):
            out.append(forbidden("spec", _STS_UPDATE_MSG))


# --- batch ------------------------------------------------------------------------------------------------

_JOB_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _validate_job_spec(spec: Any, path: str, out: list[Cause]) -> None:
    """JobSpec rules; a missing selector is fine unless manualSelector, as the registry generates it."""
    if not isinstance(spec, dict):
        out.append(required(path))
        return
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        non_negative(spec, key, path, out)
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        out.append(not_supported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
    if mode == "Indexed" and spec.get("completions") is None:
        out.append(required(f"{path}.completions", "when completion mode is Indexed"))
    selector = spec.get("selector")
    if spec.get("manualSelector") and selector is None:
        out.append(required(f"{path}.selector"))
    elif selector is not None:
        validate_label_selector(selector, f"{path}.selector", out)
    _validate_template(spec, path, out, _RESTART_JOB, require_restart=True)


def _job_template_without_scheduling(template: Any) -> Any:
    template = copy.deepcopy(_dict(template))
    _dict(template.get("metadata")).pop("labels", None)
    _dict(template.get("metadata")).pop("annotations", None)
    for key in _JOB_SCHEDULING_FIELDS:
        _dict(template.get("spec")).pop(key, None)
    return template


def validate_job(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    _validate_job_spec(obj.get("spec"), "spec", out)
    if old is None:
        return
    spec, old_spec = _dict(obj.get("spec")), _dict(old.get("spec"))
    immutable(out, "spec.selector", spec.get("selector"), old_spec.get("selector"))
    immutable(out, "spec.completionMode", spec.get("completionMode"), old_spec.get("completionMode"))
    elastic = spec.get("completionMode") == "Indexed" and spec.get("completions") == spec.get("parallelism")
    if not elastic:
        immutable(out, "spec.completions", spec.get("completions"), old_spec.get("completions"))
    new_t, old_t = spec.get("template"), old_spec.get("template")
    if old_spec.get("suspend"):
        # A suspended job may have its scheduling directives changed before it starts, as upstream allows.
        new_t, old_t = _job_template_without_scheduling(new_t), _job_template_without_scheduling(old_t)
    if new_t != old_t:
        out.append(invalid("spec.template", spec.get("template"), "field is immutable"))


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {m: i + 1 for i, m in enumerate(_MONTHS)},
    {d: i for i, d in enumerate(_WEEKDAYS)},
)
_DURATION = re.compile(r"([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+")


def cron_schedule_error(schedule: str) -> str | None:
    """Why robfig/cron (as the CronJob controller configures it) would reject `schedule`, or None."""
    if "TZ" in schedule:
        return "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
    text = schedule.strip()
    if text.startswith("@"):
        if text in _CRON_MACROS or (text.startswith("@every ") and _DURATION.fullmatch(text[7:].strip())):
            return None
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field, (low, high), names in zip(fields, _CRON_BOUNDS, _CRON_NAMES, strict=True):
        for expr in field.split(","):
            err = _cron_range_error(expr, low, high, names)
            if err:
                return err
    return None


def _cron_range_error(expr: str, low: int, high: int, names: dict[str, int]) -> str | None:
    range_part, _, step = expr.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step of range should be a positive number: {expr}"
    if range_part in ("*", "?"):
        return None
    bounds = range_part.split("-")
    if len(bounds) > 2:
        return f"too many hyphens: {expr}"
    values: list[int] = []
    for b in bounds:
        if b.lower() in names:
            values.append(names[b.lower()])
        elif b.isdigit():
            values.append(int(b))
        else:
            return f'failed to parse int from {b}: strconv.Atoi: parsing "{b}": invalid syntax'
    start, end = values[0], values[-1]
    if start < low:
        return f"beginning of range ({start}) below minimum ({low}): {expr}"
    if end > high:
        return f"end of range ({end}) above maximum ({high}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_cronjob(obj: dict[str, Any], old: dict[str, Any] | None, out: list[Cause]) -> None:
    name = _dict(obj.get("metadata")).get("name") or ""
    if len(name) > 52:
        out.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        out.append(required("spec"))
        return
    schedule = spec.get("schedule")
    if not schedule:
        out.append(required("spec.schedule"))
    elif isinstance(schedule, str) and (err := cron_schedule_error(schedule)):
        out.append(invalid("spec.schedule", schedule, err))
    tz = spec.get("timeZone")
    if isinstance(tz, str):
        if tz.lower() == "local":
            detail = "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
            out.append(invalid("spec.timeZone", tz, detail))
        elif _time_zones() and tz not in _time_zones() and tz != "UTC":
            out.append(invalid("spec.timeZone", tz, f"unknown time zone {tz}"))
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in ("Allow", "Forbid", "Replace"):
        out.append(not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        non_negative(spec, key, "spec", out)
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        out.append(required("spec.jobTemplate"))
        return
    validate_labels(_dict(job_template.get("metadata")).get("labels"), "spec.jobTemplate.metadata.labels", out)
    _validate_job_spec(job_template.get("spec"), "spec.jobTemplate.spec", out)
