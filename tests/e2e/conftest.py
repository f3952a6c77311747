from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.harness import Hub, Kubectl, free_port, python_client, wait_until


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data_dir = str(tmp_path_factory.mktemp("hub"))
    server = Hub(data_dir=data_dir, port=free_port(), extra_args=["--bookmark-interval", "1"])
    server.start()
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture(scope="session")
def kubectl(kubectl_binary: str, hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(hub.kubeconfig, str(tmp_path_factory.mktemp("kube-cache")))


def unique_name(request: pytest.FixtureRequest, limit: int = 50) -> str:
    name = request.node.name.lower().replace("_", "-")[:limit].strip("-")
    return "".join(c for c in name if c.isalnum() or c == "-").strip("-") + "-" + os.urandom(2).hex()


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, named after the test."""
    name = unique_name(request)
    # `kubectl apply` rather than `kubectl create namespace`: the `create <generator>` commands send protobuf,
    # which test_kubectl.py::test_create_generators_send_protobuf covers on its own.
    kubectl.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture(scope="session")
def api_client(hub: Hub) -> Any:
    """The official Python client configured from admin.kubeconfig (root workspace)."""
    return python_client(hub.kubeconfig)


@dataclass
class Workspace:
    name: str
    url: str
    kubectl: Kubectl
    cluster: str


@pytest.fixture
def make_workspace(hub: Hub, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Workspace]:
    """Create a `tenancy.kcp.io/v1alpha1` Workspace in root and wait until it is Ready and served."""

    def make(prefix: str) -> Workspace:
        name = f"{prefix}-{os.urandom(3).hex()}"
        kubectl.apply({"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}})
        ws = wait_until(
            lambda: (w := kubectl.json("get", "workspace", name)).get("status", {}).get("phase") == "Ready" and w,
            what=f"workspace {name} to be Ready",
        )
        url = f"{hub.base_url}/clusters/root:{name}"
        child = Kubectl(hub.kubeconfig, str(tmp_path_factory.mktemp("kube-cache-ws")), server=url)
        wait_until(lambda: child.run("get", "namespace", "default", check=False).returncode == 0, what=f"{url} served")
        return Workspace(name=name, url=url, kubectl=child, cluster=str(ws.get("spec", {}).get("cluster", "")))

    return make
