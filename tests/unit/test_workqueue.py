"""The controllers' work queue: de-duplication, one key never handed out twice at once, order, and `first`."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tmc.runtime.workqueue import WorkQueue


def in_loop(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


async def drain(queue: WorkQueue) -> list[str]:
    out = []
    while len(queue):
        key = await queue.get()
        out.append(key)
        queue.done(key)
    return out


@in_loop
async def test_keys_come_out_once_in_the_order_added() -> None:
    queue = WorkQueue("t")
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert await drain(queue) == ["a", "b", "c"]


@in_loop
async def test_first_goes_ahead_and_moves_a_waiting_key() -> None:
    queue = WorkQueue("t")
    for key in ("a", "b", "c"):
        queue.add(key)
    queue.add("d", first=True)
    queue.add("c", first=True)  # already waiting: moved to the head, not added twice
    assert await drain(queue) == ["c", "d", "a", "b"]


@in_loop
async def test_a_key_added_while_processing_comes_back_after_done_keeping_first() -> None:
    queue = WorkQueue("t")
    queue.add("a")
    queue.add("b")
    key = await queue.get()
    assert key == "a"
    queue.add("a", first=True)
    assert len(queue) == 1  # not handed out twice at once: held until done
    queue.done("a")
    assert await drain(queue) == ["a", "b"]


@in_loop
async def test_a_waiting_getter_is_woken_and_a_cancelled_one_passes_its_wake_on() -> None:
    queue = WorkQueue("t")
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # both are waiting now
    queue.add("a")
    first.cancel()  # woken, but cancelled before it ran
    assert await asyncio.wait_for(second, 1) == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


@in_loop
async def test_add_after_with_first_lands_at_the_head_when_due() -> None:
    queue = WorkQueue("t")
    queue.add("a")
    queue.add_after("late", 0.01, first=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(queue) < 2 and loop.time() < deadline:
        await asyncio.sleep(0.005)
    assert await drain(queue) == ["late", "a"]
