"""The relay core: sessions, their limits and targets, and what observers hear of them.

It knows no sockets: clients reach it through a `transport` that hands it one `ClientLink`
per client, so it can be driven and tested without socket.io (see `server.RelayServer` for the
relay served over socket.io and aiohttp).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import RelayConfig, StartConfig
from .errors import ErrorName, RelayError, ServerError
from .ffmpeg import video_encoders
from .ffmpeg.process import resolve_ffmpeg
from .load import LoadMonitor
from .log_limit import RepeatLimiter
from .observer import Observable
from .outputs.destinations import Destination, TargetError, mask_target, validate_target
from .outputs.recordings import recording_output
from .outputs.safety_copy import SafetyCopy, safety_copy_path
from .outputs.thumbnails import Thumbnail
from .program.config import ProgramConfig
from .program.show import OFF as PROGRAM_OFF
from .program.show import Program, ProgramStatus
from .security.auth import new_token
from .session.client_link import ClientLink
from .session.resume import ResumeTicket
from .session.session import Session
from .status import OutputStatus, SessionState, SessionStatus
from .target_pattern import TargetPattern
from .tasks import TaskSet

log = logging.getLogger(__name__)

# Compared against when a `resume` names no known session (see `Relay.resume`).
_NO_SESSION_TICKET = ResumeTicket()

RESUME_REFUSED = ServerError(
    ErrorName.RESUME_REFUSED,
    "This stream cannot be resumed (it has ended, or the token does not match): start a new one",
    fatal=False,
)


class Relay(Observable):
    """Browser sessions in, ffmpeg processes out, with no knowledge of how clients connect.

    Every control the window has is a public method here (`kill`, `set_default_target`,
    `set_session_target`); observers subscribe with `add_listener` (see `events.EVENTS`).
    """

    def __init__(self, config: RelayConfig | None = None) -> None:
        super().__init__()
        self.config = config or RelayConfig()
        # The original server's `serverLogs.minLevel`: the relay's own loggers only.
        logging.getLogger("desktop_relay.relay").setLevel(self.config.log_level.upper())
        if self.config.default_target is not None:
            validate_target(self.config.default_target)
        self._pattern = (
            TargetPattern(self.config.allowed_target_pattern)
            if self.config.allowed_target_pattern
            else None
        )
        if self.config.video_encoder not in video_encoders.CHOICES:
            raise ValueError(
                f"unknown video encoder {self.config.video_encoder!r}: "
                f"one of {', '.join(video_encoders.CHOICES)}"
            )
        # libx264 until the hardware trial (start_background) says otherwise.
        self._video_encoder = (
            video_encoders.SOFTWARE
            if self.config.video_encoder == video_encoders.AUTO
            else self.config.video_encoder
        )
        self._sessions: dict[str, Session] = {}
        self._tasks = TaskSet()
        self._stats_task: asyncio.Task[Any] | None = None
        self._ffmpeg: str | None = None
        self._stopping = False
        self._repeats = RepeatLimiter()
        # Grace timers of sessions waiting for their client to come back, by session id.
        self._grace: dict[str, asyncio.Task[Any]] = {}
        # Off by default: a headless relay never pays for pictures nobody looks at.
        self._thumbnails = False
        # The program (program/show.py): made when it has a destination, started with the
        # relay's background work.
        self._program: Program | None = None
        self._control_token = self.config.control_token
        cpu = self.config.max_cpu_percent
        self._load = LoadMonitor(cpu / 100 if cpu else None)
        self._program_targets = [validate_target(url) for url in config_targets(self.config)]

    # ---- life cycle ------------------------------------------------------------------

    def start_background(self) -> None:
        """Start the periodic stats, the idle-session sweep and the program (if it has a
        destination)."""
        if self._stats_task is None:
            self._stats_task = self._tasks.spawn(self._stats_loop(), name="relay-stats")
            if self.config.video_encoder == video_encoders.AUTO:
                self._tasks.spawn(self._pick_video_encoder(), name="relay-video-encoder")
            if self._program_targets:
                self._tasks.spawn(self._start_program(), name="relay-program")

    async def _start_program(self) -> None:
        program = Program(
            self._program_config(),
            [Destination(url) for url in self._program_targets],
            ffmpeg_binary=self.ffmpeg_binary(),
            events=_ProgramEvents(self),
            stall_timeout=self.config.stall_timeout or 1e9,
            start_stall_timeout=self.config.start_stall_timeout,
        )
        self._program = program
        try:
            await program.start()
        except Exception as exc:  # the sessions go on without a program; the operator hears
            log.error("the program could not start: %s", exc)
            self._notify("program_changed", self.program_status())
            return
        for session in self._sessions.values():
            self._program_source(session)
        program.set_monitors(self._thumbnails)
        log.info(
            "program on: %sx%s at %s fps to %s",
            program.config.width,
            program.config.height,
            program.config.fps,
            ", ".join(mask_target(url) or "****" for url in self._program_targets),
        )

    def _program_config(self) -> ProgramConfig:
        width, _, height = self.config.program_size.partition("x")
        return ProgramConfig(
            width=int(width),
            height=int(height),
            fps=self.config.program_fps,
            video_bitrate=self.config.program_bitrate,
            name=self.config.program_name,
            slate_image=self.config.slate_image,
        )

    @property
    def program(self) -> Program | None:
        """The program (its commands: take, preview, slate, pip), None when it is off."""
        return self._program

    def program_status(self) -> ProgramStatus:
        """A snapshot of the program (`enabled` False when it is off)."""
        return self._program.status() if self._program is not None else PROGRAM_OFF

    def _program_source(self, session: Session) -> None:
        """Tell the program what became of a session (a source while it streams)."""
        program = self._program
        if program is None:
            return
        hub = session.stream_hub
        state = str(session.state)
        if session.state in (SessionState.ENDED, SessionState.FAILED) or (
            hub is None and session.state == SessionState.CONNECTED
        ):
            program.source_gone(session.uuid)
        elif hub is not None and session.state == SessionState.LIVE:
            name = (session.config.name if session.config else None) or session.uuid[:8]
            program.source_live(session.uuid, name, hub, state)
        else:
            program.source_state(session.uuid, state)

    async def _pick_video_encoder(self) -> None:
        try:
            found = await video_encoders.find_hardware_encoders(self.ffmpeg_binary())
        except RelayError as exc:  # no ffmpeg: sessions will say so themselves
            log.info("no hardware encoder trial: %s", exc.error.message)
            return
        if found:
            self._video_encoder = found[0]
            log.info("VP8/VP9 video will be encoded by %s (usable: %s)", found[0], found)
        else:
            log.info("no usable hardware H.264 encoder here: VP8/VP9 video goes to libx264")

    @property
    def video_encoder(self) -> str:
        """The H.264 encoder new sessions use for non-H.264 video (see video_encoders.py)."""
        return self._video_encoder

    async def stop(self) -> None:
        """End every session (clients hear RELAY_SHUTTING_DOWN; ffmpeg flushes what it can)
        and disconnect their clients, within about `shutdown_timeout` seconds."""
        if self._stopping:
            return
        self._stopping = True
        budget = self.config.shutdown_timeout
        sessions = list(self._sessions.values())
        for session in sessions:
            # A waiting session's stream is up: it flushes and ends like a connected one.
            self._end_waiting(session)
        await asyncio.gather(*(s.shutdown(budget) for s in sessions), return_exceptions=True)
        await asyncio.gather(*(self._finish(s) for s in sessions), return_exceptions=True)
        # Each link delivers the shutdown error before it disconnects.
        await asyncio.gather(*(s.link.close() for s in sessions), return_exceptions=True)
        if self._program is not None:
            await self._program.stop(budget)
        await self._tasks.cancel_all()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            self._load.sample(
                {
                    s.uuid: s.buffered_bytes
                    for s in self._sessions.values()
                    if s.state == SessionState.LIVE
                }
            )
            self._end_idle_sessions()
            for session in list(self._sessions.values()):
                session.check_health()
            if self._wants_stats():
                self._notify("stats", self.sessions())

    def _end_idle_sessions(self) -> None:
        timeout = self.config.idle_timeout
        if timeout is None:
            return
        now = time.monotonic()
        for session in list(self._sessions.values()):
            # Waiting sessions too: idle_for leaves them their grace period (issue 23).
            if session.idle_for(now) > timeout:
                error = ServerError(
                    ErrorName.IDLE_TIMEOUT,
                    f"No media for {timeout:g} s: the stream was ended to free the relay",
                )
                self._tasks.spawn(session.fail(error), name=f"idle-{session.uuid}")

    # ---- public API ------------------------------------------------------------------

    @property
    def auth_token(self) -> str | None:
        """The pairing token browsers must present, or None when pairing is off."""
        return self.config.auth_token

    def set_auth_token(self, token: str | None) -> None:
        """Require another token from now on (None: none). Connected browsers stay."""
        self.config = replace(self.config, auth_token=token)
        log.info("pairing token %s", "changed" if token else "turned off")

    @property
    def control_token(self) -> str | None:
        """The control API's token (never the pairing token), None: the API refuses all."""
        return self._control_token

    def rotate_control_token(self) -> str:
        """Make and require a new control API token; returns it (keeping it is the caller's:
        `save_token`)."""
        self._control_token = new_token()
        log.info("the control API's token was replaced")
        return self._control_token

    def rotate_token(self) -> str:
        """Make and require a new pairing token; returns it."""
        token = new_token()
        self.set_auth_token(token)
        return token

    def sessions(self) -> list[SessionStatus]:
        """Snapshots of every connected session (the original's `getConnections()`)."""
        return [s.status() for s in self._sessions.values()]

    def get(self, session_id: str) -> SessionStatus | None:
        """One session's snapshot, or None."""
        session = self._by_uuid(session_id)
        return session.status() if session else None

    @property
    def default_target(self) -> str | None:
        """The operator's target for new sessions (unmasked: the operator's own)."""
        return self.config.default_target

    def set_default_target(self, url: str | None) -> None:
        """Set the target new sessions go to; None records them to files instead."""
        self.set_default_targets([url] if url is not None else [])

    @property
    def default_targets(self) -> list[str]:
        """Every target new sessions go to (unmasked); empty: they are recorded."""
        first = self.config.default_target
        return [first, *self.config.extra_targets] if first is not None else []

    def set_default_targets(self, urls: list[str], *, record: bool = False) -> None:
        """Send new sessions to all of `urls` (each its own output); [] records them.

        `record`: every new session is also recorded to a file, beside its targets
        (`RelayConfig.record`; a bool, else ValueError).
        """
        for url in urls:
            validate_target(url)
        self.config = self.config.with_targets(urls, record=record)
        shown = ", ".join(mask_target(u) or "****" for u in urls)
        if record or not shown:
            shown = f"{shown} and a local recording" if shown else "local recording"
        log.info("default targets set to %s", shown)

    async def add_output(self, session_id: str, url: str | None) -> str:
        """Also send one session to `url` (None: a local recording); returns the output's id.

        Raises KeyError for an unknown session and TargetError for an invalid target.
        """
        session, output = self._session_and_output(session_id, url)
        return session.add_output(output)

    async def remove_output(self, session_id: str, output_id: str) -> bool:
        """Stop sending one session to one of its outputs; the others are not touched."""
        session = self._by_uuid(session_id)
        if session is None:
            raise KeyError(session_id)
        return await session.remove_output(output_id)

    async def set_session_target(self, session_id: str, url: str | None) -> None:
        """Send one session elsewhere instead of its current destinations (the encoder goes on).

        None sends it to a local recording. Raises KeyError for an unknown session and
        TargetError for an invalid target.
        """
        session, output = self._session_and_output(session_id, url)
        await session.change_target(output)

    def _session_and_output(self, session_id: str, url: str | None) -> tuple[Session, Destination]:
        """The session of an operator's control and its new destination (None: a recording);
        KeyError for an unknown session, TargetError for an invalid target."""
        session = self._by_uuid(session_id)
        if session is None:
            raise KeyError(session_id)
        if url is not None:
            return session, Destination(validate_target(url))
        return session, self._recording_output(session, session.config or StartConfig())

    @property
    def thumbnails(self) -> bool:
        """Whether live sessions are decoded into thumbnails (see `set_thumbnails`)."""
        return self._thumbnails

    def set_thumbnails(self, enabled: bool) -> None:
        """Decode every live session's keyframes into small pictures (observers hear each as
        `thumbnail`), for live sessions now and every later one; or stop: every thumbnail
        ffmpeg is stopped and reaped in the background. Off by default."""
        enabled = bool(enabled)
        if enabled == self._thumbnails:
            return
        self._thumbnails = enabled
        log.info("live thumbnails %s", "on" if enabled else "off")
        for session in list(self._sessions.values()):
            session.set_thumbnails(enabled)
        if self._program is not None:
            self._program.set_monitors(enabled)

    async def kill(self, session_id: str, reason: str = "The operator ended this stream") -> bool:
        """End a session now: tell its client, stop its ffmpeg, disconnect it."""
        session = self._by_uuid(session_id)
        if session is None:
            return False
        await session.fail(ServerError(ErrorName.KILLED_BY_OPERATOR, reason))
        await session.link.close()  # the client hears why first
        await self.close_session(session)
        return True

    async def kill_all(self) -> int:
        """Kill every session; returns how many there were."""
        ids = [s.uuid for s in self._sessions.values()]
        results = await asyncio.gather(*(self.kill(i) for i in ids))
        return sum(results)

    # ---- used by a transport -----------------------------------------------------------

    def open_session(self, link: ClientLink) -> Session:
        """Create the session of a newly connected client."""
        if self._stopping:
            raise RelayError(ServerError(ErrorName.RELAY_SHUTTING_DOWN, "The relay is stopping"))
        session = Session(self, link)
        self._sessions[session.uuid] = session
        log.info("session %s connected from %s", session.uuid, link.remote_address)
        self._notify("session_opened", session.status())
        return session

    async def close_session(self, session: Session) -> None:
        """The client is gone: finish and forget its session (no-op when already done)."""
        await self._finish(session)

    async def detach(self, session: Session) -> None:
        """The client's connection was lost (it did not stop, nobody killed it): a streaming
        session of a client that numbers its chunks waits `resume_grace_s` seconds for a
        `resume`, its ffmpeg running on without input; any other session (or with no grace
        period) ends now, as `close_session`."""
        grace = self.config.resume_grace_s
        streaming = session.state in (SessionState.STARTING, SessionState.LIVE)
        # Only a client that numbers its chunks can resume: the original 0.2.x client and
        # pages that do not will start a new session instead, and an old one left waiting
        # would hold a stream slot and keep publishing a frozen stream to the same target.
        resumable = session.sequence.last is not None
        if not grace or grace <= 0 or self._stopping or not streaming or not resumable:
            await self.close_session(session)
            return
        if session.uuid not in self._sessions:
            return
        session.enter_waiting()
        self._grace[session.uuid] = self._tasks.spawn(
            self._expire(session, grace), name=f"grace-{session.uuid}"
        )
        self.session_log(session, f"Waiting for the browser to come back ({grace:g} s)")
        self._notify("session_waiting", session.status())

    def resume(self, link: ClientLink, session_id: str, token: str) -> Session:
        """Hand a session over to a new client that proves, with the session's resume token,
        that it is the same one; returns the session, now reached through `link`.

        A waiting session returns to the state it had. A session whose old link still looks
        connected is taken over too (a network change is usually noticed by the client long
        before the relay's ping timeout): the caller then disconnects the old link. The
        caller also discards the new client's own empty session. Anything else (unknown or
        ended session, wrong token) raises RelayError(RESUME_REFUSED), with one message
        whatever the cause and about as fast: a caller learns nothing about which ids exist.
        """
        session = self._by_uuid(session_id) if isinstance(session_id, str) else None
        # Compare even when there is no such session, so that timing tells nothing either.
        ticket = session.ticket if session is not None else _NO_SESSION_TICKET
        token_ok = ticket.matches(token)
        resumable = (SessionState.WAITING, SessionState.STARTING, SessionState.LIVE)
        # A session the grace expiry is closing now would take the resume, then end under
        # it (RELAY_SHUTTING_DOWN on the next chunk): refused like any ended one.
        closing = session is not None and session.closing
        if (
            session is None
            or not token_ok
            or session.state not in resumable
            or closing
            or self._stopping
        ):
            held_back = self._repeats.allow(("resume-refused", link.remote_address))
            if held_back is not None:
                more = f" ({held_back} more like it held back)" if held_back else ""
                log.warning("resume refused for %s%s", link.remote_address, more)
            raise RelayError(RESUME_REFUSED)
        was_waiting = session.state == SessionState.WAITING
        # Before anything resets its idle clock: the backlog is what the client recorded
        # since its last data reached us.
        session.grant_resume_backlog(time.monotonic())
        self._end_waiting(session)
        session.attach(link)
        how = "" if was_waiting else " (its previous connection was still open: replaced)"
        self.session_log(session, f"Resumed from {link.remote_address}{how}")
        self._notify("session_resumed", session.status())
        return session

    async def _expire(self, session: Session, grace: float) -> None:
        await asyncio.sleep(grace)
        if self._grace.get(session.uuid) is not asyncio.current_task():
            return  # resumed or ended meanwhile
        del self._grace[session.uuid]
        self.session_log(session, f"The browser did not come back within {grace:g} s")
        await self.close_session(session)

    def _end_waiting(self, session: Session) -> None:
        """Cancel a session's grace timer; a waiting session gets back the state it had (so
        that closing it flushes its ffmpeg like any streaming session's)."""
        timer = self._grace.pop(session.uuid, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        session.leave_waiting()

    async def _finish(self, session: Session) -> None:
        self._end_waiting(session)
        await session.close()
        if self._sessions.pop(session.uuid, None) is not None:
            log.info("session %s ended", session.uuid)
            if self._program is not None:
                self._program.source_gone(session.uuid)
            self._notify("session_ended", session.status())

    def report_refused(self, remote: str, error: ServerError, *, logged: bool = False) -> None:
        """Tell the log and observers of a refused socket, once per address and kind every few
        seconds: anyone on the LAN can knock thousands of times (the window gets one event per
        spell, with a count in the log)."""
        held_back = self._repeats.allow(("refused", remote, error.name))
        if held_back is None:
            return
        if not logged:
            more = f" ({held_back} more like it held back)" if held_back else ""
            log.warning("connection from %s refused: %s%s", remote, error.message, more)
        self._notify("connection_refused", remote, error)

    def refuse(self, session: Session, error: ServerError) -> None:
        """Report a refused request (bad config, limit, not running) without ending anything."""
        self._report(session, error)

    # ---- SessionHost -----------------------------------------------------------------

    def ffmpeg_binary(self) -> str:
        """Resolve ffmpeg once (configured, imageio-ffmpeg's, or PATH)."""
        if self._ffmpeg is None:
            self._ffmpeg = resolve_ffmpeg(self.config.ffmpeg_path)
        return self._ffmpeg

    def check_capacity(self, session: Session) -> None:
        """Refuse a start past `max_ffmpeg_instances`, or while the machine has no room
        (load.py: RELAY_BUSY; the live streams go on). A start taken reserves its share of
        the machine until the load meter has seen it (load.py), so a burst is cut too."""
        busy = self._load.busy(session.uuid)
        if busy is not None:
            if self._repeats.allow(("busy",)) is not None:
                log.warning("refusing a new stream: the relay is at capacity (%s)", busy)
            raise RelayError(
                ServerError(
                    ErrorName.RELAY_BUSY,
                    f"The relay is at capacity ({busy}): the streams it has go on; "
                    "try again in a while",
                )
            )
        cap = self.config.max_connections_per_address
        if cap is not None:
            # Streams, not only sockets: a waiting session has no socket but keeps its
            # ffmpegs, so dropping and starting again must not multiply them per address.
            address = session.link.remote_address
            mine = sum(
                1
                for s in self._sessions.values()
                if s is not session
                and s.link.remote_address == address
                and (s.active or s.state == SessionState.WAITING)
            )
            if mine >= cap:
                raise RelayError(
                    ServerError(
                        ErrorName.TOO_MANY_CONNECTIONS,
                        f"Too many streams from {address}: at most {cap} at a time "
                        "(streams waiting for their browser to come back count)",
                    )
                )
        limit = self.config.max_ffmpeg_instances
        if limit is not None:
            # A waiting session keeps its ffmpeg (and its slot) for its client to come back.
            running = sum(
                1
                for s in self._sessions.values()
                if s is not session and (s.active or s.state == SessionState.WAITING)
            )
            if running >= limit:
                raise RelayError(
                    ServerError(
                        ErrorName.MAX_STREAMS_REACHED,
                        f"The relay is already running its maximum of {limit} stream(s); try later",
                    )
                )
        # Checked twice per start (before and after the start hook): one reservation, by key.
        self._load.admit(session.uuid)

    async def apply_start_hook(self, session: Session, config: StartConfig) -> StartConfig:
        """Check a client target against the allowed pattern, then run the operator's hook."""
        if config.rtmp is not None:
            if self._pattern is None:
                raise RelayError(
                    ServerError(
                        ErrorName.TARGET_NOT_ALLOWED,
                        "This relay does not accept targets from browsers; the operator sets it",
                    )
                )
            if not self._pattern.matches(config.rtmp):
                raise RelayError(
                    ServerError(
                        ErrorName.TARGET_NOT_ALLOWED, "The RTMP target is not one this relay allows"
                    )
                )
        hook = self.config.start_hook
        if hook is None:
            return config
        try:
            result = hook(session.status(), config)
            if inspect.isawaitable(result):
                result = await result
        except RelayError:
            raise
        except Exception as exc:
            raise RelayError(ServerError(ErrorName.CANT_START_FFMPEG, str(exc))) from None
        if not isinstance(result, StartConfig):
            raise RelayError(
                ServerError(ErrorName.CANT_START_FFMPEG, "The start hook returned no configuration")
            )
        if result.rtmp is not None:
            try:
                validate_target(result.rtmp)
            except TargetError as exc:
                raise RelayError(
                    ServerError(
                        ErrorName.INVALID_PARAMETERS, f"Invalid 'rtmp' from the start hook: {exc}"
                    )
                ) from None
        return result

    def resolve_outputs(self, session: Session, config: StartConfig) -> list[Destination]:
        """The client's allowed target, else the operator's defaults (plus a local recording
        with `RelayConfig.record`), else a local recording."""
        if config.rtmp is not None:
            return [Destination(config.rtmp)]
        if self.default_targets:
            outputs = [Destination(url) for url in self.default_targets]
            if self.config.record:
                outputs.append(self._recording_output(session, config))
            return outputs
        return [self._recording_output(session, config)]

    def safety_copy_for(self, session: Session, config: StartConfig) -> SafetyCopy | None:
        """A raw safety copy for a starting session, when the operator wants them."""
        if not self.config.safety_copy:
            return None
        planned = Path(self._recording_output(session, config).url)
        return SafetyCopy(safety_copy_path(planned, config.mime_type))

    def _recording_output(self, session: Session, config: StartConfig) -> Destination:
        return recording_output(self.config.recordings_dir, session.uuid, config.name)

    def session_error(self, session: Session, error: ServerError) -> None:
        """A session failed: tell its client and the operator."""
        self._report(session, error)

    def ffmpeg_output(self, session: Session, line: str) -> None:
        """One (masked) line of a session's ffmpeg log."""
        log.debug("ffmpeg[%s] %s", session.uuid[:8], line)
        self._notify("ffmpeg_output", session.uuid, line)
        if self.config.send_ffmpeg_output:
            session.link.send_ffmpeg_output(line)

    def note_error(self, session_id: str, error: ServerError) -> None:
        """An error the transport already sent its client (a protocol violation): only the
        observers hear it."""
        self._notify("session_error", session_id, error)

    def session_changed(self, session: Session) -> None:
        """A session's state changed (Session.set_state)."""
        self._program_source(session)
        self._notify("session_changed", session.status())

    def output_changed(self, session: Session, status: OutputStatus) -> None:
        """One of a session's outputs changed state."""
        self._notify("output_changed", session.uuid, status)

    def thumbnail(self, session: Session, thumbnail: Thumbnail) -> None:
        """A new picture of one session's stream (while thumbnails are on)."""
        self._notify("thumbnail", session.uuid, thumbnail)

    def session_log(self, session: Session, message: str) -> None:
        """A relay event about one session, for the operator's log."""
        log.info("session %s: %s", session.uuid[:8], message)
        self._notify("session_log", session.uuid, message)

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        """Run `coro` as an owned background task."""
        return self._tasks.spawn(coro, name=name)

    # ---- internals -------------------------------------------------------------------

    def _by_uuid(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def _report(self, session: Session, error: ServerError) -> None:
        # A client may repeat a refused request thousands of times: the client hears every
        # refusal, the log and the window one per kind every few seconds, with a count.
        held_back = self._repeats.allow((session.uuid, error.name, error.fatal))
        if held_back is not None:
            level = logging.WARNING if error.fatal else logging.INFO
            more = f" ({held_back} more like it held back)" if held_back else ""
            log.log(
                level, "session %s: %s: %s%s", session.uuid[:8], error.name, error.message, more
            )
            if error.details:
                log.debug("session %s details:\n%s", session.uuid[:8], error.details)
            self._notify("session_error", session.uuid, error)
        session.link.send_error(error.to_wire(send_details=self.config.send_error_details))


def config_targets(config: RelayConfig) -> list[str]:
    """The program's destinations a config gives (none: the program is off)."""
    return list(config.program_targets or ())


class _ProgramEvents:
    """The program's events, as the relay's observers hear them."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay

    def program_changed(self) -> None:
        self._relay._notify("program_changed", self._relay.program_status())

    def output_changed(self, status: OutputStatus) -> None:
        log.info("program output %s (%s): %s", status.id, status.target, status.state)
        self.program_changed()

    def ffmpeg_output(self, line: str) -> None:
        log.debug("program output: %s", line)

    def program_picture(self, which: str, thumbnail: Thumbnail) -> None:
        self._relay._notify("program_picture", which, thumbnail)
