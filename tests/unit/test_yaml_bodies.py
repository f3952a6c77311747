"""YAML request bodies: limits and bad input are a BodyError (answered 400), never an exception of another kind."""

from __future__ import annotations

import pytest

from tmc.apiserver.bodies import BodyError, parse_yaml


def test_a_plain_document_parses() -> None:
    assert parse_yaml(b"apiVersion: v1\nkind: ConfigMap\ndata: {a: '1'}\n") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"a": "1"},
    }


@pytest.mark.parametrize("text", [b"{a: !!int x}", b"{a: !!float y}", b"{a: !!timestamp 2020-13-45}"])
def test_a_tag_whose_value_does_not_convert_is_a_body_error(text: bytes) -> None:
    """Found by the fuzzer: PyYAML's constructors raise ValueError, which reached the handler as a 500."""
    with pytest.raises(BodyError, match="error converting YAML to JSON"):
        parse_yaml(text)


def test_an_alias_bomb_is_a_body_error() -> None:
    lines = [b"a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(b"%c: &%c [%s]" % (97 + i, 97 + i, b", ".join([b"*%c" % (96 + i)] * 10)))
    with pytest.raises(BodyError, match="aliases"):
        parse_yaml(b"\n".join(lines))


def test_numbers_and_booleans_as_keys_become_strings() -> None:
    assert parse_yaml(b"{1: a, false: b, 1.5: c}") == {"1": "a", "false": "b", "1.5": "c"}


@pytest.mark.parametrize("text", [b"{null: x}", b"{2020-01-01: x}"])
def test_other_keys_are_a_body_error(text: bytes) -> None:
    """Found by the fuzzer: a null key reached the status update as a 500."""
    with pytest.raises(BodyError, match="unsupported map key"):
        parse_yaml(text)
