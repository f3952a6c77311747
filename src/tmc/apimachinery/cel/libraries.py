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


def _is_url(value: str) -> bool:
    try:
        _parse_url(value)
    except ValueError:
        return False
    return True


def _url(value: str) -> str:
    return _U + _parse_url(value)


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


def _overload(oid: str, ret: Any, params: list[Any], impl: Callable[..., Any], member: bool = True) -> Any:
    return cel.Overload(oid, ret, params, is_member=member, impl=guard(impl))


def _decl(name: str, *overloads: Any) -> Any:
    return cel.FunctionDecl(name, list(overloads))


def kubernetes_functions() -> list[Any]:
    """Declarations of upstream's lists, regex, URL and quantity libraries."""
    dyn_list = T.List(T.DYN)
    q, s, i = QUANTITY, T.STRING, T.INT
    return [
        _decl("isSorted", _overload("list_is_sorted", T.BOOL, [dyn_list], _is_sorted)),
        _decl("sum", _overload("list_sum", T.DYN, [dyn_list], _sum)),
        _decl("min", _overload("list_min", T.DYN, [dyn_list], _min)),
        _decl("max", _overload("list_max", T.DYN, [dyn_list], _max)),
        _decl("indexOf", _overload("list_index_of", T.INT, [dyn_list, T.DYN], _index_of)),
        _decl("lastIndexOf", _overload("list_last_index_of", T.INT, [dyn_list, T.DYN], _last_index_of)),
        _decl("find", _overload("string_find", s, [s, s], _find)),
        _decl(
            "findAll",
            _overload("string_find_all", T.List(s), [s, s], _find_all),
            _overload("string_find_all_n", T.List(s), [s, s, i], _find_all),
        ),
        _decl("url", _overload("string_to_url", T.DYN, [s], _url, member=False)),
        _decl("isURL", _overload("is_url_string", T.BOOL, [s], _is_url, member=False)),
        _decl("getScheme", _overload("url_get_scheme", s, [URL], lambda u: _split(u).scheme)),
        _decl("getHost", _overload("url_get_host", s, [URL], _host)),
        _decl("getHostname", _overload("url_get_hostname", s, [URL], _hostname)),
        _decl("getPort", _overload("url_get_port", s, [URL], _port)),
        _decl("getEscapedPath", _overload("url_get_escaped_path", s, [URL], lambda u: _split(u).path)),
        _decl("getQuery", _overload("url_get_query", T.Map(s, T.List(s)), [URL], _query)),
        _decl("quantity", _overload("string_to_quantity", T.DYN, [s], _quantity, member=False)),
        _decl("isQuantity", _overload("is_quantity_string", T.BOOL, [s], _is_quantity, member=False)),
        _decl("compareTo", _overload("quantity_compare_to", i, [q, q], lambda a, b: _cmp(_from_q(a), _from_q(b)))),
        _decl("isGreaterThan", _overload("quantity_greater", T.BOOL, [q, q], lambda a, b: _from_q(a) > _from_q(b))),
        _decl("isLessThan", _overload("quantity_less", T.BOOL, [q, q], lambda a, b: _from_q(a) < _from_q(b))),
        _decl(
            "add",
            _overload("quantity_add", q, [q, q], lambda a, b: _to_q(_from_q(a) + _from_q(b))),
            _overload("quantity_add_int", q, [q, i], lambda a, b: _to_q(_from_q(a) + b)),
        ),
        _decl(
            "sub",
            _overload("quantity_sub", q, [q, q], lambda a, b: _to_q(_from_q(a) - _from_q(b))),
            _overload("quantity_sub_int", q, [q, i], lambda a, b: _to_q(_from_q(a) - b)),
        ),
        _decl("asInteger", _overload("quantity_as_integer", i, [q], _as_integer)),
        _decl("asApproximateFloat", _overload("quantity_as_float", T.DOUBLE, [q], lambda a: float(_from_q(a)))),
        _decl("sign", _overload("quantity_sign", i, [q], lambda a: _cmp(_from_q(a), Fraction(0)))),
        _decl("isInteger", _overload("quantity_is_integer", T.BOOL, [q], _is_integer)),
    ]
