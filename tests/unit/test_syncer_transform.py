"""The syncer's downstream objects, merge patches, status translation and small parsers."""

from __future__ import annotations

from typing import Any

import click
import pytest

from tmc.api.workload import syncable
from tmc.apimachinery.quantity import format_quantity
from tmc.cli.params import Duration, parse_labels
from tmc.protocol.keys import sync_target_key
from tmc.syncer.heartbeat import pod_requests, syncer_vw_url
from tmc.syncer.resources import parse_resource_types
from tmc.syncer.transform import (
    UPSTREAM_GENERATION_ANNOTATION,
    downstream_name,
    downstream_object,
    merge_patch,
    referenced_config,
    upstream_name,
    upstream_status,
)

KEY = sync_target_key("root", "c1")


def view() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u",
            "resourceVersion": "9",
            "generation": 5,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "managedFields": [{}],
            "ownerReferences": [{"uid": "x"}],
            "finalizers": [f"workload.kcp.io/syncer-{KEY}"],
            "labels": {"app": "web", f"state.workload.kcp.io/{KEY}": "Sync"},
            "annotations": {
                "kcp.io/cluster": "root:team",
                "team": "a",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                f"deletion.internal.workload.kcp.io/{KEY}": "2024-01-01T00:00:00Z",
            },
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }


def test_downstream_object_strips_hub_metadata() -> None:
    out = downstream_object(view(), "deployments", KEY, "kcp-abc")
    assert out["metadata"] == {
        "name": "web",
        "namespace": "kcp-abc",
        "labels": {"app": "web", "internal.workload.kcp.io/cluster": KEY},
        "annotations": {"team": "a", UPSTREAM_GENERATION_ANNOTATION: "5"},
    }
    assert out["spec"] == {"replicas": 2} and "status" not in out


def test_root_ca_is_renamed_and_tokens_are_skipped() -> None:
    assert downstream_name("configmaps", "kube-root-ca.crt") == "kcp-root-ca.crt"
    assert upstream_name("configmaps", "kcp-root-ca.crt") == "kube-root-ca.crt"
    assert downstream_name("secrets", "kube-root-ca.crt") == "kube-root-ca.crt"
    assert not syncable("secrets", {"type": "kubernetes.io/service-account-token"})
    assert syncable("secrets", {"type": "Opaque"})


def test_merge_patch_removes_what_the_previous_apply_set() -> None:
    previous = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": 1, "y": {"z": 1}}, "data": {"k": "v"}}
    desired = {"metadata": {"labels": {"a": "1"}}, "spec": {"x": 2, "y": {"w": 1}}}
    assert merge_patch(previous, desired) == {
        "metadata": {"labels": {"a": "1", "b": None}},
        "spec": {"x": 2, "y": {"w": 1, "z": None}},
        "data": None,
    }
    assert merge_patch(None, desired) is desired


def test_upstream_status_translates_observed_generation() -> None:
    down = {
        "metadata": {"generation": 3, "annotations": {UPSTREAM_GENERATION_ANNOTATION: "7"}},
        "status": {"observedGeneration": 3, "replicas": 1},
    }
    assert upstream_status(down) == {"observedGeneration": 7, "replicas": 1}
    down["metadata"]["generation"] = 4  # the member cluster has not caught up with the last apply
    assert upstream_status(down) == {"observedGeneration": 6, "replicas": 1}
    assert upstream_status({"metadata": {}, "status": {}}) is None
    assert upstream_status({"metadata": {}, "status": {"phase": "x"}}) == {"phase": "x"}


def test_referenced_config_from_pod_template() -> None:
    workload = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "volumes": [
                                {"configMap": {"name": "cm1"}},
                                {"secret": {"secretName": "s1"}},
                                {
                                    "projected": {
                                        "sources": [{"configMap": {"name": "cm2"}}, {"secret": {"name": "s2"}}]
                                    }
                                },
                            ],
                            "imagePullSecrets": [{"name": "pull"}],
                            "containers": [
                                {
                                    "envFrom": [{"configMapRef": {"name": "cm3"}}],
                                    "env": [{"name": "x", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}}],
                                }
                            ],
                        }
                    }
                }
            }
        },
    }
    assert referenced_config(workload) == ({"cm1", "cm2", "cm3"}, {"s1", "s2", "s3", "pull"})
    assert referenced_config({"data": {}}) == (set(), set())


def test_resource_types_always_include_config() -> None:
    assert parse_resource_types("deployments.apps,pods") == [
        ("apps", "deployments"),
        ("", "configmaps"),
        ("", "secrets"),
    ]
    assert ("apps", "statefulsets") in parse_resource_types("")


def test_quantities_and_requests() -> None:
    assert format_quantity("cpu", 2.5) == "2500m"
    assert format_quantity("cpu", 16) == "16"
    assert format_quantity("memory", 64 * 2**30) == "64Gi"
    assert format_quantity("pods", 110) == "110"
    pod = {
        "spec": {
            "containers": [{"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}, {"resources": {}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1"}}}],
        }
    }
    assert pod_requests(pod) == {"cpu": 1.0, "memory": 64 * 2**20}


def test_vw_url_prefers_the_published_path_on_the_kubeconfig_host() -> None:
    target = {
        "metadata": {"name": "c1", "uid": "u1"},
        "status": {"virtualWorkspaces": [{"syncerURL": "https://10.0.0.1:6443/services/syncer/root/c1/u1"}]},
    }
    assert syncer_vw_url("https://hub:6443", target, "root") == "https://hub:6443/services/syncer/root/c1/u1"
    target["status"] = {}
    assert syncer_vw_url("https://hub:6443", target, "root:org") == "https://hub:6443/services/syncer/root:org/c1/u1"


def test_cli_parsers() -> None:
    assert parse_labels("a=1, b = 2,") == {"a": "1", "b": "2"}
    with pytest.raises(click.BadParameter):
        parse_labels("novalue")
    d = Duration()
    assert d.convert("10s", None, None) == 10.0
    assert d.convert("500ms", None, None) == 0.5
    assert d.convert("2m", None, None) == 120.0
    assert d.convert("3", None, None) == 3.0
    with pytest.raises(click.BadParameter):
        d.convert("soon", None, None)
