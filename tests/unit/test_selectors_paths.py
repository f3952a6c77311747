from __future__ import annotations

import pytest

from tmc.apimachinery.errors import StatusError
from tmc.apimachinery.selectors import (
    label_selector_from_object,
    label_selector_to_string,
    parse_field_selector,
    parse_label_selector,
)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {"tier": "b"}, False),
        ("tier notin (a,b)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1"}, False),
        ("example.com/role=edge", {"example.com/role": "edge"}, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["a=(", "a in b", "a,", "=x", "a=b c", "-bad=x", "a=" + "x" * 64])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(StatusError) as e:
        parse_label_selector(bad)
    assert e.value.code == 400


def test_label_selector_objects() -> None:
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
    assert label_selector_from_object(sel).matches({"app": "web", "tier": "a"})
    assert not label_selector_from_object(sel).matches({"app": "web", "tier": "b"})
    assert label_selector_from_object({}).matches({"anything": "x"})
    assert not label_selector_from_object(None).matches({})
    assert label_selector_to_string(sel) == "app=web,tier in (a)"


def test_field_selectors() -> None:
    sel = parse_field_selector("metadata.name=a,metadata.namespace!=kube-system", "ConfigMap")
    assert sel.matches({"metadata": {"name": "a", "namespace": "default"}})
    assert not sel.matches({"metadata": {"name": "a", "namespace": "kube-system"}})
    assert sel.exact_name() == "a"
    assert parse_field_selector("type=Opaque", "Secret").matches({"type": "Opaque", "metadata": {}})
    with pytest.raises(StatusError) as e:
        parse_field_selector("spec.replicas=1", "Deployment")
    assert e.value.code == 400
