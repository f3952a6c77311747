"""The one client layer: how TMC's own programs talk to a Kubernetes API server (the hub or a member cluster).

Everything that is a client of an API server uses this package and nothing else: the syncer, `tmc up`, the
benchmarks, the end-to-end harness, and the coming CLI and dashboard. It offers

- `load_kubeconfig` (kubeconfig.py), the one kubeconfig reader;
- `KubeClient` (rest.py), an asynchronous JSON client on one pooled aiohttp session, with paged lists, watches that
  notice a silent server, and `at(base_url)` for another URL on the same pool;
- `BlockingClient` (blocking.py), the same client for synchronous callers;
- `SyncClient` (sync.py), the same verbs for short-lived synchronous programs (the CLI) over the standard library's
  http.client: no event loop and no aiohttp to import; same kubeconfig, TLS settings, headers and typed errors.
  Watches stay with `KubeClient`;
- typed errors (errors.py): `ApiError` and one subclass per common Status code, `Unreachable` for no answer;
- `ListWatcher` (watch.py), list then watch with resume from the last resourceVersion;
- typed helpers for SyncTargets, Placements, Locations and Workspaces (typed.py).

It depends only on the standard library, third-party packages and `tmc.apimachinery` / `tmc.api`; metrics are
injected (`KubeClient(observe=...)`), so no caller's metrics are imported here.
"""

import importlib
from typing import TYPE_CHECKING, Any

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
from tmc.client.media import JSON, JSON_PATCH, MERGE_PATCH

if TYPE_CHECKING:
    from tmc.client.blocking import BlockingClient
    from tmc.client.rest import KubeClient, RequestObserver
    from tmc.client.sync import SyncClient
    from tmc.client.typed import LOCATION, PLACEMENT, SYNC_TARGET, WORKSPACE, ClusterKind, sync_target_path
    from tmc.client.watch import ListWatcher

# Loaded on first use: aiohttp (the asynchronous transport) and TMC's API types (the typed helpers' schemas) cost
# ~300 ms to import together, which a one-shot CLI command using `SyncClient` must not pay.
_LAZY = {
    "BlockingClient": "tmc.client.blocking",
    "KubeClient": "tmc.client.rest",
    "RequestObserver": "tmc.client.rest",
    "SyncClient": "tmc.client.sync",
    "ListWatcher": "tmc.client.watch",
    **dict.fromkeys(
        ("LOCATION", "PLACEMENT", "SYNC_TARGET", "WORKSPACE", "ClusterKind", "sync_target_path"), "tmc.client.typed"
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tmc.client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
    "SyncClient",
    "Unauthorized",
    "Unreachable",
    "error_type",
    "load_kubeconfig",
    "ssl_context",
    "sync_target_path",
]
