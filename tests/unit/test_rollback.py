"""The rollback engine in process: the hub's store, registry, ObjectService and controllers (scheduling and rollback)
without HTTP; syncers are stood in for by writing their per-cluster status reports. What the e2e test cannot reach
cheaply is here: Secret content kept out of the revision, cleanup of what only the undone change created, a user's
edit beating a rollback, an analysis query crossing its threshold, and the planning rules."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.unit._scheduling_env import CONFIGMAPS, DEPLOYMENTS, SECRETS, Env
from tmc.api.canary import CANARY_DEPLOYMENTS
from tmc.api.rollback import (
    ROLLBACK_POLICIES,
    UNDO_ANNOTATION,
    UNDO_RESULT_ANNOTATION,
    WORKLOAD_REVISIONS,
    parse_undo,
)
from tmc.api.workload import status_diff_annotation
from tmc.apimachinery import errors
from tmc.controllers.rollback import canary_hook, metrics
from tmc.controllers.rollback.context import Shared, WorkloadKey
from tmc.controllers.rollback.controller import RollbackController
from tmc.controllers.rollback.plan import choose_target
from tmc.controllers.rollback.policy import watched
from tmc.controllers.rollback.restore import Request, undo
from tmc.controllers.rollback.snapshot import cluster_report
from tmc.registry.service import WriteOptions

NS = "shop"
POD = {
    "containers": [{"name": "app", "image": "nginx:1", "envFrom": [{"configMapRef": {"name": "web-config"}}]}],
    "volumes": [{"name": "s", "secret": {"secretName": "web-secret"}}],
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def run(tmp_path: Path, body: Callable[[Env], Awaitable[None]]) -> None:
    """`body` against a hub holding Deployment web (reading web-config and web-secret) placed on two targets, its
    revision 1 available on both."""

    async def main() -> None:
        async with Env(tmp_path) as e:
            controller(e).debounce = 0.05  # no multi-object applies here: record changes quickly
            await _setup(e)
            await body(e)

    asyncio.run(main())


async def _setup(e: Env) -> None:
    if True:
        keys = [await e.target("a"), await e.target("b")]
        await e.location("all")
        await e.placement("pl", {"locationSelectors": [{}], "namespaceSelector": {"matchLabels": {"shop": "yes"}}})
        await e.namespace(NS, {"shop": "yes"})
        opts = WriteOptions(field_manager="test", user="alice")
        await e.service.create(CONFIGMAPS, "root", NS, {"metadata": {"name": "web-config"}, "data": {"k": "1"}}, opts)
        body = {"metadata": {"name": "web-secret"}, "data": {"password": b64("one")}}
        await e.service.create(SECRETS, "root", NS, body, opts)
        await e.deployment(NS, "web", 1, pod=POD)
        await e.until(lambda: len(e.keys_on(DEPLOYMENTS, "web", NS)) == 2, "web placed on both targets")
        await e.until(lambda: len(revisions(e)) == 1, "revision 1")
        await available(e, keys)
        await e.until(lambda: revisions(e)[-1].get("status", {}).get("healthy"), "revision 1 healthy")


def revisions(e: Env) -> list[dict[str, Any]]:
    found = [x.obj for x in e.store.list(WORKLOAD_REVISIONS.key_prefix("root", NS))]
    return sorted(found, key=lambda r: r["spec"]["revision"])


async def available(e: Env, keys: list[str], name: str = "web") -> None:
    """Every target reports the current generation rolled out and available (what the syncers would write)."""
    generation = e.get(DEPLOYMENTS, name, NS)["metadata"]["generation"]  # type: ignore[index]
    status = {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    annotations = {status_diff_annotation(k): orjson.dumps({"status": status}).decode() for k in keys}
    await e.patch(DEPLOYMENTS, name, {"metadata": {"annotations": annotations}}, NS)


def controller(e: Env) -> RollbackController:
    return next(c for c in e.controllers if isinstance(c, RollbackController))


def test_secret_content_stays_out_of_the_revision_and_comes_back_on_undo(tmp_path: Path) -> None:
    run(tmp_path, _secret_content_stays_out_of_the_revision_and_comes_back_on_undo)


async def _secret_content_stays_out_of_the_revision_and_comes_back_on_undo(env: Env) -> None:
    [first] = revisions(env)
    assert first["spec"]["author"] == {"user": "", "fieldManager": ""}  # the fixture's anonymous create
    secret = first["spec"]["secrets"][0]
    assert secret["present"] and secret["keys"] == ["password"] and "data" not in secret
    assert b64("one") not in orjson.dumps(first).decode()
    snapshot = env.get(SECRETS, first["spec"]["snapshotSecret"], "kcp-system")
    assert snapshot is not None and snapshot["type"] == "tmc.kcp.io/revision-snapshot"

    opts = WriteOptions(field_manager="kubectl-edit", user="bob")
    body = {"metadata": {"name": "web-secret"}, "data": {"password": b64("two")}}
    await env.service.patch(SECRETS, "root", NS, "web-secret", "application/merge-patch+json", orjson.dumps(body), opts)
    await env.until(lambda: len(revisions(env)) == 2, "revision 2 for the Secret change")
    second = revisions(env)[1]
    assert second["spec"]["author"] == {"user": "bob", "fieldManager": "kubectl-edit"}
    assert second["spec"]["changeCause"] == "changed: secret/web-secret"

    await env.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": {UNDO_ANNOTATION: "1@t1"}}}, NS)
    await env.until(lambda: env.annotations(DEPLOYMENTS, "web", NS).get(UNDO_RESULT_ANNOTATION) == "t1 ok 1", "undo")
    assert env.get(SECRETS, "web-secret", NS)["data"] == {"password": b64("one")}  # type: ignore[index]
    await env.until(lambda: len(revisions(env)) == 3, "the undo recorded")
    assert revisions(env)[2]["spec"]["rollbackTo"] == 1 and revisions(env)[1]["status"]["phase"] == "RolledBack"

    # A revision pruned away takes its Secret snapshot with it.
    await env.patch(DEPLOYMENTS, "web", {"spec": {"revisionHistoryLimit": 1}}, NS)
    await env.patch(DEPLOYMENTS, "web", {"spec": {"template": {"metadata": {"labels": {"v": "4"}}}}}, NS)
    # Revision 3 (the undo) only put the Secret back, so it was available at once; the newest healthy revision is
    # kept beyond the limit.
    await env.until(lambda: [r["spec"]["revision"] for r in revisions(env)] == [3, 4], "pruned, keeping healthy 3")
    await env.until(
        lambda: env.get(SECRETS, second["spec"]["snapshotSecret"], "kcp-system") is None, "snapshot of 2 deleted"
    )
    # Revisions are the hub's records: the scheduler never placed one (no state labels, no Scheduled Event).
    for rev in revisions(env):
        assert not any(k.startswith("state.workload.kcp.io/") for k in rev["metadata"].get("labels", {})), rev
    kinds = {e.obj["involvedObject"]["kind"] for e in env.store.list("/registry/core/events/root/shop/")}
    assert "WorkloadRevision" not in kinds and "Deployment" in kinds, kinds


def test_undo_removes_only_what_the_undone_change_created(tmp_path: Path) -> None:
    run(tmp_path, _undo_removes_only_what_the_undone_change_created)


async def _undo_removes_only_what_the_undone_change_created(env: Env) -> None:
    opts = WriteOptions(field_manager="test")
    await env.service.create(CONFIGMAPS, "root", NS, {"metadata": {"name": "extra"}, "data": {"x": "1"}}, opts)
    await env.service.create(CONFIGMAPS, "root", NS, {"metadata": {"name": "by-hand"}, "data": {"y": "1"}}, opts)
    pod = {**POD, "containers": [{**POD["containers"][0], "env": [_ref("extra")]}]}
    await env.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": pod}}}, NS)
    await env.until(lambda: len(revisions(env)) == 2, "revision 2 reading extra")
    await env.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": {UNDO_ANNOTATION: "previous@t2"}}}, NS)
    await env.until(lambda: env.annotations(DEPLOYMENTS, "web", NS).get(UNDO_RESULT_ANNOTATION) == "t2 ok 1", "undo")
    assert env.get(CONFIGMAPS, "extra", NS) is None  # came with revision 2, used by nothing now
    assert env.get(CONFIGMAPS, "by-hand", NS) is not None  # never part of any revision
    assert env.get(CONFIGMAPS, "web-config", NS) is not None


def _ref(name: str) -> dict[str, Any]:
    return {"name": "X", "valueFrom": {"configMapKeyRef": {"name": name, "key": "x"}}}


def test_a_user_edit_during_a_rollback_wins_and_nothing_is_left_half_done(tmp_path: Path) -> None:
    run(tmp_path, _a_user_edit_during_a_rollback_wins_and_nothing_is_left_half_done)


async def _a_user_edit_during_a_rollback_wins_and_nothing_is_left_half_done(env: Env) -> None:
    await env.patch(CONFIGMAPS, "web-config", {"data": {"k": "2"}}, NS)
    await env.until(lambda: len(revisions(env)) == 2, "revision 2")
    stale = env.get(DEPLOYMENTS, "web", NS)
    assert stale is not None
    # The user edits the spec after the rollback read the workload and before it writes it.
    await env.patch(DEPLOYMENTS, "web", {"spec": {"template": {"metadata": {"labels": {"edited": "yes"}}}}}, NS)
    shared: Shared = controller(env).shared
    wk = WorkloadKey("apps", "deployments", "root", NS, "web")
    with pytest.raises(errors.StatusError) as caught:
        await undo(shared, wk, DEPLOYMENTS, stale, Request(1, "tester", "UserRequested", token="x"))
    assert caught.value.code == 409 and "it wins" in caught.value.message
    assert env.get(CONFIGMAPS, "web-config", NS)["data"] == {"k": "2"}  # type: ignore[index]  # put back
    deployment = env.get(DEPLOYMENTS, "web", NS)
    assert deployment["spec"]["template"]["metadata"]["labels"]["edited"] == "yes"  # type: ignore[index]


def test_bad_undo_requests_get_a_clear_answer_and_change_nothing(tmp_path: Path) -> None:
    run(tmp_path, _bad_undo_requests_get_a_clear_answer_and_change_nothing)


async def _bad_undo_requests_get_a_clear_answer_and_change_nothing(env: Env) -> None:
    before = env.get(DEPLOYMENTS, "web", NS)
    await env.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": {UNDO_ANNOTATION: "7@t3"}}}, NS)
    await env.until(lambda: env.annotations(DEPLOYMENTS, "web", NS).get(UNDO_RESULT_ANNOTATION), "an answer")
    answer = env.annotations(DEPLOYMENTS, "web", NS)[UNDO_RESULT_ANNOTATION]
    assert answer == "t3 error unable to find the specified revision 7 (revisions: 1)"
    await env.patch(DEPLOYMENTS, "web", {"metadata": {"annotations": {UNDO_ANNOTATION: "previous@t4"}}}, NS)
    await env.until(lambda: "t4" in env.annotations(DEPLOYMENTS, "web", NS)[UNDO_RESULT_ANNOTATION], "an answer")
    assert env.annotations(DEPLOYMENTS, "web", NS)[UNDO_RESULT_ANNOTATION] == (
        "t4 error no previous revision to roll back to"
    )
    after = env.get(DEPLOYMENTS, "web", NS)
    assert after["spec"] == before["spec"] and len(revisions(env)) == 1  # type: ignore[index]


def test_an_analysis_query_past_its_threshold_rolls_back(tmp_path: Path) -> None:
    run(tmp_path, _an_analysis_query_past_its_threshold_rolls_back)


async def _an_analysis_query_past_its_threshold_rolls_back(env: Env) -> None:
    answered: list[str] = []

    async def query(request: web.Request) -> web.Response:
        form = await request.post()
        answered.append(str(form["query"]))
        result = [{"metric": {"cluster": "a"}, "value": [0, "0.5"]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    app = web.Application()
    app.router.add_post("/api/v1/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        before = metrics.ROLLBACKS.labels("AnalysisFailed")._value.get()
        policy = {
            "metadata": {"name": "web"},
            "spec": {
                "targetRef": {"kind": "Deployment", "name": "web"},
                "analysis": {
                    "prometheus": {"address": f"http://127.0.0.1:{port}", "query": "error_ratio"},
                    "failureThreshold": {"operator": ">", "value": 0.1},
                    "intervalSeconds": 1,
                },
            },
        }
        await env.service.create(ROLLBACK_POLICIES, "root", NS, policy, WriteOptions())
        await env.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [_image("nginx:2")]}}}}, NS)
        await env.until(lambda: len(revisions(env)) == 3, "the bad revision and its rollback", timeout=10)
        bad, back = revisions(env)[1:]
        assert bad["status"]["phase"] == "RolledBack" and back["spec"]["rollbackTo"] == 1 and back["spec"]["automatic"]
        assert answered and answered[0] == "error_ratio"
        rolled = env.get(ROLLBACK_POLICIES, "web", NS)["status"]["lastRollback"]  # type: ignore[index]
        assert rolled["reason"] == "AnalysisFailed" and "returned 0.5 (> 0.1)" in rolled["message"]
        assert metrics.ROLLBACKS.labels("AnalysisFailed")._value.get() == before + 1
        image = env.get(DEPLOYMENTS, "web", NS)["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
        assert image["image"] == "nginx:1"
        # The rollback's own revision is never judged, and the bad one not again: no loop.
        assert not watched(back) and not watched(bad)
    finally:
        await runner.cleanup()


def _image(image: str) -> dict[str, Any]:
    return {**POD["containers"][0], "image": image}


def test_a_revision_spec_is_immutable(tmp_path: Path) -> None:
    run(tmp_path, _a_revision_spec_is_immutable)


async def _a_revision_spec_is_immutable(env: Env) -> None:
    [rev] = revisions(env)
    changed = {**rev, "spec": {**rev["spec"], "changeCause": "rewritten"}}
    with pytest.raises(errors.StatusError) as caught:
        await env.service.update(WORKLOAD_REVISIONS, "root", NS, rev["metadata"]["name"], changed, WriteOptions())
    assert caught.value.code == 422 and "immutable" in caught.value.message
    policy = {"metadata": {"name": "p"}, "spec": {"targetRef": {"kind": "Deployment"}}}
    with pytest.raises(errors.StatusError) as caught:
        await env.service.create(ROLLBACK_POLICIES, "root", NS, policy, WriteOptions())
    assert caught.value.code == 422 and "spec.targetRef.name" in str(caught.value.details)


def test_choosing_the_target_revision() -> None:
    revs = [{"spec": {"revision": n, "fingerprint": f}} for n, f in ((1, "a"), (2, "b"), (3, "a"))]
    assert choose_target(revs, "a", None)["spec"]["revision"] == 2  # the newest with other content
    assert choose_target(revs, "a", 1)["spec"]["revision"] == 1
    with pytest.raises(ValueError, match=r"revision 9 \(revisions: 1, 2, 3\)"):
        choose_target(revs, "a", 9)
    with pytest.raises(ValueError, match="no rollout history"):
        choose_target([], "a", None)
    assert parse_undo("previous@x") == (None, "x") and parse_undo("3@y") == (3, "y")
    assert parse_undo("0@x") is None and parse_undo("3") is None and parse_undo("three@x") is None


def test_cluster_reports() -> None:
    def raw(**status: Any) -> str:
        return orjson.dumps({"status": status}).decode()

    done = cluster_report(
        "Deployment", raw(observedGeneration=2, replicas=2, updatedReplicas=2, availableReplicas=2), 2
    )
    assert done is not None and done.available and done.generation == 2
    # New pods never Ready next to the old ones: 3 replicas, 1 updated, 2 available.
    stuck = cluster_report(
        "Deployment", raw(observedGeneration=3, replicas=3, updatedReplicas=1, availableReplicas=2), 2
    )
    assert stuck is not None and not stuck.available
    assert cluster_report("Deployment", None, 2) is None
    ds = cluster_report("DaemonSet", raw(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3), None)
    assert ds is not None and ds.available


def test_an_undo_aborts_a_canary_in_progress_first(tmp_path: Path) -> None:
    run(tmp_path, _an_undo_aborts_a_canary_in_progress_first)


async def _an_undo_aborts_a_canary_in_progress_first(env: Env) -> None:
    """The hook speaks the canary controller's API: it asks for an abort, holds the undo while the canary is not
    RolledBack, and lets it go once it is. The test plays the canary controller (not running here)."""
    shared = controller(env).shared
    canary = {
        "apiVersion": "tmc.kcp.io/v1alpha1",
        "kind": "CanaryDeployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"name": "web", "port": 80},
            "trafficRouting": {"replicas": {}},
            "steps": [{"setWeight": 20}, {"pause": {}}],
        },
        "status": {"phase": "Analyzing"},
    }
    key = CANARY_DEPLOYMENTS.key("root", NS, "web")
    await env.store.create(key, canary)
    wk = WorkloadKey("apps", "deployments", "root", NS, "web")
    assert not await canary_hook.abort_canary(shared, wk, "Deployment")
    asked = env.store.get(key)
    assert asked is not None
    action = asked.obj["metadata"]["annotations"][canary_hook.ACTION_ANNOTATION]
    assert action.startswith("abort@")
    for phase, done in (("Failed", False), ("RolledBack", True)):  # weight 0 first, then cleaned up
        entry = env.store.get(key)
        assert entry is not None
        await env.store.update(key, {**entry.obj, "status": {"phase": phase}}, expected_rev=entry.rev)
        assert await canary_hook.abort_canary(shared, wk, "Deployment") is done
    entry = env.store.get(key)
    assert entry is not None and entry.obj["metadata"]["annotations"][canary_hook.ACTION_ANNOTATION] == action
