"""Object metadata rules shared by the API server and the controllers."""

from __future__ import annotations

import copy
import datetime
import secrets
import uuid
from typing import Any

# kube's generateName alphabet (no vowels, no confusable characters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    # Upstream trims the prefix so the result fits 63 characters.
    return prefix[:58] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = {}
        obj["metadata"] = md
    return md


def deep_copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy that shares `metadata.managedFields`: entries are never changed in place (a write replaces the
    list), and their field sets would be most of what copying a stored object walks."""
    md = obj.get("metadata")
    if type(md) is dict and "managedFields" in md:
        entries = md["managedFields"]
        out: dict[str, Any] = copy.deepcopy({**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}})
        out["metadata"]["managedFields"] = entries
        return out
    return copy.deepcopy(obj)


def without_resource_version(obj: dict[str, Any]) -> dict[str, Any]:
    out = dict(obj)
    md = dict(out.get("metadata") or {})
    md.pop("resourceVersion", None)
    out["metadata"] = md
    return out


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything a generation counts: the object without metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def owner_uids(obj: dict[str, Any]) -> list[str]:
    return [str(ref.get("uid")) for ref in obj.get("metadata", {}).get("ownerReferences") or [] if ref.get("uid")]


def parse_time(value: Any) -> float | None:
    """RFC 3339 -> epoch seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()
