"""Python functions called from cel-cpp: what cel-expr-python keeps is released, and what it keeps per call stays
small (docs/hub.md, CEL validation rules)."""

from __future__ import annotations

import gc
import sys

from tmc.apimachinery.cel import callbacks
from tmc.apimachinery.cel.compiler import activation, compile_expression


def test_returned_values_are_released_after_each_evaluation() -> None:
    returned: list[object] = []

    def make(value: str) -> str:
        out = callbacks._Str(value + "!")
        returned.append(out)
        return out

    from cel_expr_python import cel

    t = cel.Type
    guarded = callbacks.guard(make)
    decl = cel.FunctionDecl("bang", [cel.Overload("bang_string", t.STRING, [t.STRING], impl=guarded)])
    env = cel.NewEnv(variables={"self": t.DYN}, extensions=[cel.CelExtension("test", [decl])])
    expression = env.compile("bang(self) == 'x!'")
    for _ in range(50):
        value = expression.eval(env.Activation(data={"self": "x"}))
        assert value.value() is True
        del value
        callbacks.settle()
    gc.collect()
    # held by `returned` and getrefcount's argument only: nothing kept by the binding
    assert [sys.getrefcount(returned[i]) for i in range(len(returned))] == [2] * 50


def test_library_rules_keep_little_per_evaluation() -> None:
    program = compile_expression("quantity(self.memory).isLessThan(quantity('64Gi')) && isURL(self.url)", "bool")
    act = activation({"memory": "512Mi", "url": "https://example.com"}, None, False, False)
    assert program.run(act) == (True, None)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(1000):
        program.run(act)
    gc.collect()
    grown = len(gc.get_objects()) - before
    kept_args = callbacks.kept_references()["arg"]
    # Only the argument tuples of the 4 calls per evaluation, when the installed binding keeps them.
    assert grown <= 4 * 1000 * kept_args + 100


def test_pure_cel_rules_keep_nothing() -> None:
    program = compile_expression("self.replicas <= self.max && self.tags.all(t, t.size() < 10)", "bool")
    act = activation({"replicas": 1, "max": 2, "tags": ["a", "b"]}, None, False, False)
    program.run(act)
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(1000):
        assert program.run(act) == (True, None)
    gc.collect()
    assert len(gc.get_objects()) - before < 50
