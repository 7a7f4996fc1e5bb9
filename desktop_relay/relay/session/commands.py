"""The typed commands on a session's one ordered queue, and the queue that answers them.

Chunks, a stop and a target change share one queue so that chunks reach the encoder in
arrival order and a stop or a target change happens between two chunks. Every command
carries a future: its sender awaits it, and it resolves with None (done) or the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import FFMPEG_NOT_RUNNING, RelayError, ServerError
from ..outputs.destinations import Destination


@dataclass
class ChunkCommand:
    """Browser bytes to write, in arrival order."""

    future: asyncio.Future[ServerError | None]
    data: bytes

    @property
    def size(self) -> int:
        """Bytes this command holds while it waits (counted in `buffered_bytes`)."""
        return len(self.data)


@dataclass
class StopCommand:
    """End the stream once the chunks queued before it are written."""

    future: asyncio.Future[ServerError | None]

    @property
    def size(self) -> int:
        """Bytes this command holds while it waits: none."""
        return 0


@dataclass
class RetargetCommand:
    """Send the stream to other destinations, between two chunks."""

    future: asyncio.Future[ServerError | None]
    outputs: list[Destination] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes this command holds while it waits: none."""
        return 0


Command = ChunkCommand | StopCommand | RetargetCommand


class CommandQueue:
    """A session's FIFO of commands. It counts the bytes that wait (queued, or in the
    writer's hand), and makes sure that every command it took is answered exactly once."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Command] = asyncio.Queue()
        self._current: Command | None = None
        self.buffered_bytes = 0

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in hand: a chunk written now keeps the order."""
        return self._current is None and self._queue.empty()

    def put(self, command: Command) -> None:
        """Queue `command` behind everything already queued."""
        self.buffered_bytes += command.size
        self._queue.put_nowait(command)

    async def take(self) -> Command:
        """The next command; it is in hand until `finish` (or `answer_all`) answers it."""
        command = self._current = await self._queue.get()
        return command

    async def serve(self, handle: Callable[[Command], Awaitable[None]]) -> ServerError | None:
        """Hand every command to `handle`, in order, and answer it, until a stop was handled
        (None) or `handle` raised RelayError (that error, which its command got as its ack).

        The commands queued behind a stop are answered FFMPEG_NOT_RUNNING: they arrived
        after it, and are not for this stream. Cancelled mid-command, the command stays in
        hand for `answer_all`.
        """
        while True:
            command = await self.take()
            try:
                await handle(command)
            except RelayError as exc:
                self.finish(command, exc.error)
                return exc.error
            self.finish(command, None)
            if isinstance(command, StopCommand):
                self.answer_all(FFMPEG_NOT_RUNNING)
                return None

    def finish(self, command: Command, result: ServerError | None) -> None:
        """`command` was handled (or failed with `result`): its sender hears `result`."""
        if self._current is command:
            self._current = None
        self._answer(command, result)

    def answer_all(self, error: ServerError) -> None:
        """Nothing more will be handled: the command in hand and every queued one resolve
        with `error`, so that no sender waits for an ack that never comes."""
        current, self._current = self._current, None
        if current is not None:
            self._answer(current, error)
        while not self._queue.empty():
            self._answer(self._queue.get_nowait(), error)

    def _answer(self, command: Command, result: ServerError | None) -> None:
        self.buffered_bytes -= command.size
        if not command.future.done():
            command.future.set_result(result)
