"""`tmc_workload_sync_status`: per SyncTarget and resource, assigned objects by sync state, read the way a Prometheus
scrape of the hub reads it (the process-wide registry), over store contents written directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tmc.api.workload import (
    SYNC_TARGETS,
    deletion_annotation,
    state_label,
    status_diff_annotation,
    syncer_finalizer,
)
from tmc.apimachinery.resources import BUILTIN_RESOURCES
from tmc.client import KubeClient, load_kubeconfig
from tmc.controllers.status.metrics import COLLECTOR, WorkloadSyncStatusCollector
from tmc.observability.metrics import render_metrics
from tmc.protocol.keys import sync_target_key
from tmc.registry.resources import ResourceRegistry
from tmc.registry.service import NAMESPACES, WriteOptions
from tmc.server.hub import Hub, ServerConfig
from tmc.storage.sqlite import SqliteStore

T = TypeVar("T")
A = sync_target_key("root", "a")
B = sync_target_key("root", "b")
GONE = sync_target_key("root", "gone")  # labels of a SyncTarget that does not exist
CONFIGMAPS = next(r for r in BUILTIN_RESOURCES if r.plural == "configmaps")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def exposed() -> str:
    """What /metrics serves."""
    return render_metrics()[0].decode()


def sample(target: str, resource: str, state: str) -> float | None:
    return scrape().get((target, resource), {}).get(state)


def scrape(text: str | None = None) -> dict[tuple[str, str], dict[str, float]]:
    """(sync_target, resource) -> {state: value} for the root workspace, parsed from one exposition (by default a
    scrape of the process-wide registry, as /metrics serves it)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text if text is not None else exposed()):
        if family.name != "tmc_workload_sync_status":
            continue
        for s in family.samples:
            if s.labels["workspace"] == "root":
                out.setdefault((s.labels["sync_target"], s.labels["resource"]), {})[s.labels["state"]] = s.value
    return out


def by_state(target: str, resource: str) -> dict[str, float]:
    """The states that have a series, with their values."""
    return scrape().get((target, resource), {})


@asynccontextmanager
async def attached(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "tmc.db"), compact_interval=0)
    await store.start()
    COLLECTOR.attach(store, ResourceRegistry(store))
    try:
        yield store
    finally:
        COLLECTOR.detach(store)
        await store.close()


async def target(store: SqliteStore, name: str, ready: bool = True) -> None:
    body = {
        "apiVersion": "workload.kcp.io/v1alpha1",
        "kind": "SyncTarget",
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }
    await store.create(SYNC_TARGETS.key("root", None, name), body)


def assigned(
    kind: str,
    name: str,
    keys: dict[str, str],
    *,
    finalized: tuple[str, ...] = (),
    reports: dict[str, dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    """An object with state labels `keys` (key -> label value), the syncer finalizers of `finalized` and the status
    reports `reports`; Deployments ask for 2 replicas."""
    notes = {status_diff_annotation(k): orjson.dumps({"status": r}).decode() for k, r in (reports or {}).items()}
    obj: dict[str, Any] = {
        "apiVersion": {"Deployment": "apps/v1"}.get(kind, "v1"),
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "default",
            "generation": generation,
            "labels": {state_label(k): v for k, v in keys.items()},
            "finalizers": [syncer_finalizer(k) for k in finalized],
            "annotations": {**notes, **(annotations or {})},
        },
    }
    if kind == "Deployment":
        pod = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        obj["spec"] = {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod}
    return obj


_KEYS = {
    "Deployment": "/registry/apps/deployments",
    "ConfigMap": "/registry/core/configmaps",
    "Service": "/registry/core/services",
}


async def put(store: SqliteStore, obj: dict[str, Any]) -> None:
    """Create or replace the object at its storage key."""
    key = f"{_KEYS[obj['kind']]}/root/default/{obj['metadata']['name']}"
    if store.get(key) is None:
        await store.create(key, obj)
    else:
        await store.update(key, obj)


AVAILABLE = {"replicas": 2, "availableReplicas": 2, "observedGeneration": 1}
STARTING = {"replicas": 2, "availableReplicas": 0, "observedGeneration": 1}


def test_each_object_counts_once_per_target_in_its_state(tmp_path: Path) -> None:
    async def main() -> None:
        async with attached(tmp_path) as store:
            await target(store, "a")
            await target(store, "b", ready=False)
            sync = {A: "Sync"}
            for obj in (
                assigned("Deployment", "new", sync),  # no finalizer: pending
                assigned("Deployment", "taken", sync, finalized=(A,)),  # no status report yet: pending
                assigned("Deployment", "starting", sync, finalized=(A,), reports={A: STARTING}),  # synced
                # Reports for an older generation are not available yet.
                assigned("Deployment", "old", sync, finalized=(A,), reports={A: AVAILABLE}, generation=2),
                # Available on a; b is not Ready, so its report is stale and counts as synced.
                assigned(
                    "Deployment",
                    "up",
                    {A: "Sync", B: "Sync"},
                    finalized=(A, B),
                    reports={A: AVAILABLE, B: AVAILABLE},
                ),
                # Being unassigned from a: deleting, whatever else it says.
                assigned(
                    "Deployment",
                    "leaving",
                    sync,
                    finalized=(A,),
                    reports={A: AVAILABLE},
                    annotations={deletion_annotation(A): "2024-01-01T00:00:00Z"},
                ),
                assigned("ConfigMap", "plain", sync, finalized=(A,)),  # no status subresource: synced
                assigned("ConfigMap", "waiting", sync),  # pending
                # Not a workload: taken on is synced, with or without a status report.
                assigned("Service", "svc", sync, finalized=(A,)),
                assigned("Service", "lb", sync, finalized=(A,), reports={A: {"loadBalancer": {}}}),
                # Not counted: another state than Sync, or a key of no SyncTarget.
                assigned("ConfigMap", "upsync", {A: "Upsync", GONE: "Sync"}, finalized=(A, GONE)),
            ):
                await put(store, obj)
            # A namespace carries state labels too, but the syncer never holds a finalizer on it.
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": sync}}
            await store.create(NAMESPACES.key("root", None, "default"), namespace)

            assert by_state("a", "deployments") == {"pending": 2, "synced": 2, "available": 1, "deleting": 1}
            assert by_state("b", "deployments") == {"pending": 0, "synced": 1, "available": 0, "deleting": 0}
            # Not a workload resource: no `available` series.
            assert by_state("a", "configmaps") == {"pending": 1, "synced": 1, "deleting": 0}
            assert by_state("a", "services") == {"pending": 0, "synced": 2, "deleting": 0}
            assert by_state("b", "configmaps") == {}
            assert by_state("a", "namespaces") == {}
            assert by_state("gone", "configmaps") == {}

    run(main())


def test_states_follow_writes_and_removed_targets_lose_their_series(tmp_path: Path) -> None:
    async def main() -> None:
        async with attached(tmp_path) as store:
            await target(store, "a")
            await target(store, "b")
            both = {A: "Sync", B: "Sync"}
            await put(store, assigned("Deployment", "web", both))
            await put(store, assigned("ConfigMap", "conf", both))
            assert by_state("a", "deployments") == {"pending": 1, "synced": 0, "available": 0, "deleting": 0}

            # The syncer takes it on, then reports it running: the next scrape sees each step.
            await put(store, assigned("Deployment", "web", both, finalized=(A,)))
            assert sample("a", "deployments", "pending") == 1
            await put(store, assigned("Deployment", "web", both, finalized=(A,), reports={A: STARTING}))
            assert sample("a", "deployments", "synced") == 1
            await put(store, assigned("Deployment", "web", both, finalized=(A,), reports={A: AVAILABLE}))
            assert sample("a", "deployments", "available") == 1
            assert sample("a", "deployments", "synced") == 0
            assert sample("b", "deployments", "pending") == 1

            # Target a turns NotReady: its report no longer says available.
            await store.update(
                SYNC_TARGETS.key("root", None, "a"),
                {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
            )
            assert sample("a", "deployments", "synced") == 1

            # Target b is deleted: every series of b goes, a's stay.
            await store.delete(SYNC_TARGETS.key("root", None, "b"))
            assert 'sync_target="b"' not in exposed()
            assert sample("b", "deployments", "pending") is None
            assert sample("b", "configmaps", "pending") is None
            assert sample("a", "configmaps", "pending") == 1

            # The last ConfigMap of a goes: so does the pair's series.
            await store.delete("/registry/core/configmaps/root/default/conf")
            assert by_state("a", "configmaps") == {}
            assert sample("a", "deployments", "synced") == 1
        # The store is detached (the hub stopped): nothing is exported any more.
        assert sample("a", "deployments", "synced") is None

    run(main())


def test_counts_over_ten_thousand_placed_objects(tmp_path: Path) -> None:
    async def main() -> None:
        async with attached(tmp_path) as store:
            for name in ("a", "b", "c"):
                await target(store, name)
            keys = [A, B, sync_target_key("root", "c")]
            writes = []
            for i in range(10_000):
                two = {keys[i % 3]: "Sync", keys[(i + 1) % 3]: "Sync"}
                kind = "Deployment" if i % 2 else "ConfigMap"
                obj = assigned(kind, f"o{i}", two, finalized=tuple(two), reports=dict.fromkeys(two, AVAILABLE))
                writes.append(put(store, obj))
            for start in range(0, len(writes), 1000):
                await asyncio.gather(*writes[start : start + 1000])

            exposed()  # every object is new to the collector; the next scrape uses its cache
            # Each object is on two of the three targets; Deployments report available, ConfigMaps are synced.
            samples = scrape()
            assert sum(samples[(n, "deployments")]["available"] for n in "abc") == 10_000
            assert sum(samples[(n, "configmaps")]["synced"] for n in "abc") == 10_000
            assert sum(sum(by.values()) for by in samples.values()) == 20_000

    run(main())


def test_the_hub_exports_it_on_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        hub = Hub(ServerConfig(data_dir=str(tmp_path / "hub"), secure_port=0))
        await hub.start()
        config = load_kubeconfig(hub.kubeconfig_path)
        client = KubeClient(config)
        try:
            await hub.service.create(SYNC_TARGETS, "root", None, {"metadata": {"name": "a"}}, WriteOptions())
            body = assigned("ConfigMap", "conf", {A: "Sync"}, finalized=(A,))
            del body["metadata"]["namespace"]
            await hub.service.create(CONFIGMAPS, "root", "default", body, WriteOptions())
            url = f"https://127.0.0.1:{hub.port}/metrics"
            async with client.session.get(url, headers={"Authorization": f"Bearer {config.token}"}) as response:
                assert response.status == 200
                text = await response.text()
            assert scrape(text) == {("a", "configmaps"): {"pending": 0, "synced": 1, "deleting": 0}}
            # `name[]` picks series, as prometheus_client's own handler does: a family rendered by TMC and one of
            # the registry's, nothing else.
            params = [("name[]", "tmc_workload_sync_status"), ("name[]", "process_open_fds")]
            headers = {"Authorization": f"Bearer {config.token}"}
            async with client.session.get(url, params=params, headers=headers) as response:
                picked = await response.text()
            assert scrape(picked) == scrape(text)
            families = {line.split()[2] for line in picked.splitlines() if line.startswith("# TYPE")}
            assert families == {"tmc_workload_sync_status", "process_open_fds"}
        finally:
            await client.close()
            await hub.stop()
        assert sample("a", "configmaps", "synced") is None

    run(main())


def test_counts_kept_across_scrapes_match_a_full_walk(tmp_path: Path) -> None:
    """Each scrape reclassifies only what was written since the previous one; after creates, changes of state,
    moves between targets and deletes, what it exports is what walking every object gives."""

    def walked(store: SqliteStore) -> dict[tuple[str, str], dict[str, float]]:
        fresh = WorkloadSyncStatusCollector()
        fresh.attach(store, ResourceRegistry(store))
        return scrape("".join(fresh.samples()))

    async def main() -> None:
        async with attached(tmp_path) as store:
            for name in ("a", "b"):
                await target(store, name)
            for step in range(6):
                for i in range(30):
                    keys = {(A, B, GONE)[(i + step) % 3]: "Sync"}
                    kind = ("Deployment", "ConfigMap")[i % 2]
                    if (i + step) % 7 == 0 and step:
                        await store.delete(f"{_KEYS[kind]}/root/default/o{i}")
                        continue
                    reports = {k: (AVAILABLE, STARTING)[step % 2] for k in keys} if step % 3 else None
                    finalized = tuple(keys) if (i + step) % 2 else ()
                    await put(store, assigned(kind, f"o{i}", keys, finalized=finalized, reports=reports))
                assert scrape() == walked(store), f"step {step}"

    run(main())
