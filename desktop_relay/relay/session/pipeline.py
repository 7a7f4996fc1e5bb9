"""A started session's media path: one encoder ffmpeg, its outputs, and their recovery.

    browser bytes -> encoder ffmpeg (H.264 copied or encoded once, audio AAC) -> FLV on stdout
                  -> StreamHub (FLV framing, headers + current GOP) -> outputs (RTMP, recording)

The encoder is restarted when it dies or stalls, fed the stream's header and the latest
keyframe cluster (keyframes.py), so the new one outputs at once; the outputs then reconnect
onto its new stream. Outputs restart on their own (stream_output.py). Nothing here knows the
client: the session is told through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Protocol

from ..config import RelayConfig, StartConfig
from ..errors import ErrorName, RelayError, ServerError
from ..ffmpeg.encoder_args import build_encoder_args, send_buffer_size, video_mode
from ..ffmpeg.process import FfmpegProcess, exit_error
from ..ffmpeg.video_encoders import SOFTWARE
from ..media.audio_meter import AudioMeter
from ..media.container import InputFormat
from ..media.flv import FlvError
from ..media.keyframes import KeyframeTracker, video_track_number
from ..outputs.destinations import Destination
from ..outputs.sink import MAX_WATCH_INTERVAL, OutputEvents
from ..outputs.stream_hub import StreamHub
from ..status import FfmpegStats, FfmpegStatus

log = logging.getLogger(__name__)

# An encoder that keeps dying is not helped by more restarts: this many within the window
# and the session fails with the last reason.
MAX_ENCODER_RESTARTS = 3
RESTART_WINDOW_S = 60.0


class PipelineEvents(OutputEvents, Protocol):
    """How a pipeline tells its session what happens (all called on the event loop):
    its outputs' events (`output_changed`, `ffmpeg_output`, encoder lines too) and these."""

    def session_log(self, message: str) -> None:
        """A relay event for the operator's log."""

    def encoder_stats(self, stats: FfmpegStats) -> None:
        """The encoder's `-progress` counters."""

    def pipeline_failed(self, error: ServerError) -> None:
        """The encoder cannot be kept running."""


class Pipeline:
    """The encoder and outputs of one started session (see module doc)."""

    def __init__(
        self,
        *,
        binary: str,
        video_encoder: str = SOFTWARE,
        fmt: InputFormat,
        config: StartConfig,
        relay_config: RelayConfig,
        events: PipelineEvents,
    ) -> None:
        self._binary = binary
        self._format = fmt
        self._config = config
        self._events = events
        # None when the video is copied: no encoder to fall back from.
        self._video_encoder = video_encoder if video_mode(fmt) == "transcode" else None
        self._args = build_encoder_args(binary, fmt, config, video_encoder)
        stall = relay_config.stall_timeout
        self._stall_timeout = stall
        self._start_stall_timeout = relay_config.start_stall_timeout
        # A quarter of the shorter stall timeout, at most 0.5 s: each check is a wake-up.
        self._watch_interval = min(
            MAX_WATCH_INTERVAL,
            (stall if stall is not None else 1e9) / 4,
            relay_config.start_stall_timeout / 4,
        )
        self.hub = StreamHub(
            ffmpeg_binary=binary,
            send_buffer_size=send_buffer_size(config),
            stall_timeout=stall if stall is not None else 1e9,
            start_stall_timeout=relay_config.start_stall_timeout,
            events=events,
            catch_up_lag_s=relay_config.catch_up_lag_s,
        )
        self._keyframes = (
            KeyframeTracker(video_track_number(fmt.header)) if fmt.container == "matroska" else None
        )
        self.meter = AudioMeter()
        self._proc: FfmpegProcess | None = None
        self._lock = asyncio.Lock()
        self._restarts: deque[float] = deque()
        self._gave_up: ServerError | None = None  # why the encoder was given up on
        self._stopping = False
        # The watchdog: a timer while all is well, a task while it restarts the encoder.
        self._timer: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.last_status: FfmpegStatus | None = None

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self, outputs: list[Destination], first_bytes: bytes) -> None:
        """Spawn the encoder, start the outputs, and write the stream's first bytes."""
        for output in outputs:
            self.hub.add(output)
        try:
            async with self._lock:
                await self._spawn()
                if self._keyframes is not None:
                    self._keyframes.feed(first_bytes[len(self._format.header) :])
                await self._write_locked(first_bytes)
        finally:
            # Also when the first write failed: an encoder that died at once (a hardware
            # encoder that cannot open) is then restarted by the watchdog, not left dead.
            if self._proc is not None and not self._stopping:
                self._arm()

    async def write(self, data: bytes) -> None:
        """Write the browser's next bytes (waits while the encoder's pipe is full: this is the
        session's backpressure). Raises RelayError only when the encoder cannot go on."""
        if self._keyframes is not None:
            # Before the write: a restart replays the latest cluster, this chunk included.
            self._keyframes.feed(data)
        async with self._lock:
            await self._write_locked(data)

    def write_now(self, data: bytes) -> bool:
        """`write` without waiting, when nothing is in the way: no write, restart or stop
        under way and the encoder's pipe keeping up. False (nothing done) otherwise: then
        `write`. A pipe found broken later is `write`'s to handle: the restart's replay from
        the latest keyframe holds these bytes too."""
        proc = self._proc
        if proc is None or self._stopping or self._lock.locked() or not proc.write_now(data):
            return False
        if self._keyframes is not None:
            self._keyframes.feed(data)
        return True

    async def stop(self, timeout: float, terminate_grace: float = 3.0) -> None:
        """End gracefully: the encoder flushes its tail into the outputs, then each output
        sends what it has. Bounded by about 2 x (timeout + terminate_grace)."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        proc = self._proc
        if proc is not None:
            # wait() inside stop() also reads stdout to its end: the tail reaches the hub.
            await proc.stop(timeout, terminate_grace)
            self._remember(proc)
            self._events.session_log(
                f"encoder ffmpeg {proc.pid} ended (exit code {proc.returncode})"
            )
        await self.hub.stop(timeout, terminate_grace)

    # ---- outputs ------------------------------------------------------------------------

    async def replace_outputs(self, outputs: list[Destination]) -> None:
        """Send the stream to `outputs` instead: new ones start from the latest keyframe."""
        old = [o.id for o in self.hub.outputs()]
        for output in outputs:
            self.hub.add(output)
        await asyncio.gather(*(self.hub.remove(i) for i in old))

    def add_output(self, output: Destination) -> str:
        """One more destination; returns its id."""
        return self.hub.add(output)

    async def remove_output(self, output_id: str) -> bool:
        """Stop sending to one destination."""
        return await self.hub.remove(output_id)

    def expect_backlog(self) -> None:
        """The client resumed its session: live outputs catch up (see catch_up.py)."""
        self.hub.expect_backlog()

    # ---- status -------------------------------------------------------------------------

    def encoder_status(self, options: dict[str, object]) -> FfmpegStatus | None:
        """The encoder's snapshot (the original's `ffmpeg` status), or its last one."""
        proc = self._proc
        if proc is None:
            return self.last_status
        return self._status_of(proc, options)

    def _status_of(self, proc: FfmpegProcess, options: dict[str, object]) -> FfmpegStatus:
        stats = proc.progress.stats
        return FfmpegStatus(
            status=proc.state,
            frames_sent=stats.frames,
            last_frame_sent_time=stats.last_frame_time,
            pid=proc.pid,
            options=dict(options),
            stats=stats,
            mode=video_mode(self._format),
            input_format=self._format.description,
            video_encoder=self._video_encoder,
        )

    def _remember(self, proc: FfmpegProcess) -> None:
        self.last_status = self._status_of(proc, self._config.to_options())

    # ---- the encoder --------------------------------------------------------------------

    async def _spawn(self) -> None:
        proc = FfmpegProcess(
            self._args,
            on_line=self._events.ffmpeg_output,
            on_stats=self._events.encoder_stats,
            on_data=self._on_data,
            take_line=self.meter.feed_line,
        )
        await proc.start()
        self._proc = proc
        self._events.session_log(
            f"encoder ffmpeg {proc.pid} started: {self._format.description}, "
            f"video {video_mode(self._format)}"
            f"{f' ({self._video_encoder})' if self._video_encoder else ''}, "
            f"command: {' '.join(self._args[1:])}"
        )

    def _on_data(self, data: bytes) -> None:
        try:
            self.hub.feed(data)
        except FlvError as exc:
            # Our own encoder's output unreadable: a bug or a dying process; restart it.
            log.error("encoder output unreadable: %s", exc)
            if self._proc is not None:
                self._proc.kill()

    async def _write_locked(self, data: bytes) -> None:
        proc = self._proc
        if proc is None:
            # The encoder gave up (restarts spent): a write that comes after the watchdog saw
            # it die fails for the same reason, whichever of the two tells the client first.
            raise RelayError(
                self._gave_up
                or ServerError(ErrorName.FFMPEG_NOT_RUNNING, "The encoder is not running")
            )
        try:
            await proc.write(data)
        except RelayError as exc:
            # A write error, or an encoder already seen to have exited (FfmpegProcess says
            # "not running" then): either way it died under the session, which goes on.
            died = exc.error.name == ErrorName.FFMPEG_WRITE_ERROR or (
                exc.error.name == ErrorName.FFMPEG_NOT_RUNNING and proc.returncode is not None
            )
            if not died or self._stopping:
                raise
            # The encoder died under the write: a new one gets this chunk in its replay.
            await self._restart_locked(proc, await self._exit_reason(proc))

    async def _exit_reason(self, proc: FfmpegProcess) -> ServerError:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
        return exit_error(proc.returncode, list(proc.last_lines))

    async def _restart_locked(self, dead: FfmpegProcess, reason: ServerError) -> None:
        """Replace a dead or stalled encoder (under the lock); raises when it keeps dying."""
        while self._proc is dead and not self._stopping:
            await dead.stop(0.0, 1.0)
            self._remember(dead)
            now = time.monotonic()
            while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
                self._restarts.popleft()
            if len(self._restarts) >= MAX_ENCODER_RESTARTS:
                self._proc = None
                self._gave_up = reason
                raise RelayError(reason)
            self._restarts.append(now)
            self._events.session_log(
                f"encoder ffmpeg {dead.pid} ended ({reason.message}); restarting it"
            )
            if self._video_encoder not in (None, SOFTWARE):
                # Hardware encoders fail for reasons a restart does not cure (a driver reset,
                # the GPU's session limit): the rest of this session goes to libx264.
                self._events.session_log(
                    f"the hardware encoder {self._video_encoder} failed: "
                    f"encoding with {SOFTWARE} from now on"
                )
                self._video_encoder = SOFTWARE
                self._args = build_encoder_args(self._binary, self._format, self._config)
            self.hub.new_stream()
            await self._spawn()
            proc = self._proc
            assert proc is not None
            # The header, then decodable video from the latest keyframe (Matroska), so the new
            # encoder outputs at once; MP4 fragments start at keyframes: the header suffices.
            replay = self._format.header + (self._keyframes.ready if self._keyframes else b"")
            try:
                await proc.write(replay)
            except RelayError as exc:
                if exc.error.name != ErrorName.FFMPEG_WRITE_ERROR:
                    raise
                dead, reason = proc, await self._exit_reason(proc)

    def _check(self) -> None:
        """The watchdog's tick (a timer callback: nothing is awaited unless a restart is due)."""
        self._timer = None
        if self._stopping:
            return
        proc = self._proc
        # A write in progress handles its own failure.
        if proc is not None and not self._lock.locked():
            due = proc.returncode is not None
            if not due and self._stall_timeout is not None:
                limit = self._stall_timeout if proc.has_output else self._start_stall_timeout
                due = proc.waiting_for_output() > limit
            if due:
                self._watchdog = asyncio.create_task(self._recover(proc), name="encoder-restart")
                return
        self._arm()

    def _arm(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._watch_interval, self._check)

    async def _recover(self, proc: FfmpegProcess) -> None:
        """Restart an encoder that exited or stalled while the session was not writing to it."""
        if proc.returncode is not None:
            reason = await self._exit_reason(proc)
        else:
            reason = ServerError(
                ErrorName.OUTPUT_STALLED,
                f"The encoder produced nothing for {proc.waiting_for_output():.0f} s",
            )
        try:
            async with self._lock:
                await self._restart_locked(proc, reason)
        except RelayError as exc:
            self._events.pipeline_failed(exc.error)
            return
        if not self._stopping:
            self._arm()
