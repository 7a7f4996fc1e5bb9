"""A `ClientLink` over one socket.io connection: ordered sends, then a clean disconnect."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio

from ..tasks import TaskSet

# How long a closing link waits for its queued events before disconnecting anyway.
_FLUSH_S = 1.0


class SocketLink:
    """One client connected over socket.io, as the relay core sees it."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        sid: str,
        remote_address: str,
        user_agent: str,
        tasks: TaskSet,
    ) -> None:
        self.sio = sio
        self.sid = sid
        self.remote_address = remote_address
        self.user_agent = user_agent
        self._tasks = tasks
        self._last: asyncio.Task[Any] | None = None

    def send_error(self, payload: dict[str, Any]) -> None:
        """Queue an `error` event."""
        self._send("error", payload)

    def send_ffmpeg_output(self, line: str) -> None:
        """Queue an `ffmpegOutput` event."""
        self._send("ffmpegOutput", line)

    def send_output_state(self, payload: dict[str, Any]) -> None:
        """Queue an `outputState` event (an addition the original client ignores)."""
        self._send("outputState", payload)

    def send_health(self, payload: list[dict[str, str]]) -> None:
        """Queue a `health` event (an addition the original client ignores)."""
        self._send("health", payload)

    def _send(self, event: str, data: Any) -> None:
        # Each emit is its own task (never blocking the core), chained so that events reach
        # the client in the order they were sent.
        previous = self._last

        async def send() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await self.sio.emit(event, data, to=self.sid)

        self._last = self._tasks.spawn(send(), name=f"send-{event}")

    async def close(self) -> None:
        """Deliver what is queued (up to a second), then disconnect the socket."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last], timeout=_FLUSH_S)
        with contextlib.suppress(Exception):
            await self.sio.disconnect(self.sid)
