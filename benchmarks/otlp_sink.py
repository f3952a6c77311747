"""An OTLP/HTTP sink for the tracing benchmark, in a process of its own so that receiving every process's spans takes
no CPU or GIL from the benchmark process that measures latency: it accepts exports, counts them and their bytes, and
answers GET /stats with the counts as JSON.

Run: python -m benchmarks.otlp_sink --port PORT
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from benchmarks.servers import REPO, free_port


def serve(port: int) -> None:
    counts = {"requests": 0, "bytes": 0}
    spans: Counter[str] = Counter()  # by "service: span name", to tell which process's spans cost what
    # Bodies are decoded when the counts are asked for, after the measurement: decoding as they arrive took CPU
    # from the measured processes in bursts (every process exports at the same 5 s tick).
    bodies: list[bytes] = []
    decoding = threading.Lock()

    def decode() -> None:
        with decoding:
            taken = bodies[:]
            del bodies[: len(taken)]
            for body in taken:
                for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
                    attributes = resource_spans.resource.attributes
                    service = next((a.value.string_value for a in attributes if a.key == "service.name"), "?")
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans[f"{service.split('/')[0]}: {span.name}"] += 1

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/v1/traces"):  # the syncers' metrics also arrive here (at their exit)
                counts["requests"] += 1
                counts["bytes"] += len(body)
                bodies.append(body)
            self._answer(b"", "application/x-protobuf")

        def do_GET(self) -> None:
            decode()
            self._answer(json.dumps({**counts, "spans": dict(spans)}).encode(), "application/json")

        def _answer(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


class SinkProcess:
    """The sink as a child process of the benchmark."""

    def __init__(self) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, "-m", "benchmarks.otlp_sink", "--port", str(port)]
        self.process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RuntimeError("the OTLP sink did not start") from None
                time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/stats", timeout=5) as r:
            counts: dict[str, Any] = json.loads(r.read())
        return counts

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
