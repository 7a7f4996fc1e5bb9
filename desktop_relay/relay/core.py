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
from typing import Any

from .auth import new_token
from .client_link import ClientLink
from .config import RelayConfig, StartConfig
from .errors import ErrorName, RelayError, ServerError
from .events import EventEmitter
from .ffmpeg import resolve_ffmpeg
from .ffmpeg_args import Output
from .log_limit import RepeatLimiter
from .recordings import recording_output
from .session import Session
from .status import SessionStatus
from .target_pattern import TargetPattern
from .targets import TargetError, mask_target, validate_target
from .tasks import TaskSet

log = logging.getLogger(__name__)


class Relay(EventEmitter):
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
        self._sessions: dict[str, Session] = {}
        self._tasks = TaskSet()
        self._stats_task: asyncio.Task[Any] | None = None
        self._ffmpeg: str | None = None
        self._stopping = False
        self._repeats = RepeatLimiter()

    # ---- life cycle ------------------------------------------------------------------

    def start_background(self) -> None:
        """Start the periodic stats and sweeps (idle and stalled sessions)."""
        if self._stats_task is None:
            self._stats_task = self._tasks.spawn(self._stats_loop(), name="relay-stats")

    async def stop(self) -> None:
        """End every session (clients hear RELAY_SHUTTING_DOWN; ffmpeg flushes what it can)
        and disconnect their clients, within about `shutdown_timeout` seconds."""
        if self._stopping:
            return
        self._stopping = True
        budget = self.config.shutdown_timeout
        sessions = list(self._sessions.values())
        await asyncio.gather(*(s.shutdown(budget) for s in sessions), return_exceptions=True)
        await asyncio.gather(*(self._finish(s) for s in sessions), return_exceptions=True)
        # Each link delivers the shutdown error before it disconnects.
        await asyncio.gather(*(s.link.close() for s in sessions), return_exceptions=True)
        await self._tasks.cancel_all()

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            self._end_idle_sessions()
            self._end_stalled_sessions()
            if self.has_listeners("stats"):
                self.emit("stats", self.sessions())

    def _end_idle_sessions(self) -> None:
        timeout = self.config.idle_timeout
        if timeout is None:
            return
        now = time.monotonic()
        for session in list(self._sessions.values()):
            if session.idle_for(now) > timeout:
                error = ServerError(
                    ErrorName.IDLE_TIMEOUT,
                    f"No media for {timeout:g} s: the stream was ended to free the relay",
                )
                self._tasks.spawn(session.fail(error), name=f"idle-{session.uuid}")

    def _end_stalled_sessions(self) -> None:
        now = time.monotonic()
        for session in list(self._sessions.values()):
            error = session.stalled(now)
            if error is not None:
                self._tasks.spawn(session.fail(error), name=f"stall-{session.uuid}")

    # ---- public API ------------------------------------------------------------------

    @property
    def auth_token(self) -> str | None:
        """The pairing token browsers must present, or None when pairing is off."""
        return self.config.auth_token

    def set_auth_token(self, token: str | None) -> None:
        """Require another token from now on (None: none). Connected browsers stay."""
        self.config = replace(self.config, auth_token=token)
        log.info("pairing token %s", "changed" if token else "turned off")

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
        if url is not None:
            validate_target(url)
        self.config = replace(self.config, default_target=url)
        log.info("default target set to %s", mask_target(url) or "local recording")

    async def set_session_target(self, session_id: str, url: str | None) -> None:
        """Send one session elsewhere; its ffmpeg restarts on the new target.

        None sends it to a local recording. Raises KeyError for an unknown session and
        TargetError for an invalid target.
        """
        session = self._by_uuid(session_id)
        if session is None:
            raise KeyError(session_id)
        output = (
            Output(validate_target(url))
            if url is not None
            else self._recording_output(session, session.config or StartConfig())
        )
        await session.change_target(output)

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
        self.emit("connection", session.status())
        return session

    async def close_session(self, session: Session) -> None:
        """The client is gone: finish and forget its session (no-op when already done)."""
        await self._finish(session)

    async def _finish(self, session: Session) -> None:
        await session.close()
        if self._sessions.pop(session.uuid, None) is not None:
            log.info("session %s ended", session.uuid)
            self.emit("destroyed", session.uuid, session.status())

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
        self.emit("refused", remote, error)

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
        """Refuse a start past `max_ffmpeg_instances`."""
        limit = self.config.max_ffmpeg_instances
        if limit is None:
            return
        running = sum(1 for s in self._sessions.values() if s is not session and s.active)
        if running >= limit:
            raise RelayError(
                ServerError(
                    ErrorName.MAX_STREAMS_REACHED,
                    f"The relay is already running its maximum of {limit} stream(s); try later",
                )
            )

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

    def resolve_output(self, session: Session, config: StartConfig) -> Output:
        """The client's allowed target, else the operator's default, else a local recording."""
        if config.rtmp is not None:
            return Output(config.rtmp)
        if self.config.default_target is not None:
            return Output(self.config.default_target)
        return self._recording_output(session, config)

    def _recording_output(self, session: Session, config: StartConfig) -> Output:
        return recording_output(self.config.recordings_dir, session.uuid, config.name)

    def session_error(self, session: Session, error: ServerError) -> None:
        """A session failed: tell its client and the operator."""
        self._report(session, error)

    def session_output(self, session: Session, line: str) -> None:
        """One (masked) line of a session's ffmpeg log."""
        log.debug("ffmpeg[%s] %s", session.uuid[:8], line)
        self.emit("ffmpegOutput", session.uuid, line)
        if self.config.send_ffmpeg_output:
            session.link.send_output(line)

    def session_log(self, session: Session, message: str) -> None:
        """A relay event about one session, for the operator's log."""
        log.info("session %s: %s", session.uuid[:8], message)
        self.emit("log", session.uuid, message)

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
            self.emit("error", session.uuid, error)
        session.link.send_error(error.to_wire(send_details=self.config.send_error_details))
