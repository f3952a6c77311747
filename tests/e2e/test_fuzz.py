"""Fuzzing the hub from its own OpenAPI v3 documents: no request gets a 5xx, a dropped connection or a hang.

One hub serves the whole module. The fuzzer (tests/e2e/fuzzing.py) sends creates, updates, the three patch types,
status and scale subresources, deletes, lists and watches, most of them broken in one place, in JSON and YAML, some
compressed, some under content types the endpoint does not take. Every answer must arrive, must not be a 5xx, and a
4xx must be a JSON `Status`; afterwards the hub must still be ready and serve a plain GET.

Budget: `TMC_FUZZ_SECONDS` (default 50) of rounds of `TMC_FUZZ_EXAMPLES` examples each (default 100). Rounds use the
fixed seeds 0, 1, 2, ... so `make test` sends the same requests every time; `TMC_FUZZ_RANDOM=1` (`make fuzz`) draws
random seeds and prints them. `TMC_FUZZ_KEEP_GOING=1` records every distinct failure instead of stopping (and
shrinking) at the first one, and reports them all at the end.
"""

from __future__ import annotations

import http.server
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.e2e.fuzzing import (
    CATEGORIES,
    SEED,
    Api,
    Generator,
    Outcome,
    Request,
    Target,
    fetch_api,
    problem,
    send,
    signature,
)
from tests.e2e.harness import Hub, free_port, readyz, wait_until

NAMESPACE = "fuzz"
GROUP = "fuzz.example.com"
GROUP_VERSIONS = ["api/v1", "apis/apps/v1", f"apis/{GROUP}/v1"]

SECONDS = float(os.environ.get("TMC_FUZZ_SECONDS", "50"))
EXAMPLES = int(os.environ.get("TMC_FUZZ_EXAMPLES", "100"))
RANDOM_SEEDS = os.environ.get("TMC_FUZZ_RANDOM", "") not in ("", "0")
KEEP_GOING = os.environ.get("TMC_FUZZ_KEEP_GOING", "") not in ("", "0")

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "size": {"type": "string", "enum": ["S", "M", "L"]},
                                    "ratio": {"type": "number", "maximum": 1},
                                    "enabled": {"type": "boolean", "default": True},
                                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
                                    "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "nested": {
                                        "type": "object",
                                        "properties": {
                                            "level": {
                                                "type": "object",
                                                "properties": {"value": {"type": "integer", "format": "int32"}},
                                            }
                                        },
                                    },
                                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                    "phase": {"type": "string"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}

POD_SPEC: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
TEMPLATE: dict[str, Any] = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
SELECTOR: dict[str, Any] = {"matchLabels": {"app": "web"}}
WORKLOAD: dict[str, Any] = {"selector": SELECTOR, "template": TEMPLATE}
SEEDS: list[tuple[str, dict[str, Any]]] = [
    ("api/v1/namespaces/{ns}/configmaps", {"kind": "ConfigMap", "data": {"a": "1"}}),
    ("api/v1/namespaces/{ns}/secrets", {"kind": "Secret", "stringData": {"a": "1"}}),
    ("api/v1/namespaces/{ns}/serviceaccounts", {"kind": "ServiceAccount"}),
    ("api/v1/namespaces/{ns}/pods", {"kind": "Pod", "spec": POD_SPEC}),
    ("api/v1/namespaces/{ns}/services", {"kind": "Service", "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}),
    ("apis/apps/v1/namespaces/{ns}/deployments", {"kind": "Deployment", "spec": WORKLOAD}),
    ("apis/apps/v1/namespaces/{ns}/replicasets", {"kind": "ReplicaSet", "spec": WORKLOAD}),
    ("apis/apps/v1/namespaces/{ns}/daemonsets", {"kind": "DaemonSet", "spec": WORKLOAD}),
    (
        "apis/apps/v1/namespaces/{ns}/statefulsets",
        {"kind": "StatefulSet", "spec": {**WORKLOAD, "serviceName": "web"}},
    ),
    (f"apis/{GROUP}/v1/namespaces/{{ns}}/widgets", {"kind": "Widget", "spec": {"size": "S", "replicas": 1}}),
]  # fmt: skip


def seed_objects(hub: Hub) -> None:
    for collection, body in SEEDS:
        version = collection.split("/namespaces/")[0].removeprefix("api/").removeprefix("apis/")
        manifest = {"apiVersion": version, "metadata": {"name": SEED}, **body}
        status, answer = hub.request("POST", "/" + collection.format(ns=NAMESPACE), manifest)
        assert status == 201, (collection, answer)


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub of its own: whatever the fuzzer leaves behind stays out of the other tests' hub."""
    server = Hub(data_dir=str(tmp_path_factory.mktemp("fuzz-hub")), port=free_port())
    server.start()
    status, body = server.request(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    assert status == 201, body
    status, body = server.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert status == 201, body
    wait_until(lambda: f"apis/{GROUP}/v1" in server.request("GET", "/openapi/v3")[1]["paths"], what="the CRD's OpenAPI")
    seed_objects(server)
    yield server
    if server.process is not None:
        server.stop()


@pytest.fixture(scope="module")
def api(fuzz_hub: Hub) -> Api:
    def get(path: str) -> Any:
        status, body = fuzz_hub.request("GET", path)
        assert status == 200, (path, body)
        return body

    return fetch_api(get, GROUP_VERSIONS)


class Run:
    """Sends requests and checks each answer; counts what was sent, by category."""

    def __init__(
        self, host: str, port: int, token: str, context: Any, hub: Hub | None = None, keep_going: bool = KEEP_GOING
    ) -> None:
        self.host, self.port, self.token, self.context, self.hub = host, port, token, context, hub
        self.keep_going = keep_going
        self.counts: Counter[str] = Counter()
        self.sent = 0
        self.failures: dict[str, tuple[Request, str]] = {}

    def check(self, req: Request, timeout: float = 20.0) -> None:
        outcome = send(req, self.host, self.port, self.token, self.context, timeout)
        self.sent += 1
        self.counts.update(req.categories)
        found = problem(outcome)
        if found is None:
            return
        if self.hub is not None and self.hub.process is not None and self.hub.process.poll() is not None:
            raise AssertionError(f"the hub exited ({self.hub.process.returncode}) after:{req!r}\n{self.hub.log_text()}")
        if not self.keep_going:
            raise AssertionError(f"{found}\nrequest:{req!r}")
        key = signature(req, outcome, found)
        known = self.failures.get(key)
        if known is None or len(req.body or b"") < len(known[0].body or b""):
            self.failures[key] = (req, found)

    def round(self, requests: st.SearchStrategy[Request], seed_value: int, examples: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @seed(seed_value)
        @given(requests)
        def one_round(req: Request) -> None:
            self.check(req)

        one_round()

    def report(self) -> str:
        lines = [f"{len(self.failures)} distinct failures in {self.sent} requests:"]
        for key, (req, found) in sorted(self.failures.items()):
            lines.append(f"- {key}\n  {found[:300]}{req!r}")
        return "\n".join(lines)


def fuzz(run: Run, requests: st.SearchStrategy[Request], seconds: float, examples: int) -> list[int]:
    """Rounds of `examples` requests until `seconds` are used up; returns the seeds used."""
    deadline = time.monotonic() + seconds
    seeds: list[int] = []
    while time.monotonic() < deadline:
        seed_value = random.getrandbits(32) if RANDOM_SEEDS else len(seeds)
        seeds.append(seed_value)
        print(f"fuzz round with seed {seed_value}")
        run.round(requests, seed_value, examples)
    return seeds


@pytest.mark.timeout(0)
def test_fuzz_hub(fuzz_hub: Hub, api: Api) -> None:
    generator = Generator(api, Target(prefix="", namespace=NAMESPACE))
    run = Run("127.0.0.1", fuzz_hub.port, fuzz_hub.token, fuzz_hub.ssl_context(), fuzz_hub)
    started = time.monotonic()
    seeds = fuzz(run, generator.requests(), SECONDS, EXAMPLES)
    print(
        f"{run.sent} requests in {time.monotonic() - started:.0f}s, seeds {seeds}: {dict(sorted(run.counts.items()))}"
    )
    assert not run.failures, run.report()
    assert readyz(fuzz_hub.base_url), "the hub is not ready after fuzzing"
    status, body = fuzz_hub.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{SEED}")
    assert status == 200 and body["metadata"]["name"] == SEED, body
    missing = [c for c in CATEGORIES if run.counts[c] == 0]
    assert not missing, f"categories never sent: {missing}; counts {run.counts}"


def test_generator_covers_every_category(api: Api) -> None:
    """The fuzzer cannot pass by sending nothing of a kind: 300 drawn requests hold every category."""
    counts: Counter[str] = Counter()
    operations: set[tuple[str, str]] = set()

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(0)
    @given(Generator(api, Target(prefix="", namespace=NAMESPACE)).requests())
    def draw(req: Request) -> None:
        counts.update(req.categories)
        operations.add((req.method, req.path.split("?")[0]))

    draw()
    assert not [c for c in CATEGORIES if counts[c] == 0], counts
    groups = {path.split("/namespaces/")[0] for _, path in operations}
    assert groups == {"/api/v1", "/apis/apps/v1", f"/apis/{GROUP}/v1"}, groups
    assert len(operations) > 30, operations


class Broken(http.server.BaseHTTPRequestHandler):
    """A server with every defect the checker must catch, one per path."""

    def do_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        path = self.path.split("?")[0]
        if path.endswith("/drop"):
            self.close_connection = True
            self.connection.close()
            return
        if path.endswith("/hang"):
            time.sleep(2)
        code, body = {
            "/ok": (200, b"{}"),
            "/status-404": (404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}'),
            "/html-404": (404, b"<html>not found</html>"),
            "/wrong-code": (422, b'{"kind":"Status","code":500}'),
        }.get(path, (500, b'{"kind":"Status","code":500}'))
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # /hang: the client has given up already
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_any

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_checker_flags_broken_answers(broken_server: int, api: Api) -> None:
    """The checks catch a 5xx, a dropped connection, a hang and a 4xx that is not a Status, through the real sender."""

    def outcome(path: str) -> Outcome:
        return send(Request("GET", path, {}, None), "127.0.0.1", broken_server, "t", None, timeout=1)

    assert problem(outcome("/ok")) is None
    assert problem(outcome("/status-404")) is None
    assert "server error 500" in (problem(outcome("/500")) or "")
    assert "no response" in (problem(outcome("/drop")) or "")
    assert "no response" in (problem(outcome("/hang")) or "")
    assert "not JSON" in (problem(outcome("/html-404")) or "")
    assert "code is 500" in (problem(outcome("/wrong-code")) or "")

    # A fuzz round against a server that answers 500 to everything fails, with the request in the message.
    run = Run("127.0.0.1", broken_server, "t", None, keep_going=False)
    with pytest.raises(AssertionError, match=r"server error 500[\s\S]*request:"):
        run.round(Generator(api, Target(prefix="", namespace=NAMESPACE)).requests(), 0, 5)
