"""Typed client errors: what the server said (an `ApiError` subclass per Status code) versus no answer at all
(`Unreachable`).

The class is chosen by the Status body's `code` (falling back to the HTTP status), the field callers compared
before these classes existed, so `except NotFound:` catches exactly what `e.code == 404` did.
"""

from __future__ import annotations

from typing import Any

from tmc.apimachinery import errors


class ApiError(Exception):
    """The server answered with an error Status. `code` is the Status code, `reason` its reason (`NotFound`,
    `Expired`, ...), `body` the decoded answer."""

    def __init__(self, code: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.body = body


class Unauthorized(ApiError):
    """401: the credentials were not accepted."""


class Forbidden(ApiError):
    """403: the user may not do this."""


class NotFound(ApiError):
    """404: no such object (or collection)."""


class Conflict(ApiError):
    """409: a write lost a race (resourceVersion, uid precondition) or the object already exists."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: a create found the name taken."""


class Gone(ApiError):
    """410: the resourceVersion a watch or list asked for is too old (reason Expired); list again."""


class Invalid(ApiError):
    """422: the object or patch does not validate (a failed JSON patch `test` included)."""


class Unreachable(Exception):
    """The request did not get an answer: connection refused or reset, TLS failure, or timeout."""


_BY_CODE: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def api_error(code: int, reason: str, message: str, body: Any = None) -> ApiError:
    """The typed error for a Status `code` (plain ApiError for codes without a class of their own)."""
    if code == 409 and reason == "AlreadyExists":
        return AlreadyExists(code, reason, message, body)
    return _BY_CODE.get(code, ApiError)(code, reason, message, body)


def from_response(status: int, body: Any) -> ApiError:
    """The error for an HTTP error answer: from its Status body when it has one, else from the status alone."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return api_error(int(body.get("code") or status), str(body.get("reason") or ""), str(body.get("message")), body)
    return api_error(status, "", str(body)[:500], body)


def error_type(error: BaseException) -> str:
    """A short name for a failure, for metrics labels (the syncer's `error_type`)."""
    if isinstance(error, Unreachable):
        return errors.error_type(None)
    if isinstance(error, ApiError):
        return errors.error_type(error.code)
    return "unknown"
