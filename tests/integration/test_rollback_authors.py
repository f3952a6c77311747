"""Revision authors survive a hub restart: a change written before the restart and recorded after it names its user
and field manager, not only a manager guessed from managedFields. The hub here is the in-process store, object
service and controllers over one SQLite file, stopped and started again on it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from tests.unit._scheduling_env import CONFIGMAPS, DEPLOYMENTS, Env
from tmc.api.rollback import AUTHOR_ANNOTATION, WORKLOAD_REVISIONS
from tmc.api.workload import status_diff_annotation
from tmc.controllers.rollback.controller import RollbackController
from tmc.registry.service import MERGE_PATCH, WriteOptions

NS = "shop"
POD = {"containers": [{"name": "app", "image": "nginx:1", "envFrom": [{"configMapRef": {"name": "web-config"}}]}]}


def revisions(e: Env) -> list[dict[str, Any]]:
    found = [x.obj for x in e.store.list(WORKLOAD_REVISIONS.key_prefix("root", NS))]
    return sorted(found, key=lambda r: r["spec"]["revision"])


def rollback(e: Env) -> RollbackController:
    return next(c for c in e.controllers if isinstance(c, RollbackController))


async def patch(e: Env, info: Any, name: str, body: dict[str, Any], user: str, manager: str) -> None:
    opts = WriteOptions(field_manager=manager, user=user)
    await e.service.patch(info, "root", NS, name, MERGE_PATCH, orjson.dumps(body), opts)


def test_authors_of_changes_recorded_after_a_restart(tmp_path: Path) -> None:
    async def before_restart() -> str:
        async with Env(tmp_path) as e:
            rollback(e).debounce = 0.05
            key = await e.target("a")
            await e.location("all")
            await e.placement("pl", {"locationSelectors": [{}], "namespaceSelector": {"matchLabels": {"shop": "yes"}}})
            await e.namespace(NS, {"shop": "yes"})
            opts = WriteOptions(field_manager="kubectl-create", user="alice")
            cm = {"metadata": {"name": "web-config"}, "data": {"k": "1"}}
            await e.service.create(CONFIGMAPS, "root", NS, cm, opts)
            await e.deployment(NS, "web", 1, pod=POD)
            await e.until(lambda: len(revisions(e)) == 1, "revision 1")
            # From here on nothing is recorded before the hub stops: the changes are recorded by the next process.
            rollback(e).debounce = 3600
            container = {**POD["containers"][0], "image": "nginx:2"}
            image = {"spec": {"template": {"spec": {"containers": [container]}}}}
            await patch(e, DEPLOYMENTS, "web", image, "carol", "kubectl-edit")
            # A syncer's status report after it: the newest managedFields entry is no longer carol's manager.
            report = {"metadata": {"annotations": {status_diff_annotation(key): '{"status":{}}'}}}
            await patch(e, DEPLOYMENTS, "web", report, "system:syncer", "syncer")
            assert len(revisions(e)) == 1
            return key

    async def after_restart() -> None:
        async with Env(tmp_path) as e:
            rollback(e).debounce = 0.05
            await e.until(lambda: len(revisions(e)) == 2, "revision 2, recorded after the restart")
            assert revisions(e)[1]["spec"]["author"] == {"user": "carol", "fieldManager": "kubectl-edit"}
            # A ConfigMap change by someone else is theirs; a replace that leaves the annotation out keeps it.
            await patch(e, CONFIGMAPS, "web-config", {"data": {"k": "2"}}, "dave", "kubectl-patch")
            await e.until(lambda: len(revisions(e)) == 3, "revision 3")
            assert revisions(e)[2]["spec"]["author"] == {"user": "dave", "fieldManager": "kubectl-patch"}
            current = e.get(DEPLOYMENTS, "web", NS)
            assert current is not None
            body = {**current, "metadata": {**current["metadata"], "annotations": {}}}
            body["metadata"].pop("resourceVersion", None)
            await e.service.update(DEPLOYMENTS, "root", NS, "web", body, WriteOptions(field_manager="replacer"))
            stamped = orjson.loads(e.annotations(DEPLOYMENTS, "web", NS)[AUTHOR_ANNOTATION])
            assert (stamped["user"], stamped["fieldManager"]) == ("carol", "kubectl-edit")

    asyncio.run(before_restart())
    asyncio.run(after_restart())
