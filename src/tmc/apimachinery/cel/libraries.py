"""The Kubernetes CEL libraries a CRD rule may call, as cel-cpp function declarations with Python implementations.

Upstream's lists, regex, URL and quantity libraries (k8s.io/apiserver/pkg/cel/library). CEL's own `strings`
(charAt, indexOf, lowerAscii, replace, split, substring, trim, join, `strings.quote`, `format`), `optional` and
`bindings` extensions come from cel-cpp. An exception raised here becomes the rule's evaluation error.

URLs and quantities are opaque types upstream; cel-expr-python cannot carry opaque Python values, so they travel
as strings tagged with U+001F (`"\x1fquantity:num/den"`, `"\x1furl:..."`; a NUL would end the C string), declared
`dyn`. A quantity is its exact value in lowest terms, so `==` is numeric equality as upstream's Quantity.Equal is.
Strings rather than maps because cel-expr-python 0.1.3 keeps the arguments of every Python call (`callbacks.py`):
the smaller they are, the less it keeps. Every implementation is wrapped by `callbacks.guard`.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cel_expr_python import cel

from tmc.apimachinery.cel.callbacks import guard
from tmc.apimachinery.quantity import QUANTITY_SHAPE, parse_quantity

T = cel.Type
URL = T.STRING
QUANTITY = T.STRING
_Q = "\x1fquantity:"
_U = "\x1furl:"
_INT64 = (-(2**63), 2**63 - 1)


# --- lists ---------------------------------------------------------------------------------------------------


def _is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


def _index_of(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if _same(item, value)), -1)


def _last_index_of(items: list[Any], value: Any) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if _same(items[i], value)), -1)


def _same(a: Any, b: Any) -> bool:
    # CEL equality: true never equals 1 (Python's == says it does).
    return (type(a) is bool) == (type(b) is bool) and a == b


# --- regex ---------------------------------------------------------------------------------------------------

_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _regex(pattern: str) -> re.Pattern[str]:
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        if len(_REGEX_CACHE) > 256:
            _REGEX_CACHE.clear()
        compiled = _REGEX_CACHE[pattern] = re.compile(pattern)
    return compiled


def _find(value: str, pattern: str) -> str:
    match = _regex(pattern).search(value)
    return match.group(0) if match else ""


def _find_all(value: str, pattern: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    found = [m.group(0) for m in _regex(pattern).finditer(value)]
    return found if limit < 0 else found[:limit]


# --- URLs ----------------------------------------------------------------------------------------------------


def _parse_url(value: str) -> str:
    parts = urlsplit(value)
    # Upstream: "URL must be an absolute URI or an absolute path".
    if not (parts.scheme or value.startswith("/")) or any(c in value for c in " \t\n"):
        raise ValueError(f"URL must be an absolute URI or an absolute path: {value}")
    return value


@functools.lru_cache(maxsize=1024)  # the same few endpoints come back in every object of a kind
def _is_url(value: str) -> bool:
    try:
        _parse_url(value)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _url(value: str) -> str:
    return _U + _parse_url(value)


@functools.lru_cache(maxsize=1024)
def _split(u: str) -> Any:
    if not u.startswith(_U):
        raise ValueError("not a URL")
    return urlsplit(u[len(_U) :])


def _host(u: str) -> str:
    netloc = _split(u).netloc
    return netloc.rsplit("@", 1)[-1]


def _hostname(u: str) -> str:
    host = _host(u)
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(u: str) -> str:
    host = _host(u)
    tail = host[host.find("]") + 1 :] if host.startswith("[") else host
    return tail.rsplit(":", 1)[1] if ":" in tail else ""


def _query(u: str) -> dict[str, list[str]]:
    return parse_qs(_split(u).query, keep_blank_values=True)


# --- quantities ----------------------------------------------------------------------------------------------


def _to_q(value: Fraction) -> str:
    return f"{_Q}{value.numerator}/{value.denominator}"


@functools.lru_cache(maxsize=1024)
def _from_q(q: str) -> Fraction:
    if not q.startswith(_Q):
        raise ValueError("not a quantity")
    return Fraction(q[len(_Q) :])


@functools.lru_cache(maxsize=1024)
def _quantity(value: str) -> str:
    if not QUANTITY_SHAPE.match(value):
        raise ValueError(f"quantities must match the regular expression: {value}")
    return _to_q(parse_quantity(value))


def _is_quantity(value: str) -> bool:
    try:
        _quantity(value)
    except ValueError:
        return False
    return True


def _cmp(a: Fraction, b: Fraction) -> int:
    return (a > b) - (a < b)


def _as_integer(q: str) -> int:
    value = _from_q(q)
    if value.denominator != 1 or not _INT64[0] <= value.numerator <= _INT64[1]:
        raise ValueError("cannot convert value to integer")
    return value.numerator


def _is_integer(q: str) -> bool:
    value = _from_q(q)
    return value.denominator == 1 and _INT64[0] <= value.numerator <= _INT64[1]


@dataclass(frozen=True, slots=True)
class Overload:
    """One overload of a library function: its parameters by kind (`l` list, `s` string, `i` int, `q` quantity,
    `u` URL, `d` any; the receiver first for a member function), what it returns, and the Python that answers it."""

    name: str
    oid: str
    ret: Any
    params: str
    impl: Callable[..., Any]
    member: bool = True


def _overloads() -> list[Overload]:
    """Upstream's lists, regex, URL and quantity libraries."""
    q, s, i, b = QUANTITY, T.STRING, T.INT, T.BOOL
    o = Overload
    return [
        o("isSorted", "list_is_sorted", b, "l", _is_sorted),
        o("sum", "list_sum", T.DYN, "l", _sum),
        o("min", "list_min", T.DYN, "l", _min),
        o("max", "list_max", T.DYN, "l", _max),
        o("indexOf", "list_index_of", i, "ld", _index_of),
        o("lastIndexOf", "list_last_index_of", i, "ld", _last_index_of),
        o("find", "string_find", s, "ss", _find),
        o("findAll", "string_find_all", T.List(s), "ss", _find_all),
        o("findAll", "string_find_all_n", T.List(s), "ssi", _find_all),
        o("url", "string_to_url", T.DYN, "s", _url, member=False),
        o("isURL", "is_url_string", b, "s", _is_url, member=False),
        o("getScheme", "url_get_scheme", s, "u", lambda u: _split(u).scheme),
        o("getHost", "url_get_host", s, "u", _host),
        o("getHostname", "url_get_hostname", s, "u", _hostname),
        o("getPort", "url_get_port", s, "u", _port),
        o("getEscapedPath", "url_get_escaped_path", s, "u", lambda u: _split(u).path),
        o("getQuery", "url_get_query", T.Map(s, T.List(s)), "u", _query),
        o("quantity", "string_to_quantity", T.DYN, "s", _quantity, member=False),
        o("isQuantity", "is_quantity_string", b, "s", _is_quantity, member=False),
        o("compareTo", "quantity_compare_to", i, "qq", lambda a, b: _cmp(_from_q(a), _from_q(b))),
        o("isGreaterThan", "quantity_greater", b, "qq", lambda a, b: _from_q(a) > _from_q(b)),
        o("isLessThan", "quantity_less", b, "qq", lambda a, b: _from_q(a) < _from_q(b)),
        o("add", "quantity_add", q, "qq", lambda a, b: _to_q(_from_q(a) + _from_q(b))),
        o("add", "quantity_add_int", q, "qi", lambda a, b: _to_q(_from_q(a) + b)),
        o("sub", "quantity_sub", q, "qq", lambda a, b: _to_q(_from_q(a) - _from_q(b))),
        o("sub", "quantity_sub_int", q, "qi", lambda a, b: _to_q(_from_q(a) - b)),
        o("asInteger", "quantity_as_integer", i, "q", _as_integer),
        o("asApproximateFloat", "quantity_as_float", T.DOUBLE, "q", lambda a: float(_from_q(a))),
        o("sign", "quantity_sign", i, "q", lambda a: _cmp(_from_q(a), Fraction(0))),
        o("isInteger", "quantity_is_integer", b, "q", _is_integer),
    ]


_PARAM_TYPES = {"l": T.List(T.DYN), "s": T.STRING, "i": T.INT, "q": QUANTITY, "u": URL, "d": T.DYN}


def kubernetes_functions() -> list[Any]:
    """cel-cpp declarations of the libraries, every implementation wrapped by `callbacks.guard`."""
    by_name: dict[str, list[Any]] = {}
    for ov in _overloads():
        params = [_PARAM_TYPES[k] for k in ov.params]
        declared = cel.Overload(ov.oid, ov.ret, params, is_member=ov.member, impl=guard(ov.impl))
        by_name.setdefault(ov.name, []).append(declared)
    return [cel.FunctionDecl(name, overloads) for name, overloads in by_name.items()]


@functools.cache
def library_overloads() -> dict[str, tuple[Overload, ...]]:
    """The overloads of each library function by name, for working calls out in Python (folding.py)."""
    by_name: dict[str, list[Overload]] = {}
    for ov in _overloads():
        by_name.setdefault(ov.name, []).append(ov)
    return {name: tuple(ovs) for name, ovs in by_name.items()}
