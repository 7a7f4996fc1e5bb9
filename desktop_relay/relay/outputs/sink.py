"""One ffmpeg fed from a session's stream, supervised: the one class behind every output, every
thumbnail tap and (next) the program's encoder.

A sink reads the StreamHub as every consumer does: whenever its ffmpeg (re)starts it is first
written the cache's headers and current GOP, so it begins at a keyframe; live reads follow
with no gap and no repeat, because no `await` separates the two. What it owns:

- the gate: tags go to ffmpeg only while one runs (else they are dropped and counted);
- a bounded queue drained by its own write loop, so a slow ffmpeg drops its own data and
  never holds up the hub, the encoder or another sink;
- the stall watch: a plain timer asks the sink whether its ffmpeg still does its work;
- restarts with a backoff when ffmpeg ends or stalls, at once (no backoff) when the stream
  itself begins anew (`restart()`), none after an error no retry can fix;
- its state (`OutputState`, changed only through `TRANSITIONS`) and an orderly teardown:
  stdin closed, then terminate, then kill, always reaped.

What differs between outputs and taps is configuration, in the hooks a subclass fills in:
which tags it takes (`_take`), what it writes first (`_start_chunks`), the command it runs
(`_command`), what counts as a stall (`_stall`) and how an ended ffmpeg is told (`_ended`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ErrorName, RelayError, ServerError
from ..ffmpeg.process import FfmpegProcess
from ..media.flv import FlvTag, TagType
from ..media.stream_cache import StreamCache
from ..status import FfmpegStats, OutputState, OutputStatus
from ..tasks import until_either
from .backoff import Backoff

log = logging.getLogger(__name__)

# One write to ffmpeg joins queued bytes up to this size (fewer pipe round trips).
WRITE_BATCH = 256 * 1024
# How often a running sink checks for a stall at most: a wake-up per sink each time.
MAX_WATCH_INTERVAL = 0.5
# After a failed write (broken pipe), how long ffmpeg gets to exit and say why.
EXIT_GRACE = 2.0

# Which state may follow which: every change goes through FfmpegSink._set_state.
TRANSITIONS: dict[OutputState, frozenset[OutputState]] = {
    OutputState.CONNECTING: frozenset(
        {OutputState.LIVE, OutputState.RECONNECTING, OutputState.STOPPED, OutputState.FAILED}
    ),
    OutputState.LIVE: frozenset(
        # LIVE -> CONNECTING: restart() on a new stream, without a failure or a backoff.
        {OutputState.CONNECTING, OutputState.RECONNECTING, OutputState.STOPPED, OutputState.FAILED}
    ),
    OutputState.RECONNECTING: frozenset(
        {OutputState.CONNECTING, OutputState.STOPPED, OutputState.FAILED}
    ),
    OutputState.STOPPED: frozenset(),
    OutputState.FAILED: frozenset(),
}
TERMINAL_STATES = frozenset({OutputState.STOPPED, OutputState.FAILED})


def check_transition(old: OutputState, new: OutputState, *, who: str) -> None:
    """Raise RuntimeError if a sink may not go from `old` to `new` (a bug, never a peer's
    doing); `who` names the sink in the message."""
    if new not in TRANSITIONS[old]:
        raise RuntimeError(f"{who}: no transition from {old} to {new}")


class OutputEvents(Protocol):
    """How an output tells whoever runs it what happens (called on the event loop). The
    method names are the events' names everywhere (observer.RelayObserver, the window's
    signals, `Relay.add_listener`)."""

    def output_changed(self, status: OutputStatus) -> None:
        """The output changed state."""

    def ffmpeg_output(self, line: str) -> None:
        """One (masked) line of the output's ffmpeg log."""


@dataclass
class Command:
    """What one ffmpeg of a sink runs: its arguments, the descriptors it inherits (closed in
    the relay once it has started), what to do if it cannot start, and its stdout reader
    (None: stdout carries `-progress`)."""

    args: list[str]
    pass_fds: tuple[int, ...] = ()
    on_failed_start: Callable[[], None] | None = None
    on_data: Callable[[bytes], None] | None = field(default=None)


class FfmpegSink:
    """An ffmpeg fed from a stream, supervised; see module doc.

    `start()` once (in the event loop), then the hub calls `feed_batch()` with every read's
    tags after the cache took them, `restart()` when a new stream begins; `await stop()`.
    Subclasses give the command and may change the hooks below.
    """

    # Errors no retry can fix: the sink fails at once.
    fatal: frozenset[ErrorName] = frozenset()
    # State changes of a sink nobody watches are logged at debug level.
    state_log_level = logging.INFO

    def __init__(
        self,
        name: str,
        cache: StreamCache,
        *,
        backoff: Backoff | None = None,
        max_queue_bytes: int,
        give_up_after: int | None = None,
        stop_timeouts: tuple[float, float] = (5.0, 2.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._cache = cache
        self._backoff = backoff or Backoff()
        self.max_queue_bytes = max_queue_bytes
        self.give_up_after = give_up_after
        self._stop_timeouts = stop_timeouts
        self._clock = clock

        self.state = OutputState.CONNECTING
        self._proc: FfmpegProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._restart = asyncio.Event()
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        # True while tags go to ffmpeg; False while it is down (they are dropped then).
        self._accepting = False
        self._started_once = False
        self._last_error: str | None = None
        self._next_attempt_at: float | None = None
        # Failed attempts since the sink was last live, and ffmpegs that ended by themselves.
        self.attempts = 0
        self.failures = 0
        self.dropped_tags = 0

    # ---- public API ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid of the current ffmpeg, if one runs."""
        return self._proc.pid if self._proc is not None else None

    def feed(self, tag: FlvTag) -> None:
        """Queue one tag; never blocks, never raises (drops instead)."""
        self.feed_batch([tag], tag.raw)

    def start(self) -> None:
        """Start the sink's task: its ffmpeg starts once the stream's header is known."""
        if self._cache.ready:
            self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sink-{self.name}")

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None:
        """Queue consecutive tags whose bytes, joined, are `raw`; never blocks, never raises
        (a sink drops instead)."""
        try:
            if not self._ready.is_set() and self._cache.ready:
                self._ready.set()
            if not self._accepting:
                # Before the first start the cache holds what matters: nothing is lost yet.
                if self._started_once:
                    self.dropped_tags += len(tags)
                return
            if self._take_whole(raw):
                proc = self._proc
                if not self._queue and proc is not None and proc.write_now(raw):
                    return
                self._enqueue(raw)
                return
            for tag in tags:
                self._take(tag)
        except Exception:  # a sink's bug must not break the hub feeding every sink
            log.exception("%s: feed failed", self.name)

    def restart(self) -> None:
        """A new stream begins (the session's encoder restarted): end the current ffmpeg and
        start again at once, from the new stream's header and first keyframe."""
        if self.state in TERMINAL_STATES:
            return
        if not self._cache.ready:
            self._ready.clear()
        self._restart.set()
        self._wake.set()

    async def stop(
        self, timeout: float | None = None, terminate_grace: float | None = None
    ) -> None:
        """End the sink: ffmpeg's stdin closes (it writes what it has), then it is terminated
        and killed if it takes longer; always reaped. Takes at most about
        `timeout + terminate_grace` seconds (the sink's defaults when not given)."""
        default_timeout, default_grace = self._stop_timeouts
        timeout = default_timeout if timeout is None else timeout
        terminate_grace = default_grace if terminate_grace is None else terminate_grace
        self._stop_timeouts = (timeout, terminate_grace)
        self._stopping.set()
        self._wake.set()
        task = self._task
        if task is None:
            if self.state not in TERMINAL_STATES:
                self._set_state(OutputState.STOPPED)
            return
        # asyncio.wait, not gather: a caller cancelled mid-stop (the relay shutting down cuts
        # a graceful stop short) must not cancel the task, which alone reaps its ffmpeg.
        done, _ = await asyncio.wait({task}, timeout=timeout)
        proc = self._proc
        if not done and proc is not None:
            # An earlier stop with longer timeouts is still waiting for ffmpeg to flush: this
            # one keeps its own bounds.
            await proc.stop(0.0, terminate_grace)
        await asyncio.wait({task})

    # ---- hooks ----------------------------------------------------------------------------

    def _command(self) -> Command:
        """The ffmpeg to run now; raise RelayError if none can be made."""
        raise NotImplementedError

    def _take_whole(self, raw: bytes) -> bool:
        """Whether a whole read may be queued as it is (no tag to drop or filter)."""
        return False

    def _take(self, tag: FlvTag) -> None:
        """Queue one live tag, or drop it."""
        self._enqueue(tag.raw)

    def _start_chunks(self) -> list[bytes]:
        """What a new ffmpeg is written first: by default the cache's headers and GOP."""
        return [self._cache.start_bytes()]

    def _can_run(self) -> bool:
        """Whether the stream as it is now is worth an ffmpeg (else wait for a new stream)."""
        return True

    def _stall(self, proc: FfmpegProcess) -> ServerError | None:
        """Why the running ffmpeg counts as stalled, or None; asked every `_watch_interval`."""
        return None

    def _watch_interval(self) -> float:
        return MAX_WATCH_INTERVAL

    def _ended(self, proc: FfmpegProcess) -> ServerError:
        """Why an ffmpeg that ended by itself (or whose stdin broke) ended."""
        return ServerError(
            ErrorName.FFMPEG_UNEXPECTED_END, f"ffmpeg ended (exit code {proc.returncode})"
        )

    def _line(self, line: str) -> None:
        """One line of ffmpeg's log."""
        log.debug("%s: ffmpeg: %s", self.name, line)

    def _stats(self, stats: FfmpegStats) -> None:
        """ffmpeg's `-progress` counters (every `-stats_period`)."""
        if self.state == OutputState.CONNECTING and (stats.frames > 0 or stats.total_size > 0):
            self._set_state(OutputState.LIVE)

    def _state_changed(self, old: OutputState, new: OutputState) -> None:
        """Called after every change of state."""

    def _connection_ended(self, proc: FfmpegProcess) -> None:
        """Called once each ffmpeg has been reaped."""

    def _describe(self, args: list[str]) -> str:
        """The command as the log may show it."""
        return " ".join(args[1:])

    # ---- state ----------------------------------------------------------------------------

    def _set_state(self, new: OutputState, *, error: str | None = None) -> None:
        """The one place a state changes: refuses impossible transitions, tells the hook."""
        old = self.state
        check_transition(old, new, who=self.name)
        if error is not None:
            self._last_error = error
        if new == OutputState.LIVE:
            self.attempts = 0
            self._backoff.connected()
        if new != OutputState.RECONNECTING:
            self._next_attempt_at = None
        self.state = new
        log.log(self.state_log_level, "%s: %s -> %s", self.name, old, new)
        self._state_changed(old, new)

    # ---- data path --------------------------------------------------------------------

    def _enqueue(self, data: bytes) -> None:
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wake.set()

    def _open_gate(self) -> None:
        """ffmpeg runs: queue the stream's start, then let live tags follow it."""
        self._queue.clear()
        self._queued_bytes = 0
        for chunk in self._start_chunks():
            self._enqueue(chunk)
        self._accepting = True
        self._wake.set()

    def _close_gate(self) -> None:
        self._accepting = False
        self._queue.clear()
        self._queued_bytes = 0

    async def _write_loop(self, proc: FfmpegProcess) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            batch = [self._queue.popleft()]
            size = len(batch[0])
            while self._queue and size < WRITE_BATCH:
                batch.append(self._queue.popleft())
                size += len(batch[-1])
            self._queued_bytes -= size
            await proc.write(batch[0] if len(batch) == 1 else b"".join(batch))

    # ---- life cycle -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._until_stopped(self._ready.wait())
                if self._stopping.is_set():
                    break
                self._restart.clear()
                if not self._can_run():
                    await self._until_stopped(self._restart.wait())
                    continue
                error = await self._connect_once()
                if self._stopping.is_set():
                    break
                if self._restart.is_set():
                    # A new stream, not a failure: no backoff, no attempt counted.
                    if self.state != OutputState.CONNECTING:
                        self._set_state(OutputState.CONNECTING)
                    continue
                await self._after_failure(error)
                if self.state in TERMINAL_STATES:
                    break  # given up: no further ffmpeg
        except Exception as exc:  # a bug here must show, and leave the sink visibly failed
            log.exception("%s failed", self.name)
            if self.state not in TERMINAL_STATES:
                self._set_state(OutputState.FAILED, error=f"internal error: {exc}")
        finally:
            self._close_gate()
            if self.state not in TERMINAL_STATES:
                self._set_state(OutputState.STOPPED)

    async def _after_failure(self, error: ServerError | None) -> None:
        """ffmpeg ended, stalled or could not start: fail for good, or wait and retry."""
        if error is not None and error.name in self.fatal:
            self._set_state(OutputState.FAILED, error=error.message)
            return
        self.attempts += 1
        self.failures += 1
        message = error.message if error else "ffmpeg ended"
        if self.give_up_after is not None and self.attempts >= self.give_up_after:
            self._set_state(OutputState.FAILED, error=message)
            return
        delay = self._backoff.next_delay()
        # Set before the change, so that observers see when the next attempt comes.
        self._next_attempt_at = self._clock() + delay
        self._set_state(OutputState.RECONNECTING, error=message)
        log.info("%s: next attempt in %.1f s (%s)", self.name, delay, message)
        await self._until_stopped(asyncio.sleep(delay))
        if not self._stopping.is_set():
            self._set_state(OutputState.CONNECTING)

    async def _until_stopped(self, aw: Awaitable[object]) -> None:
        """Wait for `aw` or for stop(), whichever comes first."""
        await until_either(aw, self._stopping)

    async def _launch(self) -> FfmpegProcess:
        """Start one ffmpeg of this sink; raise RelayError if it cannot start."""
        command = self._command()
        proc = FfmpegProcess(
            command.args, on_line=self._line, on_stats=self._stats, on_data=command.on_data
        )
        try:
            await proc.start(pass_fds=command.pass_fds)
        except RelayError:
            if command.on_failed_start is not None:
                command.on_failed_start()
            raise
        finally:
            for fd in command.pass_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)  # ffmpeg has its own copy
        log.info("%s: ffmpeg %s started: %s", self.name, proc.pid, self._describe(command.args))
        return proc

    async def _connect_once(self) -> ServerError | None:
        """Run one ffmpeg until it ends, stalls, the stream restarts or the sink stops;
        return why it ended (None: stopped or restarted)."""
        try:
            proc = await self._launch()
        except RelayError as exc:
            return exc.error
        self._proc = proc
        self._started_once = True
        # No await between the snapshot and accepting tags: the GOP and the live tags meet.
        self._open_gate()
        writer = asyncio.create_task(self._write_loop(proc), name=f"sink-writer-{self.name}")
        exited = asyncio.create_task(proc.wait(), name=f"sink-exit-{self.name}")
        stop = asyncio.create_task(self._stopping.wait())
        restart = asyncio.create_task(self._restart.wait())
        error: ServerError | None = None
        graceful = False
        # The stall check runs as a plain timer callback, not a wait with a timeout: no
        # futures and callbacks made and unmade on four tasks twice a second per sink.
        loop = asyncio.get_running_loop()
        stalled: asyncio.Future[ServerError] = loop.create_future()
        watch = self._watch_interval()
        timer: asyncio.TimerHandle | None = None

        def check() -> None:
            nonlocal timer
            found = self._stall(proc)
            if found is None:
                timer = loop.call_later(watch, check)
            elif not stalled.done():
                stalled.set_result(found)

        timer = loop.call_later(watch, check)
        try:
            ends: set[asyncio.Future[Any]] = {writer, exited, stop, restart, stalled}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            if stop.done():
                graceful = True
            elif restart.done():
                pass
            elif writer.done() or exited.done():
                if not exited.done():
                    # A failed write means ffmpeg is going: let it exit and say why.
                    await asyncio.wait({exited}, timeout=EXIT_GRACE)
                error = self._ended(proc)
            else:
                error = stalled.result()
        finally:
            if timer is not None:
                timer.cancel()
            stalled.cancel()
            self._close_gate()
            writer.cancel()
            stop.cancel()
            restart.cancel()
            await asyncio.gather(writer, stop, restart, return_exceptions=True)
            timeout, grace = self._stop_timeouts
            # Graceful only on stop(): a dead or stalled ffmpeg has nothing left to write.
            rc = await proc.stop(timeout if graceful else 0.0, grace if graceful else 1.0)
            await asyncio.gather(exited, return_exceptions=True)
            self._proc = None
            self._connection_ended(proc)
            log.log(
                logging.INFO if error is not None else self.state_log_level,
                "%s: ffmpeg %s ended (exit code %s)",
                self.name,
                proc.pid,
                rc,
            )
        return error


def is_codec_header_or_script(tag: FlvTag) -> bool:
    """Tags that pass even after a gap: what the next keyframe needs to be decoded."""
    return tag.is_sequence_header or tag.type == TagType.SCRIPT
