"""The one kubeconfig reader: the current (or a named) context's server, TLS settings and credentials.

Supported: `certificate-authority(-data)`, `insecure-skip-tls-verify`, `token`, `tokenFile`,
`client-certificate(-data)` and `client-key(-data)`. File references are resolved relative to the kubeconfig, as
kubectl does. A context, cluster or user that is named but missing is a ValueError naming the file.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml


@dataclass(frozen=True)
class Kubeconfig:
    server: str
    ca_pem: bytes | None = None
    insecure: bool = False
    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    context: str = ""  # the context this was read from ("" when built by hand)
    cluster: str = ""  # the name of the context's cluster entry

    @property
    def base_url(self) -> str:
        """scheme://host:port, without any path the server URL carries (e.g. the hub's `/clusters/root`)."""
        parts = urlsplit(self.server)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path_prefix(self) -> str:
        """The path the server URL carries (`/clusters/root` for a hub workspace), without a trailing slash."""
        return urlsplit(self.server).path.rstrip("/")

    @property
    def workspace(self) -> str | None:
        """The workspace the server URL names (`root:team-a` for `.../clusters/root:team-a`), None for a plain
        Kubernetes server URL."""
        prefix = self.path_prefix
        if not prefix.startswith("/clusters/"):
            return None
        return prefix[len("/clusters/") :].split("/", 1)[0] or None


def load_kubeconfig(path: str, context: str | None = None) -> Kubeconfig:
    """The current (or named) context's server and credentials. Without a current context the first context is
    used."""
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a kubeconfig")
    name = context or config.get("current-context")
    if name:
        ctx = _named(config, "contexts", name, path)
    else:
        contexts = config.get("contexts") or []
        if not contexts:
            raise ValueError(f"{path}: no current-context and no contexts")
        name = str(contexts[0].get("name") or "")
        ctx = dict(contexts[0].get("context") or {})
    if not ctx.get("cluster"):
        raise ValueError(f"{path}: context {name!r} names no cluster")
    cluster = _named(config, "clusters", ctx["cluster"], path)
    if not cluster.get("server"):
        raise ValueError(f"{path}: cluster {ctx['cluster']!r} has no server")
    user = _named(config, "users", ctx["user"], path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(base, user["tokenFile"]).decode().strip()
    return Kubeconfig(
        server=str(cluster["server"]),
        ca_pem=_data(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=str(token) if token else None,
        cert_pem=_data(user, "client-certificate", base),
        key_pem=_data(user, "client-key", base),
        context=str(name),
        cluster=str(ctx["cluster"]),
    )


def ssl_context(config: Kubeconfig) -> ssl.SSLContext | bool:
    """The TLS settings for the config's server; False for plain http."""
    if not config.server.startswith("https"):
        return False
    if config.ca_pem and not config.insecure:
        # As client-go: a kubeconfig that names a CA trusts that CA only. Also cheaper than loading the system
        # bundle, which a short-lived CLI command would pay on every run.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=config.ca_pem.decode())
    else:
        ctx = ssl.create_default_context()
    if config.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.cert_pem and config.key_pem:
        # ssl only loads client certificates from files; they live only as long as this call.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for file, data in ((cert, config.cert_pem), (key, config.key_pem)):
                with open(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx


def _named(config: Mapping[str, Any], section: str, name: Any, path: str) -> dict[str, Any]:
    for item in config.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            return dict(item.get(section[:-1]) or {})
    raise ValueError(f"{path}: no {section[:-1]} named {name!r}")


def _read(base: str, name: str) -> bytes:
    with open(os.path.join(base, name), "rb") as f:
        return f.read()


def _data(section: Mapping[str, Any], field: str, base: str) -> bytes | None:
    if section.get(f"{field}-data"):
        return base64.b64decode(section[f"{field}-data"])
    if section.get(field):
        return _read(base, str(section[field]))
    return None
