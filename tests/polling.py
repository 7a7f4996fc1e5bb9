"""Waiting for a condition inside a coroutine, without blocking the relay's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something true, and return that; AssertionError after
    `timeout` seconds. (Never `qtbot.waitUntil` in a coroutine: asyncio stalls.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")
