"""Field validation (unknown fields, decode errors), built-in semantic rules, CRDs and custom resources."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tmc.apimachinery import errors
from tmc.apimachinery.resources import BUILTIN_RESOURCES, ResourceInfo
from tmc.apimachinery.schemas import Schema, builtin_schema
from tmc.apimachinery.validation import (
    StructuralSchema,
    check_fields,
    crd_defaults,
    crd_version_schema,
    unknown_fields,
    validate_builtin,
    validate_crd,
    validate_custom_resource,
    validate_field_validation_param,
)
from tmc.apimachinery.workload_validation import cron_schedule_error

INFOS = {(r.group, r.kind): r for r in BUILTIN_RESOURCES}
Obj = dict[str, Any]


def info(kind: str, group: str = "") -> ResourceInfo:
    return INFOS[(group, kind)]


def schema(kind: str, group: str = "") -> Schema:
    found = builtin_schema(group, "v1", kind)
    assert found is not None
    return found


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "name": "http"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                            "env": [{"name": "MODE", "value": "prod"}],
                        }
                    ]
                },
            },
        },
    }


def get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split(".") if path else []:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


# --- unknown fields --------------------------------------------------------------------------------------

UNKNOWN_CASES: list[tuple[str, str, str, Any, str]] = [
    # (description, parent path, key, value, reported path)
    ("top level", "", "extra", 1, "extra"),
    ("spec", "spec", "replicass", 3, "spec.replicass"),
    ("metadata", "metadata", "lables", {}, "metadata.lables"),
    ("list item", "spec.template.spec.containers.0", "imagePullPolicyy", "Always", None),
    ("nested list item", "spec.template.spec.containers.0.ports.0", "hostPortt", 1, None),
    ("inside selector", "spec.selector", "matchLabel", {}, "spec.selector.matchLabel"),
    ("template metadata", "spec.template.metadata", "label", {}, "spec.template.metadata.label"),
]


@pytest.mark.parametrize(("desc", "parent", "key", "value", "expected"), UNKNOWN_CASES)
def test_unknown_fields_at_depth(desc: str, parent: str, key: str, value: Any, expected: str | None) -> None:
    obj = deployment()
    target = get_path(obj, parent) if parent else obj
    target[key] = value
    want = expected or (parent.replace(".0", "[0]") + "." + key)
    assert unknown_fields(obj, schema("Deployment", "apps")) == [want], desc


def test_valid_objects_have_no_unknown_fields() -> None:
    assert unknown_fields(deployment(), schema("Deployment", "apps")) == []


def test_unknown_fields_inside_map_values() -> None:
    crd = sample_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["typo"] = True
    found = unknown_fields(crd, schema("CustomResourceDefinition", "apiextensions.k8s.io"))
    assert found == ["spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"]


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        # map values of any key are known: labels, annotations, ConfigMap data, Secret data
        ("ConfigMap", {"metadata": {"name": "c", "annotations": {"any/key": "v"}}, "data": {"whatever": "x"}}),
        ("Secret", {"metadata": {"name": "s"}, "data": {"k": "dmFsdWU="}, "stringData": {"k2": "v"}}),
        # int-or-string accepts both
        ("Service", {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8080}]}}),
    ],
)
def test_maps_and_int_or_string_are_not_unknown(kind: str, obj: Obj) -> None:
    assert unknown_fields(obj, schema(kind)) == []


def test_untyped_objects_preserve_everything() -> None:
    # CRD defaults/examples are free-form JSON (apiextensions JSON has an empty schema).
    crd = sample_crd()
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["replicas"]["default"] = {"anything": {"goes": [1, 2]}}
    assert unknown_fields(crd, schema("CustomResourceDefinition", "apiextensions.k8s.io")) == []


# --- fieldValidation modes --------------------------------------------------------------------------------


def with_typos() -> Obj:
    obj = deployment()
    obj["spec"]["replicass"] = 3
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    return obj


def test_strict_rejects_with_upstream_message() -> None:
    obj = with_typos()
    with pytest.raises(errors.StatusError) as exc:
        check_fields(obj, schema("Deployment", "apps"), "Strict")
    assert exc.value.code == 400
    assert exc.value.reason == "BadRequest"
    assert exc.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy", unknown field "spec.replicass"'
    )  # document order, as upstream's decoder reports them
    assert obj["spec"]["replicass"] == 3  # a rejected body is left alone


def test_warn_prunes_and_warns() -> None:
    obj = with_typos()
    warnings = check_fields(obj, schema("Deployment", "apps"), "Warn")
    assert warnings == [
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy"',
        'unknown field "spec.replicass"',
    ]
    assert "replicass" not in obj["spec"]
    assert "imagePullPolicyy" not in obj["spec"]["template"]["spec"]["containers"][0]
    assert obj["spec"]["replicas"] == 2


def test_ignore_prunes_silently() -> None:
    obj = with_typos()
    assert check_fields(obj, schema("Deployment", "apps"), "Ignore") == []
    assert unknown_fields(obj, schema("Deployment", "apps")) == []


def test_clean_object_passes_every_mode() -> None:
    for mode in ("Strict", "Warn", "Ignore"):
        obj = deployment()
        assert check_fields(obj, schema("Deployment", "apps"), mode) == []
        assert obj == deployment()


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "Warn"), ("", "Warn"), ("Strict", "Strict"), ("Ignore", "Ignore")]
)
def test_field_validation_param(value: str | None, expected: str) -> None:
    assert validate_field_validation_param(value) == expected


def test_field_validation_param_rejects_unknown() -> None:
    with pytest.raises(errors.StatusError) as exc:
        validate_field_validation_param("strict")
    assert exc.value.code == 422


# --- decode (type) errors --------------------------------------------------------------------------------

TYPE_CASES: list[tuple[str, Any, str]] = [
    (
        "spec.replicas",
        "three",
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
    ),
    (
        "spec.replicas",
        1.5,
        "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
    ),
    ("spec.replicas", 2**31, "cannot unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas"),
    ("spec.paused", "yes", "cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
    (
        "spec.template",
        [],
        "cannot unmarshal array into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec",
    ),
    (
        "metadata.labels",
        {"a": 1},
        "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
    ),
    (
        "spec.template.spec.containers",
        {},
        "cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers",
    ),
    ("metadata.creationTimestamp", "yesterday", 'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00"'),
]


@pytest.mark.parametrize(("path", "value", "message"), TYPE_CASES)
@pytest.mark.parametrize("mode", ["Strict", "Ignore"])
def test_type_errors_are_bad_requests(path: str, value: Any, message: str, mode: str) -> None:
    obj = deployment()
    parent, _, key = path.rpartition(".")
    get_path(obj, parent)[key] = value
    with pytest.raises(errors.StatusError) as exc:
        check_fields(obj, schema("Deployment", "apps"), mode)
    assert exc.value.code == 400
    assert exc.value.message.startswith('Deployment in version "v1" cannot be handled as a Deployment: ')
    assert message in exc.value.message


def test_type_error_inside_list_item_names_the_struct() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = 5
    with pytest.raises(errors.StatusError) as exc:
        check_fields(obj, schema("Deployment", "apps"), "Strict")
    assert "Go struct field Container.spec.template.spec.containers.image of type string" in exc.value.message


@pytest.mark.parametrize(
    ("kind", "obj", "message"),
    [
        ("Secret", {"data": {"k": "not base64!"}}, "illegal base64 data at input byte 3"),
        ("ConfigMap", {"binaryData": {"k": "abc"}}, "illegal base64 data at input byte 0"),
        (
            "Pod",
            {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "lots"}}}]}},
            "quantities must match the regular expression",
        ),
    ],
)
def test_value_parse_errors(kind: str, obj: Obj, message: str) -> None:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, **obj}
    with pytest.raises(errors.StatusError) as exc:
        check_fields(obj, schema(kind), "Warn")
    assert exc.value.code == 400
    assert message in exc.value.message


def test_nulls_and_numbers_where_allowed() -> None:
    obj = deployment()
    obj["spec"]["paused"] = None
    obj["metadata"]["creationTimestamp"] = None
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 2
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = 1.5
    assert check_fields(obj, schema("Deployment", "apps"), "Strict") == []


# --- built-in semantic rules -------------------------------------------------------------------------------

Mutation = Callable[[Obj], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: Obj) -> None:
        parent, _, key = path.rpartition(".")
        get_path(obj, parent)[key] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(obj: Obj) -> None:
        parent, _, key = path.rpartition(".")
        del get_path(obj, parent)[key]

    return mutate


def _append_container(container: Obj) -> Mutation:
    return lambda obj: obj["spec"]["template"]["spec"]["containers"].append(container)


DEPLOYMENT_RULES: list[tuple[str, Mutation, str, str, str]] = [
    # (description, mutation, field, cause type, message fragment)
    (
        "name required",
        _delete("metadata.name"),
        "metadata.name",
        "FieldValueRequired",
        "name or generateName is required",
    ),
    ("name syntax", _set("metadata.name", "Web_1"), "metadata.name", "FieldValueInvalid", "RFC 1123 subdomain"),
    ("name length", _set("metadata.name", "a" * 254), "metadata.name", "FieldValueInvalid", "no more than 253"),
    (
        "namespace syntax",
        _set("metadata.namespace", "Bad.NS"),
        "metadata.namespace",
        "FieldValueInvalid",
        "RFC 1123 label",
    ),
    ("label key", _set("metadata.labels", {"bad key": "v"}), "metadata.labels", "FieldValueInvalid", "name part must"),
    ("label prefix", _set("metadata.labels", {"Ex.com/k": "v"}), "metadata.labels", "FieldValueInvalid", "prefix part"),
    (
        "label value",
        _set("metadata.labels", {"k": "bad value"}),
        "metadata.labels",
        "FieldValueInvalid",
        "a valid label",
    ),
    (
        "annotations size",
        _set("metadata.annotations", {"k": "x" * (256 * 1024)}),
        "metadata.annotations",
        "FieldValueTooLong",
        "may not be more than 262144 bytes",
    ),
    ("replicas", _set("spec.replicas", -1), "spec.replicas", "FieldValueInvalid", "greater than or equal to 0"),
    ("selector required", _delete("spec.selector"), "spec.selector", "FieldValueRequired", "Required value"),
    ("selector empty", _set("spec.selector", {}), "spec.selector", "FieldValueInvalid", "empty selector is invalid"),
    (
        "selector mismatch",
        _set("spec.template.metadata.labels", {"app": "other"}),
        "spec.template.metadata.labels",
        "FieldValueInvalid",
        "`selector` does not match template `labels`",
    ),
    (
        "bad selector operator",
        _set("spec.selector", {"matchExpressions": [{"key": "app", "operator": "Is", "values": ["web"]}]}),
        "spec.selector.matchExpressions[0].operator",
        "FieldValueInvalid",
        "not a valid selector operator",
    ),
    (
        "containers required",
        _set("spec.template.spec.containers", []),
        "spec.template.spec.containers",
        "FieldValueRequired",
        "Required value",
    ),
    (
        "duplicate container",
        _append_container({"name": "web", "image": "x"}),
        "spec.template.spec.containers[1].name",
        "FieldValueDuplicate",
        'Duplicate value: "web"',
    ),
    (
        "container name required",
        _append_container({"image": "x"}),
        "spec.template.spec.containers[1].name",
        "FieldValueRequired",
        "Required value",
    ),
    (
        "container image required",
        _append_container({"name": "side"}),
        "spec.template.spec.containers[1].image",
        "FieldValueRequired",
        "Required value",
    ),
    (
        "container port range",
        _set("spec.template.spec.containers.0.ports.0.containerPort", 70000),
        "spec.template.spec.containers[0].ports[0].containerPort",
        "FieldValueInvalid",
        "must be between 1 and 65535, inclusive",
    ),
    (
        "pull policy",
        _set("spec.template.spec.containers.0.imagePullPolicy", "Sometimes"),
        "spec.template.spec.containers[0].imagePullPolicy",
        "FieldValueNotSupported",
        'supported values: "Always", "IfNotPresent", "Never"',
    ),
    (
        "restart policy",
        _set("spec.template.spec.restartPolicy", "Never"),
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Never": supported values: "Always"',
    ),
    (
        "strategy type",
        _set("spec.strategy", {"type": "Blue"}),
        "spec.strategy.type",
        "FieldValueNotSupported",
        '"Recreate", "RollingUpdate"',
    ),
    (
        "volume mount not found",
        _set("spec.template.spec.containers.0.volumeMounts", [{"name": "data", "mountPath": "/d"}]),
        "spec.template.spec.containers[0].volumeMounts[0].name",
        "FieldValueNotFound",
        'Not found: "data"',
    ),
]


@pytest.mark.parametrize(("desc", "mutate", "field", "ctype", "fragment"), DEPLOYMENT_RULES)
def test_deployment_rules(desc: str, mutate: Mutation, field: str, ctype: str, fragment: str) -> None:
    obj = deployment()
    mutate(obj)
    causes = validate_builtin(info("Deployment", "apps"), obj, None)
    matching = [c for c in causes if c["field"] == field and c["type"] == ctype]
    assert matching, f"{desc}: {causes}"
    assert fragment in matching[0]["message"], desc


def test_valid_deployment_and_generate_name() -> None:
    assert validate_builtin(info("Deployment", "apps"), deployment(), None) == []
    obj = deployment()
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "web-"
    assert validate_builtin(info("Deployment", "apps"), obj, None) == []


def test_cause_message_format() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = -1
    assert validate_builtin(info("Deployment", "apps"), obj, None) == [
        {
            "type": "FieldValueInvalid",
            "message": "Invalid value: -1: must be greater than or equal to 0",
            "field": "spec.replicas",
        }
    ]


def workload(kind: str) -> Obj:
    obj = deployment()
    obj["kind"] = kind
    del obj["spec"]["replicas"]
    return obj


@pytest.mark.parametrize("kind", ["ReplicaSet", "StatefulSet", "DaemonSet"])
def test_other_workloads_share_selector_rules(kind: str) -> None:
    assert validate_builtin(info(kind, "apps"), workload(kind), None) == []
    obj = workload(kind)
    del obj["spec"]["selector"]
    fields = [c["field"] for c in validate_builtin(info(kind, "apps"), obj, None)]
    assert fields == ["spec.selector"]
    obj = workload(kind)
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "nope"}
    fields = [c["field"] for c in validate_builtin(info(kind, "apps"), obj, None)]
    assert fields == ["spec.template.metadata.labels"]


def service(**spec: Any) -> Obj:
    base: Obj = {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": base}


def configmap(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"}, **fields}


def secret(**fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, **fields}


def job(**spec: Any) -> Obj:
    template = {
        "metadata": {"labels": {"j": "1"}},
        "spec": {"containers": [{"name": "job", "image": "busybox"}], "restartPolicy": "Never"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": template, **spec},
    }


def cronjob(schedule: Any = "*/5 * * * *", **spec: Any) -> Obj:
    template = {"spec": {"containers": [{"name": "job", "image": "busybox"}], "restartPolicy": "OnFailure"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default"},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": template}}, **spec},
    }


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


OTHER_RULES: list[tuple[str, tuple[str, str], Obj, str, str, str]] = [
    # (description, (group, kind), object, field, cause type, message fragment)
    ("namespace label", ("", "Namespace"), namespace("a.b"), "metadata.name", "FieldValueInvalid", "RFC 1123 label"),
    ("service dns-1035", ("", "Service"), {**service(), "metadata": {"name": "1web", "namespace": "d"}},
     "metadata.name", "FieldValueInvalid", "DNS-1035 label"),
    ("service ports", ("", "Service"), service(ports=[]), "spec.ports", "FieldValueRequired", "Required value"),
    ("service port range", ("", "Service"), service(ports=[{"port": 0}]), "spec.ports[0].port", "FieldValueInvalid",
     "must be between 1 and 65535"),
    ("service port names", ("", "Service"), service(ports=[{"port": 80}, {"port": 81, "name": "b"}]),
     "spec.ports[0].name", "FieldValueRequired", "Required value"),
    ("service dup port", ("", "Service"), service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
     "spec.ports[1]", "FieldValueDuplicate", "Duplicate value"),
    ("service type", ("", "Service"), service(type="Internal"), "spec.type", "FieldValueNotSupported", '"NodePort"'),
    ("nodePort on ClusterIP", ("", "Service"), service(ports=[{"port": 80, "nodePort": 30000}]),
     "spec.ports[0].nodePort", "FieldValueForbidden", "may not be used when `type` is 'ClusterIP'"),
    ("external name", ("", "Service"), service(type="ExternalName", ports=[]), "spec.externalName",
     "FieldValueRequired", "Required value"),
    ("cluster ip", ("", "Service"), service(clusterIP="10.0.0.300"), "spec.clusterIP", "FieldValueInvalid",
     "must be a valid IP address"),
    ("configmap key", ("", "ConfigMap"), configmap(data={"bad key": "v"}), "data[bad key]", "FieldValueInvalid",
     "a valid config key"),
    ("configmap dot key", ("", "ConfigMap"), configmap(data={"..": "v"}), "data[..]", "FieldValueInvalid",
     "must not be '..'"),
    ("configmap size", ("", "ConfigMap"), configmap(data={"a": "x" * (1024 * 1024 + 1)}), "", "FieldValueTooLong",
     "may not be more than 1048576 bytes"),
    ("configmap dup key", ("", "ConfigMap"), configmap(data={"a": "x"}, binaryData={"a": "eA=="}), "data[a]",
     "FieldValueInvalid", "duplicate of key present in binaryData"),
    ("secret key", ("", "Secret"), secret(stringData={"a/b": "v"}), "data[a/b]", "FieldValueInvalid",
     "a valid config key"),
    ("secret size", ("", "Secret"), secret(stringData={"a": "x" * (1024 * 1024 + 1)}), "data", "FieldValueTooLong",
     "1048576"),
    ("tls secret", ("", "Secret"), secret(type="kubernetes.io/tls", data={"tls.crt": "eA=="}), "data[tls.key]",
     "FieldValueRequired", "Required value"),
    ("job restart missing", ("batch", "Job"), job(template={"spec": {"containers": [{"name": "a", "image": "b"}]}}),
     "spec.template.spec.restartPolicy", "FieldValueRequired", 'valid values: "OnFailure", "Never"'),
    ("job restart always", ("batch", "Job"),
     job(template={"spec": {"containers": [{"name": "a", "image": "b"}], "restartPolicy": "Always"}}),
     "spec.template.spec.restartPolicy", "FieldValueNotSupported", 'supported values: "OnFailure", "Never"'),
    ("job manual selector", ("batch", "Job"), job(manualSelector=True), "spec.selector", "FieldValueRequired",
     "Required value"),
    ("job backoff", ("batch", "Job"), job(backoffLimit=-1), "spec.backoffLimit", "FieldValueInvalid",
     "greater than or equal to 0"),
    ("cron empty", ("batch", "CronJob"), cronjob(""), "spec.schedule", "FieldValueRequired", "Required value"),
    ("cron fields", ("batch", "CronJob"), cronjob("every minute"), "spec.schedule", "FieldValueInvalid",
     "expected exactly 5 fields, found 2"),
    ("cron range", ("batch", "CronJob"), cronjob("61 * * * *"), "spec.schedule", "FieldValueInvalid",
     "end of range (61) above maximum (59)"),
    ("cron TZ", ("batch", "CronJob"), cronjob("TZ=UTC 0 * * * *"), "spec.schedule", "FieldValueInvalid",
     "use timeZone field instead"),
    ("cron policy", ("batch", "CronJob"), cronjob(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy",
     "FieldValueNotSupported", '"Allow", "Forbid", "Replace"'),
    ("cron job restart", ("batch", "CronJob"),
     {**cronjob(), "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {
         "containers": [{"name": "a", "image": "b"}], "restartPolicy": "Always"}}}}}},
     "spec.jobTemplate.spec.template.spec.restartPolicy", "FieldValueNotSupported", '"OnFailure", "Never"'),
    ("cron name length", ("batch", "CronJob"), {**cronjob(), "metadata": {"name": "c" * 53, "namespace": "d"}},
     "metadata.name", "FieldValueInvalid", "must be no more than 52 characters"),
    ("cluster-scoped namespace", ("", "Namespace"), {**namespace("ok"), "metadata": {"name": "ok", "namespace": "x"}},
     "metadata.namespace", "FieldValueForbidden", "not allowed on this type"),
    ("namespaced needs namespace", ("", "ConfigMap"), {"metadata": {"name": "c"}}, "metadata.namespace",
     "FieldValueRequired", "Required value"),
    ("rolebinding roleRef", ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
     {"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}},
     "roleRef.kind", "FieldValueNotSupported", '"ClusterRole"'),
    ("role verbs", ("rbac.authorization.k8s.io", "Role"),
     {"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]},
     "rules[0].verbs", "FieldValueRequired", "verbs must contain at least one value"),
    ("ingress pathType", ("networking.k8s.io", "Ingress"),
     {"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": [{"http": {"paths": [
         {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
     "spec.rules[0].http.paths[0].pathType", "FieldValueRequired", "pathType must be specified"),
    ("legacy event namespace", ("", "Event"),
     {"metadata": {"name": "e", "namespace": "a"}, "involvedObject": {"kind": "Pod", "namespace": "b"}},
     "involvedObject.namespace", "FieldValueInvalid", "does not match event.namespace"),
    ("new-style event", ("events.k8s.io", "Event"),
     {"metadata": {"name": "e", "namespace": "a"}, "eventTime": "2024-01-01T00:00:00.000000Z", "action": "Scale",
      "reason": "Scaled", "reportingInstance": "x"},
     "reportingController", "FieldValueRequired", "Required value"),
    ("lease duration", ("coordination.k8s.io", "Lease"),
     {"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}},
     "spec.leaseDurationSeconds", "FieldValueInvalid", "must be greater than 0"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "gk", "obj", "field", "ctype", "fragment"), OTHER_RULES)
def test_builtin_rules(desc: str, gk: tuple[str, str], obj: Obj, field: str, ctype: str, fragment: str) -> None:
    causes = validate_builtin(INFOS[gk], obj, None)
    matching = [c for c in causes if c["field"] == field and c["type"] == ctype]
    assert matching, f"{desc}: {causes}"
    assert fragment in matching[0]["message"], desc


@pytest.mark.parametrize(
    ("gk", "obj"),
    [
        (("", "Namespace"), namespace("team-a")),
        (("", "Service"), service()),
        (("", "Service"), service(type="ExternalName", externalName="db.example.com", ports=[])),
        (("", "Service"), service(clusterIP="None", ports=[])),
        (("", "ConfigMap"), configmap(data={"app.properties": "a=b", "KEY_1": "x"}, binaryData={"bin": "AAE="})),
        (("", "Secret"), secret(type="kubernetes.io/tls", data={"tls.crt": "eA==", "tls.key": "eA=="})),
        (("batch", "Job"), job()),
        (("batch", "CronJob"), cronjob("0 3 * * MON-FRI")),
        (("batch", "CronJob"), cronjob("@daily", timeZone="Etc/UTC")),
        (("rbac.authorization.k8s.io", "ClusterRole"), {"metadata": {"name": "system:view"}, "rules": []}),
        (("", "Event"), {"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"kind": "Node"}}),
    ],
)
def test_valid_builtins(gk: tuple[str, str], obj: Obj) -> None:
    assert validate_builtin(INFOS[gk], obj, None) == []


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [("* * * * *", True), ("*/15 0-6 1,15 jan-mar sun", True), ("@every 1h30m", True), ("0 0 31 2 *", True),
     ("0 24 * * *", False), ("5-1 * * * *", False), ("*/0 * * * *", False), ("@sometimes", False),
     ("x * * * *", False)],
)  # fmt: skip
def test_cron_parser(schedule: str, ok: bool) -> None:
    assert (cron_schedule_error(schedule) is None) is ok


# --- updates -----------------------------------------------------------------------------------------------

UPDATE_CASES: list[tuple[str, tuple[str, str], Obj, Mutation, str, str]] = [
    ("deployment selector", ("apps", "Deployment"), deployment(),
     lambda o: (_set("spec.selector", {"matchLabels": {"app": "v2"}})(o),
                _set("spec.template.metadata.labels", {"app": "v2"})(o)),
     "spec.selector", "field is immutable"),
    ("name", ("apps", "Deployment"), deployment(), _set("metadata.name", "other"), "metadata.name",
     "field is immutable"),
    ("namespace", ("apps", "Deployment"), deployment(), _set("metadata.namespace", "other"), "metadata.namespace",
     "field is immutable"),
    ("uid", ("apps", "Deployment"), {**deployment(), "metadata": {**deployment()["metadata"], "uid": "1"}},
     _set("metadata.uid", "2"), "metadata.uid", "field is immutable"),
    ("immutable configmap", ("", "ConfigMap"), configmap(data={"a": "1"}, immutable=True), _set("data", {"a": "2"}),
     "data", "field is immutable when `immutable` is set"),
    ("configmap un-immutable", ("", "ConfigMap"), configmap(data={"a": "1"}, immutable=True), _set("immutable", False),
     "immutable", "field is immutable when `immutable` is set"),
    ("immutable secret", ("", "Secret"), secret(data={"a": "eA=="}, immutable=True), _set("data", {"a": "eQ=="}),
     "data", "field is immutable when `immutable` is set"),
    ("secret type", ("", "Secret"), secret(data={"a": "eA=="}), _set("type", "kubernetes.io/basic-auth"), "type",
     "field is immutable"),
    ("job template", ("batch", "Job"), job(selector={"matchLabels": {"j": "1"}}),
     _set("spec.template.spec.containers", [{"name": "job", "image": "busybox:2"}]), "spec.template",
     "field is immutable"),
    ("job selector", ("batch", "Job"), job(selector={"matchLabels": {"j": "1"}}),
     _set("spec.selector", {"matchLabels": {"j": "2"}}), "spec.selector", "field is immutable"),
    ("statefulset spec", ("apps", "StatefulSet"), {**workload("StatefulSet")},
     _set("spec.serviceName", "other"), "spec", "updates to statefulset spec for fields other than"),
    ("service clusterIP", ("", "Service"), service(clusterIP="10.0.0.10"), _set("spec.clusterIP", "10.0.0.11"),
     "spec.clusterIP", "field is immutable"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "gk", "old", "mutate", "field", "fragment"), UPDATE_CASES)
def test_immutable_on_update(
    desc: str, gk: tuple[str, str], old: Obj, mutate: Mutation, field: str, fragment: str
) -> None:
    new = copy.deepcopy(old)
    mutate(new)
    assert validate_builtin(INFOS[gk], copy.deepcopy(old), copy.deepcopy(old)) == [], desc
    causes = validate_builtin(INFOS[gk], new, old)
    assert any(c["field"] == field and fragment in c["message"] for c in causes), f"{desc}: {causes}"


def test_allowed_updates() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    assert validate_builtin(info("Deployment", "apps"), new, old) == []
    old_job = job(selector={"matchLabels": {"j": "1"}}, suspend=True)
    new_job = copy.deepcopy(old_job)
    new_job["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert validate_builtin(info("Job", "batch"), new_job, old_job) == []
    old_svc = service(clusterIP="10.0.0.10")
    assert validate_builtin(info("Service"), service(), old_svc) == []  # omitted clusterIP keeps the allocated one


# --- CRDs ----------------------------------------------------------------------------------------------------


def sample_crd() -> Obj:
    spec_schema = {
        "type": "object",
        "required": ["size"],
        "properties": {
            "replicas": {"type": "integer", "format": "int32", "minimum": 0, "default": 1},
            "size": {"type": "string", "enum": ["S", "M", "L"]},
            "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 3},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "port": {"x-kubernetes-int-or-string": True},
                        "protocol": {"type": "string", "default": "TCP"},
                    },
                },
            },
            "settings": {"type": "object", "additionalProperties": {"type": "integer"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "x-kubernetes-preserve-unknown-fields": True},
            "startAt": {"type": "string", "format": "date-time", "nullable": True},
            "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": True},
            "choice": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                       "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        },
        "x-kubernetes-validations": [{"rule": "self.replicas < 100"}],
    }  # fmt: skip
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema,
                                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                    ],
                }
            ],
        },
    }


def test_crd_defaults() -> None:
    crd = crd_defaults(sample_crd())
    assert crd["spec"]["names"]["singular"] == "widget"
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"]["storedVersions"] == ["v1"]
    explicit = sample_crd()
    explicit["spec"]["names"].update(singular="gadget", listKind="Gadgets")
    explicit["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {"service": {"name": "conv", "namespace": "x"}},
            "conversionReviewVersions": ["v1"],
        },
    }
    crd_defaults(explicit)
    assert explicit["spec"]["names"]["singular"] == "gadget"
    assert explicit["spec"]["names"]["listKind"] == "Gadgets"
    assert explicit["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443


def test_valid_crd() -> None:
    crd = crd_defaults(sample_crd())
    assert validate_builtin(info("CustomResourceDefinition", "apiextensions.k8s.io"), crd, None) == []
    assert check_fields(crd, schema("CustomResourceDefinition", "apiextensions.k8s.io"), "Strict") == []


def _versions(crd: Obj) -> list[Obj]:
    versions: list[Obj] = crd["spec"]["versions"]
    return versions


def _root_props(crd: Obj) -> Obj:
    props: Obj = _versions(crd)[0]["schema"]["openAPIV3Schema"]["properties"]
    return props


CRD_CASES: list[tuple[str, Mutation, str, str]] = [
    ("name", _set("metadata.name", "widget.example.com"), "metadata.name", 'must be spec.names.plural+"."+spec.group'),
    ("group dot", lambda c: c["spec"].update(group="example"), "spec.group",
     "should be a domain with at least one dot"),
    ("plural case", lambda c: c["spec"]["names"].update(plural="Widgets"), "spec.names.plural", "DNS-1035 label"),
    ("kind", lambda c: c["spec"]["names"].update(kind="Wid get"), "spec.names.kind",
     "may have mixed case, but should otherwise match"),
    ("listKind", lambda c: c["spec"]["names"].update(listKind="Widget"), "spec.names.listKind",
     "kind and listKind may not be the same"),
    ("scope", lambda c: c["spec"].update(scope="Global"), "spec.scope", '"Cluster", "Namespaced"'),
    ("no storage", lambda c: _versions(c)[0].update(storage=False), "spec.versions",
     "must have exactly one version marked as storage version"),
    ("two storage", lambda c: _versions(c).append({**copy.deepcopy(_versions(c)[0]), "name": "v2"}), "spec.versions",
     "must have exactly one version marked as storage version"),
    ("duplicate version", lambda c: _versions(c).append({**copy.deepcopy(_versions(c)[0]), "storage": False}),
     "spec.versions[1].name", "must be unique"),
    ("schema required", lambda c: _versions(c)[0].pop("schema"), "spec.versions[0].schema.openAPIV3Schema",
     "schemas are required"),
    ("root type", lambda c: _versions(c)[0]["schema"]["openAPIV3Schema"].update(type="string"),
     "spec.versions[0].schema.openAPIV3Schema.type", "must be object at the root"),
    ("missing type", lambda c: _root_props(c).update(extra={"properties": {}}),
     "spec.versions[0].schema.openAPIV3Schema.properties[extra].type", "must not be empty for specified object fields"),
    ("array items", lambda c: _root_props(c).update(list={"type": "array"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[list].items", "must be specified"),
    ("$ref", lambda c: _root_props(c).update(ref={"$ref": "#/definitions/x"}),
     "spec.versions[0].schema.openAPIV3Schema.properties[ref].$ref", "$ref is not supported"),
    ("junctor type", lambda c: _root_props(c).update(any={"type": "string", "anyOf": [{"type": "string"}]}),
     "spec.versions[0].schema.openAPIV3Schema.properties[any].anyOf[0].type", "must be empty to be structural"),
    ("bad default", lambda c: _root_props(c)["spec"]["properties"]["replicas"].update(default="one"),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].default",
     "must be of type integer"),
    ("unpruned default", lambda c: _root_props(c).update(obj={"type": "object", "properties": {"a": {"type": "string"}},
                                                              "default": {"b": "x"}}),
     "spec.versions[0].schema.openAPIV3Schema.properties[obj].default", "must not have unknown fields"),
    ("list map keys", lambda c: _root_props(c)["spec"]["properties"]["ports"].pop("x-kubernetes-list-map-keys"),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[ports].x-kubernetes-list-map-keys",
     "must not be empty if x-kubernetes-list-type is map"),
    ("preserve false",
     lambda c: _root_props(c).update(x={"type": "object", "x-kubernetes-preserve-unknown-fields": False}),
     "spec.versions[0].schema.openAPIV3Schema.properties[x].x-kubernetes-preserve-unknown-fields",
     "must be true or undefined"),
    ("metadata schema",
     lambda c: _root_props(c).update(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
     "spec.versions[0].schema.openAPIV3Schema.properties[metadata]", "other than name and generateName"),
    ("column type", lambda c: _versions(c)[0]["additionalPrinterColumns"][0].update(type="int"),
     "spec.versions[0].additionalPrinterColumns[0].type", "Unsupported value"),
    ("column path", lambda c: _versions(c)[0]["additionalPrinterColumns"][0].update(jsonPath="spec.size"),
     "spec.versions[0].additionalPrinterColumns[0].jsonPath", "must be a simple json path starting with ."),
    ("scale spec path", lambda c: _versions(c)[0]["subresources"]["scale"].update(specReplicasPath=".status.replicas"),
     "spec.versions[0].subresources.scale.specReplicasPath", "should be a json path under .spec"),
    ("scale status path", lambda c: _versions(c)[0]["subresources"]["scale"].pop("statusReplicasPath"),
     "spec.versions[0].subresources.scale.statusReplicasPath", "Required value"),
    ("junctor field not declared", lambda c: _root_props(c)["spec"].update(anyOf=[{"properties": {"nope": {}}}]),
     "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[nope]",
     "because it is defined in spec.versions[0].schema.openAPIV3Schema.properties[spec].anyOf[0].properties[nope]"),
    ("webhook", lambda c: c["spec"].update(conversion={"strategy": "Webhook"}), "spec.conversion.webhook",
     "required when strategy is set to Webhook"),
    ("preserveUnknownFields", lambda c: c["spec"].update(preserveUnknownFields=True), "spec.preserveUnknownFields",
     "cannot set to true"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "mutate", "field", "fragment"), CRD_CASES)
def test_crd_errors(desc: str, mutate: Mutation, field: str, fragment: str) -> None:
    crd = sample_crd()
    mutate(crd)
    crd_defaults(crd)
    causes = validate_builtin(info("CustomResourceDefinition", "apiextensions.k8s.io"), crd, None)
    assert any(c["field"] == field and fragment in c["message"] for c in causes), f"{desc}: {causes}"


def test_crd_int_or_string_junctors_may_name_types() -> None:
    crd = sample_crd()
    port = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    _root_props(crd)["spec"]["properties"]["ports"]["items"]["properties"]["port"] = port
    assert validate_crd(crd_defaults(crd)) == []


def test_crd_update_rules() -> None:
    old = crd_defaults(sample_crd())
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    assert [c["field"] for c in validate_crd(new, old)] == ["spec.scope"]
    new = copy.deepcopy(old)
    new["spec"]["versions"][0]["name"] = "v2"
    fields = [c["field"] for c in validate_crd(crd_defaults(new), old)]
    assert "status.storedVersions[0]" in fields  # v1 was stored; it cannot disappear from spec.versions


# --- custom resources -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def widget_schema() -> StructuralSchema:
    found = StructuralSchema.from_crd(sample_crd(), "v1")
    assert found is not None
    return found


def widget(**spec: Any) -> Obj:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default"},
        "spec": {"size": "M", **spec},
    }


def test_schema_wrapping(widget_schema: StructuralSchema) -> None:
    wrapped = crd_version_schema(sample_crd(), "v1")
    assert wrapped is not None and wrapped.definitions == {}
    assert widget_schema.schema.raw is not None
    spec = widget_schema.schema.field("spec")
    assert spec is not None and spec.field("replicas") is not None
    assert crd_version_schema(sample_crd(), "v9") is None


def test_cr_pruning_and_strict(widget_schema: StructuralSchema) -> None:
    obj = widget(typo=1, extra={"free": {"form": True}}, settings={"a": 1}, ports=[{"name": "http", "portt": 1}])
    obj["metadata"]["annotationz"] = {}
    obj["status"] = {"replicas": 1, "phase": "x"}
    obj["junk"] = True
    want = ["metadata.annotationz", "spec.typo", "spec.ports[0].portt", "status.phase", "junk"]
    assert sorted([*widget_schema.unknown_paths(obj), "metadata.annotationz"]) == sorted(want)
    with pytest.raises(errors.StatusError) as exc:
        check_fields(copy.deepcopy(obj), widget_schema, "Strict")
    assert exc.value.code == 400
    assert exc.value.message.startswith('Widget in version "v1" cannot be handled as a Widget: strict decoding error: ')
    assert 'unknown field "spec.ports[0].portt"' in exc.value.message
    warnings = check_fields(obj, widget_schema, "Warn")
    assert sorted(warnings) == sorted(f'unknown field "{p}"' for p in want)
    assert obj["spec"]["extra"] == {"free": {"form": True}}  # preserve-unknown-fields keeps everything below
    assert obj["spec"]["ports"] == [{"name": "http"}]
    assert "junk" not in obj and "typo" not in obj["spec"] and "annotationz" not in obj["metadata"]
    assert obj["apiVersion"] == "example.com/v1" and obj["kind"] == "Widget"


def test_cr_embedded_resource_metadata_is_pruned(widget_schema: StructuralSchema) -> None:
    obj = widget(template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}, "spec": {"x": 1}})
    assert check_fields(obj, widget_schema, "Warn") == ['unknown field "spec.template.metadata.bogus"']
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}


def test_cr_metadata_type_error_is_bad_request(widget_schema: StructuralSchema) -> None:
    obj = widget()
    obj["metadata"]["labels"] = {"a": 1}
    with pytest.raises(errors.StatusError) as exc:
        check_fields(obj, widget_schema, "Ignore")
    assert exc.value.code == 400


def test_cr_defaulting(widget_schema: StructuralSchema) -> None:
    obj = widget(ports=[{"name": "http"}], startAt=None)
    widget_schema.apply_defaults(obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["ports"] == [{"name": "http", "protocol": "TCP"}]
    assert obj["spec"]["startAt"] is None  # nullable nulls stay
    obj = widget(replicas=None, name=None)
    widget_schema.apply_defaults(obj)
    assert obj["spec"]["replicas"] == 1  # a non-nullable null takes the default
    assert "name" not in obj["spec"]  # ... or is dropped without one
    obj = widget(replicas=3)
    widget_schema.apply_defaults(obj)
    assert obj["spec"]["replicas"] == 3


CR_CASES: list[tuple[str, Obj, str, str, str]] = [
    ("type", {"replicas": "three"}, "spec.replicas", "FieldValueTypeInvalid",
     'Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
    ("minimum", {"replicas": -1}, "spec.replicas", "FieldValueInvalid",
     "spec.replicas in body should be greater than or equal to 0"),
    ("int32", {"replicas": 2**31}, "spec.replicas", "FieldValueInvalid", "must be of type int32"),
    ("enum", {"size": "XL"}, "spec.size", "FieldValueNotSupported",
     'Unsupported value: "XL": supported values: "S", "M", "L"'),
    ("required", {"size": None}, "spec.size", "FieldValueTypeInvalid", "must be of type string"),
    ("maxLength", {"name": "abcdefghij"}, "spec.name", "FieldValueTooLong", "may not be more than 8 bytes"),
    ("pattern", {"name": "ABC"}, "spec.name", "FieldValueInvalid", "spec.name in body should match '^[a-z]+$'"),
    ("maxItems", {"tags": ["a", "b", "c", "d"]}, "spec.tags", "FieldValueTooMany",
     "Too many: 4: must have at most 3 items"),
    ("list set", {"tags": ["a", "a"]}, "spec.tags[1]", "FieldValueDuplicate", 'Duplicate value: "a"'),
    ("list map", {"ports": [{"name": "a"}, {"name": "a"}]}, "spec.ports[1]", "FieldValueDuplicate",
     'Duplicate value: {"name":"a"}'),
    ("list item required", {"ports": [{"port": 80}]}, "spec.ports[0].name", "FieldValueRequired", "Required value"),
    ("int-or-string", {"ports": [{"name": "a", "port": 1.5}]}, "spec.ports[0].port", "FieldValueTypeInvalid",
     "integer,string"),
    ("map values", {"settings": {"a": "x"}}, "spec.settings.a", "FieldValueTypeInvalid", "must be of type integer"),
    # Upstream decodes numbers outside int64 as float64, and a float64 is an integer only up to 2**53 - 1.
    ("map values beyond int64", {"settings": {"a": 2**63}}, "spec.settings.a", "FieldValueTypeInvalid",
     'must be of type integer: "number"'),
    ("map values, a float beyond 2**53", {"settings": {"a": 1e30}}, "spec.settings.a", "FieldValueTypeInvalid",
     'must be of type integer: "number"'),
    ("date-time", {"startAt": "tomorrow"}, "spec.startAt", "FieldValueInvalid", "must be of type date-time"),
    ("exclusiveMaximum", {"ratio": 1}, "spec.ratio", "FieldValueInvalid", "should be less than 1"),
    ("oneOf none", {"choice": {}}, "spec.choice", "FieldValueInvalid", "must validate one and only one schema (oneOf)"),
    ("oneOf both", {"choice": {"a": "x", "b": "y"}}, "spec.choice", "FieldValueInvalid", "Found 2 valid alternatives"),
    ("embedded kind", {"template": {"apiVersion": "v1", "metadata": {}}}, "spec.template.kind", "FieldValueRequired",
     "must not be empty"),
    ("object type", {"settings": []}, "spec.settings", "FieldValueTypeInvalid", "must be of type object"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "spec", "field", "ctype", "fragment"), CR_CASES)
def test_cr_validation(
    widget_schema: StructuralSchema, desc: str, spec: Obj, field: str, ctype: str, fragment: str
) -> None:
    obj = widget(**spec)
    causes = widget_schema.validate(obj)
    matching = [c for c in causes if c["field"] == field and c["type"] == ctype]
    assert matching, f"{desc}: {causes}"
    assert fragment in matching[0]["message"], desc


def test_cr_missing_required(widget_schema: StructuralSchema) -> None:
    obj = widget()
    del obj["spec"]["size"]
    assert widget_schema.validate(obj) == [
        {"type": "FieldValueRequired", "message": "Required value", "field": "spec.size"}
    ]


def test_valid_cr_end_to_end(widget_schema: StructuralSchema) -> None:
    obj = widget(
        name="abc",
        tags=["a", "b"],
        ports=[{"name": "http", "port": "web"}, {"name": "metrics", "port": 9090}],
        settings={"a": 1},
        startAt="2024-05-01T10:00:00Z",
        ratio=0.5,
        choice={"a": "x"},
        template={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}},
    )
    assert check_fields(obj, widget_schema, "Strict") == []
    widget_schema.apply_defaults(obj)
    crd_info = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True, crd=True)
    assert validate_custom_resource(crd_info, widget_schema, obj, None) == []
    obj["metadata"]["name"] = "Bad_Name"
    causes = validate_custom_resource(crd_info, widget_schema, obj, None)
    assert [c["field"] for c in causes] == ["metadata.name"]


def test_cr_metadata_name_constraints() -> None:
    raw = {
        "type": "object",
        "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}}},
    }
    structural = StructuralSchema(raw)
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "toolong", "labels": {"a": "b"}}}
    assert [c["field"] for c in structural.validate(obj)] == ["metadata.name"]
