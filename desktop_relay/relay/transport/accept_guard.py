"""Connections before they are anything: bounded per address and in time (issue 23, item 8).

Everything above this (engine.io's per-address cap, the socket.io connect timeout, the
pairing token) sees a connection only once it sent a whole HTTP request. Before that, a bare
TCP connection (no TLS handshake, no bytes) or one that sends its headers a byte a minute
costs the relay a file descriptor for free: 1,100 of them held every descriptor of a relay
with the usual 1024-file limit, and no browser could connect. So the listening socket's
protocol is this guard, wrapped around aiohttp's own:

- a connection must have done its TLS handshake and sent a complete first request within
  `ACCEPT_DEADLINE_S` of being accepted, else it is aborted (RST: its descriptor is free at
  once). The TLS handshake is done here (`loop.start_tls`), so it is under the same clock;
- an address may hold at most `per_address` connections that are not (yet) a websocket:
  accepted, handshaking, sending headers, or idle between page requests. One more is aborted
  as it is accepted. A websocket leaves the count: engine.io's cap and the socket.io connect
  timeout (sio_guard.py) bound those. Idle keep-alive connections end after aiohttp's
  keep-alive timeout (socket_transport.py sets it to the same deadline);
- a refusal past the cap is reported once per address every 10 s (`on_refused`: the core's
  `report_refused`, which logs and tells observers), however many connections come; a
  deadline is only logged (INFO), once per address every 10 s: browsers open speculative
  connections they may never use, and the operator need not hear of those.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..errors import ErrorName, ServerError
from ..log_limit import RepeatLimiter

log = logging.getLogger(__name__)

ACCEPT_DEADLINE_S = 5.0
"""Seconds from accept to a complete first request, TLS handshake included."""

TLS_SHUTDOWN_TIMEOUT_S = 2.0
"""Seconds a closing TLS connection waits for the peer's close_notify (asyncio's default, 30 s,
lets a silent peer keep the descriptor that long)."""


class _AcceptExhaustionFilter(logging.Filter):
    """asyncio logs each accept that fails for want of descriptors (EMFILE, ENFILE), with a
    traceback, once a second while it lasts (it pauses accepting for a second each time):
    let one through every 10 s, saying how many were held back."""

    def __init__(self) -> None:
        super().__init__()
        self._repeats = RepeatLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" not in str(record.msg):
            return True
        held_back = self._repeats.allow("accept")
        if held_back is None:
            return False
        if held_back:
            record.msg = f"{record.msg} ({held_back} more like it held back)"
        return True


_accept_filter: _AcceptExhaustionFilter | None = None


def limit_accept_exhaustion_log() -> None:
    """Rate-limit asyncio's line for an accept out of descriptors (idempotent)."""
    global _accept_filter
    if _accept_filter is None:
        _accept_filter = _AcceptExhaustionFilter()
        logging.getLogger("asyncio").addFilter(_accept_filter)


Refused = Callable[[str, ServerError], None]
"""Told of each refused connection: its remote address and why."""


class AcceptGuard:
    """The listening socket's protocol factory (see the module); aiohttp's request handler
    protocol (`make_handler`) runs inside each connection it lets through. Its `middleware`
    must be on the application: it tells the guard when a connection's request arrived."""

    def __init__(
        self,
        make_handler: Callable[[], asyncio.Protocol],
        *,
        ssl_context: ssl.SSLContext | None,
        per_address: int | None,
        deadline_s: float = ACCEPT_DEADLINE_S,
        on_refused: Refused | None = None,
    ) -> None:
        self._make_handler = make_handler
        self._ssl = ssl_context
        self.per_address = per_address
        self.deadline_s = deadline_s
        self._on_refused = on_refused
        # Connections that are not (yet) a websocket, by remote address.
        self._counted: Counter[str] = Counter()
        # Every live connection, by the transport aiohttp's handler was given (what a
        # request's `transport` is), and all of them for `close_all`.
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        self._open: set[_Connection] = set()
        # One line per address every 10 s, however many connections time out.
        self._repeats = RepeatLimiter()
        self.middleware = self._make_middleware()

    def __call__(self) -> asyncio.Protocol:
        """A protocol for one accepted connection (for `loop.create_server`)."""
        return _Connection(self)

    def counted(self, address: str) -> int:
        """Connections from `address` that are not (yet) a websocket."""
        return self._counted.get(address, 0)

    def close_all(self) -> None:
        """Abort every connection that has not reached aiohttp yet (the relay stops: aiohttp
        closes the ones it knows itself)."""
        for connection in list(self._open):
            if connection.inner is None:
                connection.abort()

    def _make_middleware(self) -> Middleware:
        """The application middleware that tells the guard a connection's request arrived:
        its deadline is met; a websocket leaves the per-address count."""
        by_transport = self._by_transport

        @web.middleware
        async def request_arrived(request: web.Request, handler: Handler) -> web.StreamResponse:
            transport = request.transport
            connection = by_transport.get(transport) if transport is not None else None
            if connection is not None:
                connection.request_arrived(
                    request.headers.get("Upgrade", "").lower() == "websocket"
                )
            return await handler(request)

        return request_arrived

    # ---- what connections tell ----------------------------------------------------------

    def _admit(self, connection: _Connection) -> bool:
        address = connection.address
        cap = self.per_address
        if cap is not None and self._counted[address] >= cap:
            self._refuse(
                address,
                ServerError(
                    ErrorName.TOO_MANY_CONNECTIONS,
                    f"Too many connections from {address} that have not sent a request yet "
                    f"(at most {cap} at a time)",
                ),
            )
            return False
        self._counted[address] += 1
        self._open.add(connection)
        return True

    def _uncount(self, address: str) -> None:
        self._counted[address] -= 1
        if self._counted[address] <= 0:
            del self._counted[address]

    def _timed_out(self, address: str) -> None:
        # Only logged (at INFO), not reported as a refusal: browsers open speculative
        # connections they may never use, and those end here too, harmlessly.
        held_back = self._repeats.allow(("deadline", address))
        if held_back is not None:
            more = f" ({held_back} more like it held back)" if held_back else ""
            log.info(
                "closed a connection from %s: no request within %g s (TLS handshake and "
                "headers included)%s",
                address,
                self.deadline_s,
                more,
            )

    def _refuse(self, address: str, error: ServerError) -> None:
        if self._on_refused is None:
            log.debug("connection from %s refused: %s", address, error.message)
            return
        try:
            self._on_refused(address, error)
        except Exception:  # a reporting bug must not keep the connection
            log.exception("reporting a refused connection failed")


class _Connection(asyncio.Protocol):
    """One accepted connection: counted and timed until its first request (see the module),
    then a plain pipe between the socket (or the TLS layer) and aiohttp's handler."""

    def __init__(self, guard: AcceptGuard) -> None:
        self._guard = guard
        self.address = "?"
        self._raw: asyncio.Transport | None = None
        # What aiohttp's handler was given: the socket's transport, or the TLS layer's.
        self._transport: asyncio.Transport | None = None
        # aiohttp's handler, once the connection (and its TLS handshake) is made.
        self.inner: asyncio.Protocol | None = None
        self._counted = False
        self._timer: asyncio.TimerHandle | None = None
        self._tls: asyncio.Task[None] | None = None
        self._closed = False
        self._early: list[bytes] = []

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = transport
        assert isinstance(raw, asyncio.Transport)
        self._raw = raw
        peer: Any = raw.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        guard = self._guard
        if not guard._admit(self):
            self._closed = True
            raw.abort()
            return
        self._counted = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(guard.deadline_s, self._deadline)
        if guard._ssl is None:
            self._connect_inner(raw)
            return
        # Nothing is read until the TLS layer is in place (start_tls resumes reading).
        raw.pause_reading()
        self._tls = loop.create_task(self._handshake(raw, guard._ssl), name="tls-handshake")

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)
        else:
            # Decrypted before start_tls returned to us (the request may come in the same
            # read as the handshake's end): kept for the handler, which comes next.
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    # ---- the guard's side ---------------------------------------------------------------

    async def _handshake(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            secured = await loop.start_tls(
                raw,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self._guard.deadline_s,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
            )
        except Exception as exc:
            # Not TLS, or cut off (the deadline aborts it): start_tls closed the socket.
            log.debug("TLS handshake with %s failed: %s", self.address, exc)
            self._forget()
            return
        except asyncio.CancelledError:
            raw.abort()
            self._forget()
            raise
        if self._closed or secured is None:
            return
        self._connect_inner(secured)

    def _connect_inner(self, transport: asyncio.Transport) -> None:
        inner = self._guard._make_handler()
        self.inner = inner
        self._guard._by_transport[transport] = self
        self._transport = transport
        inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            inner.data_received(data)

    def request_arrived(self, websocket: bool) -> None:
        """aiohttp handles a request of this connection: the deadline is met; a websocket
        is no longer the guard's (engine.io's cap and connect timeout bound it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if websocket and self._transport is not None and self.inner is not None:
            # Out of the guard's hands: its bytes go straight to aiohttp from now on (no
            # extra call per read on the media path), and it is no longer counted.
            self._transport.set_protocol(self.inner)
            self._forget()

    def _deadline(self) -> None:
        self._timer = None
        if self._closed:
            return
        self._guard._timed_out(self.address)
        self.abort()

    def abort(self) -> None:
        """Drop the connection now (RST): its descriptor is free at once."""
        if self._tls is not None and not self._tls.done():
            self._tls.cancel()
        if self._raw is not None:
            self._raw.abort()
        self._forget()

    def _forget(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        guard = self._guard
        guard._open.discard(self)
        if self._transport is not None:
            guard._by_transport.pop(self._transport, None)
        if self._counted:
            self._counted = False
            guard._uncount(self.address)
