"""Python functions called from cel-cpp, and the references cel-expr-python 0.1.3 forgets to release.

The released binding never drops its reference to what a Python function returns, nor the argument tuple it
builds for the call (the repository's code has since gained the missing `Py_DECREF`s). `guard` notes each
returned value and `settle`, called once an evaluation's result has been read, drops the reference the binding
kept. How many references to drop, per returned type, is measured once at import by calling probes through
cel-cpp and releasing everything they touched, so a fixed release makes this a no-op rather than a double free.

The argument tuples cannot be reached from Python (the interpreter unpacks them before a Python function runs), so
with 0.1.3 each call of a library function still keeps its arguments: `kept_references()` reports it and
docs/hub.md says what that costs.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
from collections.abc import Callable
from typing import Any

from cel_expr_python import cel

_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [ctypes.py_object]
_decref.restype = None

_pending: list[Any] = []
# references kept per returned value, by its type; types not measured are left alone
_kept: dict[type, int] = {}
_args_kept = 0


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        result = fn(*args)
        for _ in range(_kept.get(type(result), 0)):
            _pending.append(result)
        return result

    return call


def settle() -> None:
    """Release the references the binding kept during the evaluation whose result was just read."""
    if not _pending:
        return
    kept = _pending[:]
    _pending.clear()
    for obj in kept:
        _decref(obj)


class _Str(str):
    """Fresh objects per call (a subclass is never cached or interned by CPython)."""


class _Int(int):
    pass


class _List(list[Any]):
    pass


class _Dict(dict[str, Any]):
    pass


def _measure() -> tuple[dict[type, int], int]:
    t = cel.Type
    samples: dict[type, tuple[Any, Any]] = {
        str: (t.STRING, lambda: _Str("r")),
        int: (t.INT, lambda: _Int(7)),
        list: (t.List(t.STRING), lambda: _List(["a"])),
        dict: (t.Map(t.STRING, t.STRING), lambda: _Dict(a="b")),
    }
    returned: dict[type, Any] = {}
    received: list[Any] = []
    decls = []
    for kind, (ret_type, make) in samples.items():

        def impl(value: Any, kind: type = kind, make: Callable[[], Any] = make) -> Any:
            received.append(value)
            returned[kind] = make()
            return returned[kind]

        name = f"probe{kind.__name__.title()}"
        decls.append(cel.FunctionDecl(name, [cel.Overload(f"probe_{kind.__name__}", ret_type, [t.STRING], impl=impl)]))
    env = cel.NewEnv(variables={"self": t.DYN}, extensions=[cel.CelExtension("probe", decls)])
    for kind in samples:
        activation = env.Activation(data={"self": "probe"})
        value = env.compile(f"probe{kind.__name__.title()}(self)").eval(activation)
        value.value()
        del value, activation
    gc.collect()
    # Each object is now held by our dict (or list) and by getrefcount's argument: anything above 2 was kept.
    kept = {kind: max(sys.getrefcount(returned[kind]) - 2, 0) for kind in samples}
    args = min(sys.getrefcount(received[i]) - 2 for i in range(len(received)))
    for kind, obj in returned.items():
        for _ in range(kept[kind]):
            _decref(obj)
    return kept, max(args, 0)


def _calibrate() -> None:
    global _args_kept
    kept, _args_kept = _measure()
    for kind, count in kept.items():
        if count:
            _kept[kind] = count
    if str in _kept:
        _kept[_Str] = _kept[str]
    # bool is a subclass of int for CPython but its own CEL type: measured like int (both are plain conversions)
    if int in _kept:
        _kept[bool] = _kept[int]
        _kept[_Int] = _kept[int]


_calibrate()


def kept_references() -> dict[str, int]:
    """What the installed binding keeps per call (for tests and docs): references to the returned value by type,
    and to each argument (through the argument tuple; not released here)."""
    results = {f"result:{k.__name__}": v for k, v in _kept.items() if not k.__name__.startswith("_")}
    return {**results, "arg": _args_kept}
