"""SqliteStore: CRUD and CAS, snapshots, watches, restart, compaction, commit failures and crash durability."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

import tmc
from tmc.storage import open_store
from tmc.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    Event,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    Watch,
)
from tmc.storage.sqlite import SqliteStore

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def obj(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


async def opened(path: Path, **kwargs: Any) -> SqliteStore:
    kwargs.setdefault("compact_interval", 0)
    store = SqliteStore(str(path / "tmc.db"), **kwargs)
    await store.start()
    return store


async def take(watch: Watch, n: int, timeout: float = 5.0) -> list[Event]:
    it = watch.__aiter__()
    out: list[Event] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        out.append(await asyncio.wait_for(it.__anext__(), max(0.0, deadline - time.monotonic())))
    return out


async def ended(watch: Watch, timeout: float = 5.0) -> list[Event]:
    """Drain a watch that is expected to end; returns what it still delivered."""
    it = watch.__aiter__()
    out: list[Event] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            out.append(await asyncio.wait_for(it.__anext__(), max(0.0, deadline - time.monotonic())))
        except StopAsyncIteration:
            return out


async def nothing_pending(watch: Watch) -> bool:
    """True when the watch has no event ready (checked after letting every ready callback run)."""
    it = watch.__aiter__()
    step = asyncio.ensure_future(it.__anext__())
    for _ in range(5):
        await asyncio.sleep(0)
    ready = step.done()
    step.cancel()
    return not ready


def test_create_get_update_delete(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        assert store.current_rev == 0 and store.compacted_rev == 0
        created = await store.create("/r/cm/a", obj("a", data={"k": "1"}))
        assert created.rev == 1 and created.obj["metadata"]["resourceVersion"] == "1"
        assert (
            created.raw
            == b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"1"},"data":{"k":"1"}}'
        )
        assert store.get("/r/cm/a") is created
        updated = await store.update("/r/cm/a", obj("a", data={"k": "2"}), expected_rev=1)
        assert updated.rev == 2 and store.get("/r/cm/a") == updated
        unconditional = await store.update("/r/cm/a", obj("a", data={"k": "3"}))
        assert unconditional.rev == 3
        gone = await store.delete("/r/cm/a", expected_rev=3)
        assert gone.rev == 4
        assert gone.obj["metadata"]["resourceVersion"] == "4" and gone.obj["data"] == {"k": "3"}
        assert unconditional.obj["metadata"]["resourceVersion"] == "3", "delete must not touch the shared object"
        assert store.get("/r/cm/a") is None and store.current_rev == 4 and store.count("/r/") == 0
        again = await store.create("/r/cm/a", obj("a"))
        assert again.rev == 5
        await store.close()
        await store.close()  # idempotent

    run(main())


def test_write_errors(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        await store.create("/r/a", obj("a"))
        with pytest.raises(KeyExistsError):
            await store.create("/r/a", obj("a"))
        with pytest.raises(KeyNotFoundError):
            await store.update("/r/missing", obj("missing"))
        with pytest.raises(KeyNotFoundError):
            await store.delete("/r/missing")
        with pytest.raises(ConflictError):
            await store.update("/r/a", obj("a"), expected_rev=7)
        with pytest.raises(ConflictError):
            await store.delete("/r/a", expected_rev=7)
        assert store.current_rev == 1, "failed checks must not consume revisions"
        await store.close()
        with pytest.raises(StorageError):
            await store.create("/r/b", obj("b"))

    run(main())


def test_racing_writes_against_pending_state(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        base = await store.create("/r/a", obj("a"))
        results = await asyncio.gather(
            store.update("/r/a", obj("a", n=1), expected_rev=base.rev),
            store.update("/r/a", obj("a", n=2), expected_rev=base.rev),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, Entry)]
        assert len(wins) == 1 and sum(isinstance(r, ConflictError) for r in results) == 1
        assert store.get("/r/a") == wins[0]

        creates = await asyncio.gather(
            store.create("/r/b", obj("b")), store.create("/r/b", obj("b")), return_exceptions=True
        )
        assert (
            sum(isinstance(r, Entry) for r in creates) == 1 and sum(isinstance(r, KeyExistsError) for r in creates) == 1
        )

        # Writes that depend on pending ones: update of a pending create, re-create of a pending delete.
        chain = await asyncio.gather(
            store.create("/r/c", obj("c")),
            store.update("/r/c", obj("c", n=1), expected_rev=store.current_rev + 1),
            store.delete("/r/c"),
            store.create("/r/c", obj("c", n=2)),
        )
        assert [e.rev for e in chain] == list(range(chain[0].rev, chain[0].rev + 4))
        assert store.get("/r/c") == chain[3] and chain[3].obj["n"] == 2
        await store.close()

    run(main())


def test_list_order_prefix_and_start_after(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        keys = ["/r/a/2", "/r/a/10", "/r/a/1", "/r/ab/1", "/r/a", "/r/b/1"]
        for key in keys:
            await store.create(key, obj(key))
        assert [e.key for e in store.list("/r/a/")] == ["/r/a/1", "/r/a/10", "/r/a/2"]
        assert [e.key for e in store.list("/r/a/", start_after="/r/a/10")] == ["/r/a/2"]
        assert [e.key for e in store.list("/r/a/", start_after="/r/a/2")] == []
        assert [e.key for e in store.list("/r/")] == sorted(keys)
        assert [e.key for e in store.list("/r/a")] == ["/r/a", "/r/a/1", "/r/a/10", "/r/a/2", "/r/ab/1"]
        assert [e.key for e in store.list("")] == sorted(keys)
        assert (
            store.count("/r/a/") == 3 and store.count("/r/") == 6 and store.count("/x/") == 0 and store.count("") == 6
        )
        await store.close()

    run(main())


def test_snapshot_at_older_revision(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path, history_window=50)
        for name in "abc":
            await store.create(f"/r/{name}", obj(name, v=0))
        snap = store.current_rev
        before = {e.key: e for e in store.list("/r/")}
        await store.update("/r/a", obj("a", v=1))
        await store.delete("/r/b")
        await store.create("/r/bb", obj("bb"))
        await store.create("/s/x", obj("x"))
        assert list(store.list("/r/", at_rev=snap)) == list(before.values())
        assert [e.key for e in store.list("/r/", start_after="/r/a", at_rev=snap)] == ["/r/b", "/r/c"]
        assert [e.key for e in store.list("/r/")] == ["/r/a", "/r/bb", "/r/c"]
        assert [e.key for e in store.list("/r/", at_rev=1)] == ["/r/a"]
        # Many writes push the snapshot revision out of the window.
        for i in range(60):
            await store.update("/r/c", obj("c", v=i))
        assert store.compacted_rev > snap
        with pytest.raises(CompactedError) as info:
            store.list("/r/", at_rev=snap)
        assert info.value.requested == snap and info.value.compacted == store.compacted_rev
        assert len(list(store.list("/r/", at_rev=store.compacted_rev))) == 3
        await store.close()

    run(main())


def test_list_is_a_snapshot_across_awaits(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        await asyncio.gather(*(store.create(f"/r/{i:04d}", obj(str(i), v=0)) for i in range(1200)))
        rev = store.current_rev
        it = store.list("/r/")
        first = [next(it) for _ in range(600)]
        # Writes on both sides of the cursor while the iterator is suspended.
        await store.delete("/r/0100")
        await store.delete("/r/0900")
        await store.update("/r/1000", obj("1000", v=1))
        await store.create("/r/0950x", obj("new"))
        rest = list(it)
        entries = first + rest
        assert [e.key for e in entries] == [f"/r/{i:04d}" for i in range(1200)]
        assert all(e.rev <= rev for e in entries)
        await store.close()

    run(main())


def test_watch_replay_then_live_without_gaps(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        for i in range(10):
            await store.create(f"/r/{i}", obj(str(i)))
            await store.create(f"/other/{i}", obj(str(i)))
        start = 6
        watch = store.watch("/r/", start)

        async def writer() -> None:
            for i in range(10):
                await store.update(f"/r/{i}", obj(str(i), v=1))
            await store.delete("/r/0")

        task = asyncio.create_task(writer())
        events = await take(watch, 7 + 11)
        await task
        # Creates under /r/ took the odd revisions 1..19; the updates and the delete came after everything else.
        assert [e.rev for e in events] == [7, 9, 11, 13, 15, 17, 19, *range(21, 32)]
        assert [e.type for e in events] == ["ADDED"] * 7 + ["MODIFIED"] * 10 + ["DELETED"]
        modified = events[7]
        assert modified.prev is not None and modified.prev["metadata"]["resourceVersion"] != str(modified.rev)
        deleted = events[-1]
        assert deleted.obj["metadata"]["resourceVersion"] == str(deleted.rev) and deleted.prev is not None
        assert await nothing_pending(watch)
        watch.close()
        assert await ended(watch) == []
        await store.close()

    run(main())


def test_watch_prefix_matching(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        everything = store.watch("", 0)
        ns = store.watch("/r/ns1/", 0)
        exact = store.watch("/r/ns1/a", 0)
        partial = store.watch("/r/ns", 0)
        for key in ["/r/ns1/a", "/r/ns1/ab", "/r/ns2/a", "/q/x"]:
            await store.create(key, obj(key))
        assert [e.key for e in await take(everything, 4)] == ["/r/ns1/a", "/r/ns1/ab", "/r/ns2/a", "/q/x"]
        assert [e.key for e in await take(ns, 2)] == ["/r/ns1/a", "/r/ns1/ab"]
        assert [e.key for e in await take(exact, 2)] == ["/r/ns1/a", "/r/ns1/ab"]  # a prefix, not a name match
        assert [e.key for e in await take(partial, 3)] == ["/r/ns1/a", "/r/ns1/ab", "/r/ns2/a"]
        for w in (everything, ns, exact, partial):
            assert await nothing_pending(w)
        # A watch from a revision the store has not reached yet only gets what comes after it.
        future = store.watch("/r/", store.current_rev + 1)
        await store.create("/r/ns1/b", obj("b"))
        await store.create("/r/ns1/c", obj("c"))
        assert [e.key for e in await take(future, 1)] == ["/r/ns1/c"]
        await store.close()
        for w in (everything, ns, exact, partial, future):
            await ended(w)

    run(main())


def test_watch_from_compacted_revision_raises(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path, history_window=5)
        for i in range(10):
            await store.create(f"/r/{i}", obj(str(i)))
        assert store.compacted_rev == 5
        with pytest.raises(CompactedError):
            store.watch("/r/", 4)
        replay = await take(store.watch("/r/", 5), 5)
        assert [e.rev for e in replay] == [6, 7, 8, 9, 10]
        with pytest.raises(ValueError):
            store.watch("/r/", -1)
        await store.close()

    run(main())


def test_slow_watcher_is_closed_on_overflow(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path, watch_queue_size=10)
        slow = store.watch("/r/", 0)
        fast = store.watch("/r/", 0)
        received: list[Event] = []

        async def consume() -> None:
            async for event in fast:
                received.append(event)
                if len(received) == 30:
                    return

        consumer = asyncio.create_task(consume())
        for i in range(30):
            await store.create(f"/r/{i}", obj(str(i)))
        await asyncio.wait_for(consumer, 5)
        assert [e.rev for e in received] == list(range(1, 31))
        assert await ended(slow) == []
        assert slow.overflowed and not fast.overflowed
        await store.close()

    run(main())


def test_revisions_increase_across_restart(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        await store.create("/r/a", obj("a"))
        await store.create("/r/b", obj("b"))
        await store.delete("/r/a")
        await store.delete("/r/b")
        last = store.current_rev
        await store.close()

        store = await opened(tmp_path)
        assert store.current_rev == last and store.get("/r/a") is None and store.count("") == 0
        # Re-creating a deleted key must follow its tombstone (UNIQUE(name, prev_revision)).
        again = await store.create("/r/a", obj("a"))
        assert again.rev == last + 1
        await store.delete("/r/a")
        await store.compact(store.current_rev)  # removes every row: the newest revision now lives in meta only
        last = store.current_rev
        await store.close()

        store = await opened(tmp_path)
        assert store.current_rev == last and store.compacted_rev == last
        assert (await store.create("/r/a", obj("a"))).rev == last + 1
        await store.close()

    run(main())


def test_history_restored_after_restart(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        await store.create("/r/a", obj("a"))
        await store.create("/r/b", obj("b"))
        mark = store.current_rev
        await store.update("/r/a", obj("a", v=1))
        await store.delete("/r/b")
        await store.create("/r/b", obj("b", v=2))
        await store.create("/s/c", obj("c"))
        live = await take(store.watch("/r/", mark), 3)
        await store.close()

        store = await opened(tmp_path)
        assert store.compacted_rev == 0
        replay = await take(store.watch("/r/", mark), 3)
        assert replay == live
        assert [(e.type, e.key) for e in replay] == [("MODIFIED", "/r/a"), ("DELETED", "/r/b"), ("ADDED", "/r/b")]
        assert [e.key for e in store.list("", at_rev=mark)] == ["/r/a", "/r/b"]
        assert next(store.list("", at_rev=mark)).obj == {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "1"},
        }
        await store.close()

        # With a smaller window only the newest events come back, and compacted_rev says so.
        store = await opened(tmp_path, history_window=2)
        assert store.compacted_rev == store.current_rev - 2
        with pytest.raises(CompactedError):
            store.watch("/r/", mark)
        await store.close()

    run(main())


def test_compaction_keeps_current_objects(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        for name in "abcd":
            await store.create(f"/r/{name}", obj(name, v=0))
        for v in range(1, 20):
            await store.update("/r/a", obj("a", v=v))
        await store.delete("/r/b")
        target = store.current_rev
        await store.update("/r/c", obj("c", v=1))
        tail = store.current_rev
        current = {e.key: e for e in store.list("")}
        at_target = sorted(e.rev for e in store.list("", at_rev=target))
        assert await store.compact(target) == target
        assert store.compacted_rev == target
        assert {e.key: e for e in store.list("")} == current
        with pytest.raises(CompactedError):
            store.list("", at_rev=target - 1)
        with pytest.raises(CompactedError):
            store.watch("", target - 1)
        assert [e.rev for e in await take(store.watch("", target), 1)] == [tail]
        assert [e.key for e in store.list("", at_rev=target)] == ["/r/a", "/r/c", "/r/d"]
        assert await store.compact(target - 5) == target  # never goes backwards
        # The key whose tombstone was compacted away can be created again.
        await store.create("/r/b", obj("b", v=9))
        await store.close()

        # On disk, what is left at or below the target is exactly the state at the target.
        conn = sqlite3.connect(tmp_path / "tmc.db")
        ids = [r[0] for r in conn.execute("SELECT id FROM kv ORDER BY id")]
        conn.close()
        assert [i for i in ids if i <= target] == at_target

        store = await opened(tmp_path)
        assert store.compacted_rev == target
        assert {k: e.obj for k, e in current.items()} == {e.key: e.obj for e in store.list("") if e.key != "/r/b"}
        await store.close()

    run(main())


def test_failed_commit_fails_the_batch_and_what_depends_on_it(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        await store.create("/r/base", obj("base"))
        watch = store.watch("/r/", store.current_rev)
        writer = store._writer
        assert writer is not None
        real = writer._write_batch
        failures = [sqlite3.OperationalError("disk I/O error")]

        def flaky(rows: Any) -> None:
            if failures:
                raise failures.pop()
            real(rows)

        writer._write_batch = flaky  # type: ignore[method-assign]
        results = await asyncio.gather(
            store.create("/r/x", obj("x")),
            store.update("/r/x", obj("x", v=1)),  # only valid because of the pending create
            store.update("/r/base", obj("base", v=1)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StorageError) for r in results), results
        assert store.get("/r/x") is None and store.get("/r/base") is not None
        assert store.get("/r/base").obj.get("v") is None  # type: ignore[union-attr]
        assert store.current_rev == 1 and await nothing_pending(watch)
        # Nothing half-applied: the same writes succeed afterwards, with fresh revisions.
        created = await store.create("/r/x", obj("x"))
        assert created.rev > 1
        assert [e.rev for e in await take(watch, 1)] == [created.rev]
        await store.close()

        store = await opened(tmp_path)
        assert sorted(e.key for e in store.list("")) == ["/r/base", "/r/x"]
        assert store.current_rev == created.rev
        await store.close()

    run(main())


def test_wait_for_rev(tmp_path: Path) -> None:
    async def main() -> None:
        store = await opened(tmp_path)
        assert await store.wait_for_rev(0, 0.01)
        assert not await store.wait_for_rev(1, 0.01)
        waiting = asyncio.create_task(store.wait_for_rev(2, 5))
        await store.create("/r/a", obj("a"))
        assert not waiting.done()
        await store.create("/r/b", obj("b"))
        assert await waiting
        pending = asyncio.create_task(store.wait_for_rev(100, 5))
        await asyncio.sleep(0)
        await store.close()
        assert not await pending

    run(main())


def test_open_store_factory(tmp_path: Path) -> None:
    store = open_store("sqlite", str(tmp_path / "data"))
    assert isinstance(store, SqliteStore) and store.path == str(tmp_path / "data" / "tmc.db")
    assert (tmp_path / "data").is_dir()
    with pytest.raises(ValueError, match="supported: sqlite"):
        open_store("etcd3", str(tmp_path))


def test_periodic_compaction_target(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "tmc.db"), history_window=10, compact_keep_seconds=300)
    store._current_rev = 100
    assert store._compaction_target(1000.0) == 0  # nothing is old enough yet
    store._current_rev = 500
    assert store._compaction_target(1200.0) == 0
    store._current_rev = 900
    assert store._compaction_target(1305.0) == 100  # the revision seen 300 s ago
    store._current_rev = 905
    assert store._compaction_target(1500.0) == 500
    store = SqliteStore(str(tmp_path / "tmc.db"), history_window=1000, compact_keep_seconds=0)
    store._current_rev = 1500
    assert store._compaction_target(0.0) == 500  # the window is kept even when time allows more


CRASH_WRITER = """
import asyncio, sys
from tmc.storage.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1], compact_interval=0)
    await store.start()

    async def worker(w):
        i = 0
        while True:
            key = f"/crash/{w}/{i:06d}"
            await store.create(key, {"metadata": {"name": key}})
            sys.stdout.write(key + "\\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(worker(w) for w in range(8)))

asyncio.run(main())
"""


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    src = str(Path(tmc.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    db = str(tmp_path / "tmc.db")
    errors = tmp_path / "stderr.txt"
    out = b""
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASH_WRITER, db], stdout=subprocess.PIPE, stderr=stderr, env=env
        )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 20
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            # Kill it mid-stream, with writes in flight.
            while out.count(b"\n") < 400:
                assert time.monotonic() < deadline, "writer produced too little output"
                if sel.select(timeout=0.5):
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    assert chunk, f"writer exited early: {errors.read_text()}"
                    out += chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    out += proc.stdout.read()  # lines already in the pipe were acknowledged too
    proc.stdout.close()
    acknowledged = [line.decode() for line in out.split(b"\n")[:-1]]
    assert len(acknowledged) >= 400

    async def check() -> None:
        store = SqliteStore(db, compact_interval=0)
        await store.start()
        missing = [key for key in acknowledged if store.get(key) is None]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        revs = [e.rev for e in store.list("/crash/")]
        assert len(set(revs)) == len(revs)
        await store.close()

    run(check())


def test_unconditional_api_writes_wait_out_a_queued_write(tmp_path: Path) -> None:
    """A delete or merge patch racing a not-yet-committed write of the same object retries after it commits,
    instead of answering 409 (kube-apiserver's GuaranteedUpdate loop)."""
    from tmc.registry.resources import BUILTIN_RESOURCES, ResourceRegistry
    from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions

    configmaps = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps")

    async def main() -> None:
        store = await opened(tmp_path)
        service = ObjectService(store, ResourceRegistry(store))
        await service.ensure_namespace("root", "default")
        body = {"metadata": {"name": "c", "finalizers": ["example.com/keep"]}, "data": {"n": "0"}}
        await service.create(configmaps, "root", "default", body, WriteOptions())
        for n in range(1, 4):
            patch = orjson.dumps({"data": {"n": str(n)}})
            # The first patch is queued (not committed) when the second write reads the object.
            results = await asyncio.gather(
                service.patch(configmaps, "root", "default", "c", MERGE_PATCH, patch, WriteOptions()),
                service.patch(configmaps, "root", "default", "c", MERGE_PATCH, b'{"data":{"m":"x"}}', WriteOptions()),
                service.delete(configmaps, "root", "default", "c", {}),
            )
            assert results[2][0]["metadata"]["deletionTimestamp"]
        final = store.get("/registry/core/configmaps/root/default/c")
        assert final is not None and final.obj["data"] == {"n": "3", "m": "x"}
        await store.close()

    run(main())
