"""CEL validation rules (`x-kubernetes-validations`) with the real kubectl against the shared hub."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml

from tests.crds import gadget_crd
from tests.e2e.harness import Kubectl

pytestmark = pytest.mark.usefixtures("kubectl_binary")


def crd(group: str, spec_rules: list[dict[str, Any]]) -> dict[str, Any]:
    mode = {
        "type": "string",
        "maxLength": 32,
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}],
    }
    spec = {
        "type": "object",
        "x-kubernetes-validations": spec_rules,
        "properties": {"replicas": {"type": "integer"}, "max": {"type": "integer"}, "mode": mode},
    }
    return gadget_crd(group, spec)


def gadget(group: str, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_rule_that_does_not_compile_refuses_the_crd(kubectl: Kubectl) -> None:
    group = f"cel{os.urandom(3).hex()}.example.com"
    refused = kubectl.run(
        "apply", "-f", "-", input=yaml.safe_dump(crd(group, [{"rule": "self.replicas <="}])), check=False
    )
    assert refused.returncode != 0
    field = "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
    assert field in refused.stderr and "compilation failed: ERROR: <input>:1:" in refused.stderr, refused.stderr
    assert kubectl.run("get", "crd", f"gadgets.{group}", check=False).returncode != 0


def test_rules_refuse_writes_with_message_and_field(kubectl: Kubectl, namespace: str) -> None:
    group = f"cel{os.urandom(3).hex()}.example.com"
    rules = [{"rule": "self.replicas <= self.max", "message": "replicas must not exceed max", "fieldPath": ".replicas"}]
    kubectl.apply(crd(group, rules))
    resource = f"gadgets.{group}"
    try:
        bad = kubectl.run(
            "apply", "-f", "-", input=yaml.safe_dump(gadget(group, namespace, "g1", replicas=5, max=3)), check=False
        )
        assert bad.returncode != 0
        assert 'spec.replicas: Invalid value: "object": replicas must not exceed max' in bad.stderr, bad.stderr
        assert kubectl.run("-n", namespace, "get", resource, "g1", check=False).returncode != 0  # nothing stored

        good = gadget(group, namespace, "g1", replicas=2, max=3, mode="fast")
        kubectl.apply(good)
        stored = kubectl.json("-n", namespace, "get", resource, "g1")

        # A merge patch that breaks the rule: 422, the object unchanged.
        patch = kubectl.run(
            "-n", namespace, "patch", resource, "g1", "--type=merge", "-p", '{"spec": {"replicas": 9}}', check=False
        )
        assert patch.returncode != 0 and "replicas must not exceed max" in patch.stderr, patch.stderr

        # The transition rule: the immutable field may not change on update.
        changed = copy.deepcopy(good)
        changed["spec"]["mode"] = "slow"
        update = kubectl.run("apply", "-f", "-", input=yaml.safe_dump(changed), check=False)
        assert update.returncode != 0
        assert 'spec.mode: Invalid value: "string": field is immutable' in update.stderr, update.stderr
        after = kubectl.json("-n", namespace, "get", resource, "g1")
        assert after["spec"] == stored["spec"]
        assert after["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]

        # Other fields still change.
        ok = copy.deepcopy(good)
        ok["spec"]["replicas"] = 3
        kubectl.apply(ok)
        assert kubectl.json("-n", namespace, "get", resource, "g1")["spec"]["replicas"] == 3
    finally:
        kubectl.run("delete", "crd", resource, check=False)
