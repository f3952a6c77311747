"""Protobuf request bodies, decoded with the descriptors inside kubectl, checked against kubectl itself.

A tiny HTTP server answers legacy discovery and records what kubectl POSTs, so the bodies under test are the
exact bytes kubectl sends; kubectl's own `--dry-run=client -o json` output of the same command is the JSON the
decoded body must equal.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tools import kubectl_path
from tmc.apimachinery import protobuf
from tmc.apimachinery.errors import StatusError
from tmc.apimachinery.protobuf import MAGIC, ProtobufCodec
from tmc.apimachinery.schemas import builtin_definitions

KUBECTL = kubectl_path()
Kubectl = Callable[..., tuple[str, bytes, str]]
pytestmark = pytest.mark.usefixtures("kubectl_binary")  # kubectl carries the API descriptors

_RESOURCES = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("services", "Service", True),
        ("resourcequotas", "ResourceQuota", True),
        ("pods", "Pod", True),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("deployments/scale", "Scale", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ],
    "networking.k8s.io/v1": [("ingresses", "Ingress", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "scheduling.k8s.io/v1": [("priorityclasses", "PriorityClass", False)],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "authorization.k8s.io/v1": [("selfsubjectaccessreviews", "SelfSubjectAccessReview", False)],
    "authentication.k8s.io/v1": [("selfsubjectreviews", "SelfSubjectReview", False)],
}
# What `kubectl autoscale deployment web` reads before it creates the autoscaler.
_WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": []}}},
}


_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _discovery(path: str) -> dict[str, Any] | None:
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"]}
    if path == "/apis":
        groups = [gv.split("/") for gv in _RESOURCES if "/" in gv]
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}]} for g, v in groups],
        }
    gv = path.removeprefix("/api/").removeprefix("/apis/")
    if gv not in _RESOURCES:
        return None
    resources = [
        {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": _VERBS}
        for name, kind, namespaced in _RESOURCES[gv]
    ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


class _FakeAPIServer(http.server.ThreadingHTTPServer):
    """Legacy discovery plus a POST handler that records (content type, body) and echoes the object as JSON."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.codec = ProtobufCodec(KUBECTL)
        self.posts: list[tuple[str, bytes]] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _FakeAPIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        doc = _WEB if path == "/apis/apps/v1/namespaces/default/deployments/web" else _discovery(path)
        self._reply(200, doc) if doc else self._reply(404, {"kind": "Status", "apiVersion": "v1", "code": 404})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append((self.headers.get("Content-Type", ""), body))
        try:
            self._reply(201, self.server.codec.decode(body))
        except StatusError as err:
            self._reply(err.code, err.to_status())


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    server = _FakeAPIServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    home = tmp_path_factory.mktemp("kubectl")
    kubeconfig = home / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{server.server_port}'}}}}]\n"
        "users: [{name: anon, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: anon, namespace: default}}]\n"
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    def kubectl(args: list[str], expect_success: bool = True) -> str:
        assert KUBECTL is not None
        command = [KUBECTL, "--cache-dir", str(home / "cache"), *args]
        done = subprocess.run(command, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0 or not expect_success, done.stderr.decode()
        return done.stdout.decode()

    def run(*args: str, dry_run: bool = True) -> tuple[str, bytes, str]:
        """(content type, body) of the one POST `kubectl args` makes, plus its --dry-run=client -o json output."""
        server.posts.clear()
        kubectl(list(args), expect_success=dry_run)
        assert len(server.posts) == 1, server.posts
        content_type, body = server.posts[0]
        if not dry_run:
            return content_type, body, ""
        cut = args.index("--") if "--" in args else len(args)  # the flags must precede a container command
        return content_type, body, kubectl([*args[:cut], "--dry-run=client", "-o", "json", *args[cut:]])

    yield run
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def codec() -> ProtobufCodec:
    codec = ProtobufCodec(KUBECTL)
    assert codec.available
    return codec


def _body(codec: ProtobufCodec, api_version: str, kind: str, obj: Any) -> bytes:
    """A body as a protobuf client frames it, around a message built with the codec's own classes."""
    envelope = codec._parse("k8s.io.apimachinery.pkg.runtime.Unknown", b"")
    envelope.typeMeta.apiVersion, envelope.typeMeta.kind = api_version, kind
    envelope.raw = obj.SerializeToString()
    return MAGIC + envelope.SerializeToString()


GENERATORS = [
    ["create", "namespace", "ns1"],
    ["create", "configmap", "cm", "--from-literal=a=b", "--from-literal=empty="],
    ["create", "secret", "generic", "s", "--from-literal=password=s3cr\xe9t", "--type=Opaque"],
    ["create", "secret", "docker-registry", "reg", "--docker-server=r", "--docker-username=u", "--docker-password=p"],
    ["create", "serviceaccount", "sa"],
    ["create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80"],
    ["create", "deployment", "zero", "--image=nginx", "--replicas=0"],
    ["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--restart=OnFailure"],
    ["create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=a"],
    ["create", "rolebinding", "rb", "--role=r", "--user=u", "--serviceaccount=default:sa"],
    ["create", "clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*"],
    ["create", "clusterrolebinding", "crb", "--clusterrole=cr", "--group=g"],
    ["create", "service", "clusterip", "svc", "--tcp=80:8080"],
    ["create", "service", "nodeport", "np", "--tcp=80:http", "--node-port=30080"],
    ["create", "service", "externalname", "ext", "--external-name=example.com"],
    ["create", "ingress", "ing", "--class=nginx", "--rule=foo.com/bar*=svc1:8080,tls=cert", "--annotation=a=b"],
    ["create", "poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=50%"],
    ["create", "poddisruptionbudget", "pdb2", "--selector=app=web", "--max-unavailable=1"],
    ["create", "priorityclass", "pc", "--value=10", "--preemption-policy=Never", "--description=d"],
    ["create", "quota", "q", "--hard=cpu=1,memory=1Gi,pods=2", "--scopes=BestEffort"],
]


@pytest.mark.parametrize("args", GENERATORS, ids=lambda args: "-".join(args[1:3]))
def test_generator_bodies_decode_to_kubectls_json(kubectl: Kubectl, codec: ProtobufCodec, args: list[str]) -> None:
    content_type, body, dry_run_json = kubectl(*args)
    assert content_type == protobuf.MEDIA_TYPE
    assert codec.decode(body) == json.loads(dry_run_json)


def test_decoded_bodies_in_detail(kubectl: Kubectl, codec: ProtobufCodec) -> None:
    _, body, _ = kubectl("create", "namespace", "team-a")
    assert codec.decode(body) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "creationTimestamp": None},
        "spec": {},
        "status": {},
    }
    _, body, _ = kubectl("create", "secret", "generic", "db", "--from-literal=user=admin")
    assert codec.decode(body) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "creationTimestamp": None},
        "data": {"user": base64.b64encode(b"admin").decode()},
    }
    _, body, _ = kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")
    web = codec.decode(body)
    assert web["apiVersion"] == "apps/v1" and web["kind"] == "Deployment"
    assert web["spec"] == {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]},
        },
        "strategy": {},
    }
    _, body, _ = kubectl("create", "deployment", "idle", "--image=nginx", "--replicas=0")
    assert codec.decode(body)["spec"]["replicas"] == 0  # a pointer field keeps its zero


def test_autoscale_body(kubectl: Kubectl, codec: ProtobufCodec) -> None:
    content_type, body, dry_run_json = kubectl("autoscale", "deployment", "web", "--max=5", "--cpu-percent=70")
    assert content_type == protobuf.MEDIA_TYPE
    assert codec.decode(body) == json.loads(dry_run_json)
    assert codec.decode(body)["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 70,
    }


def test_auth_bodies(kubectl: Kubectl, codec: ProtobufCodec) -> None:
    # kubectl rejects the echoed replies (no verdict, no user), but the requests are recorded by then.
    content_type, body, _ = kubectl("auth", "can-i", "list", "deployments.apps", "-n", "team-a", dry_run=False)
    assert content_type == protobuf.MEDIA_TYPE
    review = codec.decode(body)
    assert (review["apiVersion"], review["kind"]) == ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
    assert review["spec"] == {
        "resourceAttributes": {"namespace": "team-a", "verb": "list", "group": "apps", "resource": "deployments"}
    }
    _, body, _ = kubectl("auth", "whoami", dry_run=False)
    assert codec.decode(body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": {}},
    }


def test_token_request_body(kubectl: Kubectl, codec: ProtobufCodec) -> None:
    # kubectl rejects the echoed reply (it carries no token), but the request has been recorded by then.
    content_type, body, _ = kubectl("create", "token", "sa", "--audience=api", "--duration=10m", dry_run=False)
    assert content_type == protobuf.MEDIA_TYPE
    assert codec.decode(body) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"creationTimestamp": None},
        "spec": {"audiences": ["api"], "expirationSeconds": 600},
        "status": {"token": "", "expirationTimestamp": None},  # token is required, so its zero shows
    }


def test_special_wire_types(codec: ProtobufCodec) -> None:
    pod = codec._parse("k8s.io.api.core.v1.Pod", b"")
    pod.metadata.name = "p"
    pod.metadata.creationTimestamp.seconds = 1767323045  # 2026-01-02T03:04:05Z
    pod.metadata.deletionGracePeriodSeconds = 0
    entry = pod.metadata.managedFields.add(manager="m", operation="Update")
    entry.fieldsV1.Raw = b'{"f:metadata":{}}'
    entry.time.seconds, entry.time.nanos = 1767323045, 999_000_000
    container = pod.spec.containers.add(name="c", image="i")
    container.resources.limits["cpu"].string = "500m"
    container.livenessProbe.handler.httpGet.path = "/healthz"
    container.livenessProbe.handler.httpGet.port.type = 1
    container.livenessProbe.handler.httpGet.port.strVal = "http"
    container.readinessProbe.handler.tcpSocket.port.intVal = 8080
    container.readinessProbe.periodSeconds = 3
    env = container.env.add(name="K")
    env.valueFrom.configMapKeyRef.localObjectReference.name = "cm"
    env.valueFrom.configMapKeyRef.key = "k"
    volume = pod.spec.volumes.add(name="v")
    volume.volumeSource.secret.secretName = "s"
    volume.volumeSource.secret.optional = False
    pod.spec.automountServiceAccountToken = False
    pod.spec.hostNetwork = False  # a non-pointer bool: false is the same as unset
    assert codec.decode(_body(codec, "v1", "Pod", pod)) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "deletionGracePeriodSeconds": 0,
            "managedFields": [
                {"manager": "m", "operation": "Update", "fieldsV1": {"f:metadata": {}}, "time": "2026-01-02T03:04:05Z"}
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "resources": {"limits": {"cpu": "500m"}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 3},
                    "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}],
                }
            ],
            "volumes": [{"name": "v", "secret": {"secretName": "s", "optional": False}}],
            "automountServiceAccountToken": False,
        },
    }

    lease = codec._parse("k8s.io.api.coordination.v1.Lease", b"")
    lease.spec.renewTime.seconds, lease.spec.renewTime.nanos = 1767323045, 123456789
    lease.spec.leaseDurationSeconds = 15
    assert codec.decode(_body(codec, "coordination.k8s.io/v1", "Lease", lease))["spec"] == {
        "renewTime": "2026-01-02T03:04:05.123456Z",
        "leaseDurationSeconds": 15,
    }

    revision = codec._parse("k8s.io.api.apps.v1.ControllerRevision", b"")
    revision.data.raw = b'{"spec":{"template":{}}}'
    revision.revision = 3
    assert codec.decode(_body(codec, "apps/v1", "ControllerRevision", revision)) == {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "data": {"spec": {"template": {}}},
        "revision": 3,
    }

    review = codec._parse("k8s.io.api.authorization.v1.SubjectAccessReview", b"")
    review.spec.user = "u"
    review.spec.extra["scopes"].items.extend(["a", "b"])
    review.spec.resourceAttributes.verb = "get"
    assert codec.decode(_body(codec, "authorization.k8s.io/v1", "SubjectAccessReview", review))["spec"] == {
        "user": "u",
        "extra": {"scopes": ["a", "b"]},
        "resourceAttributes": {"verb": "get"},
    }


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (1500, "1.5µs"), (2_000_000, "2ms"), (90 * 10**9, "1m30s"), (3600 * 10**9 + 5 * 10**8, "1h0m0.5s")],
)
def test_duration_matches_go(nanos: int, text: str) -> None:
    assert protobuf._go_duration(nanos) == text
    assert protobuf._go_duration(-nanos) == ("-" + text if nanos else text)


def test_errors(codec: ProtobufCodec) -> None:
    with pytest.raises(StatusError) as err:
        codec.decode(b'{"kind":"ConfigMap"}')
    assert err.value.code == 400
    with pytest.raises(StatusError) as err:
        codec.decode(MAGIC + b"\x0a\xff\xff")
    assert err.value.code == 400
    cm = codec._parse("k8s.io.api.core.v1.ConfigMap", b"")
    cm.data["a"] = "b"
    with pytest.raises(StatusError) as err:
        codec.decode(_body(codec, "example.com/v1", "Widget", cm))
    assert err.value.code == 415
    with pytest.raises(StatusError) as err:
        codec.decode(_body(codec, "v1", "ConfigMap", cm)[:-3])
    assert err.value.code == 400
    envelope = codec._parse("k8s.io.apimachinery.pkg.runtime.Unknown", _body(codec, "v1", "ConfigMap", cm)[4:])
    envelope.raw = b"\x0a\x03\x0a\x01\xff"  # metadata.name holding invalid UTF-8, which Go's JSON replaces
    assert codec.decode(MAGIC + envelope.SerializeToString())["metadata"] == {"name": "\ufffd"}
    options = codec._parse("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions", b"")
    options.propagationPolicy = "Foreground"
    assert codec.decode(_body(codec, "apps/v1", "DeleteOptions", options))["propagationPolicy"] == "Foreground"


def test_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    codec = ProtobufCodec(KUBECTL)
    assert codec.available
    assert codec.load_seconds < 2.0  # about 0.1 s: a scan of the binary plus building the pool
    assert len(codec.kinds()) > 500
    for api_version, kind in [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("networking.k8s.io/v1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        ("internal.apiserver.k8s.io/v1alpha1", "StorageVersion"),
    ]:
        assert (api_version, kind) in codec.kinds()
    not_kubectl = tmp_path / "kubectl"
    not_kubectl.write_bytes(b"#!/bin/sh\n")
    assert not ProtobufCodec(str(not_kubectl)).available
    monkeypatch.setenv("PATH", str(tmp_path))
    assert KUBECTL is not None
    monkeypatch.setenv(protobuf.BINARY_ENV, KUBECTL)
    assert ProtobufCodec().source == os.path.realpath(KUBECTL)
    monkeypatch.setenv(protobuf.BINARY_ENV, str(tmp_path / "missing"))
    missing = ProtobufCodec()
    assert not missing.available
    with pytest.raises(StatusError) as err:
        missing.decode(b"k8s\x00")
    assert err.value.code == 415


def test_concurrent_first_use_loads_once(codec: ProtobufCodec, monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    real_scan = protobuf._scan_binary

    def counting_scan(path: str) -> Any:
        scans.append(path)
        return real_scan(path)

    monkeypatch.setattr(protobuf, "_scan_binary", counting_scan)
    cm = codec._parse("k8s.io.api.core.v1.ConfigMap", b"")
    cm.metadata.name, cm.data["k"] = "cm", "v"
    body = _body(codec, "v1", "ConfigMap", cm)
    fresh = ProtobufCodec(KUBECTL)
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(fresh.decode(body))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(scans) == 1
    assert results == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}}] * 8
    assert ProtobufCodec.shared() is ProtobufCodec.shared()


def test_field_names_and_inlining_come_from_kubectls_struct_tags(codec: ProtobufCodec) -> None:
    inline = {
        (msg.rsplit(".", 1)[1], name) for msg, fields in codec._fields.items() for name, f in fields.items() if f.inline
    }
    for expected in [
        ("Probe", "handler"),
        ("Volume", "volumeSource"),
        ("PersistentVolumeSpec", "persistentVolumeSource"),
        ("ConfigMapKeySelector", "localObjectReference"),
        ("EphemeralContainer", "ephemeralContainerCommon"),  # its tag carries no proto name
        ("IngressRule", "ingressRuleValue"),
        ("RuleWithOperations", "rule"),
    ]:
        assert expected in inline
    # Embedded too, or named after their type, but with a JSON name of their own.
    for named in [("RoleBinding", "roleRef"), ("SelfSubjectReviewStatus", "userInfo"), ("Pod", "metadata")]:
        assert named not in inline
    assert codec._fields["k8s.io.api.admissionregistration.v1.Variable"]["Name"].json == "name"
    assert codec._fields["k8s.io.api.authentication.v1.BoundObjectReference"]["uID"].json == "uid"


def test_every_decoded_field_name_is_in_the_openapi_schema(codec: ProtobufCodec) -> None:
    """The JSON names the codec produces, inlined fields flattened, are the properties OpenAPI documents."""
    definitions = builtin_definitions()

    def names(message: str) -> set[str]:
        out: set[str] = set()
        descriptor = codec._pool.FindMessageTypeByName(message)
        for name, field in codec._fields[message].items():
            target = descriptor.fields_by_name[name].message_type
            out |= names(target.full_name) if field.inline and target else {field.json}
        return out

    checked = 0
    for message in codec._fields:
        definition = definitions.get("io.k8s." + message.removeprefix("k8s.io."))
        if definition is None or "properties" not in definition or message in codec._named_slices:
            continue
        assert names(message) <= set(definition["properties"]) | {"apiVersion", "kind"}, message
        checked += 1
    assert checked > 500
