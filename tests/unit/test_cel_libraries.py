"""The CEL libraries a CRD rule can use: each family evaluated through the same compile path the hub uses."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.apimachinery.cel.compiler import CompileError, activation, compile_expression


def run(rule: str, value: Any = None) -> Any:
    program = compile_expression(rule, "bool" if not rule.startswith("=") else "string")
    result, error = program.run(activation(value, None, False, False))
    if error is not None:
        raise AssertionError(error)
    return result


def error_of(rule: str, value: Any = None) -> str:
    program = compile_expression(rule, "bool")
    result, error = program.run(activation(value, None, False, False))
    assert error is not None, result
    return error


@pytest.mark.parametrize(
    "rule",
    [
        # lists
        "[1, 2, 3].isSorted() && !['b', 'a'].isSorted()",
        "[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0 && [].sum() == 0",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3 && ['b', 'a'].min() == 'a'",
        "[1, 2, 1].indexOf(1) == 0 && [1, 2, 1].lastIndexOf(1) == 2 && [1].indexOf(5) == -1",
        "self.items.isSorted() && self.items.sum() == 6",
        # regex
        "'abc 123 def 456'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''",
        "'a1b22c333'.findAll('[0-9]+') == ['1', '22', '333'] && 'a1b22c333'.findAll('[0-9]+', 2) == ['1', '22']",
        "'abc'.matches('^a.c$')",
        # URLs
        "url('https://user@example.com:8443/a%20b/c?x=1&x=2&y').getScheme() == 'https'",
        "url('https://user@example.com:8443/p').getHost() == 'example.com:8443'",
        "url('https://example.com:8443/p').getHostname() == 'example.com'",
        "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]:80/').getPort() == '80'",
        "url('https://example.com:8443/p').getPort() == '8443' && url('https://example.com/p').getPort() == ''",
        "url('https://example.com/a%20b/c').getEscapedPath() == '/a%20b/c'",
        "url('https://example.com/?x=1&x=2&y').getQuery() == {'x': ['1', '2'], 'y': ['']}",
        "isURL('https://example.com') && isURL('/absolute/path') && !isURL('relative/path')",
        # quantities
        "quantity('1Gi') == quantity('1024Mi') && quantity('1k') == quantity('1000')",
        "quantity('1Gi').isGreaterThan(quantity('1000Mi')) && quantity('100m').isLessThan(quantity('1'))",
        "quantity('2').compareTo(quantity('1')) == 1 && quantity('1').compareTo(quantity('1000m')) == 0",
        "quantity('1.5').add(quantity('500m')) == quantity('2') && quantity('2').add(3) == quantity('5')",
        "quantity('2').sub(quantity('500m')).asApproximateFloat() == 1.5 && quantity('5').sub(2).asInteger() == 3",
        "quantity('-3').sign() == -1 && quantity('0').sign() == 0 && quantity('1m').sign() == 1",
        "quantity('10').isInteger() && !quantity('1500m').isInteger() && quantity('1Ki').asInteger() == 1024",
        "isQuantity('250m') && !isQuantity('2 Gi') && !isQuantity('abc')",
        # strings extension and format
        "'hello'.charAt(1) == 'e' && 'hello'.indexOf('l') == 2 && 'hello'.lastIndexOf('l') == 3",
        "'HeLLo'.lowerAscii() == 'hello' && 'HeLLo'.upperAscii() == 'HELLO'",
        "'a-b-c'.replace('-', '+') == 'a+b+c' && 'a,b,c'.split(',') == ['a', 'b', 'c']",
        "'hello'.substring(1, 3) == 'el' && '  x  '.trim() == 'x' && ['a', 'b'].join('/') == 'a/b'",
        "strings.quote('a\"b') == '\"a\\\\\"b\"'",
        "'%s has %d items'.format(['list', 3]) == 'list has 3 items'",
        # macros and has()
        "has(self.items) && !has(self.missing)",
        "self.items.all(i, i > 0) && self.items.exists(i, i == 2) && self.items.exists_one(i, i == 3)",
        "self.items.map(i, i * 2) == [2, 4, 6] && self.items.filter(i, i > 1) == [2, 3]",
        # optionals
        "optional.of(1).hasValue() && optional.none().orValue(5) == 5 && self.?missing.orValue('d') == 'd'",
    ],
)
def test_library_functions(rule: str) -> None:
    assert run(rule, {"items": [1, 2, 3]}) is True


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("quantity('2 Gi') == quantity('1')", "quantities must match"),
        ("url('not a url').getHost() == ''", "URL must be an absolute URI or an absolute path"),
        ("[].min() == 0", "min called on empty list"),
        ("quantity('1500m').asInteger() == 1", "cannot convert value to integer"),
        ("self.missing == 1", "missing"),
    ],
)
def test_library_errors(rule: str, fragment: str) -> None:
    assert fragment in error_of(rule, {"items": []})


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ("self.x >", "Syntax error"),
        ("1 + 'a' == 2", "found no matching overload for '_+_'"),
        ("self.undefinedFunction()", "undeclared reference to 'undefinedFunction'"),
        ("'not a bool'", "cel expression must evaluate to a bool"),
    ],
)
def test_compile_errors(rule: str, fragment: str) -> None:
    with pytest.raises(CompileError) as info:
        compile_expression(rule, "bool")
    assert fragment in str(info.value)
    if "Syntax" in fragment:
        assert str(info.value).startswith("compilation failed: ERROR: <input>:1:")


def test_message_expression_must_be_a_string() -> None:
    with pytest.raises(CompileError, match="messageExpression must evaluate to a string"):
        compile_expression("1 + 1", "string")
    assert compile_expression("'n=' + string(self.n)", "string").source
