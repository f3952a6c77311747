"""How deep a request document may nest. Upstream's JSON decoder stops at 10,000 levels; this server walks objects
recursively (defaulting, validation, patches, deep copies) and Python's stack ends near 1,000 frames, and orjson
encodes at most 254 levels, so documents are cut off well below both: no real object comes close."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 200


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests containers more than `limit` deep; iterative, one visit per container."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if type(node) is dict else node if type(node) is list else ()
        stack.extend((child, depth + 1) for child in children if type(child) is dict or type(child) is list)
    return False
