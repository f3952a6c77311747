"""Runs real `tmc` processes for end-to-end tests and drives them with kubectl and the Python client."""

from __future__ import annotations

import http.client
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from tests.tools import kubectl_path
from tmc.client import BlockingClient, Kubeconfig

KUBECTL = kubectl_path()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # the thing polled may not be up yet
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")


@dataclass
class Hub:
    data_dir: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    extra_args: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "admin.kubeconfig")

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        with open(os.path.join(self.data_dir, "pki", "admin.token")) as f:
            return f.read().strip()

    def start(self) -> None:
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.data_dir, "hub.log")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until it exits
        cmd = [sys.executable, "-m", "tmc", "server", "--data-dir", self.data_dir, "--secure-port", str(self.port)]
        self.process = subprocess.Popen([*cmd, *self.extra_args], stdout=log, stderr=log)
        wait_until(self.ready, timeout=30, what=f"hub on port {self.port} to be ready (log: {self.log_path})")

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"hub exited with {self.process.returncode}; log:\n{self.log_text()}")
        if not os.path.exists(self.kubeconfig):
            return False
        return readyz(self.base_url)

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=os.path.join(self.data_dir, "pki", "ca.crt"))

    def connection(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(), timeout=timeout)

    def watch(self, path: str, token: str | None = "admin") -> WatchStream:
        """Open a streaming GET (a watch); events are read in the background."""
        return WatchStream(self, path, token)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        token: str | None = "admin",
        accept: str = "application/json",
        timeout: float = 30,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A raw HTTPS request: returns (status, decoded JSON body or text)."""
        data = body if isinstance(body, bytes) else (orjson.dumps(body) if body is not None else None)
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=dict(headers or {}))
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if token is not None:
            req.add_header("Authorization", f"Bearer {self.token if token == 'admin' else token}")
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return status, raw.decode(errors="replace")


@dataclass
class Kubectl:
    kubeconfig: str
    cache_dir: str
    server: str | None = None

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL, "kubectl is not installed"
        cmd = [KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", self.cache_dir]
        if self.server:
            cmd += ["--server", self.server]
        full_env = dict(os.environ)
        full_env.pop("KUBECONFIG", None)
        if env:
            full_env.update(env)
        result = subprocess.run(
            [*cmd, *args], input=input, capture_output=True, text=True, env=full_env, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    def json(self, *args: str) -> Any:
        return orjson.loads(self.run(*args, "-o", "json").stdout)

    def apply(self, manifest: dict[str, Any] | str, *extra: str) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run("apply", "-f", "-", *extra, input=text)


class WatchStream:
    """A raw watch: `GET path` kept open, newline-delimited events decoded by a reader thread into a queue."""

    def __init__(self, hub: Hub, path: str, token: str | None = "admin") -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.conn = hub.connection(timeout=60)
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {hub.token if token == 'admin' else token}"
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.error_body: Any = None
        if self.status != 200:
            raw = self.response.read()
            try:
                self.error_body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.error_body = raw.decode(errors="replace")
            self.conn.close()
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                if line.strip():
                    self.events.put(orjson.loads(line))
        except Exception:  # closed under us
            pass
        finally:
            self.events.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The next event, or None when the stream ended; fails after `timeout` seconds."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s; seen so far: {self.seen}") from None
        if event is not None:
            self.seen.append(event)
        return event

    def drain(self) -> list[dict[str, Any]]:
        """Every event received so far and not yet read (also added to `seen`), without waiting."""
        out = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return out
            if event is None:
                self.events.put(None)  # keep the end-of-stream marker for later readers
                return out
            self.seen.append(event)
            out.append(event)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Read events until one matches; fail at the deadline or when the stream ends."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching watch event within {timeout}s; seen: {self.seen}")
            event = self.next(timeout=remaining)
            if event is None:
                raise AssertionError(f"watch ended before a matching event; seen: {self.seen}")
            if match(event):
                return event

    def close(self) -> None:
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR) if self.conn.sock else None
        except OSError:
            pass
        self.conn.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def readyz(base_url: str) -> bool:
    """Does the server's /readyz answer 200? Raises while it does not answer (for wait_until to retry)."""
    with BlockingClient(Kubeconfig(server=base_url, insecure=True), timeout=2) as client:
        client.get("/readyz")
    return True


def python_client(kubeconfig: str, server: str | None = None) -> Any:
    """An official-client ApiClient from a kubeconfig, optionally pointed at another server URL (a workspace)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    if server is not None:
        # The kubeconfig loader's refresh hook re-applies the kubeconfig (host included) before every request.
        configuration.refresh_api_key_hook = None
        configuration.host = server
    return client.ApiClient(configuration)


def status_of(body: Any) -> tuple[str, int, str]:
    """(kind, code, reason) of a Status body, tolerating non-JSON bodies."""
    if not isinstance(body, dict):
        return ("<not JSON>", 0, str(body)[:200])
    return (str(body.get("kind")), int(body.get("code") or 0), str(body.get("reason")))


# `tmc up` for tests: three clusters, heartbeats every second, a SyncTarget NotReady after 5 s of silence.
FAST_UP_ARGS = (
    "--clusters",
    "3",
    "--sync-target-heartbeat-threshold",
    "5s",
    "--heartbeat-period",
    "1s",
    "--ready-delay",
    "200ms",
)


class TmcUp:
    """`tmc up` as a child process (hub, simulated clusters and syncers, each with its pid file under `data_dir`)."""

    def __init__(self, data_dir: str, port: int, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.args = args
        self.env = env  # None: this process's environment
        self.log = os.path.join(data_dir, "up.out")
        os.makedirs(data_dir, exist_ok=True)
        self.start()

    def start(self) -> None:
        """Starts `tmc up` (again, after stop(): the same data dir and flags)."""
        # A restart appends to the log; output() is this run's part only.
        self.log_start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        cmd = [sys.executable, "-m", "tmc", "up", "--data-dir", self.data_dir, "--secure-port", str(self.port)]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([*cmd, *self.args], stdout=out, stderr=out, env=self.env)

    def wait_up(self, timeout: float = 60) -> None:
        wait_until(lambda: "TMC is up" in self.output() or self.process.poll() is not None, timeout, what="tmc up")
        assert self.process.poll() is None, self.output()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def output(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def pid(self, cluster: str) -> int:
        """The pid of a simulated cluster, from `<data-dir>/clusters/<name>.pid`."""
        return self.pid_of(os.path.join("clusters", f"{cluster}.pid"))

    def pid_of(self, pid_file: str) -> int:
        """The pid in a pid file under the data dir (`hub.pid`, `syncers/<name>.pid`, ...)."""
        with open(os.path.join(self.data_dir, pid_file)) as f:
            return int(f.read().strip())

    def syncer_metrics_url(self, cluster: str) -> str:
        """From `<data-dir>/up.json`, which `tmc up` writes once everything is started."""
        with open(os.path.join(self.data_dir, "up.json"), "rb") as f:
            described = orjson.loads(f.read())
        member = next(c for c in described["clusters"] if c["name"] == cluster)
        return str(member["syncer"]["metrics"])

    def prometheus_url(self) -> str | None:
        """The URL of the Prometheus `tmc up` runs, from `<data-dir>/up.json` (None when it runs none)."""
        with open(os.path.join(self.data_dir, "up.json"), "rb") as f:
            described = orjson.loads(f.read())
        prometheus = described.get("prometheus")
        return None if prometheus is None else str(prometheus["url"])

    def kubectl(self, cluster: str | None = None) -> Kubectl:
        """kubectl for the hub (root workspace), or for one simulated member cluster."""
        config = (
            os.path.join(self.data_dir, "admin.kubeconfig")
            if cluster is None
            else os.path.join(self.data_dir, "clusters", f"{cluster}.kubeconfig")
        )
        return Kubectl(config, os.path.join(self.data_dir, "kube-cache", cluster or "hub"))

    def hub(self) -> Hub:
        """The running hub, for raw requests and watches (started by `tmc up`, not by this object)."""
        return Hub(self.data_dir, self.port)
