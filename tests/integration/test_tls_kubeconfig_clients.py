"""The hub's PKI and kubeconfig files over real TLS sockets: the asyncio transport sees client certificates, and the
official Python client and kubectl connect to a small TLS server with the files TMC writes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.kubeconfigs import token_kubeconfig
from tmc.apiserver.certs import (
    ServingIdentity,
    client_identity_from_peercert,
    ensure_identity,
    issue_client_certificate,
    ssl_context,
)
from tmc.apiserver.kubeconfig import write_kubeconfig

HOSTS = ["tmc.example.com", "10.1.2.3", "0.0.0.0"]


@pytest.fixture
def identity(tmp_path: Path) -> ServingIdentity:
    return ensure_identity(str(tmp_path), HOSTS)


# --- TLS ----------------------------------------------------------------------------------------------------------


def test_tls_loopback_client_certificate_and_anonymous(identity: ServingIdentity) -> None:
    """The asyncio transport (what aiohttp uses) exposes the verified client certificate via SSLObject."""

    async def scenario() -> list[Any]:
        seen: list[Any] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sslobj = writer.get_extra_info("ssl_object")
            seen.append((client_identity_from_peercert(sslobj.getpeercert()), sslobj.selected_alpn_protocol()))
            writer.write(b"ok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context(identity))
        port = server.sockets[0].getsockname()[1]
        async with server:
            for with_cert, hostname in ((True, "localhost"), (False, "127.0.0.1")):
                client = ssl.create_default_context(cadata=identity.ca_cert_pem.decode())
                client.set_alpn_protocols(["http/1.1"])
                if with_cert:
                    client.load_cert_chain(identity.admin_cert_path, identity.admin_key_path)
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=hostname)
                assert await reader.read() == b"ok"
                writer.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen == [(("admin", ["system:masters"]), "http/1.1"), (None, "http/1.1")]


def test_tls_rejects_client_certificate_from_another_ca(identity: ServingIdentity, tmp_path: Path) -> None:
    other = ensure_identity(str(tmp_path / "other"), [])
    server_ctx = ssl_context(identity)
    client = ssl.create_default_context(cadata=identity.ca_cert_pem.decode())
    client.load_cert_chain(other.admin_cert_path, other.admin_key_path)

    async def scenario() -> list[object]:
        accepted: list[object] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer.get_extra_info("peercert"))
            writer.write(b"ok")
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        async with server:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client, server_hostname="localhost"
                )
                # With TLS 1.3 the client learns of the rejection only when it reads.
                assert await reader.read() == b""
                writer.close()
            except (ssl.SSLError, ConnectionError):
                pass
        return accepted

    assert asyncio.run(scenario()) == []


# --- kubeconfig with real clients --------------------------------------------------------------------------

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-tmc",
    "gitCommit": "0000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


class _Hub(ThreadingHTTPServer):
    """Just enough of the hub for clients to prove TLS, the CA and credentials work: GET .../version."""

    daemon_threads = True

    def __init__(self, identity: ServingIdentity) -> None:
        super().__init__(("127.0.0.1", 0), _VersionHandler)
        self.socket = ssl_context(identity).wrap_socket(self.socket, server_side=True)
        self.token = identity.admin_token
        self.seen: list[tuple[str, str]] = []


class _VersionHandler(BaseHTTPRequestHandler):
    server: _Hub

    def do_GET(self) -> None:
        assert isinstance(self.connection, ssl.SSLSocket)
        peer = client_identity_from_peercert(self.connection.getpeercert())
        if self.headers.get("Authorization") == f"Bearer {self.server.token}":
            who = "token:admin"
        elif peer is not None:
            who = f"cert:{peer[0]}:{','.join(peer[1])}"
        else:
            self.send_error(401)
            return
        # kubectl adds ?timeout=, the Python client asks for /version/ with a trailing slash.
        route = urlsplit(self.path).path.rstrip("/")
        self.server.seen.append((route, who))
        if route != "/clusters/root/version":
            self.send_error(404)
            return
        body = json.dumps(VERSION_INFO).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def hub(identity: ServingIdentity) -> Iterator[_Hub]:
    server = _Hub(identity)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _server_url(hub: _Hub, path: str = "/clusters/root") -> str:
    return f"https://127.0.0.1:{hub.server_address[1]}{path}"


def test_kubeconfig_with_kubernetes_python_client(tmp_path: Path, identity: ServingIdentity, hub: _Hub) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    path = token_kubeconfig(tmp_path, identity, _server_url(hub))
    cfg = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == _server_url(hub)
    # The key name differs between client releases ("authorization" vs "BearerToken").
    assert list(cfg.api_key.values()) == [f"Bearer {identity.admin_token}"]
    assert cfg.ssl_ca_cert is not None
    assert Path(cfg.ssl_ca_cert).read_bytes() == identity.ca_cert_pem
    assert cfg.verify_ssl

    api = k8s_config.new_client_from_config(config_file=str(path))
    assert kubernetes.client.VersionApi(api).get_code().git_version == "v1.32.0-tmc"
    ws = k8s_config.new_client_from_config(config_file=str(path), context="root:team-a")
    assert ws.configuration.host == _server_url(hub, "/clusters/root:team-a")

    cert_pem, key_pem = issue_client_certificate(identity, "syncer-east", ["tmc:syncers"])
    cert_path = tmp_path / "syncer.kubeconfig"
    write_kubeconfig(
        str(cert_path),
        server=_server_url(hub),
        ca_pem=identity.ca_cert_pem,
        context="root",
        user="syncer-east",
        client_cert_pem=cert_pem,
        client_key_pem=key_pem,
    )
    cfg = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(cert_path), client_configuration=cfg)
    assert cfg.cert_file is not None and cfg.key_file is not None
    assert Path(cfg.cert_file).read_bytes() == cert_pem
    assert Path(cfg.key_file).read_bytes() == key_pem
    api = k8s_config.new_client_from_config(config_file=str(cert_path))
    assert kubernetes.client.VersionApi(api).get_code().major == "1"
    assert hub.seen == [
        ("/clusters/root/version", "token:admin"),
        ("/clusters/root/version", "cert:syncer-east:tmc:syncers"),
    ]


def test_kubeconfig_with_kubectl(kubectl_binary: str, tmp_path: Path, identity: ServingIdentity, hub: _Hub) -> None:
    path = token_kubeconfig(tmp_path, identity, _server_url(hub))
    env = {**os.environ, "KUBECONFIG": "", "HOME": str(tmp_path)}

    def kubectl(*args: str, kubeconfig: Path = path) -> str:
        cmd = [kubectl_binary, "--kubeconfig", str(kubeconfig), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def view(jsonpath: str) -> str:
        return kubectl("config", "view", "--raw", "-o", f"jsonpath={jsonpath}")

    assert view("{.current-context}") == "root"
    assert view('{.clusters[?(@.name=="root")].cluster.server}') == _server_url(hub)
    ca_data = view('{.clusters[?(@.name=="root")].cluster.certificate-authority-data}')
    assert base64.b64decode(ca_data) == identity.ca_cert_pem
    assert view("{.users[0].user.token}") == identity.admin_token
    assert view('{.contexts[?(@.name=="root:team-a")].context.cluster}') == "root:team-a"

    # Go's TLS stack accepts the CA, the SANs and (below) the EC client certificate.
    # `kubectl version` keeps the /clusters/root prefix of the server URL (get --raw would not).
    assert json.loads(kubectl("version", "-o", "json"))["serverVersion"]["gitVersion"] == "v1.32.0-tmc"
    admin = tmp_path / "admin-cert.kubeconfig"
    write_kubeconfig(
        str(admin),
        server=_server_url(hub),
        ca_pem=identity.ca_cert_pem,
        context="root",
        user="admin",
        client_cert_pem=identity.admin_cert_pem,
        client_key_pem=identity.admin_key_pem,
    )
    assert json.loads(kubectl("version", "-o", "json", kubeconfig=admin))["serverVersion"]["major"] == "1"
    assert ("/clusters/root/version", "cert:admin:system:masters") in hub.seen
