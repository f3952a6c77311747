"""Label selectors (string form from query parameters and LabelSelector objects) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tmc.apimachinery.errors import bad_request

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "gt" else have < want
        return False


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.matches_nothing


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(matches_nothing=True)

_TOKEN = re.compile(r"\s*(!=|==|=|\(|\)|,|!|[^\s!=(),]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise bad_request(f"unable to parse requirement: invalid selector: {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),!h,i` as kube's labels.Parse does; bad syntax is a 400."""
    text = text.strip()
    if not text:
        return EVERYTHING
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def fail(why: str) -> Exception:
        return bad_request(f"unable to parse requirement: {why}")

    while i < len(toks):
        if toks[i] == "!":
            if i + 1 >= len(toks):
                raise fail("missing key after '!'")
            key = toks[i + 1]
            _check_key(key)
            reqs.append(Requirement(key, "!"))
            i += 2
        else:
            key = toks[i]
            _check_key(key)
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                if i + 1 >= len(toks) or toks[i + 1] == ",":
                    value = ""
                    i += 1
                else:
                    value = toks[i + 1]
                    i += 2
                _check_value(value)
                reqs.append(Requirement(key, op, (value,)))
            elif toks[i].lower() in ("in", "notin"):
                op = toks[i].lower()
                if i + 1 >= len(toks) or toks[i + 1] != "(":
                    raise fail(f"found '{toks[i + 1] if i + 1 < len(toks) else ''}', expected: '('")
                i += 2
                values: list[str] = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        _check_value(toks[i])
                        values.append(toks[i])
                    i += 1
                if i >= len(toks):
                    raise fail("found '', expected: ')'")
                i += 1
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                raise fail(f"found '{toks[i]}', expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise fail(f"found '{toks[i]}', expected: ','")
            i += 1
            if i >= len(toks):
                raise fail("found '', expected: identifier after ','")
    return LabelSelector(tuple(reqs))


def _check_key(key: str) -> None:
    if not valid_label_key(key):
        raise bad_request(
            f"unable to parse requirement: invalid label key {key!r}: name part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if not valid_label_value(value):
        raise bad_request(
            f"unable to parse requirement: invalid label value: {value!r}: a valid label must be an "
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character"
        )


def label_selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelector -> LabelSelector. None matches nothing; {} matches everything (kube semantics)."""
    if selector is None:
        return NOTHING
    reqs = [Requirement(k, "=", (str(v),)) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = str(expr.get("operator", ""))
        key = str(expr.get("key", ""))
        values = tuple(str(v) for v in expr.get("values") or [])
        mapped = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}
        if op not in mapped:
            raise bad_request(f"{op!r} is not a valid label selector operator")
        reqs.append(Requirement(key, mapped[op], values))
    return LabelSelector(tuple(reqs))


def label_selector_to_string(selector: Mapping[str, Any]) -> str:
    """metav1.LabelSelector -> the string form kubectl prints and Scale.status.selector carries."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(sorted(expr.get("values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# Field selectors: every kind supports metadata.name and metadata.namespace; a few built-ins add their own.
FieldGetter = Callable[[dict[str, Any]], str]

_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: str(o.get("metadata", {}).get("name", "")),
    "metadata.namespace": lambda o: str(o.get("metadata", {}).get("namespace", "")),
}


def _path(*parts: str) -> FieldGetter:
    def get(obj: dict[str, Any]) -> str:
        cur: Any = obj
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


EXTRA_FIELDS: dict[str, dict[str, FieldGetter]] = {
    "Secret": {"type": _path("type")},
    "Namespace": {"status.phase": _path("status", "phase")},
    "Node": {"spec.unschedulable": _path("spec", "unschedulable")},
    "Pod": {
        "spec.nodeName": _path("spec", "nodeName"),
        "status.phase": _path("status", "phase"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
    },
    "Event": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "type": _path("type"),
        "source": _path("source", "component"),
    },
    "Job": {"status.successful": _path("status", "succeeded")},
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: dict[str, Any]) -> bool:
        return (self.getter(obj) == self.value) != self.negate


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name when the selector pins metadata.name (lets a list become a single lookup)."""
        for r in self.requirements:
            if r.field == "metadata.name" and not r.negate:
                return r.value
        return None


def parse_field_selector(text: str, kind: str, extra: Mapping[str, FieldGetter] | None = None) -> FieldSelector:
    text = text.strip()
    if not text:
        return FieldSelector()
    getters = dict(_COMMON_FIELDS)
    getters.update(EXTRA_FIELDS.get(kind, {}))
    if extra:
        getters.update(extra)
    reqs: list[FieldRequirement] = []
    for part in text.split(","):
        part = part.strip()
        if "!=" in part:
            field, value = part.split("!=", 1)
            negate = True
        elif "==" in part:
            field, value = part.split("==", 1)
            negate = False
        elif "=" in part:
            field, value = part.split("=", 1)
            negate = False
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in getters:
            raise bad_request(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        reqs.append(FieldRequirement(field, negate, value.strip(), getters[field]))
    return FieldSelector(tuple(reqs))
