"""Kubernetes Status errors: every failure the API returns is one of these, rendered as a `Status` body."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class StatusError(Exception):
    """An API failure with the HTTP code, reason and details a Kubernetes client expects."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(resource: str, name: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', _details(resource, name, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', _details(resource, name, group)
    )


def conflict(resource: str, name: str, group: str = "", why: str = "") -> StatusError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        _details(resource, name, group),
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(message: str) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(message: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", message)


def invalid(
    kind: str, name: str, causes: list[dict[str, str]], group: str = "", message: str | None = None
) -> StatusError:
    """422 Invalid; each cause is {reason, message, field} as the apiserver reports field errors
    (a `type` key, the name Go's field.Error uses, is accepted for `reason`)."""
    causes = [{("reason" if k == "type" else k): v for k, v in c.items()} for c in causes]
    summary = ", ".join(f"{c.get('field', '')}: {c.get('message', '')}".lstrip(": ") for c in causes)
    text = message or f'{kind} "{name}" is invalid: {summary}'
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": causes}
    if group:
        details["group"] = group
    return StatusError(422, "Invalid", text, details)


# Short names of failures for metric labels (`error_type`), by HTTP status code.
ERROR_TYPES = {
    404: "not_found",
    409: "conflict",
    403: "forbidden",
    401: "forbidden",
    429: "rate_limited",
    504: "server_timeout",
}


def error_type(code: int | None) -> str:
    """`timeout` for no answer, a short name for well-known codes, else `unknown`."""
    return "timeout" if code is None else ERROR_TYPES.get(code, "unknown")


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", message)


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str, causes: list[dict[str, str]] | None = None) -> StatusError:
    return StatusError(504, "Timeout", message, {"causes": causes} if causes else None)


@contextlib.contextmanager
def ignore_not_found() -> Iterator[None]:
    """Around a write to an object whose disappearance changes nothing (one of several dependents, an Event)."""
    try:
        yield
    except StatusError as e:
        if e.code != 404:
            raise
