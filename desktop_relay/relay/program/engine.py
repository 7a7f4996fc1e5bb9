"""The program's parent side: an asyncio object that runs the worker process, feeds it the
sources' FLV without blocking the event loop, and hands back the program's FLV and state."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from .config import Corner, PipSize, ProgramConfig, ProgramState
from .errors import SlateImageError
from .flv_tags import HEADER_SIZE, TAG_AUDIO, FlvFormatError, StreamStart, Tag, TagSplitter

logger = logging.getLogger(__name__)

_BATCH_BYTES = 256 * 1024
"""The most of one source's tags sent at once (a keyframe or two of a 720p source)."""


class ProgramError(RuntimeError):
    """The program's worker is not running, or did not answer."""


class ProgramCommandError(ValueError):
    """The worker refused a command (the message says why)."""


class _SourceQueue:
    """One source's tags on their way to the worker, bounded: past the bound the oldest tags
    are dropped up to the next keyframe, so the worker's decoder always resumes on a picture
    it can decode and the program shows the source late by at most the bound."""

    def __init__(self) -> None:
        self.splitter = TagSplitter()
        self.items: deque[Tag | StreamStart] = deque()
        self.bytes = 0
        self.dropped_bytes = 0
        self.need_keyframe = False  # after a drop that left no keyframe to resume from
        self.broken = False  # bytes that are not FLV: wait for the next FLV header
        self.logged_drop_at = -1e9

    def add(self, tags: list[Tag | StreamStart], max_bytes: int, max_ms: int) -> int:
        """Queue tags; past `max_bytes` or `max_ms` of media, drop the oldest to the next
        keyframe. Returns the bytes dropped."""
        for tag in tags:
            if isinstance(tag, StreamStart):
                self.need_keyframe = False  # a new stream starts on a keyframe
                self.items.append(tag)
                continue
            if self.need_keyframe and tag.type != TAG_AUDIO and not tag.is_config:
                if not tag.is_keyframe:
                    continue
                self.need_keyframe = False
            self.items.append(tag)
            self.bytes += len(tag.raw)
        dropped = 0
        while self.items and (self.bytes > max_bytes or self.span_ms() > max_ms):
            step = self.drop_to_keyframe()
            dropped += step
            if step == 0:
                break
        return dropped

    def span_ms(self) -> int:
        """Media time between the oldest and the newest queued frame (0 across a restart,
        whose timestamps start over)."""
        first = next((t for t in self.items if isinstance(t, Tag) and not t.is_config), None)
        last = self.items[-1] if self.items else None
        if first is None or not isinstance(last, Tag):
            return 0
        return max(0, last.timestamp_ms - first.timestamp_ms)

    def drop_to_keyframe(self) -> int:
        """Drop the oldest media tags up to the next keyframe (sequence headers and restart
        markers stay); returns the bytes dropped."""
        kept: list[Tag | StreamStart] = []
        dropped = 0
        seen_media = False
        while self.items:
            item = self.items[0]
            if isinstance(item, Tag) and item.is_keyframe and seen_media:
                break
            self.items.popleft()
            if isinstance(item, Tag) and not item.is_config:
                seen_media = True
                dropped += len(item.raw)
            else:
                kept.append(item)
        if not self.items:
            self.need_keyframe = True
        self.items.extendleft(reversed(kept))
        self.bytes -= dropped
        self.dropped_bytes += dropped
        return dropped


class ProgramEngine:
    """Runs the program's worker process and talks to it.

    Sources are fed with `feed` (synchronous, never blocks: meant to be called from a
    StreamHub tap); the program's FLV arrives through `on_output` and its state through
    `on_state`, both called in the event loop's thread. Commands are coroutines that return the
    state once the worker has applied them.
    """

    def __init__(
        self,
        config: ProgramConfig | None = None,
        *,
        on_output: Callable[[bytes], None] | None = None,
        on_state: Callable[[ProgramState], None] | None = None,
        on_monitor: Callable[[str, int, int, bytes], None] | None = None,
        max_queue_bytes: int = 4 * 1024 * 1024,
        max_queue_ms: int = 1000,
        command_timeout: float = 5.0,
        start_timeout: float = 30.0,
    ) -> None:
        """`max_queue_bytes` and `max_queue_ms` bound each source's queue to the worker (the
        oldest tags are dropped to the next keyframe past either)."""
        self.config = config or ProgramConfig()
        self._on_output = on_output
        self._on_state = on_state
        self._on_monitor = on_monitor
        self._max_bytes = max_queue_bytes
        self._max_ms = max_queue_ms
        self._command_timeout = command_timeout
        self._start_timeout = start_timeout
        self._state = ProgramState(auto_return=self.config.auto_return)
        self._header = bytearray()
        self._header_splitter: TagSplitter | None = TagSplitter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: BaseProcess | None = None
        self._to_worker: Connection | None = None
        self._from_worker: Connection | None = None
        self._cond = threading.Condition()
        self._queues: dict[str, _SourceQueue] = {}
        self._control: deque[tuple[Any, ...]] = deque()
        self._closing = False
        self._stopping = False
        self._sender: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._requests = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ProgramState]] = {}
        self._first_state: asyncio.Future[None] | None = None
        self._stopped: asyncio.Event | None = None
        self._output_bytes = 0

    # ---- what it shows -------------------------------------------------------------------

    @property
    def state(self) -> ProgramState:
        """The state the worker last reported (running=False before start and after stop)."""
        return self._state

    @property
    def running(self) -> bool:
        """The worker process is up."""
        return self._process is not None and self._process.is_alive() and self._state.running

    @property
    def header(self) -> bytes:
        """The program's FLV header, metadata and sequence headers: what an output that joins
        late must be sent before the live tags (then from a keyframe)."""
        return bytes(self._header)

    @property
    def output_bytes(self) -> int:
        """The program's FLV bytes received so far."""
        return self._output_bytes

    def dropped_bytes(self, source_id: str) -> int:
        """Bytes of `source_id` dropped because the worker fell behind."""
        with self._cond:
            queue = self._queues.get(source_id)
            return 0 if queue is None else queue.dropped_bytes

    @property
    def pid(self) -> int | None:
        """The worker's process id (for CPU figures), None when not started."""
        return None if self._process is None else self._process.pid

    # ---- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker and wait for its first state (it is then composing the slate).

        Raises ProgramError if it does not come up within `start_timeout`."""
        if self._process is not None:
            raise ProgramError("the program is already started")
        self._loop = asyncio.get_running_loop()
        self._first_state = self._loop.create_future()
        self._stopped = asyncio.Event()
        # 'spawn' on every system: a fork of a process with threads (the relay's, Qt's) can
        # deadlock, and it is the only method Windows and macOS apps have. A frozen app must
        # call multiprocessing.freeze_support() first thing in main.
        # Imported here: the worker's modules load PyAV (FFmpeg's libraries), which a relay
        # without a program never needs.
        from .worker import worker_main

        ctx = multiprocessing.get_context("spawn")
        child_in, to_worker = ctx.Pipe(duplex=False)
        from_worker, child_out = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=worker_main,
            args=(self.config, child_in, child_out),
            name="desktop-relay-program",
            # A daemon is terminated when the relay exits, should stop() never run.
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        # The child holds its own copies: closing ours makes a dead peer an EOF on each side.
        child_in.close()
        child_out.close()
        self._process, self._to_worker, self._from_worker = process, to_worker, from_worker
        self._closing = False
        self._sender = threading.Thread(target=self._send_loop, name="program-sender", daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="program-reader", daemon=True)
        self._sender.start()
        self._reader.start()
        try:
            await asyncio.wait_for(asyncio.shield(self._first_state), self._start_timeout)
        except (TimeoutError, ProgramError) as e:
            await self.stop()
            raise ProgramError(f"the program's worker did not start: {e}") from None
        logger.info(
            "program worker %s started (%dx%d, %d fps, %d kbit/s, x264 %s)",
            process.pid,
            self.config.width,
            self.config.height,
            self.config.fps,
            self.config.video_bitrate // 1000,
            self.config.x264_preset,
        )

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker: ask it to finish its stream, then terminate, then kill it; always
        reap it. Safe to call twice, or after the worker died."""
        process = self._process
        if process is None:
            return
        self._stopping = True
        with self._cond:
            self._control.append(("stop",))
            self._cond.notify()
        assert self._stopped is not None
        try:
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout)
            except TimeoutError:
                logger.warning("the program's worker did not finish within %.1f s", timeout)
            # After "stopped" it only has to exit.
            await asyncio.to_thread(process.join, 1.0)
            if process.is_alive():
                logger.warning("terminating the program's worker %s", process.pid)
                process.terminate()
                await asyncio.to_thread(process.join, 2.0)
        finally:
            # Also when stop() itself is cancelled (the relay shutting down): no worker may
            # outlive the engine, so the last resort runs synchronously.
            if process.is_alive():
                logger.warning("killing the program's worker %s", process.pid)
                process.kill()
                process.join(5.0)
            self._cleanup(process)

    def _cleanup(self, process: BaseProcess) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        # The sender first, before its connection is closed under a send it is in: it ends
        # promptly on _closing or a broken pipe (the worker is gone).
        if self._sender is not None:
            self._sender.join(2.0)
        for conn in (self._to_worker, self._from_worker):
            if conn is not None:
                conn.close()
        # The reader ends on EOF (the worker is gone) or the closed connection.
        if self._reader is not None:
            self._reader.join(2.0)
        if process.exitcode is not None:
            process.close()
        self._process = self._to_worker = self._from_worker = None
        self._sender = self._reader = None
        self._fail_pending("the program stopped")
        self._stopping = False
        with self._cond:
            self._queues.clear()
            self._control.clear()
        if self._state.running:
            self._set_state(replace(self._state, running=False))

    async def __aenter__(self) -> ProgramEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- sources ---------------------------------------------------------------------------

    def feed(self, source_id: str, data: bytes) -> None:
        """Bytes of a source's normalized FLV (H.264 + AAC), in order, in any chunking. A new
        FLV header starts the source over. Never blocks; drops the oldest tags (to the next
        keyframe) past the queue's bound. Bytes that are not FLV are logged and ignored up to
        the next FLV header."""
        with self._cond:
            if self._closing or self._process is None:
                return
            queue = self._queues.get(source_id)
            if queue is None:
                queue = self._queues[source_id] = _SourceQueue()
            try:
                tags = queue.splitter.feed(data)
            except FlvFormatError as e:
                if not queue.broken:
                    logger.warning("program source %s: %s; waiting for a new stream", source_id, e)
                queue.broken = True
                return
            queue.broken = False
            dropped = queue.add(tags, self._max_bytes, self._max_ms)
            now = time.monotonic()
            # Once per 5 s: an overloaded worker would otherwise log at the sources' tag rate.
            if dropped and now - queue.logged_drop_at >= 5.0:
                queue.logged_drop_at = now
                logger.info(
                    "program source %s: the worker is behind; dropped %d bytes (%d in all)",
                    source_id,
                    dropped,
                    queue.dropped_bytes,
                )
            self._cond.notify()

    def restart_source(self, source_id: str) -> None:
        """The source's stream starts over (the next bytes begin with an FLV header): what a
        StreamHub tap's restart() should call."""
        with self._cond:
            queue = self._queues.get(source_id)
            if queue is not None:
                queue.splitter.reset()

    async def remove_source(self, source_id: str) -> ProgramState:
        """Forget a source (its session ended). On air, it leaves the slate ("ended") until it
        comes back (auto return) or another take."""
        with self._cond:
            self._queues.pop(source_id, None)
        return await self._command("remove", source=source_id)

    # ---- commands --------------------------------------------------------------------------

    async def take(self, source_id: str | None, fade_ms: int = 0) -> ProgramState:
        """Put a source on air: a cut, or a fade of `fade_ms` milliseconds (None: the slate)."""
        return await self._command("take", source=source_id, fade_ms=fade_ms)

    async def pip(
        self, source_id: str | None, corner: Corner = "br", size: PipSize = "1/4"
    ) -> ProgramState:
        """Show a second source in a corner (None: no picture-in-picture)."""
        return await self._command("pip", source=source_id, corner=corner, size=size)

    async def slate(self, on: bool) -> ProgramState:
        """Cover the program with the slate, or uncover it."""
        return await self._command("slate", on=on)

    async def set_auto_return(self, on: bool) -> ProgramState:
        """Whether a stalled source on air comes back by itself when it recovers."""
        return await self._command("auto_return", on=on)

    async def pin_audio(self, source_id: str | None) -> ProgramState:
        """Keep one source's sound on the program whatever picture is on air (None: the sound
        follows the picture)."""
        return await self._command("audio_pin", source=source_id)

    async def set_slate_image(self, path: Path | None) -> ProgramState:
        """Use a PNG/JPEG as the slate (None: the built-in card). Raises SlateImageError naming
        the problem; the slate then stays as it was."""
        return await self._command("slate_image", path=path)

    async def set_monitors(self, on: bool, sources: tuple[str, ...] = ()) -> ProgramState:
        """Send small pictures (`on_monitor`: "program" or a source id, width, height, RGB) of
        the program and of `sources` a few times a second, or stop."""
        return await self._command("monitors", on=on, sources=tuple(sources))

    async def refresh(self) -> ProgramState:
        """The worker's state now."""
        return await self._command("state")

    async def _command(self, name: str, **args: Any) -> ProgramState:
        if self._loop is None or self._closing or not self.running:
            raise ProgramError(self._state.error or "the program is not running")
        request_id = next(self._requests)
        future: asyncio.Future[ProgramState] = self._loop.create_future()
        self._pending[request_id] = future
        with self._cond:
            self._control.append(("cmd", request_id, name, args))
            self._cond.notify()
        try:
            return await asyncio.wait_for(future, self._command_timeout)
        except TimeoutError:
            raise ProgramError(f"the program's worker did not answer {name!r}") from None
        finally:
            self._pending.pop(request_id, None)

    # ---- threads ---------------------------------------------------------------------------

    def _send_loop(self) -> None:
        """The sender thread: commands first, then one source's queued tags at a time, in
        turn (a slow worker blocks this thread on the pipe, never the event loop). Taking one
        batch at a time leaves the rest in the bounded queues, where the drop policy applies:
        what the worker gets late is at most one batch older than the bound."""
        conn = self._to_worker
        assert conn is not None
        turn = 0
        while True:
            messages: list[tuple[Any, ...]] = []
            with self._cond:
                while not (
                    self._closing or self._control or any(q.items for q in self._queues.values())
                ):
                    self._cond.wait()
                if self._closing:
                    return
                messages.extend(self._control)
                self._control.clear()
                ready = [sid for sid, q in self._queues.items() if q.items]
                if ready:
                    turn += 1
                    source_id = ready[turn % len(ready)]
                    messages.extend(self._batch(source_id, self._queues[source_id]))
            try:
                for message in messages:
                    conn.send(message)
            except (OSError, ValueError, TypeError):
                # The worker is gone (the reader reports it), or a sender that outlived its
                # join had the connection closed under it (its handle None: TypeError).
                return

    @staticmethod
    def _batch(source_id: str, queue: _SourceQueue) -> list[tuple[Any, ...]]:
        """Messages for up to _BATCH_BYTES of a source's queued tags (under the lock)."""
        messages: list[tuple[Any, ...]] = []
        blob: list[bytes] = []
        size = 0
        while queue.items and size < _BATCH_BYTES:
            item = queue.items.popleft()
            if isinstance(item, Tag):
                blob.append(item.raw)
                size += len(item.raw)
                queue.bytes -= len(item.raw)
                continue
            if blob:
                messages.append(("data", source_id, b"".join(blob)))
                blob = []
            messages.append(("restart", source_id))
        if blob:
            messages.append(("data", source_id, b"".join(blob)))
        return messages

    def _read_loop(self) -> None:
        """The reader thread: the worker's messages, handed to the event loop."""
        conn = self._from_worker
        loop = self._loop
        assert conn is not None and loop is not None
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError, ValueError):
                break
            try:
                loop.call_soon_threadsafe(self._on_message, message)
            except RuntimeError:
                return  # the loop is closed
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(self._on_worker_gone)

    # ---- in the event loop -----------------------------------------------------------------

    def _on_message(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "flv":
            data: bytes = message[1]
            self._output_bytes += len(data)
            self._capture_header(data)
            if self._on_output is not None:
                self._on_output(data)
        elif kind == "state":
            state: ProgramState = message[1]
            self._set_state(state)
            first = self._first_state
            if first is not None and not first.done():
                if state.running:
                    first.set_result(None)
                else:
                    first.set_exception(ProgramError(state.error or "the worker failed"))
        elif kind == "ack":
            _, request_id, error, state = message
            self._set_state(state)
            future = self._pending.get(request_id)
            if future is not None and not future.done():
                if error is None:
                    future.set_result(state)
                elif error[0] == "SlateImageError":
                    future.set_exception(SlateImageError(error[1]))
                else:
                    future.set_exception(ProgramCommandError(error[1]))
        elif kind == "monitor":
            if self._on_monitor is not None:
                _, which, width, height, rgb = message
                self._on_monitor(which, width, height, rgb)
        elif kind == "stopped" and self._stopped is not None:
            self._stopped.set()

    def _on_worker_gone(self) -> None:
        if self._stopped is not None:
            self._stopped.set()
        process = self._process
        code = None if process is None else process.exitcode
        if self._state.running and not self._stopping:
            logger.error("the program's worker exited (code %s)", code)
            self._set_state(
                replace(self._state, running=False, error=f"the worker exited (code {code})")
            )
        elif self._state.running:
            self._set_state(replace(self._state, running=False))
        self._fail_pending("the program's worker exited")
        if self._first_state is not None and not self._first_state.done():
            self._first_state.set_exception(ProgramError(f"the worker exited (code {code})"))

    def _set_state(self, state: ProgramState) -> None:
        self._state = state
        if self._on_state is not None:
            self._on_state(state)

    def _fail_pending(self, why: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ProgramError(why))
        self._pending.clear()

    def _capture_header(self, data: bytes) -> None:
        """Keep the program's header (up to its first audio or video frame) for late joiners."""
        splitter = self._header_splitter
        if splitter is None:
            return
        try:
            tags = splitter.feed(data)
        except FlvFormatError:
            self._header_splitter = None
            return
        for tag in tags:
            if isinstance(tag, StreamStart):
                # The worker's first message holds the whole file header.
                self._header[:] = data[:HEADER_SIZE]
            elif tag.is_config:
                self._header += tag.raw
            else:
                self._header_splitter = None
                return
