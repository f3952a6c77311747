from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e.harness import KUBECTL, Hub, Kubectl, free_port


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data_dir = str(tmp_path_factory.mktemp("hub"))
    server = Hub(data_dir=data_dir, port=free_port(), extra_args=["--bookmark-interval", "1"])
    server.start()
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture(scope="session")
def kubectl(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed (make install installs it when run as root)")
    return Kubectl(hub.kubeconfig, str(tmp_path_factory.mktemp("kube-cache")))


@pytest.fixture
def namespace(kubectl: Kubectl, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, named after the test."""
    name = request.node.name.lower().replace("_", "-")[:50].strip("-")
    name = "".join(c for c in name if c.isalnum() or c == "-") + "-" + os.urandom(2).hex()
    kubectl.run("create", "namespace", name)
    return name
