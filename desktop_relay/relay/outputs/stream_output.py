"""One output of a session: a `-c copy` ffmpeg pushing the relay's FLV to one RTMP(S) target,
or writing it to a recording file, restarting alone, with backoff, whenever it ends or stalls.

Outputs share the session's stream but nothing else: each has its own bounded queue drained
by its own task, so a slow or dead target drops its own data and never holds up the others.
Whenever it (re)starts it begins with the cache's headers and current GOP, i.e. at a keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..errors import ErrorName, RelayError, ServerError
from ..ffmpeg.encoder_args import Output
from ..ffmpeg.output_args import build_output_args, build_recording_args
from ..ffmpeg.process import FfmpegProcess, classify_exit
from ..media.flv import FlvTag, TagType
from ..media.stream_cache import StreamCache
from ..outputs.backoff import Backoff
from ..outputs.recordings import create_recording
from ..status import FfmpegStats, OutputState, OutputStatus
from ..targets import mask_in_text, mask_target, secrets_of
from ..tasks import until_either

log = logging.getLogger(__name__)

# About 25 s of a 2.5 Mbit/s stream; a queue this full means the target is not taking it.
MAX_QUEUE_BYTES = 8 * 1024 * 1024
# One write to ffmpeg joins queued tags up to this size (fewer pipe round trips).
_WRITE_BATCH = 256 * 1024
# How often a running output checks for a stall: a wake-up per output each time, so not
# more often than the stall timeouts need (a quarter of the shorter one, at most 0.5 s).
_MAX_WATCH_INTERVAL = 0.5
# After a failed write (broken pipe), how long ffmpeg gets to exit and say why.
_EXIT_GRACE = 2.0
# Errors no retry can fix: the output fails at once.
_FATAL = frozenset({ErrorName.FFMPEG_NOT_FOUND, ErrorName.RECORDING_FAILED})


_TRANSITIONS: dict[OutputState, frozenset[OutputState]] = {
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


class StreamOutput:
    """Sends the stream's tags to one RTMP(S) target through its own ffmpeg; see module doc.

    `start()` once (in the event loop), then `feed()` every tag after the cache took it, then
    `await stop()`. Observers get every state change through `on_change`, and ffmpeg's log
    lines, masked, through `on_line`; counters are read with `status()`.
    """

    def __init__(
        self,
        output_id: str,
        output: Output,
        cache: StreamCache,
        *,
        ffmpeg_binary: str,
        send_buffer_size: int = 256 * 1024,
        on_change: Callable[[OutputStatus], None] | None = None,
        on_line: Callable[[str], None] | None = None,
        backoff: Backoff | None = None,
        give_up_after: int | None = None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
        stall_timeout: float = 5.0,
        start_stall_timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = output_id
        self.output = output
        self.is_recording = output.is_file
        self.target = "recording" if output.is_file else (mask_target(output.url) or "****")
        self._secrets = [] if output.is_file else secrets_of(output.url)
        self._cache = cache
        self._binary = ffmpeg_binary
        self._args = (
            [] if output.is_file else build_output_args(ffmpeg_binary, output.url, send_buffer_size)
        )
        # A recording's current file (each (re)start makes a new one: nothing is overwritten).
        self.recording_path: str | None = None
        self._on_change = on_change
        self._on_line = on_line
        self._backoff = backoff or Backoff()
        self.give_up_after = give_up_after
        self.max_queue_bytes = max_queue_bytes
        self.stall_timeout = stall_timeout
        self.start_stall_timeout = start_stall_timeout
        self._clock = clock
        self._stop_timeouts = (5.0, 2.0)

        self.state = OutputState.CONNECTING
        self._proc: FfmpegProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._restart = asyncio.Event()
        self._cache_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        # True while tags go to ffmpeg; False while it is down (they are dropped then).
        self._accepting = False
        # After a gap in what ffmpeg got, nothing but codec headers until a keyframe.
        self._await_keyframe = False
        self._bytes_done = 0  # total_size of connections that ended
        self._bytes_now = 0  # total_size of the current connection
        self._live_since: float | None = None
        self._ever_live = False
        self._next_attempt_at: float | None = None
        self._last_error: str | None = None
        self.reconnects = 0
        self.attempts = 0
        self.dropped_tags = 0
        # Media seconds of a resumed client's backlog skipped to be back to live (catch_up.py).
        self.skipped_s = 0.0
        self._started_once = False

    # ---- public API ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid of the current ffmpeg, if one runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the output's task: it connects once the stream's header is known."""
        if self._cache.ready:
            self._cache_ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"output-{self.id}")

    def feed(self, tag: FlvTag) -> None:
        """Queue one tag for this output; never blocks, never raises (drops instead)."""
        try:
            self._feed(tag)
        except Exception:  # an output's bug must not break the session feeding every output
            log.exception("output %s: feed failed", self.id)

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None:
        """Queue consecutive tags whose bytes, joined, are `raw` (one write for all of them
        when nothing is to be dropped); never blocks, never raises."""
        try:
            if (
                self._accepting
                and not self._await_keyframe
                and self._queued_bytes + len(raw) <= self.max_queue_bytes
                and self._cache_ready.is_set()
            ):
                proc = self._proc
                if not self._queue and proc is not None and proc.write_now(raw):
                    return
                self._queue.append(raw)
                self._queued_bytes += len(raw)
                self._wake.set()
                return
            for tag in tags:
                self._feed(tag)
        except Exception:  # an output's bug must not break the session feeding every output
            log.exception("output %s: feed failed", self.id)

    def note_skipped(self, seconds: float) -> None:
        """The hub skipped `seconds` of backlog for this output to be back to live."""
        self.skipped_s += seconds

    async def stop(self, timeout: float = 5.0, terminate_grace: float = 2.0) -> None:
        """End the output: ffmpeg's stdin closes (it sends what it has), then it is terminated
        and killed if it takes longer; always reaped. Takes at most about
        `timeout + terminate_grace` seconds."""
        self._stop_timeouts = (timeout, terminate_grace)
        self._stopping.set()
        self._wake.set()
        task = self._task
        if task is None:
            if self.state != OutputState.FAILED:
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

    def restart(self) -> None:
        """A new stream begins (the session's encoder restarted): end the current connection
        and connect again at once, from the new stream's header and first keyframe."""
        if self.state in (OutputState.STOPPED, OutputState.FAILED):
            return
        if not self._cache.ready:
            self._cache_ready.clear()
        if self._proc is None:
            return  # not connected: the next attempt starts from the new stream anyway
        self._restart.set()
        self._wake.set()

    @property
    def speed(self) -> float | None:
        """How fast the live connection sends, as a factor of real time (None: not live, or
        not known yet)."""
        proc = self._proc
        if self.state != OutputState.LIVE or proc is None:
            return None
        return proc.progress.stats.speed

    def status(self) -> OutputStatus:
        """A frozen snapshot of this output."""
        now = self._clock()
        live = self.state == OutputState.LIVE and self._live_since is not None
        next_in = None
        if self.state == OutputState.RECONNECTING and self._next_attempt_at is not None:
            next_in = max(0.0, self._next_attempt_at - now)
        return OutputStatus(
            id=self.id,
            target=self.target,
            state=self.state,
            bytes_sent=self._bytes_done + self._bytes_now,
            uptime_s=now - self._live_since if live and self._live_since is not None else 0.0,
            reconnects=self.reconnects,
            attempts=self.attempts,
            next_attempt_in_s=next_in,
            last_error=self._last_error,
            pid=self.pid,
            dropped_tags=self.dropped_tags,
            recording_path=self.recording_path,
            skipped_s=self.skipped_s,
        )

    # ---- state ----------------------------------------------------------------------------

    def _set_state(self, new: OutputState, *, error: str | None = None) -> None:
        """The one place a state changes: refuses impossible transitions, tells observers."""
        old = self.state
        if new not in _TRANSITIONS[old]:
            raise RuntimeError(f"output {self.id}: no transition from {old} to {new}")
        now = self._clock()
        if error is not None:
            self._last_error = error
        if new == OutputState.LIVE:
            self._live_since = now
            if self._ever_live:
                self.reconnects += 1
            self._ever_live = True
            self.attempts = 0
            self._backoff.connected()
        else:
            self._live_since = None
        if new != OutputState.RECONNECTING:
            self._next_attempt_at = None
        self.state = new
        log.info("output %s (%s): %s -> %s", self.id, self.target, old, new)
        if self._on_change is not None:
            try:
                self._on_change(self.status())
            except Exception:
                log.exception("output %s: on_change observer failed", self.id)

    # ---- data path --------------------------------------------------------------------

    def _feed(self, tag: FlvTag) -> None:
        if not self._cache_ready.is_set() and self._cache.ready:
            self._cache_ready.set()
        if not self._accepting:
            # Before the first start the cache holds what matters: nothing is lost yet.
            if self._started_once:
                self.dropped_tags += 1
            return
        if self._await_keyframe:
            if tag.starts_gop:
                self._await_keyframe = False
            elif not (tag.is_sequence_header or tag.type == TagType.SCRIPT):
                self.dropped_tags += 1
                return
        size = len(tag.raw)
        if self._queued_bytes + size > self.max_queue_bytes:
            if not self._await_keyframe:
                log.warning(
                    "output %s: over %d bytes waiting; dropping until the next keyframe",
                    self.id,
                    self.max_queue_bytes,
                )
            self.dropped_tags += 1
            # Whatever follows a gap must start at a keyframe to be decodable.
            self._await_keyframe = self._cache.has_video
            return
        self._queue.append(tag.raw)
        self._queued_bytes += size
        self._wake.set()

    def _open_gate(self) -> None:
        """ffmpeg runs: queue the headers and GOP, then let live tags follow them."""
        start = self._cache.start_bytes()
        self._queue.clear()
        self._queue.append(start)
        self._queued_bytes = len(start)
        self._await_keyframe = self._cache.has_video and not self._cache.has_gop
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
            while self._queue and size < _WRITE_BATCH:
                batch.append(self._queue.popleft())
                size += len(batch[-1])
            self._queued_bytes -= size
            await proc.write(batch[0] if len(batch) == 1 else b"".join(batch))

    def _line(self, line: str) -> None:
        if self._on_line is not None:
            try:
                self._on_line(mask_in_text(line, self._secrets))
            except Exception:
                log.exception("output %s: on_line observer failed", self.id)

    def _stats(self, stats: FfmpegStats) -> None:
        self._bytes_now = stats.total_size
        if self.state == OutputState.CONNECTING and (stats.frames > 0 or stats.total_size > 0):
            self._set_state(OutputState.LIVE)

    # ---- life cycle -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._until_stopped(self._cache_ready.wait())
            while not self._stopping.is_set():
                error = await self._connect_once()
                if self._stopping.is_set():
                    break
                if self._restart.is_set():
                    # Not a failure: no backoff, no attempt counted.
                    self._restart.clear()
                    if self.state != OutputState.CONNECTING:
                        self._set_state(OutputState.CONNECTING)
                    await self._until_stopped(self._cache_ready.wait())
                    continue
                if error is not None and error.name in _FATAL:
                    self._set_state(OutputState.FAILED, error=error.message)
                    return
                self.attempts += 1
                message = error.message if error else "ffmpeg ended"
                if self.give_up_after is not None and self.attempts >= self.give_up_after:
                    self._set_state(OutputState.FAILED, error=message)
                    return
                delay = self._backoff.next_delay()
                # Set before the change, so that observers see when the next attempt comes.
                self._next_attempt_at = self._clock() + delay
                self._set_state(OutputState.RECONNECTING, error=message)
                log.info("output %s: next attempt in %.1f s (%s)", self.id, delay, message)
                await self._until_stopped(asyncio.sleep(delay))
                if not self._stopping.is_set():
                    self._set_state(OutputState.CONNECTING)
        except Exception as exc:  # a bug here must show, and leave the output visibly failed
            log.exception("output %s failed", self.id)
            if self.state not in (OutputState.STOPPED, OutputState.FAILED):
                self._set_state(OutputState.FAILED, error=f"internal error: {exc}")
        finally:
            self._close_gate()
            if self.state not in (OutputState.STOPPED, OutputState.FAILED):
                self._set_state(OutputState.STOPPED)

    async def _until_stopped(self, aw: Awaitable[object]) -> None:
        """Wait for `aw` or for stop(), whichever comes first."""
        await until_either(aw, self._stopping)

    async def _connect_once(self) -> ServerError | None:
        """Run one ffmpeg until it ends, stalls or the output stops; return why it ended."""
        args, fd = self._args, None
        if self.is_recording:
            try:
                path, fd = create_recording(Path(self.output.url))
            except RelayError as exc:
                return exc.error
            self.recording_path = str(path)
            args = build_recording_args(self._binary, fd)
        proc = FfmpegProcess(args, on_line=self._line, on_stats=self._stats)
        try:
            await proc.start(pass_fds=(fd,) if fd is not None else ())
        except RelayError as exc:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # nothing was recorded
            return exc.error
        finally:
            if fd is not None:
                os.close(fd)  # ffmpeg has its own copy
        self._proc = proc
        self._bytes_now = 0
        self._started_once = True
        log.info(
            "output %s: ffmpeg %s started: %s",
            self.id,
            proc.pid,
            mask_in_text(" ".join(args[1:]), self._secrets),
        )
        # No await between the snapshot and accepting tags: the GOP and the live tags meet.
        self._open_gate()
        writer = asyncio.create_task(self._write_loop(proc), name=f"output-writer-{self.id}")
        exited = asyncio.create_task(proc.wait(), name=f"output-exit-{self.id}")
        stop = asyncio.create_task(self._stopping.wait())
        restart = asyncio.create_task(self._restart.wait())
        error: ServerError | None = None
        graceful = False
        # The stall check runs as a plain timer callback, not a wait with a timeout: no
        # futures and callbacks made and unmade on four tasks twice a second per output.
        loop = asyncio.get_running_loop()
        stalled: asyncio.Future[ServerError] = loop.create_future()
        watch = min(_MAX_WATCH_INTERVAL, self.stall_timeout / 4, self.start_stall_timeout / 4)
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
                    await asyncio.wait({exited}, timeout=_EXIT_GRACE)
                error = classify_exit(
                    proc.returncode, self._masked_last_lines(proc), to_file=self.is_recording
                )
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
            # Graceful only on stop(): a dead or stalled connection has nothing left to send.
            rc = await proc.stop(timeout if graceful else 0.0, grace if graceful else 1.0)
            await asyncio.gather(exited, return_exceptions=True)
            self._bytes_done += proc.progress.stats.total_size
            self._bytes_now = 0
            self._proc = None
            log.info("output %s: ffmpeg %s ended (exit code %s)", self.id, proc.pid, rc)
        return error

    def _stall(self, proc: FfmpegProcess) -> ServerError | None:
        limit = self.stall_timeout if proc.has_output else self.start_stall_timeout
        waited = proc.waiting_for_output()
        if waited <= limit:
            return None
        if self.is_recording:
            message = f"The recording stopped being written: nothing for {waited:.0f} s"
        elif proc.has_output:
            message = f"The RTMP server stopped taking the stream: nothing sent for {waited:.0f} s"
        else:
            message = f"The RTMP server did not take the stream within {waited:.0f} s"
        return ServerError(
            ErrorName.OUTPUT_STALLED, message, "\n".join(self._masked_last_lines(proc))
        )

    def _masked_last_lines(self, proc: FfmpegProcess) -> list[str]:
        return [mask_in_text(line, self._secrets) for line in proc.last_lines]
