"""The rollout state machine, without I/O: from the stored status, the plan and what the controller observed, the
next status and the Events to record.

Phases: Pending (the stable copy is being set up) -> Succeeded (stable serves everything). A new pod-template
revision of the target starts a canary: Progressing (waiting for its pods, setting weights, timed pauses) /
Analyzing (an analysis step) / Paused (a pause step, an Inconclusive analysis, waiting for promotion, or
spec.paused). It ends Succeeded (promoted: the stable copy runs the new revision) or Failed (aborted: weight 0 in the
same reconcile) and then RolledBack (the canary scaled to zero). A revision that was rolled back does not start
again until it is retried or the target changes again.

With a first wave of clusters (spec.clusters) the steps run twice: in wave First the weight applies to the
first-wave clusters only (the rest stay at 0) and the background analysis judges those clusters; after the last step
comes the gate (that analysis passed; with `gate: manual` also Paused with WaveGate until promoted); then wave Rest
runs the steps again with the weight in the rest of the fleet, the first wave keeping the weight it reached (or the
step's, when higher), and a fresh background analysis over every cluster; then promotion as usual.

The analysis runs live here too (they are pure state); the controller measures what `due` names and records the
measurements before calling `advance`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tmc.api.canary import (
    ANALYZING,
    FAILED,
    FIRST_WAVE,
    PAUSED,
    PENDING,
    PROGRESSING,
    REST_WAVE,
    ROLLED_BACK,
    SUCCEEDED,
)
from tmc.api.rollback import CANARY_ABORT_TOKEN_PREFIX
from tmc.controllers.canary import analysis as a
from tmc.controllers.canary.analysis.measurement import from_timestamp, is_bad, timestamp
from tmc.controllers.canary.plan import Plan, Step

ACTIVE = (PROGRESSING, ANALYZING, PAUSED)
NORMAL, WARNING = "Normal", "Warning"
# Pause reasons (status.pauseReason).
PAUSE_STEP, INCONCLUSIVE, WAITING_FOR_PROMOTION, MANUAL = "PauseStep", "Inconclusive", "WaitingForPromotion", "Manual"
WAVE_GATE = "WaveGate"


def _micro_time(seconds: float) -> str:
    """A step's start with milliseconds (metav1.MicroTime's form): a pause of 3s measured from a start cut to the
    second would end up to a second early."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text: str) -> float:
    """Seconds of an RFC 3339 time with or without a fraction (steps written before milliseconds were kept)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if "." in text else from_timestamp(text)


def wave_weights(status: dict[str, Any]) -> tuple[int, int]:
    """(first wave's weight, rest of the fleet's weight) the routing should carry for this status."""
    weight = int(status.get("weight") or 0)
    wave = status.get("wave")
    if wave == FIRST_WAVE:
        return weight, 0
    if wave == REST_WAVE:
        return max(weight, int(status.get("firstWaveWeight") or 0)), weight
    return weight, weight


@dataclass(frozen=True)
class Observation:
    now: float
    revision: str  # the target's pod-template hash
    requested_replicas: int  # the target's spec.replicas
    canary_ready: bool  # every cluster runs the canary's desired replicas Ready (and updated)
    stable_ready: bool  # every cluster runs the stable copy's desired replicas Ready, of stableRevision
    action: str = ""  # a new action annotation: promote | promote-full | abort | retry
    paused: bool = False  # spec.paused
    first_wave: tuple[str, ...] = ()  # with spec.clusters: the placed clusters the selector matches
    action_token: str = ""  # the action's token (after "@"): an undo's abort says so


@dataclass(frozen=True)
class Note:
    type: str
    reason: str
    message: str


@dataclass
class Rollout:
    """The status being reconciled; `advance` moves it, `to_status` writes it back."""

    plan: Plan
    status: dict[str, Any]
    background: a.AnalysisRun | None = None
    step_run: a.AnalysisRun | None = None
    notes: list[Note] = field(default_factory=list)
    wake_at: float | None = None

    @classmethod
    def load(cls, plan: Plan, status: dict[str, Any] | None) -> Rollout:
        st = dict(status or {})
        if not plan.waves:  # spec.clusters removed mid-rollout: one wave, the current weight everywhere
            st.pop("wave", None)
            st.pop("firstWaveWeight", None)
        out = cls(plan, st)
        if plan.analysis is not None and st.get("analysis") and st.get("phase") in (*ACTIVE, FAILED):
            out.background = a.AnalysisRun.from_status(plan.analysis, st["analysis"])
        step = out.current_step
        if step is not None and step.kind == "analysis" and st.get("stepAnalysis") and st.get("phase") in ACTIVE:
            spec = plan.step_analysis(step)
            if spec is not None:
                out.step_run = a.AnalysisRun.from_status(spec, st["stepAnalysis"])
        return out

    # ---------------------------------------------------------------- reading

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or PENDING)

    @property
    def index(self) -> int:
        return int(self.status.get("currentStepIndex") or 0)

    @property
    def weight(self) -> int:
        return int(self.status.get("weight") or 0)

    @property
    def current_step(self) -> Step | None:
        return self.plan.steps[self.index] if self.index < len(self.plan.steps) else None

    @property
    def canary_active(self) -> bool:
        """The canary's pods should run (also while Failed: they are scaled down only after weight 0 is written)."""
        return self.phase in (*ACTIVE, FAILED) and bool(self.status.get("canaryRevision"))

    @property
    def promoting(self) -> bool:
        return bool(self.status.get("promoting"))

    def due(self, now: float) -> list[tuple[a.AnalysisRun, str]]:
        """(run, metric) pairs to measure now: the background run, and the running analysis step's."""
        out: list[tuple[a.AnalysisRun, str]] = []
        if self.phase not in ACTIVE or self.promoting:
            return out
        # The background run goes on through pauses (a failure aborts at any step); a step's run only while it is
        # the step being run.
        if self.background is not None:
            out.extend((self.background, name) for name in self.background.due(now))
        if self.step_run is not None and self.phase != PAUSED:
            out.extend((self.step_run, name) for name in self.step_run.due(now))
        return out

    def to_status(self) -> dict[str, Any]:
        out = dict(self.status)
        if self.background is not None:
            out["analysis"] = self.background.to_status()
        if self.step_run is not None:
            out["stepAnalysis"] = self.step_run.to_status()
        return out

    # ---------------------------------------------------------------- transitions

    def _set(self, phase: str, message: str, pause: str = "") -> None:
        self.status["phase"] = phase
        self.status["message"] = message
        if pause:
            self.status["pauseReason"] = pause
        else:
            self.status.pop("pauseReason", None)

    def _wake(self, at: float | None) -> None:
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at

    def _enter_step(self, index: int, now: float) -> None:
        self.status["currentStepIndex"] = index
        self.step_run = None
        self.status.pop("stepAnalysis", None)
        started = [s for s in self.status.get("steps") or [] if s.get("index") != index]
        if index < len(self.plan.steps):
            started.append({"index": index, "startedAt": _micro_time(now)})
        self.status["steps"] = started

    def _step_started(self) -> float:
        for s in self.status.get("steps") or []:
            if s.get("index") == self.index:
                return _parse_time(s["startedAt"])
        return time.time()

    def _start_canary(self, revision: str, now: float, reason: str) -> None:
        self.status.update(canaryRevision=revision, weight=0, promoting=False, canaryStartedAt=timestamp(now), steps=[])
        self.status.pop("abortedRevision", None)
        self.status.pop("analysis", None)
        self.status.pop("firstWaveWeight", None)
        if self.plan.waves:
            self.status["wave"] = FIRST_WAVE
        else:
            self.status.pop("wave", None)
        self.background = None
        self._enter_step(0, now)
        self._set(PROGRESSING, f"canary {revision} started; waiting for its pods")
        self.notes.append(
            Note(
                NORMAL, reason, f"new revision {revision}: canary started (stable {self.status.get('stableRevision')})"
            )
        )

    def abort(self, reason: str, message: str) -> None:
        """Weight 0 in every cluster now; the canary is scaled down on the next pass (Failed -> RolledBack)."""
        self.status["weight"] = 0
        self.status.pop("firstWaveWeight", None)
        self.status["abortedRevision"] = self.status.get("canaryRevision", "")
        self.status["promoting"] = False
        for run in (self.background, self.step_run):
            if run is not None and not is_bad(run.phase):
                run.terminate()
        self._set(FAILED, f"{reason}: {message}")
        self.notes.append(Note(WARNING, reason, message))

    def advance(self, obs: Observation) -> None:
        """One reconcile's worth of transitions."""
        st = self.status
        if not st.get("stableRevision"):
            st.update(stableRevision=obs.revision, replicas=max(obs.requested_replicas, 1), weight=0)
            self._set(PENDING, f"setting up the stable copy {self.plan.stable} of revision {obs.revision}")
            return
        self._track_replicas(obs)
        if self.phase == PENDING:
            if obs.stable_ready:
                self._set(SUCCEEDED, f"stable revision {st['stableRevision']} serves all traffic")
                self.notes.append(Note(NORMAL, "Initialized", f"stable copy {self.plan.stable} is ready"))
            return
        if self.phase == FAILED:
            self._set(ROLLED_BACK, f"canary {st.get('canaryRevision')} rolled back: {st.get('message', '')}")
            self.notes.append(
                Note(
                    NORMAL,
                    "RolledBack",
                    f"canary {st.get('canaryRevision')} scaled down; stable {st['stableRevision']} serves all traffic",
                )
            )
            return
        if self._handle_revision(obs):
            return
        if self._handle_action(obs):
            return
        if self.phase in ACTIVE:
            self._progress(obs)

    def _track_replicas(self, obs: Observation) -> None:
        """A replica count the user set on the target (not the controller's own write) becomes the desired count."""
        written = self.status.get("canaryReplicas")
        if obs.requested_replicas > 0 and obs.requested_replicas != written:
            self.status["replicas"] = obs.requested_replicas

    def _handle_revision(self, obs: Observation) -> bool:
        st = self.status
        rev = obs.revision
        if self.phase in ACTIVE and rev == st.get("canaryRevision"):
            return False
        if rev == st["stableRevision"]:
            if self.phase in ACTIVE:  # the user went back to the stable template mid-rollout
                st.update(weight=0, canaryRevision="", promoting=False)
                st.pop("firstWaveWeight", None)
                st.pop("wave", None)
                self.background = self.step_run = None
                self._set(SUCCEEDED, f"target reverted to the stable revision {rev}")
                self.notes.append(Note(NORMAL, "Reverted", f"target reverted to stable revision {rev}; canary stopped"))
                return True
            return False
        if rev == st.get("abortedRevision") and self.phase in (ROLLED_BACK, SUCCEEDED):
            return False  # the rolled-back revision waits for a retry or a new edit
        self._start_canary(rev, obs.now, "CanaryStarted")
        return True

    def _handle_action(self, obs: Observation) -> bool:
        action, st = obs.action, self.status
        if not action:
            return False
        if action == "retry":
            if self.phase == ROLLED_BACK and st.get("abortedRevision") == obs.revision:
                self._start_canary(obs.revision, obs.now, "Retry")
                return True
            return False
        if self.phase not in ACTIVE:
            return False
        if action == "abort":
            who = "rollout undo" if obs.action_token.startswith(CANARY_ABORT_TOKEN_PREFIX) else "the user"
            self.abort("Aborted", f"canary {st.get('canaryRevision')} aborted by {who}")
            return True
        if action == "promote-full":
            st["promoting"] = True
            self.notes.append(Note(NORMAL, "PromotedFull", "promote --full: skipping the remaining steps"))
            return False
        if action == "promote":
            reason = st.get("pauseReason")
            background = self.background
            if reason == INCONCLUSIVE and background is not None and background.phase == a.INCONCLUSIVE:
                # A human judged it: analyse afresh from here.
                self.background = a.AnalysisRun(background.spec, started_at=obs.now)
            if reason == WAITING_FOR_PROMOTION:
                st["promoting"] = True
            elif reason == WAVE_GATE:
                self._enter_rest(obs.now, "promoted by the user")
                return False
            elif self.index < len(self.plan.steps) and not (reason == INCONCLUSIVE and self.step_run is None):
                self._enter_step(self.index + 1, obs.now)
            self._set(PROGRESSING, "promoted by the user")
            self.notes.append(Note(NORMAL, "PromotedByUser", "promoted by the user: next step"))
        return False

    def _progress(self, obs: Observation) -> None:
        st = self.status
        if self.promoting:
            self._promote(obs)
            return
        if self._judge_background():
            return
        if obs.paused:
            if st.get("pauseReason") != MANUAL:
                self._set(PAUSED, "paused by the user (spec.paused)", MANUAL)
            return
        if self.phase == PAUSED and st.get("pauseReason") in (MANUAL, None):
            self._set(PROGRESSING, "resumed")
        if self.phase == PAUSED:
            return  # held for a human (pause step, Inconclusive, waiting for promotion)
        no_wave = self.plan.waves and st.get("wave") == FIRST_WAVE and not obs.first_wave
        if not obs.canary_ready or no_wave:
            started = from_timestamp(st["canaryStartedAt"]) if st.get("canaryStartedAt") else obs.now
            if obs.now - started > self.plan.deadline:
                why = "no first-wave cluster" if no_wave else "not ready"
                self.abort(
                    "ProgressDeadlineExceeded",
                    f"canary {st.get('canaryRevision')} {why} within {self.plan.deadline:g}s",
                )
                return
            if no_wave:
                self._set(PROGRESSING, "waiting for a placed cluster that spec.clusters.syncTargetSelector matches")
            else:
                self._set(PROGRESSING, "waiting for the canary's pods to be Ready in every cluster")
            self._wake(started + self.plan.deadline + 0.01)
            return
        if self.background is None and self.plan.analysis is not None:
            self.background = a.AnalysisRun(self.plan.analysis, started_at=obs.now)
        self._run_steps(obs)

    def _judge_background(self) -> bool:
        run = self.background
        if run is None:
            return False
        phase = run.phase
        if phase in (a.FAILED, a.ERROR):
            self.abort("AnalysisFailed" if phase == a.FAILED else "AnalysisError", run.message)
            return True
        if phase == a.INCONCLUSIVE and self.phase != PAUSED:
            self._set(PAUSED, run.message, INCONCLUSIVE)
            self.notes.append(Note(WARNING, "AnalysisInconclusive", run.message))
            return True
        self._wake(run.next_wakeup())
        return False

    def _run_steps(self, obs: Observation) -> None:
        while True:
            step = self.current_step
            if step is None:
                self._finish(obs)
                return
            if step.kind == "setWeight":
                if self.weight != step.weight:
                    self.status["weight"] = step.weight
                    self._set(PROGRESSING, f"step {self.index}: weight {step.weight}")
                    self.notes.append(Note(NORMAL, "TrafficWeightUpdated", self._weight_note(step.weight)))
                    self._enter_step(self.index + 1, obs.now)
                    return  # the new weight (and, by replicas, new pods) is applied before the next step
                self._enter_step(self.index + 1, obs.now)
                continue
            if step.kind == "pause":
                if step.duration is None:
                    self._set(PAUSED, f"step {self.index}: paused until promoted", PAUSE_STEP)
                    return
                until = self._step_started() + step.duration
                if obs.now < until:
                    self._set(PROGRESSING, f"step {self.index}: pause {step.duration:g}s")
                    self._wake(until)
                    return
                self._enter_step(self.index + 1, obs.now)
                continue
            if not self._analysis_step(step, obs):
                return

    def _analysis_step(self, step: Step, obs: Observation) -> bool:
        """True when the step is done and the next may run."""
        spec = self.plan.step_analysis(step)
        if spec is None:
            self._enter_step(self.index + 1, obs.now)
            return True
        if self.step_run is None:
            self.step_run = a.AnalysisRun(spec, started_at=obs.now)
        run = self.step_run
        if step.duration is not None:
            until = self._step_started() + step.duration
            if obs.now >= until and run.phase == a.RUNNING:
                run.terminate()
            else:
                self._wake(until)
        phase = run.phase
        if phase == a.SUCCESSFUL:
            self.notes.append(Note(NORMAL, "AnalysisSucceeded", f"step {self.index}: {run.message}"))
            self._enter_step(self.index + 1, obs.now)
            return True
        if phase in (a.FAILED, a.ERROR):
            self.abort("AnalysisFailed" if phase == a.FAILED else "AnalysisError", f"step {self.index}: {run.message}")
            return False
        if phase == a.INCONCLUSIVE:
            self._set(PAUSED, f"step {self.index}: {run.message}", INCONCLUSIVE)
            self.notes.append(Note(WARNING, "AnalysisInconclusive", run.message))
            return False
        self._set(ANALYZING, f"step {self.index}: {run.message}")
        self._wake(run.next_wakeup())
        return False

    def _weight_note(self, weight: int) -> str:
        wave = self.status.get("wave")
        if wave == FIRST_WAVE:
            return f"canary weight {weight} in the first wave's clusters (0 in the rest)"
        if wave == REST_WAVE:
            return f"canary weight {weight} in the rest of the fleet"
        return f"canary weight {weight} in every cluster"

    def _finish(self, obs: Observation) -> None:
        """Every step done: the background run is ended, and its verdict decides (the gate, after a first wave)."""
        run = self.background
        if run is not None and run.phase == a.RUNNING:
            run.terminate()
            if self._judge_background():
                return
        if self.status.get("wave") == FIRST_WAVE:
            if self.plan.manual_gate:
                self._set(PAUSED, "first wave done; waiting for promotion to the rest of the fleet", WAVE_GATE)
                return
            self._enter_rest(obs.now, "its analysis passed" if run is not None else "no analysis configured")
            return
        if self.plan.auto_promote:
            self.status["promoting"] = True
            self._promote(obs)
            return
        self._set(PAUSED, "all steps done; waiting for promotion", WAITING_FOR_PROMOTION)

    def _enter_rest(self, now: float, why: str) -> None:
        """Past the gate: the rest of the fleet runs the steps from the first, under a new background analysis over
        every cluster; the first wave keeps the weight it reached."""
        st = self.status
        st.update(wave=REST_WAVE, firstWaveWeight=self.weight, weight=0, steps=[])
        st.pop("analysis", None)
        self.background = None
        self._enter_step(0, now)
        self._set(PROGRESSING, f"first wave passed the gate ({why}); the rest of the fleet runs the steps")
        self.notes.append(Note(NORMAL, "WaveGatePassed", f"first wave passed the gate: {why}; rest of the fleet next"))

    def _promote(self, obs: Observation) -> None:
        """The stable copy takes the canary's template (the controller writes it); once it is Ready with it,
        traffic goes back to the stable Service and the canary scales down."""
        st = self.status
        canary = st.get("canaryRevision", "")
        if st.get("promotingRevision") != canary or not obs.stable_ready:
            st["promotingRevision"] = canary
            self._set(PROGRESSING, f"promoting {canary}: waiting for the stable copy to run it")
            return
        for run in (self.background, self.step_run):
            if run is not None and run.phase == a.RUNNING:
                run.terminate()
        st.update(stableRevision=canary, canaryRevision="", weight=0, promoting=False)
        for done in ("promotingRevision", "wave", "firstWaveWeight"):
            st.pop(done, None)
        st["currentStepIndex"] = len(self.plan.steps)
        self._set(SUCCEEDED, f"revision {canary} promoted; it serves all traffic")
        self.notes.append(Note(NORMAL, "Promoted", f"revision {canary} promoted to stable in every cluster"))
