"""The rollout state machine (no I/O): every phase transition, driven by observations and recorded measurements."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.controllers.canary import analysis as a
from tmc.controllers.canary.machine import Observation, Rollout, wave_weights
from tmc.controllers.canary.plan import Plan, parse_plan

T0 = 1.8e9
METRIC = {
    "name": "errors",
    "successCondition": "result < 0.05",
    "provider": {"prometheus": {"query": "errors"}},
}


def plan(steps: list[dict[str, Any]], analysis: bool = False, **spec: Any) -> Plan:
    body: dict[str, Any] = {
        "targetRef": {"kind": "Deployment", "name": "web"},
        "trafficRouting": {"istio": {"virtualService": {"name": "web"}}},
        "steps": steps,
        **spec,
    }
    if analysis:
        body["analysis"] = {"interval": "10s", "metrics": [METRIC]}
    return parse_plan({"metadata": {"name": "web", "namespace": "shop"}, "spec": body})


class Driver:
    def __init__(self, p: Plan) -> None:
        self.plan = p
        self.status: dict[str, Any] = {}
        self.now = T0
        self.rollout = Rollout.load(p, self.status)
        self.first_wave: tuple[str, ...] = ()  # the first wave's clusters, for a plan with one

    def step(
        self, rev: str = "r1", *, canary: bool = True, stable: bool = True, action: str = "", paused: bool = False
    ) -> Rollout:
        r = Rollout.load(self.plan, self.status)
        r.advance(Observation(self.now, rev, 2, canary, stable, action, paused, first_wave=self.first_wave))
        self.status = r.to_status()
        self.rollout = r
        self.now += 1
        return r

    def measure(self, value_phase: str, run: str = "background") -> None:
        r = Rollout.load(self.plan, self.status)
        target = r.background if run == "background" else r.step_run
        assert target is not None
        for name in target.due(self.now) or target.spec.names:
            target.record(name, a.Measurement(value_phase, self.now, self.now, value="0.2"))
        self.status = r.to_status()

    @property
    def phase(self) -> str:
        return str(self.status["phase"])


def started(steps: list[dict[str, Any]], analysis: bool = False, **spec: Any) -> Driver:
    d = Driver(plan(steps, analysis, **spec))
    d.step("r1", stable=False)
    d.step("r1")
    assert d.phase == "Succeeded"
    d.step("r2")
    assert d.phase == "Progressing" and d.status["canaryRevision"] == "r2"
    return d


def test_first_sight_pending_until_the_stable_copy_is_ready_then_succeeded() -> None:
    d = Driver(plan([{"setWeight": 10}]))
    d.step("r1", stable=False)
    assert (d.phase, d.status["stableRevision"], d.status["weight"]) == ("Pending", "r1", 0)
    d.step("r1", stable=False)
    assert d.phase == "Pending"
    r = d.step("r1")
    assert d.phase == "Succeeded" and [n.reason for n in r.notes] == ["Initialized"]
    assert d.step("r1").notes == []


def test_steps_set_weights_pause_for_a_duration_then_promote() -> None:
    d = started([{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}])
    d.step("r2", canary=False)
    assert d.phase == "Progressing" and d.status["weight"] == 0  # waiting for the canary's pods
    d.step("r2")
    assert d.status["weight"] == 10 and d.status["currentStepIndex"] == 1
    d.step("r2")
    assert d.phase == "Progressing" and d.rollout.wake_at is not None
    d.now += 30
    d.step("r2")
    assert d.status["weight"] == 50
    d.step("r2", stable=True)  # every step done: promotion starts; the stable copy must take the new revision
    assert d.status["promoting"] and d.status["promotingRevision"] == "r2" and d.phase == "Progressing"
    d.step("r2", stable=False)
    assert d.phase == "Progressing"
    r = d.step("r2", stable=True)
    assert d.phase == "Succeeded" and d.status["stableRevision"] == "r2" and d.status["weight"] == 0
    assert "Promoted" in [n.reason for n in r.notes]


def test_pause_without_duration_waits_for_promote() -> None:
    d = started([{"setWeight": 10}, {"pause": {}}, {"setWeight": 40}])
    d.step("r2")
    d.step("r2")
    assert (d.phase, d.status["pauseReason"]) == ("Paused", "PauseStep")
    d.step("r2")
    assert d.phase == "Paused"
    d.step("r2", action="promote")
    assert d.status["weight"] == 40


def test_analysis_step_success_failure_error_and_inconclusive() -> None:
    steps = [{"setWeight": 10}, {"analysis": {}}, {"setWeight": 30}]
    for measured, phase, weight in (
        (a.SUCCESSFUL, "Progressing", 30),
        (a.FAILED, "Failed", 0),
        (a.INCONCLUSIVE, "Paused", 10),
    ):
        d = started(steps, analysis=True)
        d.step("r2")
        d.step("r2")
        assert d.phase == "Analyzing"
        d.measure(measured, run="step")
        d.step("r2")
        assert (d.phase, d.status["weight"]) == (phase, weight), measured
    d = started(steps, analysis=True, progressDeadlineSeconds=600)
    d.step("r2")
    d.step("r2")
    for _ in range(5):  # consecutiveErrorLimit 4: the fifth error ends it
        d.measure(a.ERROR, run="step")
    d.step("r2")
    assert d.phase == "Failed" and d.status["message"].startswith("AnalysisError")


def test_background_failure_aborts_at_any_step_then_rolls_back() -> None:
    d = started([{"setWeight": 10}, {"pause": {}}], analysis=True)
    d.step("r2")
    d.step("r2")
    assert d.phase == "Paused"
    due = Rollout.load(d.plan, d.status).due(d.now + 10)  # the background run is measured through the pause
    assert [name for _, name in due] == ["errors"]
    d.measure(a.FAILED)
    r = d.step("r2")
    assert d.phase == "Failed" and d.status["weight"] == 0 and r.notes[-1].reason == "AnalysisFailed"
    r = d.step("r2")
    assert d.phase == "RolledBack" and r.notes[-1].reason == "RolledBack"
    d.step("r2")
    assert d.phase == "RolledBack"  # the rolled-back revision does not start again by itself
    d.step("r2", action="retry")
    assert d.phase == "Progressing" and d.status["canaryRevision"] == "r2" and "analysis" not in d.status


def test_a_new_revision_after_a_rollback_starts_a_new_canary() -> None:
    d = started([{"setWeight": 10}])
    d.step("r2", action="abort")
    assert d.phase == "Failed"
    d.step("r2")
    assert d.phase == "RolledBack"
    d.step("r3")
    assert d.phase == "Progressing" and d.status["canaryRevision"] == "r3"


def test_progress_deadline() -> None:
    d = started([{"setWeight": 10}], progressDeadlineSeconds=60)
    d.step("r2", canary=False)
    d.now += 61
    d.step("r2", canary=False)
    assert d.phase == "Failed" and "ProgressDeadlineExceeded" in d.status["message"]


def test_spec_paused_holds_and_resume_continues() -> None:
    d = started([{"setWeight": 10}, {"setWeight": 20}])
    d.step("r2", paused=True)
    assert (d.phase, d.status["pauseReason"]) == ("Paused", "Manual")
    assert d.status["weight"] == 0
    d.step("r2")
    assert d.status["weight"] == 10


def test_without_auto_promote_waits_for_promotion() -> None:
    d = started([{"setWeight": 10}], autoPromote=False)
    d.step("r2")
    d.step("r2")
    assert (d.phase, d.status["pauseReason"]) == ("Paused", "WaitingForPromotion")
    d.step("r2", action="promote")
    assert d.status["promoting"]
    d.step("r2")
    assert d.phase == "Succeeded" and d.status["stableRevision"] == "r2"


def test_promote_full_and_revert_to_stable() -> None:
    d = started([{"setWeight": 10}, {"pause": {}}, {"setWeight": 90}])
    d.step("r2", action="promote-full")
    d.step("r2")
    d.step("r2")
    assert d.phase == "Succeeded" and d.status["stableRevision"] == "r2"
    d.step("r3")
    d.step("r3")
    assert d.status["weight"] == 10
    r = d.step("r2")  # the user put the stable template back
    assert d.phase == "Succeeded" and d.status["weight"] == 0 and r.notes[-1].reason == "Reverted"


def test_errors_alone_never_succeed_when_the_steps_end() -> None:
    d = started([{"setWeight": 10}, {"pause": {"duration": 5}}], analysis=True)
    d.step("r2")
    d.measure(a.ERROR)
    d.now += 10
    d.step("r2")
    d.step("r2")
    assert d.status["analysis"]["phase"] == a.ERROR  # terminated with errors only: Error, so aborted
    assert d.phase in ("Failed", "RolledBack") and d.status["abortedRevision"] == "r2"
    assert d.status["stableRevision"] == "r1"


@pytest.mark.parametrize("action", ["promote", "abort", "promote-full"])
def test_actions_outside_a_rollout_change_nothing(action: str) -> None:
    d = Driver(plan([{"setWeight": 10}]))
    d.step("r1")
    d.step("r1")
    before = dict(d.status)
    d.step("r1", action=action)
    assert d.status == before


def test_a_timed_pause_lasts_its_whole_duration_from_a_start_within_a_second() -> None:
    d = started([{"setWeight": 20}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {}}])
    d.now = T0 + 10.9
    d.step("r2")  # weight 20 written; the pause starts at .9 of a second
    assert d.status["currentStepIndex"] == 1 and d.status["steps"][-1]["startedAt"].endswith(".900Z")
    d.now = T0 + 13.5  # 2.6 s in: a start cut to the second would end the pause here
    assert d.step("r2").wake_at == pytest.approx(T0 + 13.9)
    assert d.status["currentStepIndex"] == 1
    d.now = T0 + 13.9
    d.step("r2")
    assert d.status["weight"] == 50


def test_waves_run_the_steps_in_the_first_wave_then_past_the_gate_in_the_rest() -> None:
    clusters = {"syncTargetSelector": {"matchLabels": {"wave": "first"}}, "gate": "manual"}
    d = Driver(plan([{"setWeight": 20}, {"setWeight": 60}], clusters=clusters))
    obs = {"first_wave": ("eu-1",)}

    def step(action: str = "") -> None:
        r = Rollout.load(d.plan, d.status)
        r.advance(Observation(d.now, d.status.get("canaryRevision") or "r2", 2, True, True, action, **obs))
        d.status = r.to_status()
        d.now += 1

    d.status = {"phase": "Succeeded", "stableRevision": "r1", "replicas": 2}
    step()
    assert (d.status["wave"], d.status["weight"]) == ("First", 0)
    step()
    step()
    assert (d.status["wave"], d.status["weight"]) == ("First", 60)
    step()
    assert (d.phase, d.status["pauseReason"]) == ("Paused", "WaveGate")
    step("promote")
    assert (d.status["wave"], d.status["weight"], d.status["firstWaveWeight"]) == ("Rest", 20, 60)
    step()
    assert d.status["weight"] == 60
    step()
    assert d.status.get("promoting") or d.phase == "Succeeded"
    obs["first_wave"] = ()
    d.status = {"phase": "Succeeded", "stableRevision": "r1", "replicas": 2}
    step()
    step()
    assert d.phase == "Progressing" and d.status["weight"] == 0 and "syncTargetSelector" in d.status["message"]


def waves(gate: str) -> Driver:
    """A canary of r2 with a first wave (one cluster) and background analysis, at weight 20 in the first wave."""
    clusters = {"syncTargetSelector": {"matchLabels": {"wave": "first"}}, "gate": gate}
    d = Driver(plan([{"setWeight": 20}, {"pause": {"duration": "5s"}}], analysis=True, clusters=clusters))
    d.first_wave = ("eu-1",)
    d.status = {"phase": "Succeeded", "stableRevision": "r1", "replicas": 2}
    d.step("r2")
    d.step("r2")
    assert (d.status["wave"], wave_weights(d.status)) == ("First", (20, 0))
    return d


def test_auto_gate_opens_when_the_first_waves_analysis_passed_and_a_failure_later_aborts_both_waves() -> None:
    d = waves("auto")
    d.measure(a.SUCCESSFUL)
    d.now += 5
    r = d.step("r2")
    assert (d.status["wave"], wave_weights(d.status)) == ("Rest", (20, 0))  # no promotion needed
    assert [n.reason for n in r.notes] == ["WaveGatePassed"]
    d.step("r2")
    assert wave_weights(d.status) == (20, 20)
    d.measure(a.FAILED)
    r = d.step("r2")
    assert d.phase == "Failed" and wave_weights(d.status) == (0, 0) and r.notes[-1].reason == "AnalysisFailed"
    d.step("r2")
    assert d.phase == "RolledBack"


def test_a_failure_in_the_first_wave_aborts_before_the_gate() -> None:
    d = waves("manual")
    d.measure(a.FAILED)
    r = d.step("r2")
    assert d.phase == "Failed" and wave_weights(d.status) == (0, 0) and r.notes[-1].reason == "AnalysisFailed"
    d.now += 10
    d.step("r2", action="promote")  # a promotion after the verdict opens no gate
    assert d.phase == "RolledBack" and d.status.get("wave") != "Rest"


def test_removing_the_first_wave_mid_rollout_leaves_one_weight_everywhere() -> None:
    status = {"phase": "Progressing", "wave": "First", "weight": 30, "canaryRevision": "r2"}
    assert wave_weights(status) == (30, 0)
    r = Rollout.load(plan([{"setWeight": 30}]), status)
    assert wave_weights(r.to_status()) == (30, 30)
