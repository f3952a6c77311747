"""TLS bootstrap for the hub: a private CA, the serving certificate, the admin identity and client certificates.

Everything lives in ``<data-dir>/pki``. The CA, the admin credentials and the token are created once and never
rotated by a restart, so kubeconfigs handed out earlier keep working; only the serving certificate is re-issued when
the requested host names change or it is close to expiry.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
CA_COMMON_NAME = "tmc-ca"
SERVING_COMMON_NAME = "tmc-apiserver"

CA_DAYS = 3650
SERVING_CERT_DAYS = 365
ADMIN_CERT_DAYS = 3650
RENEW_BEFORE = dt.timedelta(days=30)
# Back-date notBefore so clients with slightly slow clocks accept a freshly minted certificate.
_CLOCK_SKEW = dt.timedelta(minutes=5)

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")

_CA_CERT = "ca.crt"
_CA_KEY = "ca.key"
_SERVING_CERT = "serving.crt"
_SERVING_KEY = "serving.key"
_ADMIN_CERT = "admin.crt"
_ADMIN_KEY = "admin.key"
_ADMIN_TOKEN = "admin.token"

_PEER_CN = "commonName"
_PEER_O = "organizationName"

_SANs = tuple[frozenset[str], frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]]


@dataclass(frozen=True)
class ServingIdentity:
    """Paths and contents of the hub's PKI material. Secrets are kept out of ``repr`` so they never reach logs."""

    pki_dir: str
    ca_cert_path: str
    ca_key_path: str
    serving_cert_path: str
    serving_key_path: str
    admin_cert_path: str
    admin_key_path: str
    admin_token_path: str
    ca_cert_pem: bytes
    ca_key_pem: bytes = field(repr=False)
    serving_cert_pem: bytes = field(repr=False)
    serving_key_pem: bytes = field(repr=False)
    admin_cert_pem: bytes = field(repr=False)
    admin_key_pem: bytes = field(repr=False)
    admin_token: str = field(repr=False)


def ensure_identity(data_dir: str, hosts: list[str]) -> ServingIdentity:
    """Create the PKI under ``<data_dir>/pki`` on first start and reuse it afterwards.

    ``hosts`` are the DNS names and IP addresses clients use to reach the hub; localhost, 127.0.0.1 and ::1 are
    always added. Unspecified bind addresses (0.0.0.0, ::) are ignored because no client can dial them.
    """
    pki = os.path.join(os.fspath(data_dir), "pki")
    os.makedirs(pki, mode=0o700, exist_ok=True)
    os.chmod(pki, 0o700)  # makedirs honours the umask and leaves existing directories alone
    paths = {name: os.path.join(pki, name) for name in (_CA_CERT, _CA_KEY, _SERVING_CERT, _SERVING_KEY)}
    paths |= {name: os.path.join(pki, name) for name in (_ADMIN_CERT, _ADMIN_KEY, _ADMIN_TOKEN)}
    wanted = _normalize_hosts([*DEFAULT_HOSTS, *hosts])
    now = _now()

    ca = _load_pair(paths[_CA_CERT], paths[_CA_KEY])
    if ca is None or not _is_usable_ca(ca[0], now):
        if ca is not None or any(os.path.exists(p) for p in paths.values()):
            log.warning("PKI CA is missing, invalid or expired; generating a new one", extra={"pki_dir": pki})
        ca_cert, ca_key = _new_ca(now)
        write_atomic(paths[_CA_KEY], _key_pem(ca_key), 0o600)
        write_atomic(paths[_CA_CERT], _cert_pem(ca_cert), 0o644)
        # Everything signed by a previous CA is useless now.
        for stale in (_SERVING_CERT, _SERVING_KEY, _ADMIN_CERT, _ADMIN_KEY):
            _remove(paths[stale])
    else:
        ca_cert, ca_key = ca

    serving = _load_pair(paths[_SERVING_CERT], paths[_SERVING_KEY])
    if serving is None or not _serving_cert_ok(serving[0], ca_cert, wanted, now):
        if serving is not None:
            log.info("re-issuing the serving certificate", extra={"hosts": _describe_sans(wanted)})
        cert, key = _new_leaf(
            ca_cert,
            ca_key,
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME)]),
            ExtendedKeyUsageOID.SERVER_AUTH,
            SERVING_CERT_DAYS,
            now,
            sans=wanted,
        )
        write_atomic(paths[_SERVING_KEY], _key_pem(key), 0o600)
        write_atomic(paths[_SERVING_CERT], _cert_pem(cert), 0o644)

    admin = _load_pair(paths[_ADMIN_CERT], paths[_ADMIN_KEY])
    if admin is None or not _signed_and_current(admin[0], ca_cert, now, dt.timedelta(0)):
        cert, key = _new_leaf(
            ca_cert,
            ca_key,
            _client_name(ADMIN_USER, ADMIN_GROUPS),
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ADMIN_CERT_DAYS,
            now,
        )
        write_atomic(paths[_ADMIN_KEY], _key_pem(key), 0o600)
        write_atomic(paths[_ADMIN_CERT], _cert_pem(cert), 0o644)

    token = _read_token(paths[_ADMIN_TOKEN])
    if token is None:
        token = secrets.token_urlsafe(32)
        write_atomic(paths[_ADMIN_TOKEN], (token + "\n").encode(), 0o600)

    return ServingIdentity(
        pki_dir=pki,
        ca_cert_path=paths[_CA_CERT],
        ca_key_path=paths[_CA_KEY],
        serving_cert_path=paths[_SERVING_CERT],
        serving_key_path=paths[_SERVING_KEY],
        admin_cert_path=paths[_ADMIN_CERT],
        admin_key_path=paths[_ADMIN_KEY],
        admin_token_path=paths[_ADMIN_TOKEN],
        ca_cert_pem=_read(paths[_CA_CERT]),
        ca_key_pem=_read(paths[_CA_KEY]),
        serving_cert_pem=_read(paths[_SERVING_CERT]),
        serving_key_pem=_read(paths[_SERVING_KEY]),
        admin_cert_pem=_read(paths[_ADMIN_CERT]),
        admin_key_pem=_read(paths[_ADMIN_KEY]),
        admin_token=token,
    )


def ssl_context(identity: ServingIdentity) -> ssl.SSLContext:
    """Server-side TLS context: client certificates from our CA are checked when offered but not required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(identity.serving_cert_path, identity.serving_key_path)
    ctx.load_verify_locations(cadata=identity.ca_cert_pem.decode("ascii"))
    # Optional so that bearer-token clients can connect; the handler decides what an anonymous peer may do.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def client_identity_from_peercert(peercert: dict[str, Any] | None) -> tuple[str, list[str]] | None:
    """Map a verified peer certificate to (user, groups) the way Kubernetes does: CN is the user, O the groups.

    ``getpeercert()`` returns an empty dict when the peer sent no certificate, which yields None.
    """
    if not peercert:
        return None
    user: str | None = None
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == _PEER_CN and user is None:
                user = value
            elif key == _PEER_O and value not in groups:
                groups.append(value)
    if not user:
        return None
    return user, groups


def issue_client_certificate(
    identity: ServingIdentity, user: str, groups: list[str], days: int = 365
) -> tuple[bytes, bytes]:
    """Mint a client certificate (PEM cert, PEM key) for ``user`` in ``groups``, signed by the hub CA."""
    if not user:
        raise ValueError("client certificate user must not be empty")
    if days <= 0:
        raise ValueError(f"client certificate validity must be positive, got {days} days")
    ca_cert = x509.load_pem_x509_certificate(identity.ca_cert_pem)
    ca_key = _load_ec_key(identity.ca_key_pem)
    cert, key = _new_leaf(ca_cert, ca_key, _client_name(user, groups), ExtendedKeyUsageOID.CLIENT_AUTH, days, _now())
    return _cert_pem(cert), _key_pem(key)


# --- generation -------------------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    days: int,
    now: dt.datetime,
    sans: _SANs | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    # A leaf must not outlive its issuer; strict verifiers reject such chains.
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
    )
    if sans is not None:
        dns, ips = sans
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns)]
        names += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda a: (a.version, a.packed))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(_ec_public(ca_cert))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _client_name(user: str, groups: Iterable[str]) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in dict.fromkeys(groups) if g]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return x509.Name(attrs)


# --- validation -------------------------------------------------------------------------------------------------


def _normalize_hosts(hosts: Sequence[str]) -> _SANs:
    dns: set[str] = set()
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for raw in hosts:
        host = raw.strip().strip("[]").rstrip(".")
        if not host:
            continue
        try:
            # A zone index (fe80::1%eth0) cannot be expressed in a certificate.
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            dns.add(_dns_label(host))
            continue
        if not ip.is_unspecified:
            ips.add(ip)
    return frozenset(dns), frozenset(ips)


def _dns_label(host: str) -> str:
    host = host.lower()
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii")


def _describe_sans(sans: _SANs) -> list[str]:
    return sorted(sans[0]) + sorted(str(ip) for ip in sans[1])


def _is_usable_ca(cert: x509.Certificate, now: dt.datetime) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and cert.not_valid_after_utc > now + RENEW_BEFORE


def _signed_and_current(
    cert: x509.Certificate, ca_cert: x509.Certificate, now: dt.datetime, margin: dt.timedelta
) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return cert.not_valid_before_utc <= now + _CLOCK_SKEW and cert.not_valid_after_utc > now + margin


def _serving_cert_ok(cert: x509.Certificate, ca_cert: x509.Certificate, wanted: _SANs, now: dt.datetime) -> bool:
    if not _signed_and_current(cert, ca_cert, now, RENEW_BEFORE):
        return False
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
        return False
    have_dns = {d.lower() for d in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return wanted[0] <= have_dns and wanted[1] <= have_ips


# --- files ------------------------------------------------------------------------------------------------------


def _load_pair(cert_path: str, key_path: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Load a certificate and its key; None when either is missing, unreadable or they do not belong together."""
    try:
        cert = x509.load_pem_x509_certificate(_read(cert_path))
        key = _load_ec_key(_read(key_path))
    except (OSError, ValueError, TypeError):
        return None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if cert.public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
        return None
    return cert, key


def _load_ec_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"expected an EC private key, got {type(key).__name__}")
    return key


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise TypeError(f"expected an EC public key, got {type(pub).__name__}")
    return pub


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 is the one private-key encoding that Go, OpenSSL and the kubernetes Python client all accept.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _read_token(path: str) -> str | None:
    try:
        token = _read(path).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def write_atomic(path: str, data: bytes, mode: int) -> None:
    """Write atomically with the final mode set before any secret byte hits the disk."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
