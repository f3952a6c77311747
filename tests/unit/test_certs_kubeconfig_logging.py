"""PKI bootstrap, kubeconfig files, JSON logging and metrics exposition. Using the certificates and kubeconfigs over
TLS is in tests/integration/test_tls_kubeconfig_clients.py."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from tests.kubeconfigs import token_kubeconfig
from tmc.apiserver import certs
from tmc.apiserver.certs import (
    ServingIdentity,
    client_identity_from_peercert,
    ensure_identity,
    issue_client_certificate,
)
from tmc.apiserver.kubeconfig import write_kubeconfig
from tmc.client import load_kubeconfig
from tmc.observability import metrics
from tmc.observability.logging import configure_logging

HOSTS = ["tmc.example.com", "10.1.2.3", "0.0.0.0"]


@pytest.fixture
def identity(tmp_path: Path) -> ServingIdentity:
    return ensure_identity(str(tmp_path), HOSTS)


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def _pems(ident: ServingIdentity) -> tuple[bytes | str, ...]:
    return (
        ident.ca_cert_pem,
        ident.ca_key_pem,
        ident.serving_cert_pem,
        ident.serving_key_pem,
        ident.admin_cert_pem,
        ident.admin_key_pem,
        ident.admin_token,
    )


# --- PKI ----------------------------------------------------------------------------------------------------------


def test_identity_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_identity(str(tmp_path), HOSTS)
    second = ensure_identity(str(tmp_path), list(reversed(HOSTS)))
    assert _pems(first) == _pems(second)
    assert first.pki_dir == str(tmp_path / "pki")
    assert _mode(first.pki_dir) == 0o700
    for path in (first.ca_key_path, first.serving_key_path, first.admin_key_path, first.admin_token_path):
        assert _mode(path) == 0o600, path
    assert Path(first.admin_token_path).read_text().strip() == first.admin_token
    assert len(first.admin_token) >= 32
    # Secrets stay out of repr, so logging an identity cannot leak them.
    assert first.admin_token not in repr(first)
    assert b"PRIVATE KEY" not in repr(first).encode()
    assert not [p for p in os.listdir(first.pki_dir) if p.endswith(".tmp")]


def test_ca_and_serving_certificate_contents(identity: ServingIdentity) -> None:
    ca = _cert(identity.ca_cert_pem)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tmc-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3640)

    serving = _cert(identity.serving_cert_pem)
    dns, ips = _sans(serving)
    assert {"localhost", "tmc.example.com"} <= dns
    assert {"127.0.0.1", "::1", "10.1.2.3"} <= ips
    assert "0.0.0.0" not in ips
    eku = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku

    store = Store([ca])
    for subject in (
        x509.DNSName("tmc.example.com"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ):
        chain = PolicyBuilder().store(store).build_server_verifier(subject).verify(serving, [])
        assert chain[-1] == ca


def test_admin_and_issued_client_certificates_verify(identity: ServingIdentity) -> None:
    ca = _cert(identity.ca_cert_pem)
    admin = _cert(identity.admin_cert_pem)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    admin.verify_directly_issued_by(ca)

    cert_pem, key_pem = issue_client_certificate(identity, "syncer-east", ["tmc:syncers", "system:authenticated"], 30)
    cert = _cert(cert_pem)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "syncer-east"
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["tmc:syncers", "system:authenticated"]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=30, minutes=5)
    assert b"PRIVATE KEY" in key_pem

    with pytest.raises(ValueError):
        issue_client_certificate(identity, "", ["g"])


def test_serving_cert_reissued_for_new_hosts_only(tmp_path: Path) -> None:
    first = ensure_identity(str(tmp_path), ["a.example.com"])
    second = ensure_identity(str(tmp_path), ["b.example.com", "192.0.2.7"])
    assert second.serving_cert_pem != first.serving_cert_pem
    assert second.serving_key_pem != first.serving_key_pem
    assert (second.ca_cert_pem, second.admin_cert_pem, second.admin_token) == (
        first.ca_cert_pem,
        first.admin_cert_pem,
        first.admin_token,
    )
    dns, ips = _sans(_cert(second.serving_cert_pem))
    assert "b.example.com" in dns
    assert "192.0.2.7" in ips
    # A subset of the current SANs needs no new certificate.
    third = ensure_identity(str(tmp_path), ["B.example.com."])
    assert third.serving_cert_pem == second.serving_cert_pem


def test_serving_cert_reissued_near_expiry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "SERVING_CERT_DAYS", 10)
    first = ensure_identity(str(tmp_path), [])
    monkeypatch.setattr(certs, "SERVING_CERT_DAYS", 365)
    second = ensure_identity(str(tmp_path), [])
    assert second.serving_cert_pem != first.serving_cert_pem
    assert second.ca_cert_pem == first.ca_cert_pem
    assert ensure_identity(str(tmp_path), []).serving_cert_pem == second.serving_cert_pem


def test_missing_token_is_regenerated_without_touching_certificates(tmp_path: Path) -> None:
    first = ensure_identity(str(tmp_path), [])
    os.unlink(first.admin_token_path)
    second = ensure_identity(str(tmp_path), [])
    assert second.admin_token != first.admin_token
    assert _pems(second)[:-1] == _pems(first)[:-1]


def test_peercert_mapping() -> None:
    assert client_identity_from_peercert(None) is None
    assert client_identity_from_peercert({}) is None
    peer = {
        "subject": (
            (("organizationName", "system:masters"),),
            (("organizationName", "tmc:admins"),),
            (("commonName", "admin"),),
        )
    }
    assert client_identity_from_peercert(peer) == ("admin", ["system:masters", "tmc:admins"])
    assert client_identity_from_peercert({"subject": ((("organizationName", "x"),),)}) is None


# --- kubeconfig ---------------------------------------------------------------------------------------------------


def test_kubeconfig_file_and_server_helper(tmp_path: Path, identity: ServingIdentity) -> None:
    path = token_kubeconfig(tmp_path, identity, "https://127.0.0.1:6443/clusters/root")
    assert _mode(path) == 0o600
    assert load_kubeconfig(str(path)).server == "https://127.0.0.1:6443/clusters/root"
    assert load_kubeconfig(str(path), "root:team-a").server == "https://127.0.0.1:6443/clusters/root:team-a"
    team = load_kubeconfig(str(path), "root:team-a")
    assert (team.workspace, team.token, team.ca_pem) == ("root:team-a", identity.admin_token, identity.ca_cert_pem)
    with pytest.raises(ValueError):
        load_kubeconfig(str(path), "missing")
    # Rewriting replaces the file in place and leaves no temp files behind.
    token_kubeconfig(tmp_path, identity, "https://127.0.0.1:7443/clusters/root")
    assert load_kubeconfig(str(path)).server == "https://127.0.0.1:7443/clusters/root"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["admin.kubeconfig"]

    with pytest.raises(ValueError):
        write_kubeconfig(str(tmp_path / "x"), server="https://h", ca_pem=b"", context="c", user="u")
    with pytest.raises(ValueError):
        write_kubeconfig(
            str(tmp_path / "x"), server="https://h", ca_pem=b"", context="c", user="u", client_cert_pem=b"c"
        )


# --- logging and metrics ------------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    access = logging.getLogger("aiohttp.access")
    saved = (list(root.handlers), root.level, access.level)
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        access.setLevel(saved[2])


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_logging_emits_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", component="hub")
    configure_logging("Info", component="hub")  # reconfiguring must not duplicate output
    log = logging.getLogger("tmc.test")
    log.debug("hidden")
    log.info("placed %s", "deployment", extra={"resource": "deployments", "count": 3, "level": "shadowed"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed", extra={"cluster": "east"})

    lines = _json_lines(capsys.readouterr().err)
    assert len(lines) == 2
    info, error = lines
    assert info["msg"] == "placed deployment"
    assert info["level"] == "info"
    assert info["logger"] == "tmc.test"
    assert info["component"] == "hub"
    assert (info["resource"], info["count"], info["level_"]) == ("deployments", 3, "shadowed")
    parsed = dt.datetime.fromisoformat(info["ts"])
    assert info["ts"].endswith("Z") and len(info["ts"]) == len("2025-01-01T00:00:00.000Z")
    assert abs(dt.datetime.now(dt.UTC) - parsed) < dt.timedelta(minutes=1)
    assert error["level"] == "error"
    assert error["cluster"] == "east"
    assert "RuntimeError: boom" in error["exception"]
    assert "exception" not in info


@pytest.mark.usefixtures("restore_logging")
def test_logging_levels_and_access_log(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="invalid log level") as err:
        configure_logging("verbose")
    assert "\n" not in str(err.value)

    configure_logging("info")
    access = logging.getLogger("aiohttp.access")
    access.info("GET /api 200")
    access.warning("slow client")
    lines = _json_lines(capsys.readouterr().err)
    assert [line["msg"] for line in lines] == ["slow client"]
    assert lines[0]["component"] == "tmc"

    configure_logging("WARNING")
    logging.getLogger("tmc.test").info("quiet")
    logging.getLogger("tmc.test").error("loud")
    assert [line["msg"] for line in _json_lines(capsys.readouterr().err)] == ["loud"]


def test_metrics_render() -> None:
    metrics.observe_request(("list", "apps", "v1", "deployments", None, "namespace"), 200, 0.012)
    metrics.observe_request(("watch", "", "v1", "pods", None, "cluster"), 200, 300.0, long_running=True)
    gauge = metrics.inflight_gauge(mutating=False)
    gauge.inc()
    with metrics.longrunning():
        metrics.WATCHERS.labels("apps", "v1", "Deployment").set(2)
        body, content_type = metrics.render_metrics()
    gauge.dec()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in (
        "apiserver_request_total",
        "apiserver_request_duration_seconds_bucket",
        "apiserver_current_inflight_requests",
        "apiserver_registered_watchers",
        "apiserver_longrunning_requests",
    ):
        assert name in text, name
    assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 1.0' in text
    assert 'apiserver_current_inflight_requests{request_kind="mutating"} 0.0' in text
    assert "apiserver_longrunning_requests 1.0" in text
    assert 'le="60.0"' in text
    assert 'code="200"' in text and 'verb="LIST"' in text and 'resource="deployments"' in text
    watch_lines = [line for line in text.splitlines() if 'verb="WATCH"' in line]
    # Watches are counted but stay out of the latency histogram.
    assert [line for line in watch_lines if line.startswith("apiserver_request_total{")]
    assert not [line for line in watch_lines if line.startswith("apiserver_request_duration")]
    after, _ = metrics.render_metrics()
    assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 0.0' in after.decode()
