"""python-socketio and python-engineio, hardened against hostile clients (issue 10).

`GuardedServer` is a `socketio.AsyncServer` (aiohttp, websocket transport) that:

- never dispatches a client event named like a life-cycle event (`connect`, `disconnect`,
  ...): python-socketio routes client events by name, so an event called `connect` reached
  the namespace's own `on_connect`, for any namespace;
- refuses malformed packets (non-list payloads, non-string event names, JSON it cannot
  parse, 100k-deep nesting, over-long ids, garbage engine.io frames), which python-socketio
  only logs while leaving the socket open, and some of which kill engine.io's reader
  without cleaning up the socket;
- takes at most one binary attachment per event and bounds the bytes an unfinished binary
  event may hold, before python-socketio buffers anything;
- closes sockets that have not completed a socket.io connect within `connect_timeout`;
- caps open connections per remote address, refusing the excess with HTTP 429 before the
  websocket upgrade;
- tells a client whose message is over engine.io's size limit why it is being dropped
  (CHUNK_TOO_LARGE) before the close.

Every refusal sends the client an `error` event (or a connect error when it has not joined a
namespace), logs one line, reports to `on_violation`, then closes the websocket. Closing
rather than ignoring: neither our client nor the 0.2.x npm client ever sends such packets,
so the peer is hostile or broken, and a closed socket also ends its session (and ffmpeg)
through the normal disconnect path.

It relies on python-socketio 5.x / python-engineio 4.x internals (`_handle_eio_message`,
`_handle_event`, `_binary_packet`, the aiohttp driver's `WebSocket`); tests/relay/
test_hostile_clients.py pins the behaviour if those change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import engineio
import socketio
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http_websocket import WebSocketError
from engineio import async_socket as engine_socket
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from ..errors import ErrorName, ServerError
from ..log_limit import RepeatLimiter
from .eio_socket import LivelySocket

log = logging.getLogger(__name__)

RESERVED_EVENTS = frozenset(
    {
        # python-socketio's own (dispatched to on_connect / on_disconnect)...
        "connect",
        "disconnect",
        # ...its catch-all handler's key...
        "*",
        # ...and the other names socket.io reserves (client side, or the JS server's).
        "connect_error",
        "disconnecting",
        "newListener",
        "removeListener",
    }
)
"""Event names a client may never send. `message` is not among them: python-socketio treats
it as an ordinary event (a client's `send()`)."""

MAX_ATTACHMENTS = 1
"""Binary attachments one event may declare: a chunk is one, nothing else carries any."""

CLOSE_TIMEOUT = 2.0
"""Seconds a closing websocket waits for the client's close frame before dropping the TCP
connection (aiohttp's default, 10 s, lets a silent client hold the socket that long)."""

EIO_SID = "desktop_relay.eio_sid"
"""Key under which the engine.io session id is kept in a connection's environ."""

ViolationReporter = Callable[[list[str], str, ServerError], None]
"""Called with the offender's socket.io session ids (empty before it joined a namespace),
its remote address and the error, once per refused socket or connection burst."""

ImmediateHandler = Callable[..., "asyncio.Future[Any]"]
"""`handler(sid, *args)` for `GuardedServer.register_immediate`: the ack's value, as a future."""

ArrivalNotice = Callable[[str], None]
"""`notice(sid)` for `GuardedServer.register_arrival`: told an event came, before its handler."""

_ATTACHMENT_COUNT = re.compile(r"[56](\d{1,10})-")
# A chunk as socket.io clients send it in the default namespace: the `binarystream` event with
# one attachment, maybe an ack id, maybe a sequence number (what socket.io-parser makes of
# `emit("binarystream", chunk[, seq], ack)`). Anything else takes python-socketio's decoder.
_CHUNK_EVENT = re.compile(
    r'51-(0|[1-9]\d{0,9})?\["binarystream",\{"_placeholder":true,"num":0\}'
    r"(?:,(0|[1-9]\d{0,15}))?\]"
)


class _ChunkEvent:
    """The text part of a chunk event that matched _CHUNK_EVENT, waiting for its attachment:
    what python-socketio's decoder would have made of it (its JSON parse, its packet, its walk
    of the data for placeholders cost more than the rest of the chunk's socket.io path)."""

    __slots__ = ("id", "seq")

    def __init__(self, match: re.Match[str]) -> None:
        ack_id, seq = match.group(1, 2)
        self.id = None if ack_id is None else int(ack_id)
        self.seq = None if seq is None else int(seq)

    def event(self, attachment: Any) -> list[Any]:
        """The event's data with its attachment in place."""
        if self.seq is None:
            return ["binarystream", attachment]
        return ["binarystream", attachment, self.seq]


def _remote(environ: Mapping[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    return str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR", "") or "?")


def _protocol_error(message: str) -> ServerError:
    return ServerError(ErrorName.PROTOCOL_ERROR, message)


def _describe(exc: BaseException) -> str:
    # Decoding errors say where and why, not what; other exceptions (KeyError, ...) can quote
    # the client's data, which may hold a stream key: name only their type.
    text = str(exc).splitlines()[0] if isinstance(exc, ValueError | RecursionError) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """A `socketio.AsyncServer` for aiohttp that refuses hostile clients (see the module)."""

    def __init__(
        self,
        *,
        connect_timeout: float | None,
        max_connections_per_address: int | None,
        max_chunk_bytes: int,
        on_violation: ViolationReporter | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.connect_timeout = connect_timeout
        self.max_chunk_bytes = max_chunk_bytes
        self.on_violation = on_violation
        self.eio.guard = self
        self.eio.max_connections_per_address = max_connections_per_address
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._websockets: dict[str, web.WebSocketResponse] = {}
        self._pending_bytes: dict[str, int] = {}
        self._kicked: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Events handled where they arrive (register_immediate), and per engine.io socket
        # the events still handled by a task, which those must not overtake.
        self._immediate: dict[tuple[str, str], ImmediateHandler] = {}
        self._in_flight: Counter[str] = Counter()
        self._arrival: dict[tuple[str, str], ArrivalNotice] = {}
        # 1,100 idle sockets must not write 1,100 lines: one per address and kind per 10 s.
        self._repeats = RepeatLimiter()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _GuardedEngineIO

    async def shutdown(self) -> None:
        """Stop engine.io's background work and the guard's timers and pending closes."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await super().shutdown()

    # ---- refusing -----------------------------------------------------------------------

    def connected_sids(self, eio_sid: str) -> list[tuple[str, str]]:
        """(namespace, socket.io sid) of every namespace this engine.io socket has joined."""
        joined = []
        for namespace in list(self.manager.get_namespaces()):
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                joined.append((namespace, sid))
        return joined

    def refuse(self, eio_sid: str, error: ServerError) -> list[str] | None:
        """Mark a socket refused: log, report, and return the frames that tell the client.

        None when it was refused already (one error per socket is enough).
        """
        if eio_sid in self._kicked:
            return None
        self._kicked.add(eio_sid)
        environ = self.environ.get(eio_sid, {})
        remote = _remote(environ)
        joined = self.connected_sids(eio_sid)
        held_back = self._repeats.allow((remote, error.name))
        if held_back is not None:
            more = f" ({held_back} more like it since the last line)" if held_back else ""
            log.warning(
                "closing the socket from %s: %s: %s%s", remote, error.name, error.message, more
            )
        if self.on_violation is not None:
            try:
                self.on_violation([sid for _, sid in joined], remote, error)
            except Exception:
                log.exception("reporting a refused socket failed")
        wire = error.to_wire(send_details=False)
        if joined:
            packets = [
                self.packet_class(sio_packet.EVENT, data=["error", wire], namespace=ns)
                for ns, _ in joined
            ]
        else:
            # Not in a namespace yet: socket.io clients surface this as `connect_error`.
            packets = [
                self.packet_class(
                    sio_packet.CONNECT_ERROR,
                    data={"message": error.message, "data": wire},
                    namespace="/",
                )
            ]
        return [
            str(eio_packet.Packet(eio_packet.MESSAGE, data=pkt.encode()).encode())
            for pkt in packets
        ]

    async def kick(
        self, eio_sid: str, error: ServerError, code: int = WSCloseCode.POLICY_VIOLATION
    ) -> None:
        """Tell the client why, then close its websocket (its session ends as on any close)."""
        frames = self.refuse(eio_sid, error)
        if frames is None:
            return
        self._binary_packet.pop(eio_sid, None)
        self._pending_bytes.pop(eio_sid, None)
        ws = self._websockets.get(eio_sid)
        if ws is None or ws.closed:
            await self.eio.disconnect(eio_sid)
            return
        # Sent on the websocket itself, not engine.io's queue: the close follows at once.
        with contextlib.suppress(Exception):
            for frame in frames:
                await ws.send_str(frame)
        with contextlib.suppress(Exception):
            await ws.close(code=code, message=str(error.name).encode())

    async def disconnect(
        self, sid: str, namespace: str | None = None, ignore_queue: bool = False
    ) -> None:
        """python-socketio's server-side disconnect; the websocket, if left open without a
        namespace, then gets `connect_timeout` to join again like any idle socket."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
        if eio_sid in self.eio.sockets and not self.connected_sids(eio_sid):
            self._arm_connect_timer(eio_sid)

    def _kick_later(self, eio_sid: str, error: ServerError) -> None:
        task = asyncio.ensure_future(self.kick(eio_sid, error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- engine.io connection life ------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        environ[EIO_SID] = eio_sid
        result = await super()._handle_eio_connect(eio_sid, environ)
        self._arm_connect_timer(eio_sid)
        return result

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            timer = self._timers.pop(eio_sid, None)
            if timer is not None:
                timer.cancel()
            self._pending_bytes.pop(eio_sid, None)
            self._kicked.discard(eio_sid)
            self._in_flight.pop(eio_sid, None)

    async def _handle_disconnect(self, eio_sid: str, namespace: str, reason: Any = None) -> None:
        await super()._handle_disconnect(eio_sid, namespace, reason)
        # A client that left its last namespace but keeps the websocket open is as idle as
        # one that never joined: it gets the same time to join again.
        if eio_sid in self.eio.sockets and not self.connected_sids(eio_sid):
            self._arm_connect_timer(eio_sid)

    def _arm_connect_timer(self, eio_sid: str) -> None:
        if self.connect_timeout is None:
            return
        old = self._timers.pop(eio_sid, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[eio_sid] = loop.call_later(
            self.connect_timeout, self._connect_timer_expired, eio_sid
        )

    def _connect_timer_expired(self, eio_sid: str) -> None:
        self._timers.pop(eio_sid, None)
        if eio_sid not in self.eio.sockets or self.connected_sids(eio_sid):
            return
        self._kick_later(
            eio_sid,
            ServerError(
                ErrorName.CONNECT_TIMEOUT,
                f"No socket.io connect with a valid token within {self.connect_timeout:g} s",
            ),
        )

    def attach_websocket(self, eio_sid: str, ws: web.WebSocketResponse) -> None:
        """Called by the websocket driver: the socket `kick` closes."""
        self._websockets[eio_sid] = ws

    def detach_websocket(self, eio_sid: str) -> None:
        """Called by the websocket driver when the websocket ended."""
        self._websockets.pop(eio_sid, None)

    # ---- packets ------------------------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: str | bytes) -> None:
        if eio_sid in self._kicked:
            return  # already refused; its close is under way
        problem = self._check_framing(eio_sid, data)
        if problem is not None:
            await self.kick(eio_sid, problem)
            return
        pending = self._binary_packet.get(eio_sid)
        if type(pending) is _ChunkEvent:
            # The attachment of a chunk event (checked by _check_framing above).
            del self._binary_packet[eio_sid]
            self._pending_bytes.pop(eio_sid, None)
            await self._handle_event(eio_sid, None, pending.id, pending.event(data))
            return
        if pending is None and isinstance(data, str) and data.startswith("51-"):
            match = _CHUNK_EVENT.fullmatch(data)
            if match is not None and self.manager.sid_from_eio_sid(eio_sid, "/") is not None:
                self._binary_packet[eio_sid] = _ChunkEvent(match)
                return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:
            # python-socketio raises on packets it cannot decode, and engine.io only logs
            # that ("Unknown receive error") and keeps the socket: refuse it instead.
            await self.kick(
                eio_sid, _protocol_error(f"Malformed socket.io packet ({_describe(exc)})")
            )
            return
        if eio_sid not in self._binary_packet:
            self._pending_bytes.pop(eio_sid, None)

    def _check_framing(self, eio_sid: str, data: str | bytes) -> ServerError | None:
        """Attachment counts and sizes, checked before python-socketio buffers anything."""
        if eio_sid in self._binary_packet:
            # An attachment of the pending binary event. engine.io limits each message,
            # not the event: bound what the unfinished event holds in total.
            total = self._pending_bytes.get(eio_sid, 0) + len(data)
            self._pending_bytes[eio_sid] = total
            limit = self.eio.max_http_buffer_size
            if total > limit:
                return ServerError(
                    ErrorName.CHUNK_TOO_LARGE,
                    f"An event of more than {limit} bytes is larger than the relay accepts "
                    f"(chunks up to {self.max_chunk_bytes} bytes)",
                )
            return None
        if not isinstance(data, str):
            # python-socketio would decode stray binary data as a text packet.
            return _protocol_error("Binary data outside a binary event")
        if data[:1] in ("5", "6"):
            match = _ATTACHMENT_COUNT.match(data)
            count = int(match.group(1)) if match else 0
            if not 1 <= count <= MAX_ATTACHMENTS:
                return _protocol_error(
                    f"A binary packet declares {count} attachments; this relay takes "
                    f"{MAX_ATTACHMENTS} per event"
                )
            self._pending_bytes[eio_sid] = len(data)
        return None

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        # The one place every client event passes, text or binary, for every namespace.
        problem: ServerError | None = None
        if not isinstance(data, list) or not data:
            problem = _protocol_error("An event must be a non-empty list: [name, ...args]")
        elif not isinstance(data[0], str) or not data[0]:
            problem = _protocol_error("An event name must be a non-empty string")
        elif data[0] in RESERVED_EVENTS:
            problem = _protocol_error(
                f"{data[0]!r} is a reserved event name: clients may not send it"
            )
        if problem is not None:
            await self.kick(eio_sid, problem)
            return
        ns = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, ns)
        if not self.async_handlers or not self.manager.is_connected(sid, ns):
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        notice = self._arrival.get((ns, data[0]))
        if notice is not None:
            notice(sid)
        immediate = self._immediate.get((ns, data[0]))
        if immediate is not None and not self._in_flight.get(eio_sid):
            answer = immediate(sid, *data[1:])
            if answer.done() and (id is None or self._ack_now(eio_sid, ns, id, answer)):
                return
            # Not decided yet (the encoder's pipe is full): a task waits for it, and until
            # it is done this socket's later events queue behind it as tasks.
            self._in_flight[eio_sid] += 1
            task = asyncio.ensure_future(self._ack_when_done(eio_sid, ns, id, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        # python-socketio runs the handler as a task of its own; counted until it is done,
        # so that an immediate event never overtakes it.
        self._in_flight[eio_sid] += 1
        await super()._handle_event(eio_sid, namespace, id, data)

    def register_immediate(self, namespace: str, event: str, handler: ImmediateHandler) -> None:
        """Handle `event` in `namespace` where it arrives, without a task of its own, when
        no earlier event of the same socket is still being handled.

        `handler(sid, *args)` must not block: it returns a future of the ack's value (a
        tuple for several arguments), done at once in the common case. Events stay in
        arrival order: the handler is called in order, and while any event of the socket is
        still handled by a task, the next ones become tasks too.
        """
        self._immediate[(namespace, event)] = handler

    def register_arrival(self, namespace: str, event: str, notice: ArrivalNotice) -> None:
        """Call `notice(sid)` where `event` arrives in `namespace`, before its handler runs.

        A handler is a task of its own: a packet that follows the event on the same socket
        (its close above all) is often handled first. The notice, called in arrival order,
        lets the next packet's handling know the event came. It must not block.
        """
        self._arrival[(namespace, event)] = notice

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: Any
    ) -> None:
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            self._done_in_flight(eio_sid)

    async def _ack_when_done(
        self, eio_sid: str, namespace: str, id: Any, answer: asyncio.Future[Any]
    ) -> None:
        try:
            value = await answer
            if id is not None:
                await self._send_packet(eio_sid, self._ack_packet(namespace, id, value))
        except Exception:
            log.exception("handling an event from %s failed", eio_sid)
        finally:
            self._done_in_flight(eio_sid)

    def _done_in_flight(self, eio_sid: str) -> None:
        left = self._in_flight[eio_sid] - 1
        if left > 0:
            self._in_flight[eio_sid] = left
        else:
            self._in_flight.pop(eio_sid, None)

    def _ack_packet(self, namespace: str, id: Any, value: Any) -> Any:
        # As python-socketio acks a handler's return value: a tuple is several arguments.
        if value is None:
            args: list[Any] = []
        elif isinstance(value, tuple):
            args = list(value)
        else:
            args = [value]
        return self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args)

    def _ack_now(self, eio_sid: str, namespace: str, id: Any, answer: asyncio.Future[Any]) -> bool:
        """Queue an ack on the socket without a task; False when it needs the usual path."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed or answer.exception() is not None:
            return False
        value = answer.result()
        if value is None and isinstance(id, int):
            # An accepted chunk's ack, the one the relay sends most: what Packet.encode()
            # makes of it, without the packet.
            encoded: Any = f"3{'' if namespace == '/' else namespace + ','}{id}[]"
        else:
            encoded = self._ack_packet(namespace, id, value).encode()
            if not isinstance(encoded, str):
                return False  # binary attachments: never in an ack of ours
        if not (isinstance(socket, LivelySocket) and socket.send_now(encoded)):
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=encoded))
        return True


class _GuardedEngineIO(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io with a per-address connection cap and the guarded websocket driver."""

    guard: GuardedServer
    max_connections_per_address: int | None = None
    _async: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A copy: the driver table is module-level, shared with every other server.
        self._async = {**self._async, "websocket": _GuardedWebSocket}
        self._open: Counter[str] = Counter()
        self._over_cap: set[str] = set()

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else None
        cap = self.max_connections_per_address
        # Only requests without `sid` open a connection; over websocket, that request
        # lasts as long as the connection, so counting it counts open sockets.
        if cap is None or not isinstance(request, web.BaseRequest) or "sid" in request.query:
            return await super().handle_request(*args, **kwargs)
        remote = request.remote or "?"
        if self._open[remote] >= cap:
            return self._refuse_excess(remote, cap)
        self._open[remote] += 1
        try:
            return await super().handle_request(*args, **kwargs)
        finally:
            self._open[remote] -= 1
            if self._open[remote] < cap:
                self._over_cap.discard(remote)
            if self._open[remote] <= 0:
                del self._open[remote]

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect" and args:
            # engine.io's connect: its socket exists, its first ping is not scheduled yet (and
            # a websocket's whole life runs inside _handle_connect, so this is the moment).
            lively = self.sockets.get(args[0])
            if type(lively) is engine_socket.AsyncSocket:
                lively.__class__ = LivelySocket
        return await super()._trigger_event(event, *args, **kwargs)

    def _refuse_excess(self, remote: str, cap: int) -> web.Response:
        error = ServerError(
            ErrorName.TOO_MANY_CONNECTIONS,
            f"Too many connections from {remote}: at most {cap} at a time",
        )
        if remote not in self._over_cap:
            # Once per burst: a flood must not flood the log too.
            self._over_cap.add(remote)
            log.warning("refusing connections from %s: %s", remote, error.message)
            if self.guard.on_violation is not None:
                with contextlib.suppress(Exception):
                    self.guard.on_violation([], remote, error)
        return web.json_response(error.to_wire(send_details=False), status=429)


class _NoticeResponse(web.WebSocketResponse):
    """A websocket that, when aiohttp closes it for a too-large message, first says why."""

    guard: GuardedServer | None = None
    eio_sid: str = ""

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        # aiohttp rejects a too-large frame from its header and closes with 1009 from inside
        # receive(), before engine.io sees anything: this is the last moment to tell the
        # client, and the transport is still writable then.
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed and self.guard is not None:
            frames = self.guard.refuse(
                self.eio_sid,
                ServerError(
                    ErrorName.CHUNK_TOO_LARGE,
                    "A message is larger than the relay accepts (chunks up to "
                    f"{self.guard.max_chunk_bytes} bytes); record with a shorter timeslice",
                ),
            )
            with contextlib.suppress(Exception):
                for frame in frames or []:
                    await self.send_str(frame)
        return await super().close(code=code, message=message, drain=drain)


def _text_frame_header(size: int) -> bytes:
    """A final, unmasked websocket text frame's header for a payload of `size` bytes
    (RFC 6455 section 5.2)."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


class _GuardedWebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket driver, with the guard's hooks."""

    _transport: asyncio.Transport | None = None

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        guard: GuardedServer = self.server.guard
        eio_sid = str(environ.get(EIO_SID, ""))
        # No permessage-deflate, which every browser offers and aiohttp accepts by default:
        # the media is compressed already, so the phone would deflate and the relay inflate
        # every chunk for nothing (the original's engine.io never accepts it either).
        sock = _NoticeResponse(
            max_msg_size=self.server.max_http_buffer_size, timeout=CLOSE_TIMEOUT, compress=False
        )
        sock.guard = guard
        sock.eio_sid = eio_sid
        self._sock = sock
        request = environ["aiohttp.request"]
        await sock.prepare(request)
        self._transport = request.transport
        self.environ = environ
        guard.attach_websocket(eio_sid, sock)
        try:
            await self.handler(self)
        finally:
            guard.detach_websocket(eio_sid)
        return sock

    def send_now(self, text: str) -> bool:
        """Write `text` as one websocket text frame, at once and without an await; False
        (nothing written) once the websocket closes, or while earlier output still waits in
        the transport (a client that does not read): the caller then sends the usual way,
        which waits for the transport to drain.

        aiohttp writes every frame of its own in one go as well, so frames never interleave.
        The frame is unmasked and uncompressed (RSV1 clear), as a server's may always be.
        """
        transport = self._transport
        sock = self._sock
        if transport is None or sock is None or sock.closed or transport.is_closing():
            return False
        if transport.get_write_buffer_size():
            return False
        payload = text.encode()
        transport.write(_text_frame_header(len(payload)) + payload)
        return True

    async def wait(self) -> str | bytes | None:
        """The next frame's data, checked (engine.io's driver interface)."""
        pkt = await self.wait_packet()
        if pkt is None:
            return None
        if pkt.binary:
            return bytes(pkt.data)
        return str(pkt.encode())

    async def wait_packet(self) -> eio_packet.Packet | None:
        """The next frame, checked and decoded once (LivelySocket's reader uses this rather
        than decoding `wait()`'s data again); None ends the connection."""
        msg = await self._sock.receive()
        kind = msg.type
        if kind is WSMsgType.BINARY:
            return eio_packet.Packet(encoded_packet=msg.data)
        if kind is not WSMsgType.TEXT:
            if kind is WSMsgType.ERROR and isinstance(msg.data, WebSocketError):
                log.info("websocket from %s failed: %s", _remote(self.environ), msg.data)
            raise OSError()  # closed or failed: what engine.io's own driver does
        pkt, problem = self._decode_eio_packet(str(msg.data))
        if problem is not None:
            await self.server.guard.kick(str(self.environ.get(EIO_SID, "")), problem)
            return None  # engine.io's reader takes None as the end of the connection
        return pkt

    @staticmethod
    def _decode_eio_packet(data: str) -> tuple[eio_packet.Packet | None, ServerError | None]:
        # engine.io decodes text frames outside its error handling: a frame it cannot
        # decode ends its reader without closing the socket (the session would live on).
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except Exception as exc:
            return None, _protocol_error(f"Malformed engine.io packet ({_describe(exc)})")
        if not 0 <= pkt.packet_type < len(eio_packet.packet_names):
            return None, _protocol_error(f"Unknown engine.io packet type {pkt.packet_type}")
        if pkt.packet_type == eio_packet.MESSAGE and not isinstance(pkt.data, str):
            # Socket.IO packets start with a digit, so engine.io never parses them as JSON.
            return None, _protocol_error("An engine.io message that is no socket.io packet")
        return pkt, None
