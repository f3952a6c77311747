"""Parsing request bodies within limits: nesting depth for JSON and YAML, YAML alias expansion (billion laughs), and
large YAML bodies parsed in a worker process so that one upload cannot hold the event loop (or, through the GIL, the
thread running it) for tens of milliseconds. This module is imported by that worker, so it stays free of aiohttp."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson
import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from tmc.apimachinery.limits import MAX_DEPTH, too_deep

YAML_INLINE_BYTES = 256 * 1024  # larger YAML bodies go to the worker process
YAML_WORKERS = 1


class BodyError(ValueError):
    """A body that cannot be accepted: the message is shown to the client in a 400 Status."""


def _too_deep() -> BodyError:
    return BodyError(f"the request body is nested deeper than {MAX_DEPTH} levels")


def check_depth(obj: Any) -> None:
    """Raise BodyError when `obj` (parsed JSON) nests deeper than MAX_DEPTH."""
    if too_deep(obj):
        raise _too_deep()


def may_be_too_deep(raw: bytes) -> bool:
    """Cheap pre-check: a JSON text with at most MAX_DEPTH brackets cannot nest deeper, so most bodies skip the walk."""
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH


def parse_json(raw: bytes) -> Any:
    obj = orjson.loads(raw)
    if may_be_too_deep(raw):
        check_depth(obj)
    return obj


class _LimitedComposer(Composer):
    """PyYAML's composer driven by libyaml's event parser, counting nesting depth and the nodes that aliases expand
    to. PyYAML shares the object an alias points at, but every later consumer (JSON encoding, validation, storage)
    walks the expanded tree, so a few hundred bytes of nested aliases would become gigabytes there."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self._depth = 0
        self._expanded = 0
        self._budget = budget
        self._sizes: dict[str, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_deep()
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            self._expanded += self._sizes.get(event.anchor or "", 1)
        else:
            before = self._expanded
            self._expanded += 1
            node = super().compose_node(parent, index)
            if event.anchor is not None:
                self._sizes[event.anchor] = self._expanded - before
        if self._expanded > self._budget:
            raise BodyError(
                f"the YAML body expands to more than {self._budget} nodes through aliases (anchors referenced "
                "repeatedly); send the document without aliases"
            )
        self._depth -= 1
        return node


class _Loader(CParser, _LimitedComposer, SafeConstructor, Resolver):
    def __init__(self, raw: bytes) -> None:
        CParser.__init__(self, raw)
        # A document without aliases has at most about one node per byte; the slack covers small documents.
        _LimitedComposer.__init__(self, 2 * len(raw) + 10_000)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    # libyaml's parser also composes (in C, recursively, without limits); use the Python composer above instead.
    get_node = Composer.get_node
    get_single_node = Composer.get_single_node
    check_node = Composer.check_node

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep)
        if all(type(key) is str for key in mapping):
            return mapping
        return {_json_key(key): value for key, value in mapping.items()}


def _json_key(key: Any) -> str:
    """JSON has only string keys. Like the YAML-to-JSON conversion Kubernetes uses (sigs.k8s.io/yaml), booleans and
    numbers become their text and any other key (null, a date, a list) is an error."""
    if type(key) is str:
        return key
    if type(key) is bool:
        return "true" if key else "false"
    if type(key) is int or type(key) is float:
        return repr(key)
    raise BodyError(f"error converting YAML to JSON: unsupported map key of type {type(key).__name__}: {key!r}")


def parse_yaml(raw: bytes) -> Any:
    """The single YAML document in `raw`; BodyError for limits, yaml.YAMLError for syntax."""
    loader = _Loader(raw)
    try:
        return loader.get_single_data()
    except BodyError:
        raise
    except (ValueError, TypeError, OverflowError) as e:
        # A tag whose constructor rejects the value (`!!int x`, `!!binary` that is not base64): bad input, not a bug.
        raise BodyError(f"error converting YAML to JSON: {e}") from None
    finally:
        loader.dispose()


def _parse_yaml_in_worker(raw: bytes) -> tuple[bool, Any]:
    # Errors travel back as messages: PyYAML's exceptions carry marks that do not always pickle.
    try:
        return True, parse_yaml(raw)
    except BodyError as e:
        return False, str(e)
    except yaml.YAMLError as e:
        return False, f"error converting YAML to JSON: {str(e).splitlines()[0]}"


_pool: ProcessPoolExecutor | None = None
WORKER_NICENESS = 10


def _lower_priority() -> None:
    # Parsing a large upload is throughput work; the hub's event loop serves everyone's latency. On a busy machine the
    # kernel should give the loop the CPU first.
    os.nice(WORKER_NICENESS)


async def parse_yaml_body(raw: bytes) -> Any:
    """Parse a YAML request body: small ones inline (libyaml takes well under a millisecond), large ones in the
    worker process, whose result (a plain dict) unpickles much faster than it parses."""
    if len(raw) <= YAML_INLINE_BYTES:
        try:
            return parse_yaml(raw)
        except yaml.YAMLError as e:
            raise BodyError(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
    global _pool
    if _pool is None:
        # spawn, not fork: the hub has threads (the SQLite writer), which a forked child must not inherit.
        _pool = ProcessPoolExecutor(
            YAML_WORKERS, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
        )
    ok, value = await asyncio.get_running_loop().run_in_executor(_pool, _parse_yaml_in_worker, raw)
    if not ok:
        raise BodyError(value)
    return value


def shutdown_workers() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
