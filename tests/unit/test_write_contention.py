"""Many unconditional writers of one object at once all succeed, as against kube-apiserver; a writer that names a
resourceVersion still gets its 409."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.test_apply_service import APPLY_PATCH, CM, DEPLOY, deployment, opts, run
from tmc.apimachinery import errors
from tmc.registry.service import MERGE_PATCH, ObjectService, WriteOptions

WRITERS = 100


def configmap(data: dict[str, str] | None = None, rv: str = "") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "shared"}
    if rv:
        metadata["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


async def outcomes(writes: list[Any]) -> list[str]:
    results = await asyncio.gather(*writes, return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException) else "ok" for r in results]


def test_concurrent_merge_patches_of_one_object_all_land(tmp_path: Path) -> None:
    async def test(service: ObjectService) -> None:
        await service.create(CM, "root", "default", configmap(), WriteOptions())
        writes = [
            service.patch(CM, "root", "default", "shared", MERGE_PATCH, orjson.dumps({"data": {f"k{i}": "v"}}), opts())
            for i in range(WRITERS)
        ]
        assert set(await outcomes(writes)) == {"ok"}
        stored = service.get(CM, "root", "default", "shared").obj
        assert len(stored["data"]) == WRITERS
        assert not service._turns._slots  # every turn given back

    run(tmp_path, test)


def test_concurrent_updates_and_applies_without_a_resource_version_all_land(tmp_path: Path) -> None:
    async def test(service: ObjectService) -> None:
        await service.create(CM, "root", "default", configmap(), WriteOptions())
        await service.patch(DEPLOY, "root", "default", "web", APPLY_PATCH, deployment(1), opts("ci"))
        updates = [
            service.update(CM, "root", "default", "shared", configmap({"writer": str(i)}), WriteOptions())
            for i in range(WRITERS)
        ]
        applies = [
            service.patch(DEPLOY, "root", "default", "web", APPLY_PATCH, deployment(i % 5 + 1), opts("ci"))
            for i in range(WRITERS)
        ]
        assert set(await outcomes(updates + applies)) == {"ok"}

    run(tmp_path, test)


def test_a_writer_naming_a_stale_resource_version_still_conflicts(tmp_path: Path) -> None:
    async def test(service: ObjectService) -> None:
        created = await service.create(CM, "root", "default", configmap(), WriteOptions())
        rv = created["metadata"]["resourceVersion"]
        await service.update(CM, "root", "default", "shared", configmap({"a": "1"}, rv), WriteOptions())
        with pytest.raises(errors.StatusError) as caught:
            await service.update(CM, "root", "default", "shared", configmap({"a": "2"}, rv), WriteOptions())
        assert caught.value.code == 409

    run(tmp_path, test)
