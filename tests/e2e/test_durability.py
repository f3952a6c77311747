"""Crash safety: SIGKILL during a stream of creates loses nothing that was acknowledged."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import orjson

from tests.e2e.harness import Hub, free_port, wait_until


def test_kill_9_during_creates_keeps_every_acknowledged_create(tmp_path: Path) -> None:
    hub = Hub(data_dir=str(tmp_path / "crash"), port=free_port())
    hub.start()
    token = hub.token
    acknowledged: dict[int, list[tuple[str, int]]] = {w: [] for w in range(3)}
    unexpected: list[tuple[int, bytes]] = []
    stop = threading.Event()

    def create_forever(worker: int) -> None:
        conn = hub.connection(timeout=10)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        i = 0
        while not stop.is_set():
            name = f"crash-{worker}-{i:05d}"
            body = orjson.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": str(i)}}
            )
            try:
                conn.request("POST", "/clusters/root/api/v1/namespaces/default/configmaps", body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except Exception:  # the server died under us
                return
            if response.status == 201:
                acknowledged[worker].append((name, int(orjson.loads(raw)["metadata"]["resourceVersion"])))
            else:
                unexpected.append((response.status, raw))
            i += 1

    writers = [threading.Thread(target=create_forever, args=(w,), daemon=True) for w in acknowledged]
    for writer in writers:
        writer.start()
    try:
        # Three concurrent writers, so the kill lands while commits are being batched.
        wait_until(lambda: sum(map(len, acknowledged.values())) >= 150, timeout=30, what="150 acknowledged creates")
        assert hub.process is not None
        hub.process.send_signal(signal.SIGKILL)
        assert hub.process.wait(timeout=10) == -signal.SIGKILL
        hub.process = None
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=15)
    assert not unexpected, unexpected[:3]
    for per_worker in acknowledged.values():
        worker_rvs = [rv for _, rv in per_worker]
        assert worker_rvs == sorted(worker_rvs), "resourceVersions of sequential creates must increase"
    all_acknowledged = [entry for per_worker in acknowledged.values() for entry in per_worker]
    rvs = sorted(rv for _, rv in all_acknowledged)
    assert len(set(rvs)) == len(rvs), "two creates were given the same resourceVersion"

    restarted = Hub(data_dir=hub.data_dir, port=hub.port)
    restarted.start()
    try:
        status, body = restarted.request("GET", "/clusters/root/api/v1/namespaces/default/configmaps")
        assert status == 200, body
        stored = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in body["items"]}
        lost = [name for name, _ in all_acknowledged if name not in stored]
        assert not lost, f"{len(lost)} of {len(all_acknowledged)} acknowledged creates lost after kill -9: {lost[:10]}"
        assert all(stored[name] == rv for name, rv in all_acknowledged)
        assert int(body["metadata"]["resourceVersion"]) >= rvs[-1]

        status, created = restarted.request(
            "POST",
            "/clusters/root/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after-restart"}},
        )
        assert status == 201, created
        assert int(created["metadata"]["resourceVersion"]) > max(stored.values())
        # Updates after the restart keep counting up too.
        status, updated = restarted.request(
            "PATCH",
            "/clusters/root/api/v1/namespaces/default/configmaps/crash-0-00000",
            {"data": {"i": "updated"}},
            content_type="application/merge-patch+json",
        )
        assert status == 200, updated
        assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    finally:
        restarted.stop()
