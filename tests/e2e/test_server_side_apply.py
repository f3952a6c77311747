"""Server-side apply with the real kubectl and the official Python client, against the shared hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.crds import gadget_crd
from tests.e2e.harness import Kubectl, wait_until


def deployment(namespace: str, name: str, *containers: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]},
            },
        },
    }


def crd(group: str) -> dict[str, Any]:
    tags = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    return gadget_crd(group, {"type": "object", "properties": {"size": {"type": "integer"}, "tags": tags}})


def manifest(tmp_path: Path, name: str, *objs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(objs))
    return str(path)


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


def test_apply_conflict_force_and_managed_fields(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    group = f"{namespace}.example.com"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kubectl.run("apply", "--server-side", "-f", manifest(tmp_path, "base.yaml", crd(group)))
    wait_until(lambda: kubectl.run("get", f"gadgets.{group}", "-n", namespace, check=False).returncode == 0)
    gadget = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "namespace": namespace},
        "spec": {"size": 1, "tags": ["a"]},
    }
    files = manifest(tmp_path, "all.yaml", deployment(namespace, "web", "app", "sidecar"), service, gadget)
    out = kubectl.run("apply", "--server-side", "-f", files).stdout
    assert "deployment.apps/web serverside-applied" in out and f"gadget.{group}/g serverside-applied" in out
    # (d) applying the same file again writes nothing: the resourceVersion stays
    before = kubectl.json("get", "deployment", "web", "-n", namespace)["metadata"]["resourceVersion"]
    kubectl.run("apply", "--server-side", "-f", files)
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["metadata"]["resourceVersion"] == before

    scale = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace}}
    scale["spec"] = {"replicas": 5}
    path = manifest(tmp_path, "scale.yaml", scale)
    refused = kubectl.run("apply", "--server-side", "--field-manager", "scaler", "-f", path, check=False)
    assert refused.returncode != 0
    assert 'conflict with "kubectl": .spec.replicas' in refused.stderr

    kubectl.run("apply", "--server-side", "--field-manager", "scaler", "--force-conflicts", "-f", path)
    obj = yaml.safe_load(kubectl.run("get", "deployment", "web", "-n", namespace, "-o", "yaml").stdout)
    assert "managedFields" not in obj["metadata"]  # kubectl hides them unless asked
    shown = kubectl.run("get", "deployment", "web", "-n", namespace, "-o", "yaml", "--show-managed-fields").stdout
    obj = yaml.safe_load(shown)
    assert obj["spec"]["replicas"] == 5
    by = managers(obj)
    assert by["scaler"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert by["kubectl"]["operation"] == "Apply"
    assert "f:replicas" not in by["kubectl"]["fieldsV1"]["f:spec"]
    assert 'k:{"name":"sidecar"}' in by["kubectl"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]

    # kubectl diff --server-side: no differences for what is applied, a diff for a change
    assert kubectl.run("diff", "--server-side", "-f", manifest(tmp_path, "svc.yaml", service)).returncode == 0
    gadget["spec"]["size"] = 2
    changed = kubectl.run("diff", "--server-side", "-f", manifest(tmp_path, "g.yaml", gadget), check=False)
    assert changed.returncode == 1 and "+  size: 2" in changed.stdout


def test_client_side_apply_then_server_side_removes_a_dropped_container(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    kubectl.run("apply", "-f", manifest(tmp_path, "v1.yaml", deployment(namespace, "csa", "app", "sidecar")))
    obj = kubectl.json("get", "deployment", "csa", "-n", namespace, "--show-managed-fields")
    assert managers(obj)["kubectl-client-side-apply"]["operation"] == "Update"
    kubectl.run(
        "apply", "--server-side", "-f", manifest(tmp_path, "v2.yaml", deployment(namespace, "csa", "app", "sidecar"))
    )
    kubectl.run("apply", "--server-side", "-f", manifest(tmp_path, "v3.yaml", deployment(namespace, "csa", "app")))
    obj = kubectl.json("get", "deployment", "csa", "-n", namespace, "--show-managed-fields")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert "kubectl-client-side-apply" not in managers(obj)


def test_python_client_server_side_apply_creates_then_updates(api_client: Any, namespace: str) -> None:
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api_client)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    body = deployment(namespace, "py", "app", replicas=1)
    created = deployments.server_side_apply(body=body, namespace=namespace, field_manager="py-client")
    assert created.spec.replicas == 1
    body["spec"]["replicas"] = 3
    updated = deployments.server_side_apply(body=body, namespace=namespace, field_manager="py-client")
    assert updated.spec.replicas == 3
    assert updated.metadata.uid == created.metadata.uid
    assert int(updated.metadata.resourceVersion) > int(created.metadata.resourceVersion)
    entry = next(e for e in updated.metadata.managedFields if e.manager == "py-client")
    assert entry.operation == "Apply"

    # (d) the same configuration again is a no-op: same resourceVersion
    again = deployments.server_side_apply(body=body, namespace=namespace, field_manager="py-client")
    assert again.metadata.resourceVersion == updated.metadata.resourceVersion
