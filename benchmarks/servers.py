"""Start the servers under test as subprocesses: a TMC hub, and the hello-world baseline (benchmarks.hello_server).

Both listen on 127.0.0.1 with TLS from `tmc.apiserver.certs`, so the only difference a client sees is the work done
per request. `Server` knows the URL, the admin token and the CA, and makes the SSL contexts the load generators need
(they measure raw HTTP) and client-layer clients for everything else (readiness, /metrics).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tmc.client import ApiError, BlockingClient, Kubeconfig, Unreachable

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    data_dir: str
    token: str
    ca_path: str
    log_path: str

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the server against its CA (as kubectl does)."""
        return ssl.create_default_context(cafile=self.ca_path)

    def client(self, timeout: float = 10.0) -> BlockingClient:
        config = Kubeconfig(server=self.base_url, ca_pem=Path(self.ca_path).read_bytes(), token=self.token or None)
        return BlockingClient(config, timeout=timeout)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def _spawn(name: str, args: list[str], data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    os.makedirs(data_dir, exist_ok=True)
    log_path = os.path.join(data_dir, f"{name}.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return process, log_path


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        if os.path.exists(server.ca_path):
            try:
                with server.client(timeout=2) as client:
                    client.get(path)
                return
            except (ApiError, Unreachable, OSError, ssl.SSLError):
                pass  # not serving yet (or its CA is still being written)
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {READY_TIMEOUT:.0f}s:\n{server.log_tail()}")


def start_hub(data_dir: str, extra_args: tuple[str, ...] = ()) -> Server:
    """`python -m tmc server` on a free port; returns once /readyz answers 200."""
    port = free_port()
    args = ["-m", "tmc", "server", "--data-dir", data_dir, "--secure-port", str(port), "--log-level", "warning"]
    args += extra_args
    process, log_path = _spawn("hub", args, data_dir)
    pki = os.path.join(data_dir, "pki")
    server = Server("hub", process, port, data_dir, "", os.path.join(pki, "ca.crt"), log_path)
    _wait_ready(server, "/readyz")
    server.token = Path(pki, "admin.token").read_text().strip()
    return server


def start_hello(data_dir: str) -> Server:
    """The hello-world baseline (benchmarks.hello_server) on a free port, with its own PKI from tmc.apiserver.certs."""
    port = free_port()
    process, log_path = _spawn(
        "hello", ["-m", "benchmarks.hello_server", "--data-dir", data_dir, "--port", str(port)], data_dir
    )
    server = Server("hello", process, port, data_dir, "", os.path.join(data_dir, "pki", "ca.crt"), log_path)
    _wait_ready(server, "/readyz")
    return server


def metric(server: Server, name: str, contains: str = "") -> float:
    """Sum of the samples of a Prometheus metric on the server's /metrics (lines starting with `name`)."""
    with server.client() as client:
        text = str(client.get("/metrics"))
    total = 0.0
    for line in text.splitlines():
        if (line.startswith((name + " ", name + "{"))) and contains in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
