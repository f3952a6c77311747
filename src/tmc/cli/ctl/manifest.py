"""What a member cluster runs to join TMC: the `tmc syncer` command line, or a manifest (Namespace,
ServiceAccount, RBAC, a Secret with the hub kubeconfig and an in-cluster downstream kubeconfig, and a Deployment
running `tmc syncer`), named as kcp names its syncer objects (`kcp-syncer-<name>-<hash>`)."""

from __future__ import annotations

import base64
import shlex
from typing import Any

from tmc import __version__
from tmc.protocol.keys import syncer_id

DEFAULT_IMAGE = f"tmc:{__version__}"
HUB_MOUNT = "/etc/tmc"
_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# The syncer reads its member cluster through a kubeconfig file: this one uses the pod's own service account.
IN_CLUSTER_KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: member
  cluster:
    server: https://kubernetes.default.svc
    certificate-authority: {_SA_DIR}/ca.crt
users:
- name: syncer
  user:
    tokenFile: {_SA_DIR}/token
contexts:
- name: member
  context: {{cluster: member, user: syncer}}
current-context: member
"""


def syncer_args(name: str, workspace: str, hub_kubeconfig: str, downstream: str, labels: dict[str, str]) -> list[str]:
    args = [
        "tmc",
        "syncer",
        "--sync-target-name",
        name,
        "--workspace",
        workspace,
        "--kubeconfig",
        hub_kubeconfig,
        "--downstream-kubeconfig",
        downstream,
    ]
    if labels:
        args += ["--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items()))]
    return args


def command_line(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def hub_kubeconfig(server: str, ca_pem: bytes | None, token: str | None, insecure: bool) -> str:
    """A kubeconfig for the syncer to reach the hub (server origin, CA, token)."""
    import yaml

    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {"token": token} if token else {}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hub", "cluster": cluster}],
        "users": [{"name": "syncer", "user": user}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "syncer"}}],
        "current-context": "hub",
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def manifest(
    name: str, uid: str, workspace: str, hub_config: str, labels: dict[str, str], image: str = DEFAULT_IMAGE
) -> list[dict[str, Any]]:
    """The objects to apply to the member cluster."""
    ident = syncer_id(name, uid)
    meta_labels = {"app.kubernetes.io/name": "tmc-syncer", "tmc.kcp.io/sync-target": name}
    args = syncer_args(name, workspace, f"{HUB_MOUNT}/hub.kubeconfig", f"{HUB_MOUNT}/downstream.kubeconfig", labels)[1:]
    args += ["--bind-address", "0.0.0.0", "--metrics-port", "8080", "--health-port", "8081"]
    probe = {"httpGet": {"path": "/readyz", "port": 8081}, "periodSeconds": 10}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ident, "labels": meta_labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ident, "namespace": ident}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": ident, "labels": meta_labels},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": ident, "labels": meta_labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ident},
            "subjects": [{"kind": "ServiceAccount", "name": ident, "namespace": ident}],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": ident, "namespace": ident, "labels": meta_labels},
            "type": "Opaque",
            "stringData": {"hub.kubeconfig": hub_config, "downstream.kubeconfig": IN_CLUSTER_KUBECONFIG},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": ident, "namespace": ident, "labels": meta_labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": "tmc-syncer"}},
                "template": {
                    "metadata": {"labels": meta_labels},
                    "spec": {
                        "serviceAccountName": ident,
                        "containers": [
                            {
                                "name": "syncer",
                                "image": image,
                                "command": ["tmc"],
                                "args": args,
                                "ports": [
                                    {"name": "metrics", "containerPort": 8080},
                                    {"name": "health", "containerPort": 8081},
                                ],
                                "readinessProbe": probe,
                                "volumeMounts": [{"name": "kubeconfigs", "mountPath": HUB_MOUNT, "readOnly": True}],
                            }
                        ],
                        "volumes": [{"name": "kubeconfigs", "secret": {"secretName": ident}}],
                    },
                },
            },
        },
    ]
