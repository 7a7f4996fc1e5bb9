"""One browser session: its validated config, its ordered chunk queue and its ffmpeg."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .client_link import ClientLink
from .config import RelayConfig, StartConfig
from .container import InputFormat, InputProbe
from .errors import FFMPEG_NOT_RUNNING, RELAY_SHUTTING_DOWN, ErrorName, RelayError, ServerError
from .ffmpeg import FfmpegProcess, classify_exit
from .ffmpeg_args import Output, build_args, video_mode
from .keyframes import KeyframeTracker, video_track_number
from .limits import ClientLimits
from .recordings import create_recording
from .status import FfmpegState, FfmpegStats, FfmpegStatus, SessionState, SessionStatus
from .targets import mask_in_text, mask_target, secrets_of
from .validation import validate_start

log = logging.getLogger(__name__)

_ACTIVE = (SessionState.STARTING, SessionState.LIVE)


class SessionHost(Protocol):
    """What a session needs from the relay that owns it."""

    config: RelayConfig

    def ffmpeg_binary(self) -> str: ...
    def check_capacity(self, session: Session) -> None: ...
    async def apply_start_hook(self, session: Session, config: StartConfig) -> StartConfig: ...
    def resolve_output(self, session: Session, config: StartConfig) -> Output: ...
    def session_error(self, session: Session, error: ServerError) -> None: ...
    def session_output(self, session: Session, line: str) -> None: ...
    def session_log(self, session: Session, message: str) -> None: ...
    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]: ...


@dataclass
class _Item:
    kind: str  # "data", "stop" or "retarget"
    future: asyncio.Future[ServerError | None]
    data: bytes = b""
    output: Output | None = None


class Session:
    """A client's streaming session. Data and control go through one queue, so that chunks
    reach ffmpeg in arrival order and a stop or a target change happens between chunks."""

    def __init__(self, host: SessionHost, link: ClientLink) -> None:
        self.host = host
        # How the relay reaches this session's client; the transport owns it.
        self.link = link
        self.uuid = str(uuid.uuid4())
        self.remote_address = link.remote_address
        self.user_agent = link.user_agent
        self.connected_at = time.time()
        self.started_at: float | None = None
        self.state = SessionState.CONNECTED
        self.error: ServerError | None = None
        self.config: StartConfig | None = None
        self.output: Output | None = None
        self.target_override: Output | None = None
        self.bytes_received = 0
        self.chunks_received = 0
        self.buffered_bytes = 0
        self._format: InputFormat | None = None
        self._keyframes: KeyframeTracker | None = None
        self._probe = InputProbe()
        self._ffmpeg: FfmpegProcess | None = None
        self._last_ffmpeg_status: FfmpegStatus | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._current: _Item | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        self._limits: ClientLimits | None = None
        self.last_data_at = time.monotonic()

    # ---- protocol events -------------------------------------------------------------

    async def start(self, raw: Any) -> None:
        """Validate and accept a `start`; ffmpeg itself starts when the first bytes arrive."""
        if self._closed:
            raise RelayError(ServerError(ErrorName.RELAY_SHUTTING_DOWN, "The relay is stopping"))
        self._refuse_if_streaming()
        config = validate_start(raw)
        self.host.check_capacity(self)
        config = await self.host.apply_start_hook(self, config)
        # The hook may have awaited: another `start` of this socket, or another session, may
        # have taken the slot meanwhile.
        self._refuse_if_streaming()
        self.host.check_capacity(self)
        output = self.target_override or self.host.resolve_output(self, config)
        # Reserve the slot at once: capacity counts STARTING sessions.
        self.config, self.output = config, output
        self.error = None
        self.state = SessionState.STARTING
        self.started_at = time.time()
        self._probe = InputProbe()
        self._format = None
        self._keyframes = None
        self._limits = ClientLimits(self.host.config)
        self.last_data_at = time.monotonic()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.uuid}")
        where = f"recording to {output.url}" if output.is_file else f"target {self.target}"
        self.host.session_log(self, f"Started ({where})")

    def _refuse_if_streaming(self) -> None:
        if self.active:
            raise RelayError(
                ServerError(
                    ErrorName.ALREADY_STARTED, "This session is already streaming", fatal=False
                )
            )

    def feed(self, data: bytes) -> Awaitable[ServerError | None]:
        """Queue a chunk; the result resolves once ffmpeg took it (or with the error)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ServerError | None] = loop.create_future()
        if self._closed:
            fut.set_result(RELAY_SHUTTING_DOWN)
            return fut
        if self.state not in _ACTIVE:
            fut.set_result(FFMPEG_NOT_RUNNING)
            return fut
        refusal = self._limits.check(len(data)) if self._limits else None
        if refusal is not None:
            fut.set_result(refusal)
            self.host.spawn(self.fail(refusal), name=f"limit-{self.uuid}")
            return fut
        self.last_data_at = time.monotonic()
        if not data:
            fut.set_result(None)  # a paused browser's heartbeat
            return fut
        limit = self.host.config.max_buffered_bytes
        if self.buffered_bytes + len(data) > limit:
            error = ServerError(
                ErrorName.RELAY_OVERLOADED,
                "The relay cannot send the stream as fast as it arrives (ffmpeg or the RTMP "
                f"server is too slow); more than {limit / 1048576:.1f} MiB waited",
            )
            fut.set_result(error)
            self.host.spawn(self.fail(error), name=f"overload-{self.uuid}")
            return fut
        self.bytes_received += len(data)
        self.chunks_received += 1
        self.buffered_bytes += len(data)
        self._queue.put_nowait(_Item("data", fut, data=data))
        return fut

    def stalled(self, now: float) -> ServerError | None:
        """OUTPUT_STALLED if ffmpeg took input but wrote nothing for too long, else None."""
        proc, cfg = self._ffmpeg, self.host.config
        if proc is None or cfg.stall_timeout is None or self.state not in _ACTIVE:
            return None
        limit = cfg.stall_timeout if proc.has_output else cfg.start_stall_timeout
        waited = proc.waiting_for_output(now)
        if waited <= limit:
            return None
        if self.output is not None and self.output.is_file:
            message = f"The recording stopped being written: nothing for {waited:.0f} s"
        elif proc.has_output:
            message = f"The RTMP server stopped taking the stream: nothing sent for {waited:.0f} s"
        else:
            message = f"The RTMP server did not take the stream within {waited:.0f} s"
        return ServerError(ErrorName.OUTPUT_STALLED, message, "\n".join(self._masked_last_lines()))

    def idle_for(self, now: float) -> float:
        """Seconds since this streaming session last sent anything (0 when not streaming)."""
        return now - self.last_data_at if self.state in _ACTIVE else 0.0

    async def stop(self) -> None:
        """End ffmpeg after every queued chunk was written (the stream keeps its tail)."""
        if self.state not in _ACTIVE or self._writer is None:
            return
        fut: asyncio.Future[ServerError | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item("stop", fut))
        await fut

    async def change_target(self, output: Output) -> None:
        """Send this session to a new output; a running ffmpeg restarts on it."""
        self.target_override = output
        if self.state not in _ACTIVE or self._writer is None:
            return
        fut: asyncio.Future[ServerError | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item("retarget", fut, output=output))
        err = await fut
        if err is not None:
            raise RelayError(err)

    async def fail(self, error: ServerError) -> None:
        """End the session's stream on an error, tell the client and the operator."""
        if self.state in (SessionState.FAILED, SessionState.ENDED) and self.error is not None:
            return
        self.error = error
        self.state = SessionState.FAILED
        self.host.session_error(self, error)
        await self._halt(error, timeout=2.0)
        self.state = SessionState.FAILED

    async def shutdown(self, budget: float) -> None:
        """The relay stops: tell the client, let ffmpeg flush what is queued if it keeps up,
        and be done within about `budget` seconds whatever ffmpeg does."""
        if self._closed:
            return
        self._closed = True
        if self.state in _ACTIVE:
            self.error = RELAY_SHUTTING_DOWN
            self.host.session_error(self, RELAY_SHUTTING_DOWN)
        with contextlib.suppress(RelayError, TimeoutError):
            await asyncio.wait_for(self.stop(), budget / 2)
        # Whatever is still queued will not be written: its senders hear why.
        await self._halt(RELAY_SHUTTING_DOWN, timeout=budget / 8, terminate_grace=budget / 8)
        self.state = SessionState.ENDED

    async def close(self) -> None:
        """The socket is gone or the relay stops: finish gracefully and release everything."""
        self._closed = True
        with contextlib.suppress(RelayError, TimeoutError):
            # A stop that hangs (ffmpeg wedged on a dead RTMP link) must not keep the session:
            # _halt below terminates and reaps ffmpeg whatever happened.
            await asyncio.wait_for(self.stop(), self.host.config.stop_timeout + 5)
        await self._halt(None, timeout=2.0)
        if self.state != SessionState.FAILED:
            self.state = SessionState.ENDED

    # ---- internals -------------------------------------------------------------------

    async def _halt(
        self, error: ServerError | None, timeout: float, terminate_grace: float = 3.0
    ) -> None:
        """Cancel the writer, answer queued chunks, and stop ffmpeg without waiting long."""
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._writer = None
        # The item the writer had in hand when cancelled (a write blocked on a stalled
        # ffmpeg) is answered too: its sender must not wait for an ack that never comes.
        current, self._current = self._current, None
        if current is not None:
            self.buffered_bytes -= len(current.data)
            if not current.future.done():
                current.future.set_result(error or FFMPEG_NOT_RUNNING)
        self._drain_queue(error or FFMPEG_NOT_RUNNING)
        await self._stop_ffmpeg(timeout, terminate_grace)

    def _drain_queue(self, error: ServerError) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            self.buffered_bytes -= len(item.data)
            if not item.future.done():
                item.future.set_result(error)

    async def _write_loop(self) -> None:
        while True:
            item = self._current = await self._queue.get()
            try:
                result = await self._handle(item)
            except RelayError as exc:
                self._current = None
                result = exc.error
                self.buffered_bytes -= len(item.data)
                if not item.future.done():
                    item.future.set_result(result)
                # A write error usually means ffmpeg died: its exit says why, better.
                if exc.error.name == ErrorName.FFMPEG_WRITE_ERROR and self._ffmpeg is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._ffmpeg.wait()), 2.0)
                    if self._ffmpeg.returncode is not None:
                        result = self._exit_error(self._ffmpeg.returncode)
                self._writer = None  # fail() must not cancel us mid-flight
                await self.fail(result)
                return
            self._current = None
            self.buffered_bytes -= len(item.data)
            if not item.future.done():
                item.future.set_result(result)
            if item.kind == "stop":
                # Chunks queued behind the stop arrived after it: not for this stream.
                self._drain_queue(FFMPEG_NOT_RUNNING)
                self._writer = None
                return

    async def _handle(self, item: _Item) -> ServerError | None:
        if item.kind == "data":
            if self._ffmpeg is None:
                fmt = self._probe.feed(item.data)
                if fmt is None:
                    return None
                self._format = fmt
                if fmt.container == "matroska":
                    self._keyframes = KeyframeTracker(video_track_number(fmt.header))
                await self._spawn(self.output)
                assert self._ffmpeg is not None
                buffered = self._probe.take_buffered()
                if self._keyframes is not None:
                    self._keyframes.feed(buffered[len(fmt.header) :])
                await self._ffmpeg.write(buffered)
            else:
                if self._keyframes is not None:
                    self._keyframes.feed(item.data)
                await self._ffmpeg.write(item.data)
        elif item.kind == "stop":
            self.state = SessionState.ENDING
            await self._stop_ffmpeg(self.host.config.stop_timeout)
            self.state = SessionState.CONNECTED
            self.host.session_log(self, "Stopped")
        elif item.kind == "retarget" and item.output is not None:
            self.output = item.output
            if self._ffmpeg is not None and self._format is not None:
                await self._stop_ffmpeg(self.host.config.stop_timeout)
                self.state = SessionState.STARTING
                await self._spawn(item.output)
                # A fresh ffmpeg needs the stream header, then decodable video: the stream
                # from the latest keyframe on (without it, it resyncs at the next cluster
                # and outputs from the next keyframe).
                gop = self._keyframes.ready if self._keyframes else b""
                await self._ffmpeg.write(self._format.header + gop)
            self.host.session_log(self, f"Target changed to {self.target}")
        return None

    async def _spawn(self, output: Output | None) -> None:
        assert self.config is not None and self._format is not None and output is not None
        fd = None
        if output.is_file:
            path, fd = create_recording(Path(output.url))
            output = self.output = Output(str(path), is_file=True, fd=fd)
        try:
            args = build_args(self.host.ffmpeg_binary(), self._format, self.config, output)
            self._ffmpeg = proc = FfmpegProcess(
                args, on_line=self._on_line, on_stats=self._on_stats
            )
            await proc.start(pass_fds=(fd,) if fd is not None else ())
        except BaseException:
            if fd is not None:
                # Nothing was recorded: do not leave an empty file behind.
                with contextlib.suppress(OSError):
                    os.unlink(output.url)
            raise
        finally:
            if fd is not None:
                os.close(fd)  # ffmpeg has its own copy
        self.host.session_log(
            self,
            f"ffmpeg {proc.pid} started: {self._format.description}, "
            f"video {video_mode(self._format)}, "
            f"command: {self._mask(' '.join(args[1:]))}",
        )
        self._watcher = asyncio.create_task(self._watch(proc), name=f"watch-{self.uuid}")

    async def _watch(self, proc: FfmpegProcess) -> None:
        rc = await proc.wait()
        self._last_ffmpeg_status = self._ffmpeg_status(proc)
        if proc.stopping or self._ffmpeg is not proc:
            return
        await self.fail(self._exit_error(rc))

    async def _stop_ffmpeg(self, timeout: float, terminate_grace: float = 3.0) -> None:
        proc = self._ffmpeg
        if proc is None:
            return
        rc = await proc.stop(timeout, terminate_grace)
        self._last_ffmpeg_status = self._ffmpeg_status(proc)
        self._ffmpeg = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            await asyncio.gather(watcher, return_exceptions=True)
        self.host.session_log(self, f"ffmpeg {proc.pid} ended (exit code {rc})")

    def _on_line(self, line: str) -> None:
        self.host.session_output(self, self._mask(line))

    def _on_stats(self, stats: FfmpegStats) -> None:
        if stats.frames > 0 and self.state == SessionState.STARTING:
            self.state = SessionState.LIVE

    def _mask(self, text: str) -> str:
        secrets = secrets_of(self.output.url if self.output and not self.output.is_file else None)
        return mask_in_text(text, secrets)

    def _exit_error(self, returncode: int | None) -> ServerError:
        to_file = self.output is not None and self.output.is_file
        return classify_exit(returncode, self._masked_last_lines(), to_file=to_file)

    def _masked_last_lines(self) -> list[str]:
        proc = self._ffmpeg
        return [self._mask(line) for line in (proc.last_lines if proc else [])]

    # ---- status ----------------------------------------------------------------------

    @property
    def target(self) -> str | None:
        """The current target with its key masked (None while recording to a file)."""
        if self.output is None or self.output.is_file:
            return None
        return mask_target(self.output.url)

    @property
    def active(self) -> bool:
        """Whether this session holds an ffmpeg slot."""
        return self.state in _ACTIVE or self.state == SessionState.ENDING

    def _ffmpeg_status(self, proc: FfmpegProcess) -> FfmpegStatus:
        stats = proc.progress.stats
        return FfmpegStatus(
            status=proc.state,
            frames_sent=stats.frames,
            last_frame_sent_time=stats.last_frame_time,
            pid=proc.pid,
            options=self.config.to_options() if self.config else {},
            stats=stats,
            mode=video_mode(self._format) if self._format else None,
            input_format=self._format.description if self._format else None,
        )

    def status(self) -> SessionStatus:
        """A frozen snapshot of this session."""
        now = time.time()
        if self._ffmpeg is not None:
            ff: FfmpegStatus | None = self._ffmpeg_status(self._ffmpeg)
        elif self.state == SessionState.STARTING and self.config is not None:
            ff = FfmpegStatus(FfmpegState.CREATED, 0, None, None, self.config.to_options())
        else:
            ff = self._last_ffmpeg_status
        live_since = self.started_at if self.state in _ACTIVE else None
        return SessionStatus(
            uuid=self.uuid,
            remote_address=self.remote_address,
            user_agent=self.user_agent,
            name=self.config.name if self.config else None,
            state=self.state,
            connected_at=self.connected_at,
            started_at=self.started_at,
            uptime_s=now - live_since if live_since else 0.0,
            bytes_received=self.bytes_received,
            chunks_received=self.chunks_received,
            buffered_bytes=self.buffered_bytes,
            target=self.target,
            recording_path=self.output.url if self.output and self.output.is_file else None,
            ffmpeg=ff,
            error=self.error,
        )
