"""Kubeconfig files the PKI and client tests write, in one shape for unit and integration tests."""

from __future__ import annotations

from pathlib import Path

from tmc.apiserver.certs import ServingIdentity
from tmc.apiserver.kubeconfig import write_kubeconfig


def token_kubeconfig(directory: Path, identity: ServingIdentity, server: str) -> Path:
    """`directory/admin.kubeconfig`: the admin token, the CA, context `root` on `server` and `root:team-a` beside it."""
    path = directory / "admin.kubeconfig"
    write_kubeconfig(
        str(path),
        server=server,
        ca_pem=identity.ca_cert_pem,
        context="root",
        user="admin",
        token=identity.admin_token,
        extra_contexts={"root:team-a": server.replace("/clusters/root", "/clusters/root:team-a")},
    )
    return path
