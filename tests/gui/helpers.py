"""Waiting inside coroutine tests: qtbot.waitUntil would spin a nested Qt loop and stall
asyncio, so poll with asyncio.sleep instead (Qt events keep flowing on qasync's loop)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from PySide6.QtWidgets import QMessageBox

from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.sessions.model import SessionRow
from desktop_relay.relay import RelayServer

from ..replay import Streamer


async def until(
    predicate: Callable[[], object], timeout: float = 15.0, what: str = "the condition"
) -> None:
    """Return once `predicate()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def only_row(window: MainWindow) -> SessionRow:
    """The window's single session row."""
    rows = list(window.model.rows())
    assert len(rows) == 1, f"expected one row, got {len(rows)}"
    return rows[0]


def frames(row: SessionRow) -> int:
    """ffmpeg's frame counter as the row has it."""
    return row.status.ffmpeg.frames_sent if row.status.ffmpeg else 0


def relay_url(window: MainWindow) -> str:
    """The http URL of the window's relay (listening on 127.0.0.1)."""
    address = window.controller.listen_address
    assert address is not None, "the relay is not listening"
    return f"http://127.0.0.1:{address[1]}"


@contextlib.asynccontextmanager
async def streaming(window: MainWindow) -> AsyncIterator[Streamer]:
    """A connected browser-like client of the window's relay, disconnected at the end."""
    streamer = await Streamer(relay_url(window)).connect()
    try:
        yield streamer
    finally:
        await streamer.close()


OpenWindow = Callable[..., contextlib.AbstractAsyncContextManager[MainWindow]]


def row_of(window: MainWindow, session_id: str) -> SessionRow:
    """A session's row (fails if the window has none)."""
    row = window.model.row(session_id)
    assert row is not None, f"no row for session {session_id}"
    return row


def pid_of(window: MainWindow, session_id: str) -> int | None:
    """The pid of a session's ffmpeg, as its row shows it."""
    ff = row_of(window, session_id).status.ffmpeg
    return ff.pid if ff else None


async def new_session(window: MainWindow, streamer: Streamer, name: str) -> str:
    """Start a session named `name` and return its id once the window shows it."""
    assert await streamer.start({"framerate": 30, "name": name}), streamer.errors
    await until(
        lambda: any(r.status.name == name for r in window.model.rows()), 5, f"the row of {name}"
    )
    return next(r.status.uuid for r in window.model.rows() if r.status.name == name)


async def accept_restart(
    window: MainWindow, question: QMessageBox, before: object, timeout: float = 10.0
) -> RelayServer:
    """Answer Yes to the window's restart question; returns the new relay once it listens."""
    question.button(QMessageBox.StandardButton.Yes).click()
    await until(
        lambda: window.controller.relay not in (None, before) and window.controller.running,
        timeout,
        "the relay to restart",
    )
    relay = window.controller.relay
    assert relay is not None
    return relay
