"""The light tracer's batch exporter: ended spans go to a bounded queue; a background thread encodes them in
batches to OTLP protobuf and hands the bytes to a sender (the OTLP/HTTP exporter's transport).

`on_end` runs on the thread that ends a span (an event loop): a length check and a deque append, and an event set
once per full batch. Everything else (encoding, HTTP, retries) happens on the export thread. The schedule follows
the standard `OTEL_BSP_*` variables, with the SDK's BatchSpanProcessor defaults.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tmc.observability.spans import LeafSpan, LightSpan

log = logging.getLogger("tmc.tracing")
# Spans encoded between two offers of the GIL to other threads (about 0.4 ms of encoding).
CHUNK = 64


@dataclass(frozen=True)
class BatchSettings:
    max_queue: int = 2048
    max_batch: int = 512
    delay: float = 5.0  # seconds between exports when batches do not fill up
    timeout: float = 30.0  # seconds a flush at shutdown may take

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchSettings:
        """OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY and
        OTEL_BSP_EXPORT_TIMEOUT (milliseconds); a malformed or non-positive value keeps the default, as in the SDK."""
        default = cls()

        def number(name: str, fallback: float, scale: float = 1.0) -> float:
            try:
                value = float(env.get(name, "")) / scale
            except ValueError:
                return fallback
            return value if value > 0 else fallback

        queue = int(number("OTEL_BSP_MAX_QUEUE_SIZE", default.max_queue))
        batch = min(int(number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default.max_batch)), queue)
        delay = number("OTEL_BSP_SCHEDULE_DELAY", default.delay, 1000)
        return cls(queue, batch, delay, number("OTEL_BSP_EXPORT_TIMEOUT", default.timeout, 1000))


class BatchExporter:
    """The sink of a LightTracerProvider. `encode` turns a batch into request bytes; `send` posts them and raises
    when the collector did not take them (one warning per outage is logged, and a line when it answers again)."""

    def __init__(
        self,
        encode: Callable[[Sequence[LightSpan | LeafSpan]], bytes],
        send: Callable[[bytes], None],
        url: str,
        settings: BatchSettings = BatchSettings(),
        close: Callable[[], None] | None = None,
    ) -> None:
        self._encode = encode
        self._send = send
        self._close = close
        self._url = url
        self._settings = settings
        self._max_queue = settings.max_queue
        self._max_batch = settings.max_batch
        self._queue: collections.deque[LightSpan | LeafSpan] = collections.deque()
        self._wake = threading.Event()
        self._flushes: list[threading.Event] = []
        self._lock = threading.Lock()
        self._stopping = False
        self.dropped = 0  # spans dropped because the queue was full
        self._reported_dropped = 0
        self.exported = 0
        self.failing = False
        self._thread = threading.Thread(target=self._run, name="tracing-export", daemon=True)
        self._thread.start()

    def on_end(self, span: LightSpan | LeafSpan) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue:
            self.dropped += 1
            return
        queue.append(span)
        if len(queue) >= self._max_batch and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export everything ended before this call; False when that took longer than `timeout` seconds."""
        if self._stopping:
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flushes.append(done)
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self) -> None:
        """Export what is queued (within the flush timeout) and stop the thread."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(self._settings.timeout)
        if self._close is not None:
            self._close()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._settings.delay)
            self._wake.clear()
            with self._lock:
                flushes, self._flushes = self._flushes, []
            stopping = self._stopping
            deadline = time.monotonic() + self._settings.timeout if stopping else None
            self._drain(deadline)
            for done in flushes:
                done.set()
            self._report_drops()
            if stopping:
                return

    def _drain(self, deadline: float | None) -> None:
        queue = self._queue
        while queue:
            # At shutdown, a collector that just failed (each attempt waits out its timeout) or a passed deadline
            # ends the drain: exiting must not wait for an unreachable collector batch after batch.
            if deadline is not None and (self.failing or time.monotonic() > deadline):
                self.dropped += len(queue)
                queue.clear()
                return
            batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
            self._export(batch)

    def _export(self, batch: list[LightSpan | LeafSpan]) -> None:
        try:
            self._send(self._encoded(batch))
        except Exception as e:
            if not self.failing:
                log.warning("could not export spans", extra={"endpoint": self._url, "error": str(e)})
            self.failing = True
            return
        if self.failing:
            log.info("exporting spans again", extra={"endpoint": self._url})
        self.failing = False
        self.exported += len(batch)

    def _encoded(self, batch: list[LightSpan | LeafSpan]) -> bytes:
        """The request for `batch`, encoded a chunk at a time with the GIL offered to the event loop in between:
        a batch in one go would keep the loop waiting for a whole switch interval (5 ms) at a time. Serialized
        requests concatenate into one whose resource_spans are the chunks'."""
        parts = []
        for start in range(0, len(batch), CHUNK):
            if start:
                time.sleep(0)  # releases the GIL; a waiting event loop thread takes it first
            parts.append(self._encode(batch[start : start + CHUNK]))
        return b"".join(parts)

    def _report_drops(self) -> None:
        if self.dropped > self._reported_dropped:
            log.warning(
                "tracing export queue full; spans dropped",
                extra={"dropped": self.dropped - self._reported_dropped, "queue_size": self._max_queue},
            )
            self._reported_dropped = self.dropped
