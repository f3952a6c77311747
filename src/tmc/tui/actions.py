"""The dashboard's actions are the CLI's: cordon and uncordon are `tmcctl cluster cordon|uncordon`, pause, resume and
force are `kubectl tmc sync pause|resume|force` (without the wait: the dashboard sees the syncer's acknowledgement
arrive by its watch). They run in a worker thread on the CLI's blocking client; each returns the line the CLI
would print, or raises the CLI's error with its hint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tmc.cli import resources as r
from tmc.cli.ctl.cluster import cordon_target, uncordon_target
from tmc.cli.errors import CliError, explain
from tmc.cli.kubeconfig_flags import Hub
from tmc.cli.plugin.sync import pause_or_resume, request_force


@dataclass(frozen=True)
class Action:
    """One confirmed action: what the confirmation asks, and the call that does it."""

    question: str
    run: Callable[[], str]


class Actions:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lock = threading.Lock()  # the CLI's client holds one connection: one action at a time

    def _locked(self, call: Callable[[], str]) -> Callable[[], str]:
        def run() -> str:
            with self._lock:
                return call()

        return run

    def for_cluster(self, verb: str, st: dict[str, Any]) -> Action:
        name = r.name_of(st)
        calls: dict[str, tuple[str, Callable[[], str]]] = {
            "cordon": (f"Cordon cluster {name}? Nothing new is placed there.", lambda: cordon_target(self.hub, name)),
            "uncordon": (f"Uncordon cluster {name}?", lambda: uncordon_target(self.hub, name)),
            "pause": (
                f"Pause sync to cluster {name}? Its syncer holds every write.",
                lambda: pause_or_resume(self.hub, None, self.hub.namespace, None, name, pause=True),
            ),
            "resume": (
                f"Resume sync to cluster {name}?",
                lambda: pause_or_resume(self.hub, None, self.hub.namespace, None, name, pause=False),
            ),
        }
        question, call = calls[verb]
        return Action(question, self._locked(call))

    def for_workload(self, verb: str, obj: dict[str, Any]) -> Action:
        ref = f"{str(obj.get('kind') or '').lower()}/{r.name_of(obj)}"
        namespace = str(r.meta(obj).get("namespace") or "")
        what = f"{ref} in {namespace}"

        def force() -> str:
            _, keys, token = request_force(self.hub, ref, namespace, None)
            return f"{ref}: re-sync requested on {len(keys)} target(s) (token {token})"

        calls: dict[str, tuple[str, Callable[[], str]]] = {
            "pause": (
                f"Pause sync of {what} on every target?",
                lambda: pause_or_resume(self.hub, ref, namespace, None, None, pause=True),
            ),
            "resume": (
                f"Resume sync of {what} on every target?",
                lambda: pause_or_resume(self.hub, ref, namespace, None, None, pause=False),
            ),
            "force": (f"Force a re-sync of {what} on every target?", force),
        }
        question, call = calls[verb]
        return Action(question, self._locked(call))


def failure(e: Exception) -> str:
    """The CLI's wording of a failed action: message and hint, or the client error explained."""
    if isinstance(e, CliError):
        return e.message  # "what failed; what to try"
    return explain(e) or f"{type(e).__name__}: {e}"


def simulate(actions: Actions, placement: dict[str, Any]) -> dict[str, Any]:
    """`kubectl tmc debug placement`'s dry run: the Placement unchanged, with the scheduler's status.candidates."""
    from tmc.cli.plugin.placement import simulate_object

    body = {k: v for k, v in placement.items() if k != "status"}
    body.setdefault("apiVersion", "scheduling.kcp.io/v1alpha1")
    with actions._lock:
        return simulate_object(actions.hub, body, exists=True)
