"""The metric catalogue cannot drift: docs/observability.md holds exactly what the code catalogues, every metric the
processes register is catalogued with its real type and labels, metrics are only defined through the catalogue, and
labels come from the catalogue's bounded list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from tmc.cli.catalogue import BEGIN, END, catalogue_markdown, replace_generated
from tmc.observability import catalogue, exposition

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "observability.md"
# prometheus_client's own collectors: the process and Python runtime metrics every process exports.
CONVENTIONAL = ("process_", "python_")


def registered() -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """Every metric the processes register: exposed name -> (type, label names; None when a custom collector does
    not say)."""
    catalogue_markdown()  # imports every process's modules
    out: dict[str, tuple[str, tuple[str, ...] | None]] = {}
    for collector in list(REGISTRY._collector_to_names):  # the registry has no public listing
        if isinstance(collector, MetricWrapperBase):
            kind = collector._type
            name = collector._name + ("_total" if kind == "counter" else "")
            out[name] = (kind, tuple(collector._labelnames))
            continue
        for family in collector.describe() if hasattr(collector, "describe") else collector.collect():
            if family.name.startswith(CONVENTIONAL):
                continue
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = {tuple(sample.labels) for sample in family.samples}
            out[name] = (family.type, labels.pop() if len(labels) == 1 else None)
    for name in exposition.TEXT_FAMILIES:
        out[name] = (catalogue.CATALOGUE[name].kind, None)  # rendered from the catalogue's own entry
    return out


def test_the_document_holds_the_generated_catalogue() -> None:
    document = DOC.read_text()
    assert BEGIN in document and END in document
    assert replace_generated(document, catalogue_markdown()) == document, (
        "docs/observability.md is out of date: run `python -m tmc metrics-catalogue --write docs/observability.md`"
    )


def test_every_registered_metric_is_catalogued_as_it_is() -> None:
    metrics = registered()
    missing = sorted(set(metrics) - set(catalogue.CATALOGUE))
    assert not missing, f"metrics defined outside the catalogue: {missing}"
    for name, (kind, labels) in metrics.items():
        doc = catalogue.CATALOGUE[name]
        assert doc.kind == kind, name
        if labels is not None:
            assert set(labels) == set(doc.labels), name
    unregistered = sorted(set(catalogue.CATALOGUE) - set(metrics))
    assert not unregistered, f"catalogued but never defined: {unregistered}"


def test_metrics_are_defined_only_through_the_catalogue() -> None:
    offenders = []
    for path in (ROOT / "src" / "tmc").rglob("*.py"):
        if path.name == "catalogue.py" and path.parent.name == "observability":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client":
                defined = {a.name for a in node.names} & {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
                if defined:
                    offenders.append(f"{path.relative_to(ROOT)} imports {sorted(defined)}")
    assert not offenders, offenders


def test_each_entry_is_complete_and_its_labels_bounded() -> None:
    catalogue_markdown()
    for name, doc in catalogue.CATALOGUE.items():
        assert doc.meaning and doc.promql and doc.owners, name
        assert set(doc.labels) <= set(catalogue.LABELS), name
        assert not {"uid", "pod", "object", "key"} & set(doc.labels), f"{name}: an unbounded label"


def test_a_label_outside_the_list_is_refused() -> None:
    with pytest.raises(catalogue.CatalogueError, match="not in the catalogue's LABELS"):
        catalogue.gauge("tmc_test_unlisted", "x", ("uid",), owners=(catalogue.HUB,), promql="x", registry=None)
    with pytest.raises(catalogue.CatalogueError, match="_total"):
        catalogue.counter("tmc_test_count", "x", owners=(catalogue.HUB,), promql="x", registry=None)
    assert "tmc_test_unlisted" not in catalogue.CATALOGUE


def test_every_metric_is_exercised_by_some_test() -> None:
    """Each catalogued metric is read by at least one test (which makes it change), besides this file."""
    catalogue_markdown()
    here = Path(__file__).resolve()
    text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.resolve() != here)
    unexercised = sorted(name for name in catalogue.CATALOGUE if name not in text)
    assert not unexercised, f"no test reads {unexercised}"
