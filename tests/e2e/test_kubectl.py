"""kubectl 1.32 against the hub with nothing but `--kubeconfig <data-dir>/admin.kubeconfig`."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import KUBECTL, Kubectl, wait_until


def deployment(name: str, web_image: str = "nginx:1.27", sidecar_image: str = "busybox:1.36") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": web_image, "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": sidecar_image, "command": ["sleep", "infinity"]},
                    ]
                },
            },
        },
    }


def write_manifest(path: Path, obj: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def images(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    obj = kubectl.json("-n", namespace, "get", "deployment", name)
    return {c["name"]: c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}


class LineReader:
    """Collects a Popen's stdout lines in a thread so the test can poll them with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)


def kubectl_popen(kubectl: Kubectl, *args: str) -> subprocess.Popen[str]:
    assert KUBECTL
    env = dict(os.environ)
    env.pop("KUBECONFIG", None)
    cmd = [KUBECTL, "--kubeconfig", kubectl.kubeconfig, "--cache-dir", kubectl.cache_dir, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def configmap(kubectl: Kubectl, namespace: str, name: str, data: dict[str, str]) -> None:
    kubectl.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}
    )


def configmap_with_finalizer(kubectl: Kubectl, namespace: str, name: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "finalizers": ["e2e.tmc.io/hold"]},
            "data": {"k": "v"},
        }
    )


def test_apply_two_container_deployment_then_reapply_edited_image(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    path = write_manifest(tmp_path / "deploy.yaml", deployment("web"))
    out = kubectl.run("-n", namespace, "apply", "-f", path)
    assert "deployment.apps/web created" in out.stdout
    assert images(kubectl, namespace, "web") == {"web": "nginx:1.27", "sidecar": "busybox:1.36"}

    write_manifest(tmp_path / "deploy.yaml", deployment("web", sidecar_image="busybox:1.37"))
    out = kubectl.run("-n", namespace, "apply", "-f", path)
    assert "deployment.apps/web configured" in out.stdout
    live = kubectl.json("-n", namespace, "get", "deployment", "web")
    containers = live["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert {c["name"]: c["image"] for c in containers} == {"web": "nginx:1.27", "sidecar": "busybox:1.37"}
    assert containers[1]["command"] == ["sleep", "infinity"]
    assert live["metadata"]["generation"] == 2

    # Re-applying the unchanged file is a no-op.
    out = kubectl.run("-n", namespace, "apply", "-f", path)
    assert "deployment.apps/web unchanged" in out.stdout

    # Dropping a container from the file drops it from the live object (3-way strategic merge).
    single = deployment("web", sidecar_image="busybox:1.37")
    single["spec"]["template"]["spec"]["containers"].pop()
    write_manifest(tmp_path / "deploy.yaml", single)
    assert "deployment.apps/web configured" in kubectl.run("-n", namespace, "apply", "-f", path).stdout
    assert images(kubectl, namespace, "web") == {"web": "nginx:1.27"}


def test_get_deployments_shows_ready_up_to_date_available_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(deployment("cols")))
    out = kubectl.run("-n", namespace, "get", "deploy").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], out
    row = out[1].split()
    assert row[0] == "cols"
    assert row[1].endswith("/2"), row  # READY is ready/desired
    wide = kubectl.run("-n", namespace, "get", "deploy", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["CONTAINERS", "IMAGES", "SELECTOR"], wide
    assert "web,sidecar" in wide[1] and "nginx:1.27,busybox:1.36" in wide[1] and "app=cols" in wide[1]


def test_label_and_get_by_label_selector(kubectl: Kubectl, namespace: str) -> None:
    for name in ("a", "b", "c"):
        configmap(kubectl, namespace, name, {"k": "v"})
    out = kubectl.run("-n", namespace, "label", "configmap", "a", "b", "tier=web")
    assert "configmap/a labeled" in out.stdout
    kubectl.run("-n", namespace, "label", "configmap", "c", "tier=db")
    assert kubectl.run("-n", namespace, "get", "cm", "-l", "tier=web", "-o", "name").stdout.split() == [
        "configmap/a",
        "configmap/b",
    ]
    assert kubectl.run("-n", namespace, "get", "cm", "-l", "tier in (db)", "-o", "name").stdout.split() == [
        "configmap/c"
    ]
    assert kubectl.run("-n", namespace, "get", "cm", "-l", "tier,tier!=web", "-o", "name").stdout.split() == [
        "configmap/c"
    ]
    shown = kubectl.run("-n", namespace, "get", "cm", "-l", "tier=web", "--show-labels").stdout
    assert "tier=web" in shown
    # Overwriting needs --overwrite; removing a label uses the `key-` form.
    assert kubectl.run("-n", namespace, "label", "cm", "a", "tier=db", check=False).returncode != 0
    kubectl.run("-n", namespace, "label", "cm", "a", "tier-")
    assert kubectl.run("-n", namespace, "get", "cm", "-l", "tier", "-o", "name").stdout.split() == [
        "configmap/b",
        "configmap/c",
    ]


def test_patch_json_merge_and_strategic(kubectl: Kubectl, namespace: str) -> None:
    configmap(kubectl, namespace, "p", {"a": "1", "b": "2"})
    kubectl.run("-n", namespace, "patch", "configmap", "p", "--type", "merge", "-p", '{"data":{"a":"10","b":null}}')
    assert kubectl.json("-n", namespace, "get", "cm", "p")["data"] == {"a": "10"}
    kubectl.run(
        "-n",
        namespace,
        "patch",
        "configmap",
        "p",
        "--type",
        "json",
        "-p",
        '[{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/a","value":"11"}]',
    )
    assert kubectl.json("-n", namespace, "get", "cm", "p")["data"] == {"a": "11", "c": "3"}
    # A failing JSON-patch test operation changes nothing.
    bad = kubectl.run(
        "-n", namespace, "patch", "cm", "p", "--type", "json", "-p", '[{"op":"test","path":"/data/a","value":"x"}]',
        check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert kubectl.json("-n", namespace, "get", "cm", "p")["data"] == {"a": "11", "c": "3"}

    # The default (strategic) patch merges containers by name.
    kubectl.apply(deployment("smp"), "-n", namespace)
    kubectl.run(
        "-n", namespace, "patch", "deployment", "smp", "-p",
        '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.38"}]}}}}',
    )  # fmt: skip
    assert images(kubectl, namespace, "smp") == {"web": "nginx:1.27", "sidecar": "busybox:1.38"}


def test_scale_deployment(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(deployment("scaled"), "-n", namespace)
    out = kubectl.run("-n", namespace, "scale", "deployment", "scaled", "--replicas=5")
    assert "deployment.apps/scaled scaled" in out.stdout
    assert kubectl.json("-n", namespace, "get", "deploy", "scaled")["spec"]["replicas"] == 5
    # --current-replicas is a precondition.
    bad = kubectl.run("-n", namespace, "scale", "deploy", "scaled", "--current-replicas=3", "--replicas=1", check=False)
    assert bad.returncode != 0
    assert kubectl.json("-n", namespace, "get", "deploy", "scaled")["spec"]["replicas"] == 5


def test_edit_with_editor_script(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    kubectl.apply(deployment("edited"), "-n", namespace)
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i -e "s/nginx:1.27/nginx:1.29/" -e "s/replicas: 2/replicas: 3/" "$1"\n')
    editor.chmod(0o755)
    out = kubectl.run("-n", namespace, "edit", "deployment", "edited", env={"EDITOR": str(editor)})
    assert "deployment.apps/edited edited" in out.stdout
    live = kubectl.json("-n", namespace, "get", "deploy", "edited")
    assert live["spec"]["replicas"] == 3
    assert images(kubectl, namespace, "edited") == {"web": "nginx:1.29", "sidecar": "busybox:1.36"}

    # An editor that changes nothing leaves the object alone ("Edit cancelled").
    noop = tmp_path / "noop.sh"
    noop.write_text("#!/bin/sh\ntrue\n")
    noop.chmod(0o755)
    rv = live["metadata"]["resourceVersion"]
    out = kubectl.run("-n", namespace, "edit", "deployment", "edited", env={"EDITOR": str(noop)})
    assert "Edit cancelled" in out.stdout + out.stderr
    assert kubectl.json("-n", namespace, "get", "deploy", "edited")["metadata"]["resourceVersion"] == rv


def test_diff_exit_codes(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    obj = deployment("diffed")
    obj["metadata"]["namespace"] = namespace
    path = write_manifest(tmp_path / "d.yaml", obj)
    kubectl.run("apply", "-f", path)
    same = kubectl.run("diff", "-f", path, check=False)
    assert same.returncode == 0, same.stderr + same.stdout
    assert same.stdout == ""

    rv = kubectl.json("-n", namespace, "get", "deploy", "diffed")["metadata"]["resourceVersion"]
    obj["spec"]["replicas"] = 7
    write_manifest(tmp_path / "d.yaml", obj)
    changed = kubectl.run("diff", "-f", path, check=False)
    assert changed.returncode == 1, changed.stderr + changed.stdout
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 7" in changed.stdout, changed.stdout
    # diff uses a server-side dry run: nothing was persisted.
    live = kubectl.json("-n", namespace, "get", "deploy", "diffed")
    assert live["spec"]["replicas"] == 2
    assert live["metadata"]["resourceVersion"] == rv


def test_get_watch_prints_later_change(kubectl: Kubectl, namespace: str) -> None:
    configmap(kubectl, namespace, "first", {"k": "v"})
    proc = kubectl_popen(kubectl, "-n", namespace, "get", "configmaps", "-w")
    try:
        reader = LineReader(proc)
        wait_until(lambda: any(line.startswith("first ") for line in reader.lines), what="initial listing")
        assert reader.lines[0].split()[:2] == ["NAME", "DATA"]
        configmap(kubectl, namespace, "second", {"k": "v"})
        wait_until(
            lambda: any(line.startswith("second ") for line in reader.lines),
            timeout=15,
            what=f"`kubectl get -w` to print the new ConfigMap; output so far:\n{reader.text()}",
        )
        configmap(kubectl, namespace, "third", {"a": "1", "b": "2"})
        row = wait_until(
            lambda: next((line for line in reader.lines if line.startswith("third ")), None),
            timeout=15,
            what="the second change",
        )
        assert row.split()[1] == "2"  # DATA column
        assert proc.poll() is None, "kubectl get -w exited early"
    finally:
        stop(proc)


def test_wait_for_delete(kubectl: Kubectl, namespace: str) -> None:
    configmap_with_finalizer(kubectl, namespace, "held")
    kubectl.run("-n", namespace, "delete", "cm", "held", "--wait=false")
    assert "deletionTimestamp" in kubectl.json("-n", namespace, "get", "cm", "held")["metadata"]
    proc = kubectl_popen(kubectl, "-n", namespace, "wait", "--for=delete", "configmap/held", "--timeout=30s")
    try:
        # Still held by the finalizer: kubectl wait must keep waiting.
        timed_out = False
        try:
            proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            timed_out = True
        assert timed_out, f"kubectl wait returned early: {proc.returncode} {proc.communicate()}"
        kubectl.run("-n", namespace, "patch", "cm", "held", "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "configmap/held condition met" in out
    finally:
        stop(proc)
    assert kubectl.run("-n", namespace, "get", "cm", "held", check=False).returncode != 0


def test_delete_waits_for_finalizers(kubectl: Kubectl, namespace: str) -> None:
    configmap_with_finalizer(kubectl, namespace, "slow")
    proc = kubectl_popen(kubectl, "-n", namespace, "delete", "configmap", "slow", "--timeout=30s")
    try:
        wait_until(
            lambda: "deletionTimestamp" in kubectl.json("-n", namespace, "get", "cm", "slow")["metadata"],
            what="deletionTimestamp",
        )
        assert proc.poll() is None, f"kubectl delete returned before the object was gone: {proc.communicate()}"
        kubectl.run(
            "-n",
            namespace,
            "patch",
            "cm",
            "slow",
            "--type",
            "json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert 'configmap "slow" deleted' in out
    finally:
        stop(proc)
    gone = kubectl.run("-n", namespace, "get", "cm", "slow", check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    # Plain delete of a finalizer-free object returns once it is gone.
    configmap(kubectl, namespace, "quick", {})
    kubectl.run("-n", namespace, "delete", "configmap", "quick", "--wait")
    assert kubectl.run("-n", namespace, "get", "cm", "-o", "name").stdout.split() == []


def test_explain_deployment_spec(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "deployment.spec").stdout
    assert "KIND:" in out and "Deployment" in out
    assert "GROUP:" in out and "apps" in out and "VERSION:" in out and "v1" in out
    for field in ("replicas", "selector", "template", "strategy"):
        assert f"  {field}\t" in out or f"  {field} " in out or f"{field}\t<" in out, f"{field} missing:\n{out}"
    deep = kubectl.run("explain", "deployment.spec.template.spec.containers.image").stdout
    assert "image" in deep and "<string>" in deep


def crd_manifest(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
                                }
                            },
                        }
                    },
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def test_apply_crd_then_custom_resource_and_get_printer_columns(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    group = f"e2e{os.urandom(3).hex()}.example.com"
    crd_path = write_manifest(tmp_path / "crd.yaml", crd_manifest(group))
    out = kubectl.run("apply", "-f", crd_path)
    assert f"customresourcedefinition.apiextensions.k8s.io/widgets.{group} created" in out.stdout
    wait_until(
        lambda: any(
            c["type"] == "Established" and c["status"] == "True"
            for c in kubectl.json("get", "crd", f"widgets.{group}").get("status", {}).get("conditions", [])
        ),
        what="CRD Established",
    )
    cr = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3, "color": "blue"},
    }
    cr_path = write_manifest(tmp_path / "cr.yaml", cr)
    out = kubectl.run("apply", "-f", cr_path)
    assert f"widget.{group}/w1 created" in out.stdout

    lines = kubectl.run("-n", namespace, "get", f"widgets.{group}").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "COLOR", "AGE"], lines
    assert lines[1].split()[:3] == ["w1", "3", "blue"], lines

    # Re-apply with a change goes through a merge patch (no SMP for custom resources).
    cr["spec"]["color"] = "red"
    write_manifest(tmp_path / "cr.yaml", cr)
    assert f"widget.{group}/w1 configured" in kubectl.run("apply", "-f", cr_path).stdout
    assert kubectl.json("-n", namespace, "get", f"wdg.{group}", "w1")["spec"] == {"size": 3, "color": "red"}

    # Unknown fields in a custom resource are refused too.
    cr["spec"]["shape"] = "round"
    bad = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(cr), check=False)
    assert bad.returncode != 0 and "shape" in bad.stderr, bad.stderr

    explained = kubectl.run("explain", f"widgets.{group}.spec").stdout
    assert "size" in explained and "color" in explained and "<integer>" in explained, explained

    resources = kubectl.run("api-resources", "--api-group", group).stdout
    assert "widgets" in resources and "wdg" in resources and "Widget" in resources
    kubectl.run("delete", "-f", crd_path)


def test_api_resources(kubectl: Kubectl) -> None:
    lines = kubectl.run("api-resources").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {tuple(line.split()) for line in lines[1:]}
    for expected in (
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false", "CustomResourceDefinition"),
        ("workspaces", "ws", "tenancy.kcp.io/v1alpha1", "false", "Workspace"),
    ):
        assert expected in rows, f"{expected} not in api-resources:\n{chr(10).join(lines)}"
    namespaced = kubectl.run("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "namespaces" in namespaced and "configmaps" not in namespaced
    assert "v1" in kubectl.run("api-versions").stdout.split()


def test_apply_unknown_field_fails_naming_the_field(kubectl: Kubectl, namespace: str) -> None:
    obj = deployment("typo")
    obj["spec"]["replicaz"] = 3
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    result = kubectl.run("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(obj), check=False)
    assert result.returncode != 0
    assert "replicaz" in result.stderr, result.stderr
    assert "unknown field" in result.stderr, result.stderr
    assert kubectl.run("-n", namespace, "get", "deploy", "-o", "name").stdout.strip() == ""


def test_create_generators_send_protobuf(kubectl: Kubectl) -> None:
    """`kubectl create namespace|configmap|deployment` send their bodies as protobuf (typed client-go clients)."""
    name = f"created-{os.urandom(3).hex()}"
    out = kubectl.run("create", "namespace", name)
    assert f"namespace/{name} created" in out.stdout
    out = kubectl.run("-n", name, "create", "configmap", "c", "--from-literal=a=1")
    assert "configmap/c created" in out.stdout
    assert kubectl.json("-n", name, "get", "cm", "c")["data"] == {"a": "1"}
    out = kubectl.run("-n", name, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=3")
    assert "deployment.apps/web created" in out.stdout
    assert kubectl.json("-n", name, "get", "deploy", "web")["spec"]["replicas"] == 3
