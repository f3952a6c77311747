"""Prometheus metrics of the API server, named and labelled like kube-apiserver's so existing dashboards work.

Labels are bounded on purpose: resource types, verbs and codes only, never object names or namespaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from tmc.observability import catalogue, exposition
from tmc.observability.catalogue import HUB, SIM

REQUEST_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")
# kube-apiserver's buckets for apiserver_request_duration_seconds.
DURATION_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)
READ_ONLY = "readOnly"
MUTATING = "mutating"

SERVERS = (HUB, SIM)  # the processes that run an API server

REQUEST_TOTAL = catalogue.counter(
    "apiserver_request_total",
    "Counter of apiserver requests broken out for each verb, API resource, scope, component and HTTP response code.",
    (*REQUEST_LABELS, "code"),
    owners=SERVERS,
    promql="sum by (code) (rate(apiserver_request_total[5m]))",
)
REQUEST_DURATION = catalogue.histogram(
    "apiserver_request_duration_seconds",
    "Response latency distribution in seconds for each verb, API resource, subresource, scope and component "
    "(watches excluded).",
    REQUEST_LABELS,
    owners=SERVERS,
    promql="histogram_quantile(0.99, sum by (le, verb) (rate(apiserver_request_duration_seconds_bucket[5m])))",
    buckets=DURATION_BUCKETS,
)
CURRENT_INFLIGHT = catalogue.gauge(
    "apiserver_current_inflight_requests",
    "Number of requests currently being served, by kind (readOnly or mutating).",
    ("request_kind",),
    owners=SERVERS,
    promql="max_over_time(apiserver_current_inflight_requests[5m])",
)
REGISTERED_WATCHERS = catalogue.gauge(
    "apiserver_registered_watchers",
    "Number of currently registered watchers for a given resource.",
    ("group", "version", "kind"),
    owners=SERVERS,
    promql="sum by (kind) (apiserver_registered_watchers)",
)
WATCHERS = REGISTERED_WATCHERS  # short name used by the watch handler
LONGRUNNING_REQUESTS = catalogue.gauge(
    "apiserver_longrunning_requests",
    "Number of active long-running requests (watches, logs, exec).",
    owners=SERVERS,
    promql="apiserver_longrunning_requests",
)

# Export both inflight series at zero from the start so rate/alert queries never see a missing series.
for _kind in (READ_ONLY, MUTATING):
    CURRENT_INFLIGHT.labels(request_kind=_kind)


# (verb, group, version, resource, subresource, scope) as the HTTP layer knows them; subresource may be None.
RequestLabels = tuple[str, str, str, str, str | None, str]


def observe_request(
    labels: RequestLabels, code: int, seconds: float, *, long_running: bool = False, component: str = "apiserver"
) -> None:
    """Record one finished request.

    Verbs are upper-cased (GET, LIST, WATCH, POST, ...) as kube-apiserver reports them. Long-running requests
    (watches) are counted but kept out of the latency histogram: their duration is the client's choice and would
    drown the signal, which is what kube-apiserver's SLO histogram does as well.
    """
    key = (labels, component)
    children = _children.get(key)
    if children is None:
        verb, group, version, resource, subresource, scope = labels
        values: tuple[str, ...] = (verb.upper(), group, version, resource, subresource or "", scope, component)
        # Watches never get a latency series, as before: only the labels of short requests create one.
        duration = None if long_running else REQUEST_DURATION.labels(*values)
        children = _children[key] = (values, duration, {})
    values, duration, totals = children
    total = totals.get(code)
    if total is None:
        total = totals[code] = REQUEST_TOTAL.labels(*values, str(code))
    total.inc()
    if duration is not None and not long_running:
        duration.observe(seconds)


# prometheus_client's .labels() stringifies values and takes a lock on every call; resolving each label set once
# takes that off the request path (it was about a tenth of a GET's CPU).
_children: dict[tuple[RequestLabels, str], tuple[tuple[str, ...], Any, dict[int, Any]]] = {}


_INFLIGHT_READ_ONLY = CURRENT_INFLIGHT.labels(request_kind=READ_ONLY)
_INFLIGHT_MUTATING = CURRENT_INFLIGHT.labels(request_kind=MUTATING)


def inflight_gauge(mutating: bool) -> Any:
    """The in-flight gauge (readOnly or mutating) a request should inc() and dec() around its handling."""
    return _INFLIGHT_MUTATING if mutating else _INFLIGHT_READ_ONLY


@contextmanager
def longrunning() -> Iterator[None]:
    """Count a watch or other streaming request for the duration of the block."""
    LONGRUNNING_REQUESTS.inc()
    try:
        yield
    finally:
        LONGRUNNING_REQUESTS.dec()


def render_metrics(registry: CollectorRegistry = REGISTRY, names: Iterable[str] = ()) -> tuple[bytes, str]:
    """Exposition bytes and the content type to serve them with on /metrics (`names`: only those series)."""
    return exposition.render(registry, names)
