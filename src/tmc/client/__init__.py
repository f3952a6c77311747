"""The one client layer: how TMC's own programs talk to a Kubernetes API server (the hub or a member cluster).

Everything that is a client of an API server uses this package and nothing else: the syncer, `tmc up`, the
benchmarks, the end-to-end harness, and the coming CLI and dashboard. It offers

- `load_kubeconfig` (kubeconfig.py), the one kubeconfig reader;
- `KubeClient` (rest.py), an asynchronous JSON client on one pooled aiohttp session, with paged lists, watches that
  notice a silent server, and `at(base_url)` for another URL on the same pool;
- `BlockingClient` (blocking.py), the same client for synchronous callers;
- typed errors (errors.py): `ApiError` and one subclass per common Status code, `Unreachable` for no answer;
- `ListWatcher` (watch.py), list then watch with resume from the last resourceVersion;
- typed helpers for SyncTargets, Placements, Locations and Workspaces (typed.py).

It depends only on the standard library, third-party packages and `tmc.apimachinery` / `tmc.api`; metrics are
injected (`KubeClient(observe=...)`), so no caller's metrics are imported here.
"""

from typing import TYPE_CHECKING, Any

from tmc.client.blocking import BlockingClient
from tmc.client.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
    Unreachable,
    error_type,
)
from tmc.client.kubeconfig import Kubeconfig, load_kubeconfig, ssl_context
from tmc.client.rest import JSON, JSON_PATCH, MERGE_PATCH, KubeClient, RequestObserver
from tmc.client.watch import ListWatcher

if TYPE_CHECKING:
    from tmc.client.typed import LOCATION, PLACEMENT, SYNC_TARGET, WORKSPACE, ClusterKind, sync_target_path

# The typed helpers import TMC's API types (and their schemas, ~150 ms); a CLI command that only lists must not pay
# for them, so they load on first use.
_TYPED = frozenset({"LOCATION", "PLACEMENT", "SYNC_TARGET", "WORKSPACE", "ClusterKind", "sync_target_path"})


def __getattr__(name: str) -> Any:
    if name in _TYPED:
        from tmc.client import typed

        return getattr(typed, name)
    raise AttributeError(f"module 'tmc.client' has no attribute {name!r}")


__all__ = [
    "JSON",
    "JSON_PATCH",
    "LOCATION",
    "MERGE_PATCH",
    "PLACEMENT",
    "SYNC_TARGET",
    "WORKSPACE",
    "AlreadyExists",
    "ApiError",
    "BlockingClient",
    "ClusterKind",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeClient",
    "Kubeconfig",
    "ListWatcher",
    "NotFound",
    "RequestObserver",
    "Unauthorized",
    "Unreachable",
    "error_type",
    "load_kubeconfig",
    "ssl_context",
    "sync_target_path",
]
