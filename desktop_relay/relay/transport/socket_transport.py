"""The relay's transport: socket.io (hardened) on aiohttp, the browser page routes, origins
and pairing-token checks. It maps sockets to sessions and drives the core through its
public methods; the core never sees a socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import web

from ..core import Relay
from ..tasks import TaskSet
from .accept_guard import ACCEPT_DEADLINE_S, AcceptGuard, limit_accept_exhaustion_log
from .control_api import ControlApi
from .namespace import RelayNamespace
from .origins import own_origin
from .sio_guard import GuardedServer
from .webpage import add_page_routes

log = logging.getLogger(__name__)

# Connections the kernel queues for accept. aiohttp's 128 overflows in a burst (96 phones
# joining at once, or a flood of bare connections): the kernel then drops the handshakes'
# last packets, and those clients wait for retransmissions, seconds apart, before the
# relay sees them at all. Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 1024
# asyncio accepts up to its `backlog` argument's number of connections in one go before any
# of them runs its protocol: with 1024, a flood took every descriptor of a relay limited to
# 1024 files before the guard could close the excess (EMFILE at accept). The loop is given
# this smaller batch; the kernel's queue is then set to LISTEN_BACKLOG on the socket itself.
ACCEPT_BATCH = 64


class SocketTransport:
    """Serves one relay core to browsers: socket.io events in, `ClientLink`s to the core."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        config = relay.config
        self._tasks = TaskSet()
        self._ssl = config.tls.context() if config.tls else None
        self.namespace = RelayNamespace(relay, self._tasks)
        # Hostile-client hardening (reserved event names, malformed packets, attachments,
        # idle sockets, per-address cap) lives in sio_guard.
        self.sio = GuardedServer(
            connect_timeout=config.connect_timeout,
            max_connections_per_address=config.max_connections_per_address,
            max_chunk_bytes=config.max_chunk_bytes,
            on_violation=self.namespace.report_violation,
            async_mode="aiohttp",
            # Long-polling mangles binary chunks (MediaRecorder Blobs become base64 text and
            # engine.io's aiohttp driver reads them short): websocket only.
            transports=["websocket"],
            # Above our own chunk limit, so an oversized chunk gets a clear error rather
            # than a dropped connection (engine.io drops messages past its limit).
            max_http_buffer_size=config.max_chunk_bytes + 1024 * 1024,
            cors_allowed_origins=(
                own_origin(lambda: self.scheme)
                if config.cors_allowed_origins is None
                else config.cors_allowed_origins
            ),
            logger=False,
            engineio_logger=False,
            # A dead link noticed within ping interval + timeout on both sides (the client
            # learns both values from the handshake), not engine.io's 25 s + 20 s.
            **{
                "ping_interval": config.ping_interval_s,
                "ping_timeout": config.ping_timeout_s,
                **dict(config.socketio_options),
            },
        )
        self.sio.register_namespace(self.namespace)
        # A chunk is written and acked where it arrives (no task per chunk; issue 23 item 4).
        self.sio.register_immediate("/", "binarystream", self.namespace.binarystream_now)
        # A page's goodbye (`stop`, then the close) ends its session at once (issue 23 item 6).
        self.sio.register_arrival("/", "stop", self.namespace.note_stop)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        # Connections before their first request (accept_guard.py); made by `start`.
        self.accept_guard: AcceptGuard | None = None
        self.port: int | None = None

    @property
    def scheme(self) -> str:
        """`https` when serving TLS, else `http`."""
        return "https" if self._ssl else "http"

    def attach(self, app: web.Application) -> None:
        """Serve socket.io and the browser page from an existing aiohttp app."""
        self.sio.attach(app)
        # Before the page's routes, which end in a catch-all for its files.
        ControlApi(self.relay).add_routes(app)
        add_page_routes(app, self.relay)

    async def start(self) -> None:
        """Listen on the configured host and port (0 picks a free port, see `.port`)."""
        config = self.relay.config
        app = web.Application()
        self.attach(app)
        # Idle keep-alive connections end as soon as a new one that sent nothing would
        # (aiohttp's default keeps them an hour, each holding a descriptor).
        runner = web.AppRunner(
            app, shutdown_timeout=0.5, access_log=None, keepalive_timeout=ACCEPT_DEADLINE_S
        )
        guard = AcceptGuard(
            lambda: runner.server(),  # type: ignore[misc]
            ssl_context=self._ssl,
            per_address=config.max_connections_per_address,
            on_refused=lambda remote, error: self.relay.report_refused(remote, error),
        )
        # Before setup: the application's middlewares are frozen then.
        app.middlewares.append(guard.middleware)
        # Out of descriptors, asyncio logs every failed accept (once a second, with a
        # traceback): once per 10 s is enough to tell the operator.
        limit_accept_exhaustion_log()
        await runner.setup()
        self._runner, self.accept_guard = runner, guard
        # Our own listener rather than aiohttp's TCPSite: every connection goes through
        # the accept guard first, TLS handshake included (see accept_guard.py).
        self._listener = await asyncio.get_running_loop().create_server(
            guard, config.host, config.port, backlog=ACCEPT_BATCH
        )
        sockets = self._listener.sockets
        for listening in sockets:
            # A duplicate of the listening socket: listen() sets the shared queue's length.
            with socket.fromfd(listening.fileno(), listening.family, listening.type) as dup:
                dup.listen(LISTEN_BACKLOG)
        self.port = int(sockets[0].getsockname()[1]) if sockets else config.port
        log.info("relay listening on %s:%s", config.host, self.port)

    async def stop(self) -> None:
        """Stop serving: pending sends, socket.io, then the web server (the core's sessions
        are ended first, by the caller)."""
        await self._tasks.cancel_all()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.accept_guard is not None:
            self.accept_guard.close_all()
        with contextlib.suppress(Exception):
            await self.sio.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
