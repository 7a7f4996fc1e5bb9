"""The socket.io protocol of the original server, one handler per event: it maps each socket
to its session and turns events into calls on the relay core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import socketio

from ..core import RESUME_REFUSED, Relay
from ..errors import ErrorName, RelayError, ServerError
from ..security.auth import presented_token, token_matches
from ..session.resume import ChunkSequence, SeqVerdict, parse_resume_request, parse_seq
from ..session.session import Session
from ..status import SessionState
from ..tasks import TaskSet
from .socket_link import SocketLink

log = logging.getLogger(__name__)

# What a socket hears when another connection resumed its session with the token.
TAKEN_OVER = ServerError(
    ErrorName.SESSION_TAKEN_OVER,
    "Another connection took this stream over (the same browser after a network change)",
    fatal=True,
)


def _ready(loop: asyncio.AbstractEventLoop, value: Any) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = loop.create_future()
    fut.set_result(value)
    return fut


class RelayNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Client to server: `start(config, ack)`, `binarystream(chunk, [seq,] ack)`, `stop(ack)`,
    and `resume({sessionId, token}, ack)` (see `resume` for the additions to the original)."""

    def __init__(self, relay: Relay, tasks: TaskSet) -> None:
        super().__init__("/")
        self.relay = relay
        self._tasks = tasks
        # socket.io id -> the session of that socket.
        self._sessions: dict[str, Session] = {}
        # Sockets the guard is closing for misbehaving: their sessions end, never wait.
        self._kicked: set[str] = set()
        # Sockets whose `stop` arrived and is not handled yet: a page that reloads or closes
        # says goodbye so (`stop`, then the close at once), and its close, handled before the
        # stop's task, must end the session rather than keep it waiting for a resume.
        self._leaving: set[str] = set()
        # Sessions whose socket just went, by socket id: a `stop` that reaches the relay after
        # the close (not on one websocket) is handled after it.
        self._gone: dict[str, Session] = {}

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
        self._kicked.update(sids)
        sessions = [s for s in map(self.session_by_sid, sids) if s is not None]
        if not sessions:
            self.relay.report_refused(remote, error, logged=True)
        for session in sessions:
            self.relay.note_error(session.uuid, error)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        """The socket is gone. If the relay closed it (a kill, the guard, a shutdown) the
        session ends now: ffmpeg stops gracefully. Otherwise a session still streaming (its
        client did not `stop`) waits for its client to `resume` it (`Relay.detach`)."""
        session = self._sessions.pop(sid, None)
        kicked = sid in self._kicked
        self._kicked.discard(sid)
        leaving = sid in self._leaving
        self._leaving.discard(sid)
        if session is None:
            return
        log.debug("session %s: socket gone (%s)", session.uuid[:8], reason)
        self._remember_gone(sid, session)
        # Not the reason's "client disconnect": clients send their disconnect packet and close
        # the websocket at once, so which of the two the server handles first is a race (the
        # python-socketio client's packet is often not even sent). A client that means to end
        # its stream says `stop`.
        if leaving:
            log.info("session %s: its page said goodbye; ending it now", session.uuid[:8])
        if kicked or leaving or reason == self.server.reason.SERVER_DISCONNECT:
            await self.relay.close_session(session)
        else:
            await self.relay.detach(session)

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
        # A new stream, a new numbering (no await since start() set the session streaming,
        # so no chunk of this stream was numbered yet).
        session.sequence = ChunkSequence()
        # The original client's callback takes no argument: this is for resuming clients.
        return {
            "sessionId": session.uuid,
            "resumeToken": session.ticket.token,
            "lastSeq": session.sequence.last,
        }

    async def on_binarystream(self, sid: str, *args: Any) -> Any:
        """Queue one chunk; the ack comes once ffmpeg took it, or carries the error."""
        return await self.binarystream_now(sid, *args)

    def binarystream_now(self, sid: str, *args: Any) -> asyncio.Future[Any]:
        """`binarystream` without a task: the ack's value as a future, done at once unless
        the encoder's pipe is full (GuardedServer.register_immediate calls this where the
        event arrives; `on_binarystream` awaits it for any other path)."""
        loop = asyncio.get_running_loop()
        session = self.session_by_sid(sid)
        if session is None:
            return _ready(loop, None)
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
            return _ready(loop, error.to_wire(send_details=False))
        try:
            seq = parse_seq(args[1] if len(args) > 1 else None)
        except ValueError as exc:
            error = ServerError(
                ErrorName.INVALID_PARAMETERS, f"Invalid 'binarystream' seq: {exc}", fatal=False
            )
            self.relay.refuse(session, error)
            return _ready(loop, error.to_wire(send_details=False))
        duplicate = seq is not None and session.sequence.check(seq) is SeqVerdict.DUPLICATE
        # Called in arrival order (where the event arrives, or by its task: tasks start in
        # arrival order), so the chunks stay in order.
        taken = session.feed(data, seq)
        if taken.done():
            return _ready(loop, self._chunk_ack(session, taken.result(), duplicate))
        answer: asyncio.Future[Any] = loop.create_future()

        def settle(fut: asyncio.Future[ServerError | None]) -> None:
            if answer.done():
                return
            if fut.cancelled():
                answer.cancel()
            elif fut.exception() is not None:
                answer.set_exception(fut.exception())  # type: ignore[arg-type]
            else:
                answer.set_result(self._chunk_ack(session, fut.result(), duplicate))

        taken.add_done_callback(settle)
        return answer

    def _chunk_ack(self, session: Session, result: ServerError | None, duplicate: bool) -> Any:
        if result is None:
            # Clients treat a truthy first ack argument as an error: a dropped duplicate is a
            # success, said in the second argument.
            return (None, {"duplicate": True}) if duplicate else None
        if result.name == ErrorName.FFMPEG_NOT_RUNNING:
            self.relay.refuse(session, result)
        return result.to_wire(send_details=self.relay.config.send_error_details)

    async def on_stop(self, sid: str, *args: Any) -> None:
        """End this session's ffmpeg once the queued chunks are written; ack when done.

        A page that goes away for good (a reload, a closed tab) sends `stop` and closes its
        socket at once; the close is often handled before this task runs. `note_stop`, told
        where the stop arrived, makes that close end the session; a stop that reaches the
        relay after the close (not on the same websocket) ends the session left waiting here.
        A lost link sends no stop, and keeps waiting."""
        self._leaving.discard(sid)
        session = self.session_by_sid(sid)
        if session is not None:
            await session.stop()
            return
        gone = self._gone.pop(sid, None)
        if gone is not None and gone.state == SessionState.WAITING:
            log.info("session %s: its page said goodbye; ending it now", gone.uuid[:8])
            await self.relay.close_session(gone)

    def note_stop(self, sid: str) -> None:
        """A `stop` arrived from `sid` (GuardedServer.register_arrival calls this before the
        stop's task runs): if the socket closes before that, its session ends, never waits."""
        if sid in self._sessions:
            self._leaving.add(sid)

    def _remember_gone(self, sid: str, session: Session) -> None:
        self._gone[sid] = session
        # A goodbye comes within milliseconds of the close: forget it after a few seconds.
        asyncio.get_running_loop().call_later(5.0, self._gone.pop, sid, None)

    async def on_resume(self, sid: str, *args: Any) -> Any:
        """Take over a session whose socket was lost, with its resume token; the ack says
        where to resend from. Refusals get RESUME_REFUSED as the ack and an `error` event."""
        own = self.session_by_sid(sid)
        if own is None:
            return RESUME_REFUSED.to_wire(send_details=False)
        request = parse_resume_request(args[0] if args else None)
        try:
            if request is None or own.active:
                # Malformed, or this socket streams already: its own stream is not to lose.
                raise RelayError(RESUME_REFUSED)
            session = self.relay.resume(own.link, *request)
        except RelayError as exc:
            self.relay.refuse(own, exc.error)
            return exc.error.to_wire(send_details=False)
        if session is not own:
            # The session's old socket, if the relay still had it, goes: the token won.
            for old_sid in [s for s, mapped in self._sessions.items() if mapped is session]:
                del self._sessions[old_sid]
                # Told why before it goes: a page still open there must not resume it back.
                self._tasks.spawn(self._displace(old_sid), name=f"displace-{old_sid}")
            self._sessions[sid] = session
            # The socket's own session was empty (no stream): it is simply discarded.
            await self.relay.close_session(own)
        return {"sessionId": session.uuid, "lastSeq": session.sequence.last}

    async def _drop(self, sid: str) -> None:
        with contextlib.suppress(Exception):
            await self.server.disconnect(sid)

    async def _displace(self, sid: str) -> None:
        with contextlib.suppress(Exception):
            await self.server.emit("error", TAKEN_OVER.to_wire(send_details=False), to=sid)
        await self._drop(sid)
