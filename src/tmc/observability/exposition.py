"""The /metrics body: prometheus_client's exposition of the registry, followed by the families that render their own
text. prometheus_client spends about 15 us per series (label escaping, sorting, float formatting through several
layers), which is fine for the hub's few hundred fixed series and too slow for per-SyncTarget families: a fleet of
1,000 clusters has tens of thousands of them and the scrape must stay within tens of milliseconds. Such a family
renders its lines itself (about 1 us each) and may cache them per SyncTarget revision."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tmc.observability.catalogue import CATALOGUE

# A family's samples: lines such as `name{a="x",b="y"} 1.0\\n`, label values escaped (see `label_value`). HELP and
# TYPE come from the catalogue.
Samples = Callable[[], Iterable[str]]

TEXT_FAMILIES: dict[str, Samples] = {}


def register(name: str, samples: Samples) -> None:
    """Expose the catalogued family `name` on this process's /metrics, its lines written by `samples`."""
    if name not in CATALOGUE:
        raise ValueError(f"{name} is not in the metric catalogue")
    TEXT_FAMILIES[name] = samples


def label_value(value: str) -> str:
    """A label value escaped as the text format wants (backslash, double quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def header(name: str) -> str:
    doc = CATALOGUE[name]
    meaning = doc.meaning.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {meaning}\n# TYPE {name} {doc.kind}\n"


def render(registry: CollectorRegistry = REGISTRY, names: Iterable[str] = ()) -> tuple[bytes, str]:
    """The exposition bytes and the content type to serve them with on /metrics. `names`: only these series (the
    `name[]` query parameters, as prometheus_client's own handler takes them), for a client that wants a few lines
    of a fleet's multi-megabyte body."""
    wanted = frozenset(names)
    parts = [generate_latest(registry.restricted_registry(wanted) if wanted else registry)]
    for name, samples in sorted(TEXT_FAMILIES.items()):
        if not wanted or name in wanted:
            parts.append((header(name) + "".join(samples())).encode())
    return b"".join(parts), CONTENT_TYPE_LATEST


def sample_value(name: str, labels: dict[str, str], registry: CollectorRegistry = REGISTRY) -> float | None:
    """One sample's value as /metrics shows it, from a text family or the registry (for tests and tools)."""
    samples = TEXT_FAMILIES.get(name)
    if samples is None:
        return registry.get_sample_value(name, labels)
    for parsed in text_string_to_metric_families(header(name) + "".join(samples())):
        for sample in parsed.samples:
            if sample.labels == labels:
                return float(sample.value)
    return None
