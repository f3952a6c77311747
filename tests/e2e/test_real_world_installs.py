"""Installing an operator's CRDs the way its documentation says: `kubectl apply --server-side`, because the CRD (a
Rollout-like kind with a whole pod template inlined, as Argo Rollouts' is) is over the 256 KiB that client-side
apply's last-applied annotation may hold. Then using it: custom resources validated by the schema and by the CRD's
CEL rules, including a transition rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.crds import GROUP, rollout_crd
from tests.e2e.harness import Kubectl, wait_until


def rollout(name: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                        {"name": "sidecar", "image": "busybox:1.36", "resources": {"limits": {"cpu": "100m"}}},
                    ]
                },
            },
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 60}]}},
            **spec,
        },
    }


def test_an_operator_crd_set_over_256_kib_installs_server_side_and_its_rules_hold(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    crds = [rollout_crd(), rollout_crd("experiments", "Experiment")]
    assert len(orjson.dumps(crds[0])) > 256 * 1024  # why the documented install is server-side
    manifest = tmp_path / "install.yaml"
    manifest.write_text(yaml.safe_dump_all(crds))

    # Client-side apply cannot store the last-applied annotation of a CRD this size, as on a real cluster.
    refused = kubectl.run("apply", "-f", str(manifest), check=False)
    assert refused.returncode != 0
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in refused.stderr

    applied = kubectl.run("apply", "--server-side", "-f", str(manifest))
    assert f"rollouts.{GROUP} serverside-applied" in applied.stdout
    name = f"rollouts.{GROUP}"

    def established() -> bool:
        crd = kubectl.json("get", "crd", name)
        return any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"].get("conditions", []))

    wait_until(established, timeout=30, what="the Rollout CRD established")
    before = kubectl.json("get", "crd", name)["metadata"]["resourceVersion"]
    kubectl.run("apply", "--server-side", "-f", str(manifest))  # the same file again changes nothing
    assert kubectl.json("get", "crd", name)["metadata"]["resourceVersion"] == before

    # A valid custom resource, created and read back with its pod template intact.
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(rollout("web")))
    stored = kubectl.json("-n", namespace, "get", f"rollouts.{GROUP}", "web")
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]  # the list-map key's default

    # The schema refuses a wrong type; CEL rules refuse what the schema alone cannot see, with their messages.
    wrong_type = rollout("typed", replicas="three")
    answer = kubectl.run("-n", namespace, "create", "-f", "-", input=yaml.safe_dump(wrong_type), check=False)
    assert answer.returncode != 0 and "spec.replicas" in answer.stderr
    deadline = rollout("deadline", minReadySeconds=30, progressDeadlineSeconds=10)
    answer = kubectl.run("-n", namespace, "create", "-f", "-", input=yaml.safe_dump(deadline), check=False)
    assert answer.returncode != 0
    assert "progressDeadlineSeconds must be greater than minReadySeconds" in answer.stderr
    weights = rollout("weights")
    weights["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 150}]
    answer = kubectl.run("-n", namespace, "create", "-f", "-", input=yaml.safe_dump(weights), check=False)
    assert answer.returncode != 0
    assert (
        "spec.strategy.canary.steps" in answer.stderr and "every setWeight must be between 0 and 100" in answer.stderr
    )
    names = kubectl.json("-n", namespace, "get", f"rollouts.{GROUP}")["items"]
    assert [r["metadata"]["name"] for r in names] == ["web"]  # nothing refused was stored

    # The transition rule: workloadRef may be set once, never changed.
    owned = rollout("owned", workloadRef={"kind": "Deployment", "name": "legacy"})
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(owned))
    owned["spec"]["workloadRef"]["name"] = "other"
    answer = kubectl.run(
        "-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(owned), check=False
    )  # fmt: skip
    assert answer.returncode != 0 and "workloadRef is immutable" in answer.stderr
    kept = kubectl.json("-n", namespace, "get", f"rollouts.{GROUP}", "owned")
    assert kept["spec"]["workloadRef"]["name"] == "legacy"
    # Other fields still change.
    owned["spec"]["workloadRef"]["name"] = "legacy"
    owned["spec"]["replicas"] = 5
    kubectl.run("-n", namespace, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(owned))
    assert kubectl.json("-n", namespace, "get", f"rollouts.{GROUP}", "owned")["spec"]["replicas"] == 5
