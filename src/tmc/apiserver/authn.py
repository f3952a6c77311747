"""Who is calling: a list of authenticators tried in order, each answering a `Caller`, None (not mine), or raising
`errors.StatusError` 401 (mine, and wrong). Today: the admin bearer token and client certificates from the hub's CA;
service-account tokens and OIDC plug in here the same way."""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from tmc.apimachinery import errors
from tmc.apiserver import certs

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...]

    @property
    def privileged(self) -> bool:
        return MASTERS in self.groups


# Where the authentication middleware leaves the request's Caller.
CALLER = web.RequestKey("caller", Caller)


class Authenticator(Protocol):
    def authenticate(self, request: web.Request) -> Caller | None: ...


class TokenAuthenticator:
    """A static bearer token that grants `user` the given groups (the admin token in `<data-dir>/pki`)."""

    def __init__(self, token: str, user: str = "admin", groups: tuple[str, ...] = (MASTERS,)) -> None:
        self._token = token.encode()
        self._caller = Caller(user, (*groups, AUTHENTICATED))

    def authenticate(self, request: web.Request) -> Caller | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        if hmac.compare_digest(header[len("Bearer ") :].strip().encode(), self._token):
            return self._caller
        # A bearer token is an explicit claim: a wrong one is refused, never passed on to a weaker authenticator.
        raise errors.unauthorized()


class X509Authenticator:
    """A client certificate signed by the hub's CA (verified by TLS): CN is the user, O the groups."""

    def authenticate(self, request: web.Request) -> Caller | None:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if not isinstance(ssl_object, ssl.SSLObject):
            return None
        found = certs.client_identity_from_peercert(ssl_object.getpeercert())
        if found is None:
            return None
        user, groups = found
        return Caller(user, (*groups, AUTHENTICATED))


def authenticate(authenticators: Sequence[Authenticator], request: web.Request) -> Caller:
    """The first authenticator's answer; 401 when none recognises the request."""
    for authenticator in authenticators:
        caller = authenticator.authenticate(request)
        if caller is not None:
            return caller
    raise errors.unauthorized()
