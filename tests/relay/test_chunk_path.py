"""A chunk's way in: written and acked where it arrives, without a task, a timer or a second
decode per message (issue 23 item 4: the relay's own CPU per session), and still in order
when an earlier event of the same socket is being handled by a task."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from engineio import packet as eio_packet

from desktop_relay.relay import RelayConfig
from desktop_relay.relay.transport.sio_guard import GuardedServer

from ..media import H264_FIXTURE, free_port
from ..polling import wait_for
from ..replay import Streamer, relay_url

# The server side of python-engineio and python-socketio, and the relay's transport.
SERVER_FILES = (
    "engineio/async_socket.py",
    "engineio/async_server.py",
    "socketio/async_server.py",
    "desktop_relay/relay/transport/",
)


class TaskCounter:
    """Counts the tasks created on the running loop, by the file of their coroutine."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()
        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_task_factory()

    def __enter__(self) -> TaskCounter:
        def factory(
            loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
            **kwargs: Any,
        ) -> asyncio.Task[Any]:
            code = getattr(coro, "cr_code", None)
            filename = code.co_filename.replace("\\", "/") if code is not None else ""
            if any(part in filename for part in SERVER_FILES):
                self.by_name[getattr(coro, "__qualname__", "?")] += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        self._loop.set_task_factory(factory)  # type: ignore[arg-type]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.set_task_factory(self._previous)

    @property
    def total(self) -> int:
        return sum(self.by_name.values())


@pytest.mark.media
async def test_chunks_are_taken_without_a_task_per_message(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig())
    s = await Streamer(relay_url(relay)).connect()
    try:
        assert await s.start()
        data = H264_FIXTURE.read_bytes()
        assert await s.send(data[:40_000]) is None  # ffmpeg is up and taking bytes
        await asyncio.sleep(0.2)
        step = 14_000  # a quarter of a second of this capture, sent at 5x real time
        with TaskCounter() as counted:
            for i in range(40):
                at = 40_000 + i * step
                assert await s.send(data[at : at + step]) is None
                await asyncio.sleep(0.05)
        # engine.io made 2 tasks per message (its reader's wait), its writer one per ack,
        # socket.io one per event: about 4 per chunk, 160 here. A ping or an event to the
        # page now and then is all that is left.
        assert counted.total <= 6, counted.by_name
        session = relay.sessions()[0]
        assert session.chunks_received == 41
    finally:
        await s.close()


@pytest.mark.media
async def test_a_chunk_sent_with_start_waits_for_it(running_relay) -> None:  # type: ignore[no-untyped-def]
    # A client that sends its first chunk right behind `start`, without waiting for the ack:
    # both arrive in one read, and the chunk must not overtake start's task (it would be
    # refused: the session would not be streaming yet).
    relay = await running_relay(RelayConfig())
    s = await Streamer(relay_url(relay)).connect()
    try:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[tuple[Any, ...]] = loop.create_future()
        chunk_acks: list[asyncio.Future[tuple[Any, ...]]] = []
        await s.client.emit("start", {"framerate": 20}, callback=lambda *a: started.set_result(a))
        data = H264_FIXTURE.read_bytes()
        for i in range(3):
            ack: asyncio.Future[tuple[Any, ...]] = loop.create_future()
            chunk_acks.append(ack)
            await s.client.emit(
                "binarystream",
                data[i * 30_000 : (i + 1) * 30_000],
                callback=lambda *a, f=ack: f.set_result(a),
            )
        await asyncio.wait_for(started, 10)
        results = [await asyncio.wait_for(a, 10) for a in chunk_acks]
        assert results == [(), (), ()], results  # acked with no error
        assert not s.errors
        session = relay.sessions()[0]
        assert session.chunks_received == 3
        assert session.bytes_received == 90_000
    finally:
        await s.close()


@contextlib.asynccontextmanager
async def _chunk_server(
    make_namespace: Callable[[GuardedServer], Any], client: socketio.AsyncClient
) -> AsyncIterator[Any]:
    """A GuardedServer on 127.0.0.1 whose namespace (made for it) takes `chunk` where it
    arrives; `client` connected to it over websocket. Yields the namespace."""
    server = GuardedServer(
        connect_timeout=5,
        max_connections_per_address=None,
        max_chunk_bytes=1 << 20,
        async_mode="aiohttp",
        transports=["websocket"],
    )
    namespace = make_namespace(server)
    server.register_namespace(namespace)
    server.register_immediate("/", "chunk", namespace.chunk_now)
    app = web.Application()
    server.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"])
        yield namespace
    finally:
        await client.disconnect()
        await server.shutdown()
        await runner.cleanup()


class _Held(socketio.AsyncNamespace):  # type: ignore[misc]
    """A namespace whose `chunk` event is handled where it arrives; the test decides when
    each answer is ready."""

    def __init__(self) -> None:
        super().__init__("/")
        self.calls: list[int] = []
        self.answers: dict[int, asyncio.Future[Any]] = {}

    def chunk_now(self, sid: str, n: int) -> asyncio.Future[Any]:
        self.calls.append(n)
        fut = asyncio.get_running_loop().create_future()
        if n % 3 == 0:
            self.answers[n] = fut  # held until the test sets it
        else:
            fut.set_result({"n": n})
        return fut

    async def on_chunk(self, sid: str, n: int) -> Any:
        return await self.chunk_now(sid, n)


async def test_events_behind_a_held_one_keep_their_order() -> None:
    client = socketio.AsyncClient(reconnection=False)
    async with _chunk_server(lambda server: _Held(), client) as namespace:
        acks: list[Any] = []
        for n in range(1, 10):
            await client.emit("chunk", n, callback=lambda value: acks.append(value["n"]))
        await wait_for(lambda: len(namespace.calls) == 9, timeout=5)
        # Handled in the order sent, the held ones (3, 6, 9) included.
        assert namespace.calls == list(range(1, 10))
        # Each acked once its answer is ready (as with a task per event): the held ones wait.
        await wait_for(lambda: len(acks) == 6, timeout=5)
        await asyncio.sleep(0.2)
        assert sorted(acks) == [1, 2, 4, 5, 7, 8]
        for n in (3, 6, 9):
            namespace.answers[n].set_result({"n": n})
        await wait_for(lambda: len(acks) == 9, timeout=5)
        assert acks[6:] == [3, 6, 9]


async def test_websockets_are_not_compressed_even_when_the_browser_offers_it(
    running_relay,  # type: ignore[no-untyped-def]
) -> None:
    # Every browser offers permessage-deflate. Media is compressed already: deflating each
    # chunk costs the phone and inflating it the relay, for nothing (the original's engine.io
    # never accepts it either). The relay answers without the extension.
    relay = await running_relay(RelayConfig())
    url = f"{relay_url(relay)}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
        opened = await asyncio.wait_for(ws.receive(), 5)
        assert opened.type is aiohttp.WSMsgType.TEXT and opened.data.startswith("0{")
        assert ws.compress == 0
        assert "Sec-WebSocket-Extensions" not in ws._response.headers


def _writer_sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every message a socket's writer task writes (the queued way), recorded as sent."""
    from desktop_relay.relay.transport import sio_guard

    sent: list[str] = []
    send = sio_guard._GuardedWebSocket.send

    async def recording_send(self: Any, message: Any) -> None:
        sent.append(str(message))
        await send(self, message)

    monkeypatch.setattr(sio_guard._GuardedWebSocket, "send", recording_send)
    return sent


@pytest.mark.media
async def test_chunk_acks_are_written_without_waking_the_writer(
    running_relay, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # Through engine.io's queue every ack woke the socket's writer task for a step of its
    # own; written where the chunk is handled, the writer only wakes for pings and events.
    queued = _writer_sends(monkeypatch)
    relay = await running_relay(RelayConfig())
    s = await Streamer(relay_url(relay)).connect()
    try:
        assert await s.start()
        data = H264_FIXTURE.read_bytes()
        assert await s.send(data[:40_000]) is None
        await asyncio.sleep(0.2)
        queued.clear()
        step = 14_000
        for i in range(40):
            at = 40_000 + i * step
            assert await s.send(data[at : at + step]) is None  # each acked, in order
            await asyncio.sleep(0.05)  # 5x real time: the encoder's pipe keeps up
        # "43": an engine.io message holding a socket.io ack
        assert not [m for m in queued if m.startswith("43")], queued
        assert relay.sessions()[0].chunks_received == 41
    finally:
        await s.close()


class _Noting(socketio.AsyncNamespace):  # type: ignore[misc]
    """`chunk` is handled where it arrives; for every third one the server queues a `note`
    to the client first, as engine.io queues any event it sends."""

    def __init__(self, server: GuardedServer) -> None:
        super().__init__("/")
        self.guard = server

    def chunk_now(self, sid: str, n: int) -> asyncio.Future[Any]:
        if n % 3 == 0:
            eio_sid = self.guard.manager.eio_sid_from_sid(sid, "/")
            socket = self.guard.eio.sockets[eio_sid]
            socket.queue.put_nowait(
                eio_packet.Packet(eio_packet.MESSAGE, data=f'2["note",{n}]')
            )
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def on_chunk(self, sid: str, n: int) -> Any:
        return await self.chunk_now(sid, n)


async def test_an_ack_never_overtakes_what_is_queued_before_it() -> None:
    client = socketio.AsyncClient(reconnection=False)
    seen: list[str] = []
    client.on("note", lambda n: seen.append(f"note {n}"))
    async with _chunk_server(_Noting, client):
        for n in range(1, 10):
            await client.emit("chunk", n, callback=lambda n=n: seen.append(f"ack {n}"))
        await wait_for(lambda: len(seen) == 12, timeout=5)
        expected = []
        for n in range(1, 10):
            expected += [f"note {n}", f"ack {n}"] if n % 3 == 0 else [f"ack {n}"]
        assert seen == expected


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


class _Sock:
    closed = False


@pytest.mark.parametrize(
    ("size", "header"),
    [(125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"), (65_535, b"\x81\x7e\xff\xff"),
     (65_536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00")],
)
def test_a_frame_written_at_once_is_a_plain_text_frame(size: int, header: bytes) -> None:
    from desktop_relay.relay.transport.sio_guard import _GuardedWebSocket

    ws = _GuardedWebSocket.__new__(_GuardedWebSocket)
    ws._sock, ws._transport = _Sock(), _Transport()
    assert ws.send_now("x" * size)
    assert ws._transport.written == [header + b"x" * size]


def test_nothing_is_written_at_once_to_a_closing_or_backed_up_websocket() -> None:
    from desktop_relay.relay.transport.sio_guard import _GuardedWebSocket

    ws = _GuardedWebSocket.__new__(_GuardedWebSocket)
    transport = _Transport()
    ws._sock, ws._transport = _Sock(), transport
    transport.buffered = 10  # a client that does not read: the queue's writer waits for it
    assert not ws.send_now("43[]")
    transport.buffered, transport.closing = 0, True
    assert not ws.send_now("43[]")
    transport.closing = False
    ws._sock.closed = True
    assert not ws.send_now("43[]")
    assert transport.written == []


class _Chunks(socketio.AsyncNamespace):  # type: ignore[misc]
    """`binarystream` handled where it arrives, as the relay's namespace does; records what
    each event carried. The server's packet class counts the packets it decodes."""

    def __init__(self, server: GuardedServer) -> None:
        super().__init__("/")
        self.got: list[tuple[Any, ...]] = []
        server.register_immediate("/", "binarystream", self.binarystream_now)

        class Counting(server.packet_class):  # type: ignore[misc,name-defined]
            decoded = 0

            def decode(self, encoded_packet: Any) -> Any:
                type(self).decoded += 1
                return super().decode(encoded_packet)

        server.packet_class = Counting
        self.packets = Counting

    def chunk_now(self, sid: str, *args: Any) -> asyncio.Future[Any]:
        return self.binarystream_now(sid, *args)

    def binarystream_now(self, sid: str, *args: Any) -> asyncio.Future[Any]:
        self.got.append(args)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None if len(args) < 2 else {"seq": args[1]})
        return fut


async def test_chunk_events_skip_python_socketios_decoder() -> None:
    # python-socketio decodes a binary event's text part as JSON into a packet, then walks
    # the data for placeholders: more than the rest of a chunk's socket.io path. A chunk in
    # the form clients send is read by one regular expression instead; any other form still
    # takes the decoder, with the same result.
    client = socketio.AsyncClient(reconnection=False)
    async with _chunk_server(_Chunks, client) as namespace:
        acks: list[Any] = []
        connected = namespace.packets.decoded  # the socket.io connect
        await client.emit("binarystream", b"\x00first", callback=lambda *a: acks.append(a))
        await client.emit("binarystream", (b"numbered", 0), callback=lambda *a: acks.append(a))
        await client.emit("binarystream", (b"big", 2**53 - 1), callback=lambda *a: acks.append(a))
        await client.emit("binarystream", b"no ack wanted")
        await wait_for(lambda: len(namespace.got) == 4 and len(acks) == 3, timeout=5)
        assert namespace.packets.decoded == connected
        assert namespace.got == [
            (b"\x00first",),
            (b"numbered", 0),
            (b"big", 2**53 - 1),
            (b"no ack wanted",),
        ]
        assert acks == [(), ({"seq": 0},), ({"seq": 2**53 - 1},)]
        # Not the clients' form (a seq that is no plain integer): python-socketio's decoder,
        # and the handler sees what was sent, to refuse it.
        await client.emit("binarystream", (b"odd", "7"), callback=lambda *a: acks.append(a))
        await client.emit("binarystream", (b"neg", -1), callback=lambda *a: acks.append(a))
        await wait_for(lambda: len(acks) == 5, timeout=5)
        assert namespace.got[4:] == [(b"odd", "7"), (b"neg", -1)]
        assert namespace.packets.decoded == connected + 2


async def test_pings_are_written_without_waking_the_writer(
    running_relay, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    # Every socket is pinged every interval: through the queue each ping woke its writer
    # task. Written at once instead, they still reach the client: it stays connected for
    # many intervals (it gives up after interval + timeout without one).
    from desktop_relay.relay.transport import sio_guard

    queued = _writer_sends(monkeypatch)
    written: list[str] = []
    send_now = sio_guard._GuardedWebSocket.send_now

    def counting_send_now(self: Any, text: str) -> bool:
        written.append(text)
        return bool(send_now(self, text))

    monkeypatch.setattr(sio_guard._GuardedWebSocket, "send_now", counting_send_now)
    relay = await running_relay(RelayConfig(ping_interval_s=0.2, ping_timeout_s=0.3))
    s = await Streamer(relay_url(relay)).connect()
    try:
        await asyncio.sleep(2.0)  # 10 intervals; the client leaves after 0.5 s without a ping
        assert not s.disconnected.is_set()
        assert written.count("2") >= 5, written
        assert "2" not in queued, queued
    finally:
        await s.close()
