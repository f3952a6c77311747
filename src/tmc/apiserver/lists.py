"""LIST and WATCH semantics: selectors, resourceVersion / resourceVersionMatch, pagination and watch streams."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tmc.apimachinery import errors
from tmc.apimachinery.resources import ResourceInfo
from tmc.apimachinery.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from tmc.observability import metrics
from tmc.storage.interface import CompactedError, Entry, Event, Store

YIELD_EVERY = 200  # watch events sent between turns given to other work
TOO_LARGE_RV_WAIT = 3.0  # seconds a read waits for a resourceVersion newer than the store has (upstream: 3 s)
DEFAULT_WATCH_TIMEOUT = 1800.0
LIVENESS_CHECK = 1.0


@dataclass(frozen=True)
class ListQuery:
    labels: LabelSelector
    fields: FieldSelector
    limit: int
    continue_token: str
    resource_version: str
    rv_match: str

    def matches(self, obj: dict[str, Any]) -> bool:
        return self.labels.matches((obj.get("metadata") or {}).get("labels")) and self.fields.matches(obj)

    @property
    def selects_all(self) -> bool:
        return self.labels.empty and self.fields.empty


@dataclass
class ListResult:
    entries: list[Entry]
    resource_version: int
    continue_token: str
    remaining: int | None


def _list_options_invalid(field: str, message: str) -> errors.StatusError:
    return errors.invalid(
        "ListOptions",
        "",
        [{"type": "FieldValueInvalid", "field": field, "message": message}],
        "meta.k8s.io",
        message=f'ListOptions.meta.k8s.io "" is invalid: {field}: {message}',
    )


_INTEGER = re.compile(r"[+-]?[0-9]+")
_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True}
_BOOLS.update({"0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False})


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """An integer query parameter as Go's strconv.ParseInt reads it; anything else is 400 naming the parameter."""
    text = query.get(name, "")
    if not text:
        return None
    if not _INTEGER.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
        raise errors.bad_request(f'invalid {name} "{text}": strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def query_bool(query: Mapping[str, str], name: str) -> bool | None:
    """A boolean query parameter as Go's strconv.ParseBool reads it."""
    text = query.get(name, "")
    if not text:
        return None
    value = _BOOLS.get(text)
    if value is None:
        raise errors.bad_request(f'invalid {name} "{text}": strconv.ParseBool: parsing "{text}": invalid syntax')
    return value


def parse_list_query(query: Mapping[str, str], info: ResourceInfo, watch: bool) -> ListQuery:
    if "sendInitialEvents" in query:
        message = "Forbidden: sendInitialEvents is not supported by this server; use list then watch"
        raise _list_options_invalid("sendInitialEvents", message)
    limit = query_int(query, "limit") or 0
    if limit < 0:
        raise errors.bad_request(f"invalid limit {limit}: must not be negative")
    query_int(query, "timeoutSeconds")
    rv = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    cont = query.get("continue", "")
    if rv and not (rv.isascii() and rv.isdigit()):
        raise errors.bad_request(f"invalid resourceVersion {rv!r}: must be an unsigned integer")
    if match:
        if match not in ("Exact", "NotOlderThan"):
            raise _list_options_invalid("resourceVersionMatch", f'Unsupported value: "{match}"')
        if watch and match == "Exact":
            raise _list_options_invalid("resourceVersionMatch", "Forbidden: Exact is not allowed for watch")
        if not rv:
            raise _list_options_invalid(
                "resourceVersionMatch", "Forbidden: resourceVersionMatch requires resourceVersion"
            )
        if cont:
            raise _list_options_invalid("resourceVersionMatch", "Forbidden: not allowed with continue")
        if match == "Exact" and rv == "0":
            raise _list_options_invalid(
                "resourceVersionMatch", 'Forbidden: "Exact" is not allowed with resourceVersion "0"'
            )
    if cont and rv and rv != "0":
        raise _list_options_invalid(
            "resourceVersion", "Forbidden: specifying resource version is not allowed when using continue"
        )
    return ListQuery(
        labels=parse_label_selector(query.get("labelSelector", "")),
        fields=parse_field_selector(query.get("fieldSelector", ""), info.kind),
        limit=limit,
        continue_token=cont,
        resource_version=rv,
        rv_match=match,
    )


def encode_continue(rv: int, start_after: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start_after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        rv, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: the provided continue parameter is malformed") from None
    if not start.startswith(prefix):
        raise errors.bad_request("continue key is not valid: it does not belong to this list")
    return rv, start


async def _wait_for(store: Store, rev: int) -> None:
    if rev > store.current_rev and not await store.wait_for_rev(rev, TOO_LARGE_RV_WAIT):
        raise errors.timeout(
            f"Too large resource version: {rev}, current: {store.current_rev}",
            [{"type": "ResourceVersionTooLarge", "message": f"Too large resource version: {rev}"}],
        )


async def list_entries(store: Store, prefix: str, q: ListQuery) -> ListResult:
    at_rev = 0
    start_after = ""
    if q.continue_token:
        at_rev, start_after = decode_continue(q.continue_token, prefix)
    elif q.resource_version and q.resource_version != "0":
        rv = int(q.resource_version)
        await _wait_for(store, rv)
        # Legacy rule: a limited list at a specific resourceVersion is an exact read.
        if q.rv_match == "Exact" or (not q.rv_match and q.limit > 0):
            at_rev = rv
    list_rv = at_rev or store.current_rev
    try:
        source = store.list(prefix, start_after=start_after, at_rev=at_rev if at_rev != store.current_rev else 0)
        entries: list[Entry] = []
        last_key = ""
        more = False
        for entry in source:
            if not q.selects_all and not q.matches(entry.obj):
                continue
            if q.limit and len(entries) >= q.limit:
                more = True
                break
            entries.append(entry)
            last_key = entry.key
    except CompactedError as e:
        if q.continue_token:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. You can start "
                "a new list without the continue parameter, or use the continue token in this response to "
                "retrieve the remainder of the results. Continuing with the provided token results in an "
                "inconsistent list - objects that were created, modified, or deleted between the time the first "
                "chunk was returned and now may show up in the list."
            ) from None
        raise errors.expired(f"too old resource version: {e.requested} ({e.compacted})") from None
    token = encode_continue(list_rv, last_key) if more else ""
    remaining: int | None = None
    if more and q.selects_all:
        remaining = store.count(prefix, start_after=last_key)
    return ListResult(entries, list_rv, token, remaining)


def _transition(event: Event, q: ListQuery) -> str | None:
    """The event type this watcher sees: selector changes turn MODIFIED into ADDED or DELETED."""
    if q.selects_all:
        return event.type
    if event.type == "ADDED":
        return "ADDED" if q.matches(event.obj) else None
    if event.type == "DELETED":
        return "DELETED" if q.matches(event.obj) else None
    now = q.matches(event.obj)
    before = event.prev is not None and q.matches(event.prev)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


EncodeEvent = Callable[[str, Entry | Event], bytes]


async def serve_watch(
    request: web.Request,
    store: Store,
    info: ResourceInfo,
    prefix: str,
    q: ListQuery,
    encode: EncodeEvent,
    *,
    bookmark_interval: float,
    stopping: asyncio.Event,
) -> web.StreamResponse:
    """Answer a watch request with a chunked stream of `watch_stream` events (empty encodings are skipped). It ends
    on timeoutSeconds, hub shutdown, or when the client disconnects, even if no event is due: aiohttp does not cancel
    handlers whose client went away (and must not, for writes), so the stream checks the connection itself."""
    query = request.query
    seconds = query_int(query, "timeoutSeconds")
    timeout = float(seconds) if seconds else None
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    stream = watch_stream(
        store,
        info,
        prefix,
        q,
        encode,
        bookmarks=query.get("allowWatchBookmarks", "") in ("1", "true", "True"),
        timeout=timeout,
        bookmark_interval=bookmark_interval,
        stopping=stopping,
        alive=lambda: client_connected(request),
    )
    registered = metrics.WATCHERS.labels(info.group, info.version, info.kind)
    registered.inc()
    try:
        async for chunk in stream:
            if chunk:
                await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass  # The client went away; there is nobody left to answer.
    finally:
        registered.dec()
        # Unregisters the storage watch however the handler ends (disconnect, error, cancellation at shutdown).
        await stream.aclose()
    return response


def client_connected(request: web.Request) -> bool:
    """False once the request's connection is closed or closing. aiohttp drops `request.transport` (public API)
    when the connection is lost, and offers no public callback for it, so long-running handlers poll this."""
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def watch_stream(
    store: Store,
    info: ResourceInfo,
    prefix: str,
    q: ListQuery,
    encode: EncodeEvent,
    *,
    bookmarks: bool,
    timeout: float | None,
    bookmark_interval: float,
    stopping: asyncio.Event,
    alive: Callable[[], bool] | None = None,
) -> AsyncGenerator[bytes, None]:
    """Newline-delimited watch events: initial ADDEDs when no resourceVersion is given, then changes."""
    rv = q.resource_version
    start = store.current_rev if rv in ("", "0") else int(rv)
    try:
        watch = store.watch(prefix, start)
    except CompactedError as e:
        status = errors.expired(f"too old resource version: {e.requested} ({e.compacted})").to_status()
        yield orjson.dumps({"type": "ERROR", "object": status}) + b"\n"
        return
    try:
        if rv in ("", "0"):
            # Listed right after the watch is registered, with no await in between, so no change falls in a gap.
            initial = [e for e in store.list(prefix) if q.selects_all or q.matches(e.obj)]
            for i, entry in enumerate(initial, 1):
                yield encode("ADDED", entry)
                if i % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        timeout = timeout if timeout else DEFAULT_WATCH_TIMEOUT * (1 + random.random())
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + bookmark_interval
        last_rev = start
        sent = 0
        while True:
            now = loop.time()
            if now >= deadline or stopping.is_set() or (alive is not None and not alive()):
                return
            if bookmarks and now >= next_bookmark:
                yield _bookmark(info, last_rev)
                next_bookmark = now + bookmark_interval
            # Wake at least every LIVENESS_CHECK seconds to notice shutdown and clients that went away.
            wait = min(deadline, next_bookmark if bookmarks else deadline, now + LIVENESS_CHECK) - now
            try:
                event = await watch.next(max(wait, 0.001))
            except StopAsyncIteration:
                return
            if event is None:
                continue
            last_rev = event.rev
            seen_as = _transition(event, q)
            if seen_as is not None:
                yield encode(seen_as, event)
            sent += 1
            if sent % YIELD_EVERY == 0:
                # A replayed backlog (or a burst) is all buffered: without this the whole of it would be encoded
                # and written without giving other requests a turn. Order is unchanged; this only pauses.
                await asyncio.sleep(0)
    finally:
        watch.close()


def _bookmark(info: ResourceInfo, rev: int) -> bytes:
    obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(rev)}}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"
