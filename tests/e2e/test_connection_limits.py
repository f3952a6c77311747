"""The connection limits of `tmc server`, set by its flags, as a client sees them: connections beyond
--max-connections are closed at once, connections that send no request are closed after --request-header-timeout,
kept-alive connections after --idle-timeout, and kubectl works again once the slots are free."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Hub, Kubectl, free_port, wait_until

HEADER_TIMEOUT = 5.0
IDLE_TIMEOUT = 3.0
SLACK = 3.0  # a busy two-core machine


def closed_after(sock: socket.socket | ssl.SSLSocket, limit: float) -> float:
    """Seconds until the peer closes `sock` (reads b"" or is reset); fails if it is still open after `limit`."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        data = sock.recv(1)
    except (ConnectionResetError, ssl.SSLError):
        data = b""
    assert data == b"", data
    return time.monotonic() - start


@pytest.fixture(scope="module")
def limited_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = Hub(
        data_dir=str(tmp_path_factory.mktemp("limited-hub")),
        port=free_port(),
        extra_args=[
            "--max-connections",
            "3",
            "--request-header-timeout",
            f"{HEADER_TIMEOUT:g}s",
            "--idle-timeout",
            f"{IDLE_TIMEOUT:g}s",
        ],
    )
    hub.start()
    yield hub
    hub.stop()


def test_connections_over_the_limit_are_closed_until_silent_ones_time_out(
    limited_hub: Hub, kubectl_binary: str, tmp_path: Path
) -> None:
    kubectl = Kubectl(limited_hub.kubeconfig, str(tmp_path / "cache"))
    kubectl.run("get", "namespaces")
    silent = [socket.create_connection(("127.0.0.1", limited_hub.port)) for _ in range(3)]
    opened = time.monotonic()
    try:
        # The hub accepts in arrival order, so the fourth connection finds the three slots taken.
        with socket.create_connection(("127.0.0.1", limited_hub.port)) as extra:
            try:
                with limited_hub.ssl_context().wrap_socket(extra, server_hostname="127.0.0.1") as tls:
                    assert closed_after(tls, SLACK) < SLACK
            except (ssl.SSLError, ConnectionResetError, OSError):
                pass  # closed during the handshake: refused, as intended
        # kubectl retries a reset connection until its request timeout, well inside the header timeout.
        refused = kubectl.run("get", "namespaces", "--request-timeout", "1s", check=False)
        assert refused.returncode != 0
        # Neither a TLS handshake nor a request arrives on the silent ones: the header timeout closes them.
        for sock in silent:
            closed_after(sock, HEADER_TIMEOUT + SLACK)
        assert time.monotonic() - opened >= HEADER_TIMEOUT - 0.5
    finally:
        for sock in silent:
            sock.close()
    wait_until(lambda: kubectl.run("get", "namespaces", check=False).returncode == 0, what="kubectl to work again")


def test_kept_alive_connection_is_closed_after_the_idle_timeout(limited_hub: Hub) -> None:
    conn = limited_hub.connection()
    conn.request("GET", "/readyz")
    response = conn.getresponse()
    assert response.status == 200
    response.read()
    assert conn.sock is not None
    waited = closed_after(conn.sock, IDLE_TIMEOUT + SLACK)
    assert waited >= IDLE_TIMEOUT - 0.5
    conn.close()
