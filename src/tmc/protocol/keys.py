"""kcp v0.11's identity formulas, bit for bit (`ToSyncTargetKey` and pkg/syncer/shared in
https://github.com/kcp-dev/kcp/tree/v0.11.0).

These names are shared with real kcp syncers and tooling: a SyncTarget key appears in label and finalizer names on
upstream objects, and downstream namespaces are found by name when the locator index misses. Any drift would
orphan objects, so each formula is pinned by kcp's own test vectors in tests/unit/test_tmc_api.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_BASE36_UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Go's encoding/json escapes these even though JSON does not require it; the hashes see the escaped bytes.
_GO_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def base62(data: bytes) -> str:
    """Go's `new(big.Int).SetBytes(data).Text(62)`: digits 0-9a-zA-Z, big-endian, no padding ("0" for zero)."""
    n = int.from_bytes(data, "big")
    if n == 0:
        return "0"
    out: list[str] = []
    while n:
        n, r = divmod(n, 62)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def base36_lower(data: bytes) -> str:
    """`strings.ToLower(base36.EncodeBytes(data))` from martinlindhe/base36.

    That encoder writes the digits of the big-endian integer, then one "0" per leading zero byte (so a leading zero
    byte is not simply a leading zero digit), in upper case; kcp lower-cases the result.
    """
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 36)
        digits.append(_BASE36_UPPER[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return ("0" * zeros + "".join(reversed(digits))).lower()


def _sha224(text: str) -> bytes:
    return hashlib.sha224(text.encode()).digest()


def go_json(value: Any) -> str:
    """`json.Marshal` output for plain dicts/lists/strings: no spaces, keys in the given order, Go's HTML escapes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_GO_JSON_ESCAPES)


@functools.lru_cache(maxsize=65_536)
def sync_target_key(cluster: str, name: str) -> str:
    """The SyncTarget key used in `state.workload.kcp.io/<key>` and friends: base62(sha224("<cluster>:<name>")).

    `cluster` is the logical cluster of the SyncTarget's workspace; when empty the hash covers the name alone.
    (kcp v0.7 to v0.10 hashed `cluster + name` with no colon; v0.11 added it.) Cached: controllers and metrics ask
    for the keys of the same few SyncTargets all the time, and the big-integer base62 is slow.
    """
    return base62(_sha224(f"{cluster}:{name}" if cluster else name))


def namespace_locator(st_cluster: str, st_name: str, st_uid: str, cluster: str, namespace: str) -> dict[str, Any]:
    """The `kcp.io/namespace-locator` value for an upstream namespace synced to a target.

    Keys are in Go struct field order (syncTarget{cluster, name, uid}, cluster, namespace) because the downstream
    namespace name and the tenant ID hash this dict's JSON as is. `namespace` is "" for cluster-scoped objects.
    """
    return {
        "syncTarget": {"cluster": st_cluster, "name": st_name, "uid": st_uid},
        "cluster": cluster,
        "namespace": namespace,
    }


def _canonical_locator(locator: dict[str, Any]) -> dict[str, Any]:
    # A locator parsed back from an annotation may have any key order (or extra keys); rebuild Go's field order.
    target = locator.get("syncTarget") or {}
    return namespace_locator(
        str(target.get("cluster", "")),
        str(target.get("name", "")),
        str(target.get("uid", "")),
        str(locator.get("cluster", "")),
        str(locator.get("namespace", "")),
    )


def locator_json(locator: dict[str, Any]) -> str:
    """The locator as kcp serialises it into the `kcp.io/namespace-locator` annotation."""
    return go_json(_canonical_locator(locator))


def downstream_namespace(locator: dict[str, Any]) -> str:
    """Name of the downstream namespace for a locator: "kcp-" + base36lower(sha224(JSON(locator)))[:12]."""
    return "kcp-" + base36_lower(_sha224(locator_json(locator)))[:12]


def tenant_id(locator: dict[str, Any]) -> str:
    """The `kcp.io/tenant-id` label: base62(sha224(JSON(locator with namespace ""))); the JSON keeps the empty key."""
    cluster_wide = {**_canonical_locator(locator), "namespace": ""}
    return base62(_sha224(go_json(cluster_wide)))


def _uid_hash(st_uid: str) -> str:
    return base36_lower(_sha224(st_uid))[:8]


def syncer_id(st_name: str, st_uid: str) -> str:
    """`kcp-syncer-<name>-<hash8>`: names the syncer's namespace, ServiceAccount, RBAC, Secret and Deployment."""
    return f"kcp-syncer-{st_name}-{_uid_hash(st_uid)}"


def dns_id(st_name: str, st_uid: str, cluster: str) -> str:
    """`kcp-dns-<name>-<hash8 of uid>-<hash8 of workspace>`: names the per-tenant DNS objects downstream."""
    return f"kcp-dns-{st_name}-{_uid_hash(st_uid)}-{base36_lower(_sha224(cluster))[:8]}"


# Where the hub serves the syncer virtual workspace, in kcp's layout:
# https://github.com/kcp-dev/kcp/tree/v0.11.0/pkg/virtual/syncer
SYNCER_VW_PREFIX = "/services/syncer/"


def syncer_vw_path(workspace: str, st_name: str, st_uid: str) -> str:
    """`/services/syncer/<workspace>/<name>/<uid>`: one SyncTarget's view of the hub."""
    return f"{SYNCER_VW_PREFIX}{workspace}/{st_name}/{st_uid}"
