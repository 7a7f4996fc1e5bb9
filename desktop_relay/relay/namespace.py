"""The socket.io protocol of the original server, one handler per event: it maps each socket
to its session and turns events into calls on the relay core."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from .auth import presented_token, token_matches
from .core import Relay
from .errors import ErrorName, RelayError, ServerError
from .session import Session
from .socket_link import SocketLink
from .tasks import TaskSet

log = logging.getLogger(__name__)


class RelayNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Client to server: `start(config, ack)`, `binarystream(chunk, ack)`, `stop(ack)`."""

    def __init__(self, relay: Relay, tasks: TaskSet) -> None:
        super().__init__("/")
        self.relay = relay
        self._tasks = tasks
        # socket.io id -> the session of that socket.
        self._sessions: dict[str, Session] = {}

    def session_by_sid(self, sid: str) -> Session | None:
        """The session of a socket id."""
        return self._sessions.get(sid)

    def refuse_connection(self, environ: dict[str, Any], error: ServerError) -> None:
        """Report a socket refused before it had a session (wrong or missing token)."""
        request = environ.get("aiohttp.request")
        self.relay.report_refused(str(getattr(request, "remote", "") or ""), error)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """A browser connected: a session exists from now on, without ffmpeg yet."""
        expected = self.relay.auth_token
        if expected is not None and not token_matches(expected, presented_token(environ, auth)):
            error = ServerError(
                ErrorName.AUTH_FAILED,
                "This relay needs its pairing token: open the join link or scan the QR code "
                "shown in Desktop Relay",
            )
            self.refuse_connection(environ, error)
            # socket.io clients get `message` as the connect_error's message, and the
            # protocol's error object as its `data`.
            raise socketio.exceptions.ConnectionRefusedError(
                error.message, error.to_wire(send_details=False)
            )
        request = environ.get("aiohttp.request")
        remote = getattr(request, "remote", None) or environ.get("REMOTE_ADDR", "")
        if sid in self._sessions:
            # Replacing it would forget a session whose ffmpeg still runs (issue 10).
            error = ServerError(ErrorName.PROTOCOL_ERROR, "This socket already has a session")
            raise socketio.exceptions.ConnectionRefusedError(
                error.message, error.to_wire(send_details=False)
            )
        link = SocketLink(
            self.server, sid, str(remote), str(environ.get("HTTP_USER_AGENT", "")), self._tasks
        )
        try:
            self._sessions[sid] = self.relay.open_session(link)
        except RelayError as exc:
            self.refuse_connection(environ, exc.error)
            raise socketio.exceptions.ConnectionRefusedError(
                exc.error.message, exc.error.to_wire(send_details=False)
            ) from None

    def report_violation(self, sids: list[str], remote: str, error: ServerError) -> None:
        """The socket guard refused a client (and logged it): tell the operator's observers.

        Not an `on_` method, so no client event can reach it.
        """
        sessions = [s for s in map(self.session_by_sid, sids) if s is not None]
        if not sessions:
            self.relay.report_refused(remote, error, logged=True)
        for session in sessions:
            self.relay.emit("error", session.uuid, error)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """The socket is gone: end its ffmpeg gracefully and forget the session."""
        session = self._sessions.pop(sid, None)
        if session is not None:
            await self.relay.close_session(session)

    async def on_start(self, sid: str, *args: Any) -> Any:
        """Validate and accept a session's config; refusals get an `error`, not an ack."""
        session = self.session_by_sid(sid)
        if session is None:
            return None
        try:
            await session.start(args[0] if args else None)
        except RelayError as exc:
            self.relay.refuse(session, exc.error)
            # The original sends no ack on refusal: its client would start recording.
            return self.server.not_handled
        return None

    async def on_binarystream(self, sid: str, *args: Any) -> Any:
        """Queue one chunk; the ack comes once ffmpeg took it, or carries the error."""
        session = self.session_by_sid(sid)
        if session is None:
            return None
        data = args[0] if args else None
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, bytes):
            error = ServerError(
                ErrorName.INVALID_PARAMETERS,
                "Invalid 'binarystream': chunks must be binary data",
                fatal=False,
            )
            self.relay.refuse(session, error)
            return error.to_wire(send_details=False)
        # No await before feed(): python-socketio runs each event as its own task, and tasks
        # start in arrival order, so this keeps the chunks in order.
        result = await session.feed(data)
        if result is None:
            return None
        if result.name == ErrorName.FFMPEG_NOT_RUNNING:
            self.relay.refuse(session, result)
        return result.to_wire(send_details=self.relay.config.send_error_details)

    async def on_stop(self, sid: str, *args: Any) -> None:
        """End this session's ffmpeg once the queued chunks are written; ack when done."""
        session = self.session_by_sid(sid)
        if session is not None:
            await session.stop()
