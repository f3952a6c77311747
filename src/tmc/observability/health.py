"""Health checks: named yes/no answers with a reason, which `/readyz` reports. Whatever can fail while the process
still runs (a controller whose tasks died; later the storage backend and leader election) registers one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str = ""
