"""One output of a session: a `-c copy` ffmpeg pushing the relay's FLV to one target (RTMP,
RTMPS or SRT: destinations.py), or writing it to a recording file, restarting alone, with
backoff, whenever it ends or stalls.

Outputs share the session's stream but nothing else: each is its own supervised sink (sink.py)
with its own bounded queue, so a slow or dead target drops its own data and never holds up
the others. Whenever it (re)starts it begins with the cache's headers and current GOP, i.e.
at a keyframe. What is an output's own: every tag passes (after a gap only codec headers
until a keyframe), a status the client and the window see, and the target's secrets masked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import ErrorName, ServerError
from ..ffmpeg.output_args import build_recording_args
from ..ffmpeg.process import FfmpegProcess
from ..media.flv import FlvTag
from ..media.stream_cache import StreamCache
from ..status import FfmpegStats, OutputState, OutputStatus
from .backoff import Backoff
from .destinations import Destination, build_output_args, classify_exit, mask_in_text
from .recordings import create_recording
from .sink import Command, FfmpegSink, OutputEvents, is_codec_header_or_script

log = logging.getLogger(__name__)

# About 25 s of a 2.5 Mbit/s stream; a queue this full means the target is not taking it.
MAX_QUEUE_BYTES = 8 * 1024 * 1024


class StreamOutput(FfmpegSink):
    """Sends the stream's tags to one destination through its own ffmpeg; see module doc.

    `start()` once (in the event loop), then `feed_batch()` every read after the cache took
    it, then `await stop()`. `events` hears every state change and ffmpeg's log lines,
    masked; counters are read with `status()`.
    """

    fatal = frozenset({ErrorName.FFMPEG_NOT_FOUND, ErrorName.RECORDING_FAILED})

    def __init__(
        self,
        output_id: str,
        destination: Destination,
        cache: StreamCache,
        *,
        ffmpeg_binary: str,
        send_buffer_size: int = 256 * 1024,
        events: OutputEvents | None = None,
        backoff: Backoff | None = None,
        give_up_after: int | None = None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
        stall_timeout: float = 5.0,
        start_stall_timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = output_id
        self.destination = destination
        self.target = destination.masked
        super().__init__(
            f"output {output_id} ({self.target})",
            cache,
            backoff=backoff,
            max_queue_bytes=max_queue_bytes,
            give_up_after=give_up_after,
            stop_timeouts=(5.0, 2.0),
            clock=clock,
        )
        self._secrets = destination.secrets()
        self._binary = ffmpeg_binary
        self._args = (
            []
            if destination.is_recording
            else build_output_args(ffmpeg_binary, destination.url, send_buffer_size)
        )
        # A recording's current file (each (re)start makes a new one: nothing is overwritten).
        self.recording_path: str | None = None
        self._events = events
        self.stall_timeout = stall_timeout
        self.start_stall_timeout = start_stall_timeout
        # After a gap in what ffmpeg got, nothing but codec headers until a keyframe.
        self._await_keyframe = False
        self._bytes_done = 0  # total_size of connections that ended
        self._bytes_now = 0  # total_size of the current connection
        self._live_since: float | None = None
        self._ever_live = False
        self.reconnects = 0
        # Media seconds of a resumed client's backlog skipped to be back to live (catch_up.py).
        self.skipped_s = 0.0

    # ---- public API ---------------------------------------------------------------------

    def note_skipped(self, seconds: float) -> None:
        """The hub skipped `seconds` of backlog for this output to be back to live."""
        self.skipped_s += seconds

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
            kind=self.destination.kind.name,
        )

    # ---- the sink's hooks -----------------------------------------------------------------

    def _command(self) -> Command:
        if not self.destination.is_recording:
            return Command(self._args)
        path, fd = create_recording(Path(self.destination.url))  # RelayError: RECORDING_FAILED
        self.recording_path = str(path)

        def unlink() -> None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # nothing was recorded

        return Command(build_recording_args(self._binary, fd), (fd,), unlink)

    def _describe(self, args: list[str]) -> str:
        return mask_in_text(" ".join(args[1:]), self._secrets)

    def _take_whole(self, raw: bytes) -> bool:
        return not self._await_keyframe and self._queued_bytes + len(raw) <= self.max_queue_bytes

    def _take(self, tag: FlvTag) -> None:
        if self._await_keyframe:
            if tag.starts_gop:
                self._await_keyframe = False
            elif not is_codec_header_or_script(tag):
                self.dropped_tags += 1
                return
        if self._queued_bytes + len(tag.raw) > self.max_queue_bytes:
            if not self._await_keyframe:
                log.warning(
                    "%s: over %d bytes waiting; dropping until the next keyframe",
                    self.name,
                    self.max_queue_bytes,
                )
            self.dropped_tags += 1
            # Whatever follows a gap must start at a keyframe to be decodable.
            self._await_keyframe = self._cache.has_video
            return
        self._enqueue(tag.raw)

    def _start_chunks(self) -> list[bytes]:
        self._await_keyframe = self._cache.has_video and not self._cache.has_gop
        self._bytes_now = 0
        return super()._start_chunks()

    def _watch_interval(self) -> float:
        return min(super()._watch_interval(), self.stall_timeout / 4, self.start_stall_timeout / 4)

    def _stall(self, proc: FfmpegProcess) -> ServerError | None:
        limit = self.stall_timeout if proc.has_output else self.start_stall_timeout
        waited = proc.waiting_for_output()
        if waited <= limit:
            return None
        message = self.destination.kind.stall_message(waited, proc.has_output)
        return ServerError(
            ErrorName.OUTPUT_STALLED, message, "\n".join(self._masked_last_lines(proc))
        )

    def _ended(self, proc: FfmpegProcess) -> ServerError:
        return classify_exit(
            proc.returncode, self._masked_last_lines(proc), kind=self.destination.kind
        )

    def _line(self, line: str) -> None:
        if self._events is not None:
            try:
                self._events.ffmpeg_output(mask_in_text(line, self._secrets))
            except Exception:
                log.exception("%s: ffmpeg_output observer failed", self.name)

    def _stats(self, stats: FfmpegStats) -> None:
        self._bytes_now = stats.total_size
        super()._stats(stats)

    def _state_changed(self, old: OutputState, new: OutputState) -> None:
        if new == OutputState.LIVE:
            self._live_since = self._clock()
            if self._ever_live:
                self.reconnects += 1
            self._ever_live = True
        else:
            self._live_since = None
        if self._events is not None:
            try:
                self._events.output_changed(self.status())
            except Exception:
                log.exception("%s: output_changed observer failed", self.name)

    def _connection_ended(self, proc: FfmpegProcess) -> None:
        self._bytes_done += proc.progress.stats.total_size
        self._bytes_now = 0

    def _masked_last_lines(self, proc: FfmpegProcess) -> list[str]:
        return [mask_in_text(line, self._secrets) for line in proc.last_lines]
