"""Writing the kubeconfig files the hub hands out (admin, workspaces, syncers); tmc.client.kubeconfig reads them."""

from __future__ import annotations

import base64
import os
from typing import Any

import yaml

from tmc.apiserver.certs import write_atomic


def write_kubeconfig(
    path: str,
    *,
    server: str,
    ca_pem: bytes,
    context: str,
    user: str,
    token: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    extra_contexts: dict[str, str] | None = None,
) -> None:
    """Write a self-contained kubeconfig (credentials embedded) with ``context`` as the current context.

    ``extra_contexts`` maps further context names to server URLs that share the CA and the user, e.g. one per
    workspace. The file is created with mode 0600 and replaced atomically so a reader never sees half a file.
    """
    if not server:
        raise ValueError("kubeconfig server URL must not be empty")
    if not context or not user:
        raise ValueError("kubeconfig context and user names must not be empty")
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("client_cert_pem and client_key_pem must be given together")
    if token is None and client_cert_pem is None:
        raise ValueError("kubeconfig needs a token or a client certificate")
    extra = dict(extra_contexts or {})
    if context in extra:
        raise ValueError(f"extra context {context!r} clashes with the main context")

    ca_data = _b64(ca_pem)
    credentials: dict[str, str] = {}
    if token is not None:
        credentials["token"] = token
    if client_cert_pem is not None and client_key_pem is not None:
        credentials["client-certificate-data"] = _b64(client_cert_pem)
        credentials["client-key-data"] = _b64(client_key_pem)

    # One cluster entry per context, named after it, because each context points at a different URL.
    servers = {context: server, **extra}
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": url, "certificate-authority-data": ca_data}}
            for name, url in servers.items()
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}} for name in servers],
        "current-context": context,
        "preferences": {},
    }
    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(os.path.abspath(path), text.encode("utf-8"), 0o600)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
