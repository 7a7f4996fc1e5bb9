"""engine.io's socket, as the relay's websocket-only clients need it: liveness that survives
a congested uplink, and a receive and send path without a task and a timer per message.

python-engineio 4.x runs each websocket with a reader loop that wraps every `receive()` in a
new task under `asyncio.wait_for` (a task, a future and a timer per message: two messages per
chunk, as socket.io sends a binary event as a text frame and an attachment), and a writer
task whose every wake-up wraps `queue.get()` in another task under `wait_for`. At 32
sessions that bookkeeping was a good part of the relay's own CPU per chunk (README, issue 23
item 4). Here the reader awaits the websocket directly, a dead link is noticed by one timer
per socket (re-armed once per ping period, not per message), and the writer awaits its queue
directly: the same packets, in the same order, with the same close sequence.

It relies on python-engineio 4.x internals (`AsyncSocket._websocket_handler`, `queue`,
`schedule_ping`, `check_ping_timeout`); tests/relay/test_slow_link.py, test_dead_link.py,
test_chunk_path.py and the hostile-client tests pin the behaviour if those change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engineio import async_socket as engine_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

log = logging.getLogger(__name__)


class LivelySocket(engine_socket.AsyncSocket):  # type: ignore[misc]
    """An engine.io socket whose liveness survives a congested uplink, on a lean websocket
    loop.

    engine.io judges a client by its pongs, and sends the next ping only after a pong. A pong
    travels on the same TCP stream as the video, behind whatever the browser has queued: on an
    uplink a little slower than the stream it comes seconds late, the relay took the client
    as dead, and the client too (no ping reached it in interval + timeout), so a loaded relay
    or a slow uplink dropped healthy clients, all at once under load. Here any packet from
    the client counts as life, and pings go out on schedule whether or not the last pong
    came: a dead link (nothing at all arrives for ping_interval + ping_timeout) is closed by
    the socket's watchdog.
    """

    last_seen: float = 0.0
    _pinger: asyncio.Task[None] | None = None
    _watchdog: asyncio.TimerHandle | None = None
    _reader: asyncio.Task[Any] | None = None
    _link_dead: bool = False
    _waiting: bool = False
    _ws: Any = None  # the guard's websocket driver while the socket is open
    _writer_busy: bool = False  # the writer holds packets it has not written yet

    @property
    def _quiet_limit(self) -> float:
        return float(self.server.ping_interval + self.server.ping_timeout)

    async def receive(self, pkt: Any) -> None:
        kind = pkt.packet_type
        if kind == eio_packet.MESSAGE:
            # engine.io's _trigger_event, without its per-message closure and coroutine
            # check: socket.io's handler (the guard's) catches and reports its own errors.
            handler = self.server.handlers.get("message")
            if handler is not None:
                try:
                    await handler(self.sid, pkt.data)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handling a message from %s failed", self.sid)
            return
        if kind == eio_packet.PONG:
            return  # nothing to schedule: the pinger runs on its own
        await super().receive(pkt)

    def schedule_ping(self) -> None:
        if self._pinger is None:
            self.last_seen = asyncio.get_running_loop().time()
            self._pinger = asyncio.ensure_future(self._ping_loop())

    async def _ping_loop(self) -> None:
        while not (self.closing or self.closed):
            await asyncio.sleep(self.server.ping_interval)
            if self.closing or self.closed:
                return
            if self._write_now("2"):  # "2": engine.io's PING, written without the writer
                continue
            try:
                await self.send(eio_packet.Packet(eio_packet.PING))
            except Exception:  # the socket closed meanwhile: its receive loop reports it
                return

    async def check_ping_timeout(self) -> bool:
        if self.closed:
            raise eio_exceptions.SocketIsClosedError()
        loop = asyncio.get_running_loop()
        quiet = loop.time() - (self.last_seen or loop.time())
        if quiet > self._quiet_limit:
            await self.close(wait=False, abort=False, reason=self.server.reason.PING_TIMEOUT)
            return False
        return True

    async def close(self, *args: Any, **kwargs: Any) -> None:
        pinger, self._pinger = self._pinger, None
        if pinger is not None and pinger is not asyncio.current_task():
            pinger.cancel()
        await super().close(*args, **kwargs)

    # ---- the websocket ------------------------------------------------------------------

    async def _websocket_handler(self, ws: Any) -> None:
        if bool(getattr(self, "connected", False)):
            # An upgrade from long-polling: the relay serves websocket only, so never here.
            await super()._websocket_handler(ws)
            return
        self.connected = True
        self.upgraded = True
        self._ws = ws
        writer = asyncio.ensure_future(self._write_loop(ws))
        self._reader = asyncio.current_task()
        clock = asyncio.get_running_loop().time
        self.last_seen = clock()
        self._arm_watchdog()
        stopping = False
        try:
            while True:
                # Life is the last packet, counted from when it was handled: the watchdog
                # leaves the reader alone while a handler runs (as engine.io's wait_for did).
                self.last_seen = clock()
                self._waiting = True
                # `ws` is always the guard's driver (sio_guard makes every socket a
                # LivelySocket there): it checks, size included, and decodes each frame once.
                pkt = await ws.wait_packet()
                self._waiting = False
                if pkt is None:
                    break  # closed by the client (or refused by the driver)
                try:
                    await self.receive(pkt)
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    break
                except Exception:
                    # engine.io's loop logs and carries on: one bad packet ends no stream.
                    log.exception("%s: receiving a packet failed", self.sid)
        except asyncio.CancelledError:
            if self._link_dead:
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                log.debug("%s: nothing for %g s: link dead", self.sid, self._quiet_limit)
            else:
                stopping = True  # the server is stopping: close, then let the cancel through
        except Exception:
            pass  # the websocket failed or closed: what engine.io's loop does too
        finally:
            self._reader = None
            self._ws = None
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
        await self.queue.put(None)  # lets the writer end
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        if stopping:
            raise asyncio.CancelledError

    def _arm_watchdog(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_at(self.last_seen + self._quiet_limit, self._watch)

    def _watch(self) -> None:
        # Fires at the last packet's time + the quiet limit, as it stood when armed: if
        # anything arrived since, it moves on to the new deadline (once per ping period).
        self._watchdog = None
        if self._reader is None:
            return
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # A handler is running: the link is not what is slow.
            self._watchdog = loop.call_later(self._quiet_limit, self._watch)
            return
        if loop.time() - self.last_seen < self._quiet_limit:
            self._arm_watchdog()
            return
        self._link_dead = True
        self._reader.cancel()

    def send_now(self, text: str) -> bool:
        """Send an engine.io message (a socket.io packet's text) at once, from the caller's
        step: no queue, no writer wake-up. False (nothing sent) unless the writer is idle
        with nothing queued and the websocket takes it without waiting (see
        `_GuardedWebSocket.send_now`): then queue it, and it goes out in order.

        The relay acks every chunk of every session; through the queue each ack cost a
        wake-up and a step of the writer task.
        """
        return self._write_now("4" + text)  # "4": engine.io's MESSAGE

    def _write_now(self, encoded: str) -> bool:
        """Write one encoded engine.io packet at once if nothing is queued or being written
        before it (see `send_now`); False: nothing written."""
        ws = self._ws
        if ws is None or self._writer_busy or self.closing or self.closed:
            return False
        if not self.queue.empty():
            return False
        return bool(ws.send_now(encoded))

    async def _write_loop(self, ws: Any) -> None:
        """Send what is queued, a batch per wake-up, until None (the end)."""
        queue = self.queue
        try:
            while True:
                self._writer_busy = False
                packets = [await queue.get()]
                # Until the batch is written, send_now must not overtake it.
                self._writer_busy = True
                queue.task_done()
                while not queue.empty():
                    packets.append(queue.get_nowait())
                    queue.task_done()
                end = None in packets
                for pkt in packets:
                    if pkt is None:
                        break
                    await ws.send(pkt.encode())
                if end:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            pass  # the websocket failed: its reader ends too
        await ws.close()
