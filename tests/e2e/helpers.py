"""Helpers of the browser tests: Chromium's flags, pages with their logs, polling."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page

# Chromium's fake devices: a camera (640x480), a microphone (48 kHz) and, with the same flag,
# a screen for getDisplayMedia (1280x720); nothing reaching out to the network.
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Background pages must keep recording at full rate when a test opens a second page.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def missing(message: str) -> None:
    """Skip for a missing tool on a developer's machine; under CI=true, fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """A lock across pytest-xdist workers (they share the machine, not the session)."""
    with (Path(tempfile.gettempdir()) / name).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class PageLog:
    """What a page said on its console and which errors it threw."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*self.console, *(f"page error: {e}" for e in self.errors)])


@dataclass
class Browser:
    """A headless Chromium (persistent context) and the pages a test opened in it."""

    context: BrowserContext
    logs: dict[Page, PageLog] = field(default_factory=dict)

    async def open(self, url: str) -> Page:
        """A new page at `url`, with its console and errors recorded."""
        page = await self.context.new_page()
        log = self.logs[page] = PageLog()
        page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: log.errors.append(str(e)))
        await page.goto(url)
        return page

    def errors(self) -> list[str]:
        """Uncaught errors of every page (a healthy page has none)."""
        return [e for log in self.logs.values() for e in log.errors]


async def until(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll `predicate` from a coroutine until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(interval)
