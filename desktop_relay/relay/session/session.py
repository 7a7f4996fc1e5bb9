"""One browser session: its validated config, its ordered chunk queue and its media pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, Protocol

from ..config import RelayConfig, StartConfig
from ..errors import FFMPEG_NOT_RUNNING, RELAY_SHUTTING_DOWN, ErrorName, RelayError, ServerError
from ..media.container import InputProbe
from ..media.stream_health import Check, HealthWarning
from ..outputs.destinations import Destination, mask_in_text
from ..outputs.safety_copy import SafetyCopy
from ..outputs.stream_hub import StreamHub
from ..outputs.thumbnails import Thumbnail, ThumbnailTap
from ..status import (
    FfmpegState,
    FfmpegStats,
    FfmpegStatus,
    OutputStatus,
    SessionState,
    SessionStatus,
)
from .chunk_admission import ChunkAction, admit_chunk
from .client_link import ClientLink
from .commands import ChunkCommand, Command, CommandQueue, RetargetCommand, StopCommand
from .limits import ClientLimits
from .output_events import on_output_change
from .pipeline import Pipeline
from .resume import ChunkSequence, ResumeTicket
from .state import ACTIVE_STATES, check_transition
from .validation import validate_start

log = logging.getLogger(__name__)

# A started session whose encoder makes nothing this long is said to have no media (health
# check `no_media`): a recorder that gives no data shows within seconds, not at the idle
# timeout. Longer than a MediaRecorder's first chunk plus the encoder's start.
NO_MEDIA_S = 5.0
# A resumed session is spared by the idle sweep this long, for its resend to arrive (the idle
# clock is its last data, which may be older than the idle timeout after a long wait). Only
# once per silence: a resume after another with no data between gets no new respite.
RESUME_IDLE_WINDOW_S = 3.0


class SessionHost(Protocol):
    """What a session needs from the relay that owns it."""

    config: RelayConfig

    def ffmpeg_binary(self) -> str: ...
    @property
    def video_encoder(self) -> str: ...
    @property
    def thumbnails(self) -> bool: ...
    def check_capacity(self, session: Session) -> None: ...
    async def apply_start_hook(self, session: Session, config: StartConfig) -> StartConfig: ...
    def resolve_outputs(self, session: Session, config: StartConfig) -> list[Destination]: ...
    def safety_copy_for(self, session: Session, config: StartConfig) -> SafetyCopy | None: ...
    def session_error(self, session: Session, error: ServerError) -> None: ...
    def ffmpeg_output(self, session: Session, line: str) -> None: ...
    def session_log(self, session: Session, message: str) -> None: ...
    def session_changed(self, session: Session) -> None: ...
    def output_changed(self, session: Session, status: OutputStatus) -> None: ...
    def thumbnail(self, session: Session, thumbnail: Thumbnail) -> None: ...
    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]: ...


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
        # Where the stream goes (RTMP targets, recordings), and the operator's choice for
        # this session, which wins over the relay's defaults.
        self.outputs: list[Destination] = []
        self.target_override: list[Destination] | None = None
        self.bytes_received = 0
        self.chunks_received = 0
        self._probe = InputProbe()
        self._pipeline: Pipeline | None = None
        # Live pictures of the stream, while the relay wants them (thumbnails.py).
        self._tap: ThumbnailTap | None = None
        self._safety: SafetyCopy | None = None
        self._last_ffmpeg_status: FfmpegStatus | None = None
        self._last_outputs: tuple[OutputStatus, ...] = ()
        self._commands = CommandQueue()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._limits: ClientLimits | None = None
        self.last_data_at = time.monotonic()
        # The idle sweep spares a resumed session until then (see RESUME_IDLE_WINDOW_S), and
        # whether data came since the last resume (else the next one gets no respite).
        self._idle_spared_until = 0.0
        self._data_since_attach = True
        # Resuming from another socket (see `resume`): the secret the client proves itself
        # with, the numbering of its chunks, and while its socket is lost, the state to
        # return to (the relay core sets these; `attach` clears them).
        self.ticket = ResumeTicket()
        self.sequence = ChunkSequence()
        self.duplicates_dropped = 0
        self.resumes = 0
        # The stream's health warnings as last announced (stream_health.py).
        self.health: tuple[HealthWarning, ...] = ()
        # The no-media watch: since when the stream is owed media (its start, then each time
        # the encoder made some) and when the client last said it is paused (a heartbeat).
        self._media_at = time.monotonic()
        self._media_bytes = 0
        self._heartbeat_at: float | None = None
        self.state_before_waiting: SessionState | None = None
        self.waiting_since: float | None = None

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
        outputs = self.target_override or self.host.resolve_outputs(self, config)
        # Reserve the slot at once: capacity counts STARTING sessions.
        self.config, self.outputs = config, list(outputs)
        if self._safety is not None:
            self._safety.close()
        self._safety = self.host.safety_copy_for(self, config)
        self.error = None
        self.set_state(SessionState.STARTING)
        self.started_at = time.time()
        self._probe = InputProbe()
        self._limits = ClientLimits(self.host.config)
        self.last_data_at = time.monotonic()
        self._media_at, self._media_bytes, self._heartbeat_at = self.last_data_at, 0, None
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.uuid}")
        self.host.session_log(self, f"Started (to {self._describe(self.outputs)})")

    def _refuse_if_streaming(self) -> None:
        if self.active:
            raise RelayError(
                ServerError(
                    ErrorName.ALREADY_STARTED, "This session is already streaming", fatal=False
                )
            )

    def feed(self, data: bytes, seq: int | None = None) -> asyncio.Future[ServerError | None]:
        """Queue a chunk; the result resolves once ffmpeg took it (or with the error).

        `seq` is the client's number for a numbered chunk (see `resume`): a duplicate is
        dropped and resolves at once with None; a gap fails the session with CHUNK_GAP.
        """
        fut: asyncio.Future[ServerError | None] = asyncio.get_running_loop().create_future()
        verdict = admit_chunk(
            size=len(data),
            seq=seq,
            closed=self._closed,
            state=self.state,
            sequence=self.sequence,
            limits=self._limits,
            buffered_bytes=self.buffered_bytes,
            max_buffered_bytes=self.host.config.max_buffered_bytes,
        )
        if verdict.taken:
            self.last_data_at = time.monotonic()
            self._data_since_attach = True
            if not data:
                self._heartbeat_at = self.last_data_at  # a paused page owes no media
            if seq is not None:
                # Taken from here on (an overload refusal ends the session anyway).
                self.sequence.accept(seq)
        if verdict.action is ChunkAction.DUPLICATE:
            self.duplicates_dropped += 1
        if verdict.action is not ChunkAction.WRITE:
            # Refused (the ack carries why), or nothing to write: a duplicate, a heartbeat.
            fut.set_result(verdict.error)
            if verdict.fails_session and verdict.error is not None:
                self.host.spawn(
                    self.fail(verdict.error), name=f"{verdict.action.value}-{self.uuid}"
                )
            return fut
        if self._safety is not None:
            # In arrival order, before anything can fail: the bytes exactly as received.
            self._safety.write(data)
        self.bytes_received += len(data)
        self.chunks_received += 1
        writer, pipeline = self._writer, self._pipeline
        if (
            self._commands.idle
            and writer is not None
            and not writer.done()
            and pipeline is not None
            and pipeline.write_now(data)
        ):
            # Nothing before it and the encoder's pipe keeping up: written here, in order,
            # and acked at once; the writer task's two switches per chunk (take it, answer
            # it) were a good part of the relay's own CPU per chunk.
            fut.set_result(None)
            return fut
        self._commands.put(ChunkCommand(fut, data))
        return fut

    def attach(self, link: ClientLink) -> None:
        """Hand this session to another client link (a resume): a waiting session returns
        to the state it had. What the client recorded while away comes next: live outputs
        catch up on it (catch_up.py). The idle clock goes on from the last data, not from
        the resume (which only buys RESUME_IDLE_WINDOW_S for the resend to arrive, once per
        silence): cycling resume and drop must not keep a silent session alive."""
        self.link = link
        self.remote_address = link.remote_address
        self.user_agent = link.user_agent
        self.leave_waiting()
        if self._data_since_attach:
            self._idle_spared_until = time.monotonic() + RESUME_IDLE_WINDOW_S
            self._data_since_attach = False
        self.resumes += 1
        if self._pipeline is not None:
            self._pipeline.expect_backlog()

    def set_state(self, new: SessionState) -> None:
        """The one way a session's state changes: impossible changes are refused (a bug),
        and observers hear of every real one."""
        if new == self.state:
            return
        check_transition(self.state, new, who=f"session {self.uuid[:8]}")
        self.state = new
        self.host.session_changed(self)

    def enter_waiting(self) -> None:
        """Its client's connection is lost: wait for a resume, remembering the state."""
        self.state_before_waiting = self.state
        self.waiting_since = time.monotonic()
        self.set_state(SessionState.WAITING)

    def leave_waiting(self) -> None:
        """Resumed (or ending): back to the state it had before waiting."""
        if self.state == SessionState.WAITING:
            self.set_state(self.state_before_waiting or SessionState.CONNECTED)
        self.state_before_waiting = None
        self.waiting_since = None
        # Media is owed again from now: the time without a socket was no recorder's fault.
        self._media_at = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since this streaming session last sent anything, not counting a waiting
        session's grace period (0 when it does not stream, or waits within its grace).

        A waiting session gets no media by definition, and its grace timer ends it; but the
        silence before its socket was lost counts, and so does the grace period once spent:
        resuming and dropping over and over must not keep a silent session (and its ffmpeg)
        alive. Its clock is the last data, never a resume.
        """
        silent = now - self.last_data_at
        if now < self._idle_spared_until and self.state != SessionState.WAITING:
            return 0.0  # just resumed: its resend is on its way
        if self.state == SessionState.WAITING:
            return max(0.0, silent - (self.host.config.resume_grace_s or 0.0))
        return silent if self.state in ACTIVE_STATES else 0.0

    async def stop(self) -> None:
        """End ffmpeg after every queued chunk was written (the stream keeps its tail)."""
        if self.state not in ACTIVE_STATES or self._writer is None:
            return
        fut: asyncio.Future[ServerError | None] = asyncio.get_running_loop().create_future()
        self._commands.put(StopCommand(fut))
        await fut

    async def change_target(self, output: Destination) -> None:
        """Send this session to `output` instead of its current destinations; the new one
        starts from the latest keyframe, the encoder is not touched."""
        self.target_override = [output]
        if self.state not in ACTIVE_STATES or self._writer is None:
            self.outputs = [output]
            return
        fut: asyncio.Future[ServerError | None] = asyncio.get_running_loop().create_future()
        self._commands.put(RetargetCommand(fut, [output]))
        err = await fut
        if err is not None:
            raise RelayError(err)

    def add_output(self, output: Destination) -> str:
        """One more destination for this session; returns its output id (once streaming;
        before that, "pending" and it starts with the stream)."""
        self.outputs.append(output)
        if self._pipeline is None:
            return "pending"
        return self._pipeline.add_output(output)

    async def remove_output(self, output_id: str) -> bool:
        """Stop one destination (the others are not touched); False if there is none."""
        if self._pipeline is None:
            return False
        stream_output = next((o for o in self._pipeline.hub.outputs() if o.id == output_id), None)
        if stream_output is None:
            return False
        if stream_output.destination in self.outputs:
            self.outputs.remove(stream_output.destination)
        return await self._pipeline.remove_output(output_id)

    def set_thumbnails(self, enabled: bool) -> None:
        """Decode live thumbnails of this session's stream (from now on, and for every
        stream it starts), or stop doing so: the tap's ffmpeg is stopped in the background."""
        if enabled:
            if self._pipeline is not None and self._tap is None:
                self._attach_tap(self._pipeline)
            return
        tap = self._detach_tap()
        if tap is not None:
            self.host.spawn(tap.stop(), name=f"thumbnails-off-{self.uuid}")

    async def fail(self, error: ServerError) -> None:
        """End the session's stream on an error, tell the client and the operator."""
        if self.state in (SessionState.FAILED, SessionState.ENDED) and self.error is not None:
            return
        self.error = error
        self.set_state(SessionState.FAILED)
        self.host.session_error(self, error)
        await self._halt(error, timeout=2.0)

    async def shutdown(self, budget: float) -> None:
        """The relay stops: tell the client, let ffmpeg flush what is queued if it keeps up,
        and be done within about `budget` seconds whatever ffmpeg does."""
        if self._closed:
            return
        self._closed = True
        if self.state in ACTIVE_STATES:
            self.error = RELAY_SHUTTING_DOWN
            self.host.session_error(self, RELAY_SHUTTING_DOWN)
        with contextlib.suppress(RelayError, TimeoutError):
            await asyncio.wait_for(self.stop(), budget / 2)
        # Whatever is still queued will not be written: its senders hear why.
        await self._halt(RELAY_SHUTTING_DOWN, timeout=budget / 8, terminate_grace=budget / 8)
        self.set_state(SessionState.ENDED)

    async def close(self) -> None:
        """The socket is gone or the relay stops: finish gracefully and release everything."""
        self._closed = True
        with contextlib.suppress(RelayError, TimeoutError):
            # A stop that hangs (ffmpeg wedged on a dead RTMP link) must not keep the session:
            # _halt below terminates and reaps ffmpeg whatever happened.
            await asyncio.wait_for(self.stop(), self.host.config.stop_timeout + 5)
        await self._halt(None, timeout=2.0)
        if self.state != SessionState.FAILED:
            self.set_state(SessionState.ENDED)

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
        # The command the writer had in hand when cancelled (a write blocked on a stalled
        # ffmpeg) is answered too: its sender must not wait for an ack that never comes.
        self._commands.answer_all(error or FFMPEG_NOT_RUNNING)
        await self._stop_pipeline(timeout, terminate_grace)
        if self._safety is not None:
            self._safety.close()

    async def _write_loop(self) -> None:
        try:
            error = await self._commands.serve(self._handle)
        except Exception as exc:
            # Not a RelayError: a bug, or the system refusing something (out of descriptors
            # while opening a file). A writer that died silently left its session STARTING
            # for good, counted against --max-streams and never stopped: fail it instead.
            log.exception("session %s: writing the stream failed", self.uuid[:8])
            error = ServerError(ErrorName.FFMPEG_ERROR, f"The stream could not go on: {exc}")
        self._writer = None  # fail() must not cancel us mid-flight
        if error is not None:
            await self.fail(error)

    async def _handle(self, command: Command) -> None:
        match command:
            case ChunkCommand(data=data):
                await self._write(data)
            case StopCommand():
                self.set_state(SessionState.ENDING)
                await self._stop_pipeline(self.host.config.stop_timeout)
                self.set_state(SessionState.CONNECTED)
                self.host.session_log(self, "Stopped")
            case RetargetCommand(outputs=outputs):
                self.outputs = list(outputs)
                if self._pipeline is not None:
                    await self._pipeline.replace_outputs(self.outputs)
                self.host.session_log(self, f"Now sent to {self._describe(self.outputs)}")

    async def _write(self, data: bytes) -> None:
        """Browser bytes to the encoder; the first ones tell the format and start it."""
        if self._pipeline is None:
            fmt = self._probe.feed(data)
            if fmt is None:
                return
            assert self.config is not None
            self._pipeline = Pipeline(
                binary=self.host.ffmpeg_binary(),
                video_encoder=self.host.video_encoder,
                fmt=fmt,
                config=self.config,
                relay_config=self.host.config,
                events=self,
            )
            if self.host.thumbnails:
                self._attach_tap(self._pipeline)
            await self._pipeline.start(self.outputs, self._probe.take_buffered())
        else:
            await self._pipeline.write(data)

    def _attach_tap(self, pipeline: Pipeline) -> None:
        tap = ThumbnailTap(
            pipeline.hub.cache,
            ffmpeg_binary=self.host.ffmpeg_binary(),
            events=self,
            name=f"thumbnails {self.uuid[:8]}",
        )
        pipeline.hub.add_tap(tap)
        self._tap = tap
        tap.start()

    def _detach_tap(self) -> ThumbnailTap | None:
        tap, self._tap = self._tap, None
        if tap is not None and self._pipeline is not None:
            self._pipeline.hub.remove_tap(tap)
        return tap

    async def _stop_pipeline(self, timeout: float, terminate_grace: float = 3.0) -> None:
        # The thumbnails first: nothing of the stream's tail is for them.
        tap = self._detach_tap()
        if tap is not None:
            await tap.stop()
        pipeline = self._pipeline
        if pipeline is None:
            return
        # Forgotten only once stopped: a stop cut short (the relay's shutdown budget) leaves
        # it for _halt to stop again, harder, rather than leaving its ffmpegs running.
        await pipeline.stop(timeout, terminate_grace)
        if self._pipeline is pipeline:
            self._pipeline = None
        self._last_ffmpeg_status = pipeline.last_status
        self._last_outputs = pipeline.hub.statuses()

    # ---- what the pipeline and the thumbnail tap tell (PipelineEvents, ThumbnailEvents) -----

    def session_log(self, message: str) -> None:
        """A relay event about this session, for the operator's log (masked)."""
        self.host.session_log(self, self._mask(message))

    def ffmpeg_output(self, line: str) -> None:
        """One line of the encoder's or an output's ffmpeg log (masked)."""
        self.host.ffmpeg_output(self, self._mask(line))

    def encoder_stats(self, stats: FfmpegStats) -> None:
        """The encoder's counters: its first frame makes the session live."""
        if stats.total_size > self._media_bytes:
            self._media_bytes = stats.total_size
            self._media_at = time.monotonic()
        elif stats.total_size < self._media_bytes:
            self._media_bytes = stats.total_size  # a restarted encoder counts from 0
        if stats.frames > 0 and self.state == SessionState.STARTING:
            self.set_state(SessionState.LIVE)

    def thumbnail(self, thumbnail: Thumbnail) -> None:
        """A new picture of the stream (only while thumbnails are on)."""
        self.host.thumbnail(self, thumbnail)

    def output_changed(self, status: OutputStatus) -> None:
        """An output changed state: the client and the operator hear of it."""
        self.link.send_output_state(status.to_dict())
        self.host.output_changed(self, status)
        pipeline = self._pipeline
        event = on_output_change(status, pipeline.hub.statuses if pipeline is not None else None)
        if event.notice is not None:
            self.host.session_error(self, event.notice)
        if event.log is not None:
            self.host.session_log(self, event.log)
        if event.session_failure is not None:
            self.host.spawn(self.fail(event.session_failure), name=f"outputs-failed-{self.uuid}")

    def pipeline_failed(self, error: ServerError) -> None:
        """The encoder cannot be kept running: the session fails."""
        self.host.spawn(self.fail(error), name=f"encoder-failed-{self.uuid}")

    def _mask(self, text: str) -> str:
        secrets = [s for o in self.outputs for s in o.secrets()]
        return mask_in_text(text, secrets)

    @staticmethod
    def _describe(outputs: list[Destination]) -> str:
        return ", ".join(f"recording in {o.url}" if o.is_recording else o.masked for o in outputs)

    # ---- status ----------------------------------------------------------------------

    @property
    def target(self) -> str | None:
        """The first target with its secrets masked (None when only recording)."""
        return next((o.masked for o in self.outputs if not o.is_recording), None)

    def grant_resume_backlog(self, now: float) -> None:
        """A resume: the client's backlog since its last data may exceed the rate limits
        (limits.ClientLimits.grant_backlog)."""
        if self._limits is not None:
            self._limits.grant_backlog(now - self.last_data_at)

    @property
    def closing(self) -> bool:
        """Whether the session is being closed (or is closed): nobody may resume it then."""
        return self._closed

    @property
    def stream_hub(self) -> StreamHub | None:
        """The session's normalized stream (for the program's taps), None before its encoder
        has started or after it ended."""
        return self._pipeline.hub if self._pipeline is not None else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes the client sent that the encoder has not taken yet."""
        return self._commands.buffered_bytes

    @property
    def active(self) -> bool:
        """Whether this session holds an ffmpeg slot."""
        return self.state in ACTIVE_STATES or self.state == SessionState.ENDING

    def check_health(self) -> None:
        """Re-run the stream's health checks; announce what starts or stops being wrong
        (the log, the client's `health` event, the observers). Numbers alone changing in a
        warning that holds are not news."""
        pipeline = self._pipeline
        found: tuple[HealthWarning, ...] = ()
        if pipeline is not None and self.state == SessionState.LIVE:
            level = pipeline.meter.level
            found = pipeline.hub.health_warnings(level.silent_s if level is not None else 0.0)
        no_media = self._no_media(time.monotonic())
        if no_media is not None:
            found = (no_media, *found)
        before = {w.check for w in self.health}
        now = {w.check for w in found}
        if now == before:
            return
        self.health = found
        for warning in found:
            if warning.check not in before:
                self.host.session_log(self, f"Health: {warning.message}")
        for check in sorted(before - now):
            self.host.session_log(self, f"Health: {check.replace('_', ' ')} is fine again")
        self.link.send_health([w.to_dict() for w in found])
        self.host.session_changed(self)

    def _no_media(self, now: float) -> HealthWarning | None:
        """A started session, not paused, whose encoder made nothing for NO_MEDIA_S: the
        browser says it is live but its recorder gives no data (or the relay cannot use
        it). Said at once, instead of waiting for the idle timeout (the page hears it too)."""
        if self.state not in ACTIVE_STATES:
            return None
        if self._heartbeat_at is not None and now - self._heartbeat_at < NO_MEDIA_S:
            return None
        quiet = now - self._media_at
        if quiet < NO_MEDIA_S:
            return None
        return HealthWarning(
            Check.NO_MEDIA,
            f"No picture or sound for over {NO_MEDIA_S:.0f} s: the browser is connected but it "
            "sends nothing the relay can play. On the page, try the other capture mode "
            "(?capture=mediarecorder or ?capture=webcodecs) or reload it.",
        )

    def status(self) -> SessionStatus:
        """A frozen snapshot of this session."""
        now = time.time()
        pipeline = self._pipeline
        options = self.config.to_options() if self.config else {}
        ff: FfmpegStatus | None
        if pipeline is not None:
            ff = pipeline.encoder_status(options)
            outputs = pipeline.hub.statuses()
        elif self.state == SessionState.STARTING and self.config is not None:
            ff = FfmpegStatus(FfmpegState.CREATED, 0, None, None, options)
            outputs = ()
        else:
            ff, outputs = self._last_ffmpeg_status, self._last_outputs
        recording = next((o.recording_path for o in outputs if o.recording_path), None)
        # A waiting session's stream is still up (its socket is not): uptime keeps counting.
        streaming = self.state in ACTIVE_STATES or self.state == SessionState.WAITING
        live_since = self.started_at if streaming else None
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
            recording_path=recording,
            ffmpeg=ff,
            error=self.error,
            outputs=outputs,
            resumes=self.resumes,
            health=self.health,
            audio=pipeline.meter.level if pipeline is not None else None,
            safety_copy_path=str(self._safety.path)
            if self._safety is not None and self._safety.path is not None
            else None,
        )
