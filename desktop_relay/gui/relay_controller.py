"""The window's handle on the relay: owns the running `RelayServer`, restarts it with a new config,
and turns its plain callbacks into Qt signals. Only the relay's public API is used."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from ..relay import (
    BaseObserver,
    ProgramRequestError,
    ProgramStatus,
    RelayConfig,
    RelayError,
    RelayServer,
    ServerError,
    SessionStatus,
    TargetError,
    TaskSet,
    Thumbnail,
    fingerprint,
    save_token,
)

log = logging.getLogger(__name__)


# What a program command says when there is no program to run it on.
PROGRAM_OFF_MESSAGE = "the program is off (give it a destination: --program-url)"


def describe_exception(exc: BaseException) -> str:
    """A message an operator can read, for the exceptions the relay's methods raise."""
    if isinstance(exc, ProgramRequestError):
        return exc.message
    if isinstance(exc, RelayError):
        return exc.error.message
    if isinstance(exc, TargetError):
        return f"The RTMP target {exc}"
    if isinstance(exc, KeyError):
        return "That session has already ended"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


class _ProgramCommands(Protocol):
    """What the window commands of `relay.program` (the Program class itself is not among
    the relay's public names; its methods are its API)."""

    async def take(self, source_id: str, fade_ms: int = 0) -> ProgramStatus: ...
    async def take_preview(self, fade_ms: int = 0) -> ProgramStatus: ...
    def preview(self, source_id: str | None) -> ProgramStatus: ...
    async def slate(self, on: bool) -> ProgramStatus: ...
    async def pip(
        self, source_id: str | None, corner: str = "br", size: str = "1/4"
    ) -> ProgramStatus: ...


class RelayController(QObject):
    """Runs one `RelayServer` at a time on the Qt (qasync) event loop and reports on it."""

    # The relay's events, re-emitted under their one name (observer.RelayObserver's methods;
    # listeners run synchronously on the loop's thread, which is Qt's main thread under
    # qasync, so direct emission is safe).
    session_opened = Signal(object)  # SessionStatus
    ffmpeg_output = Signal(str, str)  # session id, line
    session_log = Signal(str, str)  # session id, message
    session_error = Signal(str, object)  # session id, ServerError
    session_ended = Signal(str, object)  # session id, final SessionStatus
    session_changed = Signal(object)  # SessionStatus: its state changed (waiting, live...)
    connection_refused = Signal(str, object)  # remote address, ServerError (e.g. bad token)
    thumbnail = Signal(str, object)  # session id, Thumbnail (while thumbnails are on)
    program_changed = Signal(object)  # ProgramStatus: a take, the slate, a source, an output
    program_picture = Signal(str, object)  # "program" or "preview", Thumbnail (while shown)
    # The controller's own life cycle.
    started = Signal()
    start_failed = Signal(str)
    stopped = Signal()
    action_failed = Signal(str)  # a control (kill, target change...) did not work

    def __init__(
        self,
        config: RelayConfig,
        parent: QObject | None = None,
        token_file: Path | None = None,
        control_token_file: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self._config = config
        # Where a rotated pairing token is kept for the next start (None: not kept).
        self.token_file = token_file
        # The same for the control API's token (the command line reads it from there too).
        self.control_token_file = control_token_file
        self._relay: RelayServer | None = None
        self._tasks = TaskSet()
        self._busy = False
        self._closed = False
        self._life = asyncio.Lock()  # one start, stop or restart at a time
        self._thumbnails = False  # whether the window wants pictures (it is visible)

    # ---- state -----------------------------------------------------------------------

    @property
    def config(self) -> RelayConfig:
        """The configuration of the running relay, or of the next one to start."""
        return self._config

    def applied_live(self, config: RelayConfig) -> None:
        """Record options already applied without a restart (the log level), so that the
        config the window shows and the next restart use them."""
        self._config = config

    @property
    def relay(self) -> RelayServer | None:
        """The running relay, if any."""
        return self._relay

    @property
    def running(self) -> bool:
        """Whether a relay is listening."""
        return self._relay is not None

    @property
    def busy(self) -> bool:
        """Whether a start, stop or restart is under way."""
        return self._busy

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """Host and actual port of the running relay."""
        if self._relay is None or self._relay.port is None:
            return None
        return self._relay.host, self._relay.port

    @property
    def uses_tls(self) -> bool:
        """Whether the running relay serves https."""
        return self._relay is not None and self._relay.scheme == "https"

    @property
    def auth_token(self) -> str | None:
        """The pairing token browsers must present (None: pairing is off)."""
        return self._relay.auth_token if self._relay is not None else self._config.auth_token

    @property
    def certificate_fingerprint(self) -> str | None:
        """SHA-256 of what a device should trust: the local CA, else the certificate itself."""
        tls = self._relay.config.tls if self._relay is not None else None
        if tls is None:
            return None
        try:
            return fingerprint(tls.ca_cert or tls.cert)
        except (OSError, ValueError):
            return None

    def rotate_token(self) -> str | None:
        """Require a new pairing token from now on, kept for the next start; None when
        pairing is off or the relay is not running. Connected browsers stay connected."""
        if self._relay is None or self._relay.auth_token is None:
            return None
        token = self._relay.rotate_token()
        self._config = replace(self._config, auth_token=token)
        if self.token_file is not None:
            save_token(self.token_file, token)
        return token

    @property
    def control_token(self) -> str | None:
        """The control API's token (None: the API refuses every request)."""
        if self._relay is not None:
            return self._relay.control_token
        return self._config.control_token

    def rotate_control_token(self) -> str | None:
        """Require a new control API token from now on, kept for the next start (and for the
        command line, which reads the same file); None when the relay is not running.
        Controllers (Companion, scripts) need the new one."""
        if self._relay is None:
            return None
        token = self._relay.rotate_control_token()
        self._config = replace(self._config, control_token=token)
        if self.control_token_file is not None:
            save_token(self.control_token_file, token)
        return token

    def sessions(self) -> list[SessionStatus]:
        """Snapshots of the running relay's sessions (none when stopped)."""
        return self._relay.sessions() if self._relay is not None else []

    # ---- life cycle ------------------------------------------------------------------

    async def start(self) -> bool:
        """Start a relay with the current config; False (and `start_failed`) if it cannot."""
        async with self._life:
            return await self._start()

    async def stop(self) -> None:
        """Stop every session gracefully (ffmpeg flushes) and stop listening."""
        async with self._life:
            await self._stop()

    async def restart(self, config: RelayConfig) -> bool:
        """Stop the relay and start a new one from `config` (a RelayConfig is immutable)."""
        async with self._life:
            await self._stop()
            self._config = config
            return await self._start()

    async def shutdown(self) -> None:
        """Stop the relay for good, and every task the controller started."""
        # A restart under way finishes first (the lock), and nothing starts afterwards:
        # quitting must never leave a relay listening.
        self._closed = True
        await self.stop()
        await self._tasks.cancel_all()

    async def _start(self) -> bool:
        if self._relay is not None:
            return True
        if self._closed:
            return False
        self._busy = True
        relay: RelayServer | None = None
        try:
            relay = RelayServer(self._config)
            self._subscribe(relay)
            await relay.start()
        except (OSError, RelayError, TargetError, ValueError) as exc:
            if relay is not None:
                # Release what start() had set up (the aiohttp runner) before it failed.
                with contextlib.suppress(Exception):
                    await relay.stop()
            message = describe_exception(exc)
            # (WARNING: the window shows this itself; ERROR records reach its banner too.)
            log.warning("the relay could not start: %s", message)
            self.start_failed.emit(
                f"The relay could not listen on {self._config.host}:{self._config.port}: {message}"
            )
            return False
        finally:
            self._busy = False
        self._relay = relay
        self.started.emit()
        self._check_ffmpeg(relay)
        return True

    async def _stop(self) -> None:
        relay, self._relay = self._relay, None
        if relay is None:
            return
        self._busy = True
        try:
            # Listeners stay attached during stop(): its "destroyed" events end the rows.
            await relay.stop()
        finally:
            self._busy = False
        self.stopped.emit()

    # ---- controls --------------------------------------------------------------------

    def set_default_target(self, url: str | None) -> None:
        """The target for sessions that start from now on (raises TargetError)."""
        if self._relay is not None:
            self._relay.set_default_target(url)
        # Kept in our config too, so that a restart keeps the operator's target.
        self._config = replace(self._config, default_target=url)

    def set_default_targets(self, urls: list[str], *, record: bool = False) -> None:
        """Every target sessions that start from now on go to, and whether they are also
        recorded beside them ([] records them anyway); raises TargetError."""
        if self._relay is not None:
            self._relay.set_default_targets(urls, record=record)
        # Kept in our config too, so that a restart keeps the operator's destinations.
        self._config = self._config.with_targets(urls, record=record)

    def add_output(self, session_id: str, url: str | None) -> None:
        """Also send one session to `url` (None: a local recording); its other outputs and
        its encoder are not touched."""
        if self._relay is not None:
            self.run(self._relay.add_output(session_id, url), "Add destination")

    def remove_output(self, session_id: str, output_id: str) -> None:
        """Stop sending one session to one of its outputs; the others go on."""
        relay = self._relay
        if relay is None:
            return

        async def remove() -> None:
            if not await relay.remove_output(session_id, output_id):
                raise LookupError("that destination had already stopped")

        self.run(remove(), "Remove destination")

    def kill(self, session_id: str) -> None:
        """End one session now."""
        if self._relay is not None:
            self.run(self._relay.kill(session_id), "Kill")

    def kill_all(self) -> None:
        """End every session now."""
        if self._relay is not None:
            self.run(self._relay.kill_all(), "Kill all")

    def set_session_target(self, session_id: str, url: str | None) -> None:
        """Send one session elsewhere (its ffmpeg restarts)."""
        if self._relay is not None:
            self.run(self._relay.set_session_target(session_id, url), "Change target")

    # ---- the program -----------------------------------------------------------------

    def program_status(self) -> ProgramStatus | None:
        """A snapshot of the program (`enabled` False when it is off); None when stopped."""
        return self._relay.program_status() if self._relay is not None else None

    @property
    def program_on(self) -> bool:
        """Whether the running relay has a program to command."""
        return self._relay is not None and self._relay.program is not None

    def program_take(self, source_id: str, fade_ms: int = 0) -> None:
        """Put a live session on air: a cut, or a fade of `fade_ms` ms."""
        program = self._program("Take")
        if program is not None:
            self.run(program.take(source_id, fade_ms), "Take")

    def program_take_preview(self, fade_ms: int = 0) -> None:
        """Take the session on preview (a cut, or a fade); what was on air goes to preview."""
        program = self._program("Fade" if fade_ms else "Take")
        if program is not None:
            self.run(program.take_preview(fade_ms), "Fade" if fade_ms else "Take")

    def program_preview(self, source_id: str | None) -> None:
        """Show a live session beside the program, ready to take (None: no preview)."""
        program = self._program("Preview")
        if program is None:
            return
        try:
            program.preview(source_id)
        except ProgramRequestError as exc:
            self.action_failed.emit(f"Preview failed: {exc.message}")

    def program_slate(self, on: bool) -> None:
        """Cover the program with the slate, or uncover it."""
        program = self._program("Slate")
        if program is not None:
            self.run(program.slate(on), "Slate")

    def program_pip(self, source_id: str | None, corner: str = "br", size: str = "1/4") -> None:
        """A second live session in a corner of the program (None: none)."""
        program = self._program("Picture-in-picture")
        if program is not None:
            self.run(program.pip(source_id, corner, size), "Picture-in-picture")

    def _program(self, what: str) -> _ProgramCommands | None:
        program = self._relay.program if self._relay is not None else None
        if program is None:
            self.action_failed.emit(f"{what} failed: {PROGRAM_OFF_MESSAGE}")
        return program

    def run(
        self,
        coro: Awaitable[Any],
        what: str,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Run a control as an owned task; a failure reaches the window, not just the log."""

        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:
                log.warning("%s failed: %s", what, exc)
                self.action_failed.emit(f"{what} failed: {describe_exception(exc)}")
            if on_done is not None:
                on_done()

        self._tasks.spawn(guarded(), name=f"gui-{what}")

    # ---- internals -------------------------------------------------------------------

    def set_thumbnails(self, enabled: bool) -> None:
        """Decode live sessions into thumbnails (now, and in relays started later) or stop."""
        self._thumbnails = enabled
        if self._relay is not None:
            self._relay.set_thumbnails(enabled)

    def _subscribe(self, relay: RelayServer) -> None:
        relay.add_observer(_SignalObserver(self))
        relay.set_thumbnails(self._thumbnails)

    def _check_ffmpeg(self, relay: RelayServer) -> None:
        # Sessions would fail one by one without it: say so once, at start.
        try:
            relay.ffmpeg_binary()
        except RelayError as exc:
            self.action_failed.emit(
                f"{exc.error.message}: sessions cannot stream. Set the ffmpeg path in Settings."
            )


class _SignalObserver(BaseObserver):
    """The relay's typed events as the controller's Qt signals (observers run on the loop's
    thread, which is Qt's main thread under qasync, so direct emission is safe)."""

    def __init__(self, controller: RelayController) -> None:
        self._c = controller

    def session_opened(self, status: SessionStatus) -> None:
        self._c.session_opened.emit(status)

    def session_changed(self, status: SessionStatus) -> None:
        self._c.session_changed.emit(status)

    def session_waiting(self, status: SessionStatus) -> None:
        self._c.session_changed.emit(status)

    def session_resumed(self, status: SessionStatus) -> None:
        self._c.session_changed.emit(status)

    def ffmpeg_output(self, session_id: str, line: str) -> None:
        self._c.ffmpeg_output.emit(session_id, line)

    def session_log(self, session_id: str, message: str) -> None:
        self._c.session_log.emit(session_id, message)

    def session_error(self, session_id: str, error: ServerError) -> None:
        self._c.session_error.emit(session_id, error)

    def session_ended(self, status: SessionStatus) -> None:
        self._c.session_ended.emit(status.uuid, status)

    def connection_refused(self, remote_address: str, error: ServerError) -> None:
        self._c.connection_refused.emit(remote_address, error)

    def thumbnail(self, session_id: str, thumbnail: Thumbnail) -> None:
        self._c.thumbnail.emit(session_id, thumbnail)

    def program_changed(self, status: ProgramStatus) -> None:
        self._c.program_changed.emit(status)

    def program_picture(self, which: str, thumbnail: Thumbnail) -> None:
        self._c.program_picture.emit(which, thumbnail)
