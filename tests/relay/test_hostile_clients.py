"""Hostile socket.io / engine.io clients (issue 10): packets python-socketio's own client
cannot send are spoken by hand over aiohttp's websocket client."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from desktop_relay.relay import ErrorName, RelayConfig, RelayServer

from ..media import H264_FIXTURE, probe
from ..procs import ffmpeg_descendants
from ..replay import Streamer, relay_url

TOKEN = "pairing-token-for-hostile-tests"
PLACEHOLDER = '{"_placeholder":true,"num":0}'


async def until(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@dataclass
class RawSocket:
    """One engine.io websocket spoken by hand; a task records every frame it receives."""

    http: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    frames: list[str | bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, relay: RelayServer, source: str = "127.0.0.1") -> RawSocket:
        """The engine.io handshake only (no socket.io CONNECT), from a loopback `source`."""
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
        try:
            ws = await http.ws_connect(
                f"ws://127.0.0.1:{relay.port}/socket.io/?EIO=4&transport=websocket",
                max_msg_size=0,
            )
        except BaseException:
            await http.close()
            raise
        sock = cls(http, ws)
        sock.reader = asyncio.create_task(sock._read())
        await until(lambda: sock.frames, timeout=5)
        assert isinstance(sock.frames[0], str) and sock.frames[0].startswith("0{")
        return sock

    @classmethod
    async def paired(cls, relay: RelayServer, source: str = "127.0.0.1") -> RawSocket:
        """Handshake plus a socket.io CONNECT with the right token: a paired browser."""
        sock = await cls.open(relay, source)
        await sock.send("40" + json.dumps({"token": TOKEN}))
        await until(lambda: any(str(f).startswith("40{") for f in sock.frames), timeout=5)
        return sock

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self.frames.append(msg.data)
                    if msg.data == "2":  # engine.io ping
                        await self.ws.send_str("3")
        finally:
            self.closed.set()

    async def send(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    def errors(self) -> list[dict[str, Any]]:
        """`error` events (42["error", {...}]) and connect errors (44{...})."""
        found: list[dict[str, Any]] = []
        for frame in self.frames:
            if isinstance(frame, str) and frame.startswith('42["error",'):
                found.append(json.loads(frame[2:])[1])
            elif isinstance(frame, str) and frame.startswith("44"):
                found.append(json.loads(frame[2:]).get("data") or {})
        return found

    async def wait_closed(self, timeout: float) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def close(self) -> None:
        if not self.ws.closed:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
        await self.http.close()


async def paired_relay(running_relay: Any, **options: Any) -> RelayServer:
    relay: RelayServer = await running_relay(RelayConfig(auth_token=TOKEN, **options))
    return relay


# ---- 1. client events named like the server's own ------------------------------------

@pytest.mark.parametrize(
    "packet",
    [
        # A fake environ carrying the token: on the old relay, a second session on this socket.
        '42["connect",{"QUERY_STRING":"token=' + TOKEN + '"},{"token":"' + TOKEN + '"}]',
        '42["disconnect","client namespace disconnect"]',
        '42["connect_error",{}]',
        '42["disconnecting"]',
        '42["*","start",{}]',
        # The same names as binary events (python-socketio's other way into _handle_event).
        '451-["connect",' + PLACEHOLDER + "]",
    ],
)
async def test_events_named_like_lifecycle_events_are_refused_and_the_socket_closed(
    running_relay: Any, packet: str
) -> None:
    relay = await paired_relay(running_relay)
    connections: list[Any] = []
    relay.add_listener("connection", connections.append)
    sock = await RawSocket.paired(relay)
    await until(lambda: len(relay.sessions()) == 1)
    await sock.send(packet)
    if packet.startswith("45"):
        await sock.send(b"\x00" * 16)
    await sock.wait_closed(5)
    assert [e["name"] for e in sock.errors()] == [ErrorName.PROTOCOL_ERROR]
    assert "reserved" in sock.errors()[0]["message"]
    assert len(connections) == 1  # no second session was ever opened
    await until(lambda: relay.sessions() == [])
    await sock.close()


async def test_a_disconnect_event_does_not_leave_a_zombie_socket_that_acks_starts(
    running_relay: Any,
) -> None:
    relay = await paired_relay(running_relay)
    sock = await RawSocket.paired(relay)
    await sock.send('42["disconnect"]')
    await sock.send('421["start",{"framerate":20}]')
    await sock.wait_closed(5)
    assert not any(isinstance(f, str) and f.startswith("431") for f in sock.frames)
    await sock.close()


async def test_a_session_is_never_replaced_while_it_lives(running_relay: Any) -> None:
    import socketio

    relay = await running_relay()
    # The socket-to-session map belongs to the transport's namespace: drive it directly.
    namespace = relay.transport.namespace
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    await namespace.on_connect("sid-1", environ)
    first = namespace.session_by_sid("sid-1")
    assert first is not None
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        await namespace.on_connect("sid-1", environ)
    assert refused.value.error_args["data"]["name"] == ErrorName.PROTOCOL_ERROR
    assert namespace.session_by_sid("sid-1") is first
    assert [s.uuid for s in relay.sessions()] == [first.uuid]
    await namespace.on_disconnect("sid-1")
    assert relay.sessions() == []


# ---- 2. unauthenticated sockets ------------------------------------------------------

@pytest.mark.media
async def test_idle_unauthenticated_sockets_are_closed_while_a_paired_client_streams(
    running_relay: Any, tmp_path: Path
) -> None:
    # Defaults: connect within 5 s, at most 32 sockets per address. 200 idle sockets come
    # from 127.0.0.2..8 (under the cap each); some try a wrong token, which buys no time.
    relay = await paired_relay(running_relay, recordings_dir=tmp_path / "rec")
    opened = time.monotonic()
    idle = await asyncio.gather(
        *(RawSocket.open(relay, f"127.0.0.{2 + i % 7}") for i in range(200))
    )
    for sock in idle[::4]:
        await sock.send('40{"token":"wrong-token"}')
    assert not any(s.closed.is_set() for s in idle)

    streamer = Streamer(relay_url(relay))
    await streamer.connect(auth={"token": TOKEN})
    assert await streamer.start({"framerate": 20, "name": "paired"})
    await streamer.replay(H264_FIXTURE, seconds=3)
    assert streamer.ack_errors == [] and streamer.errors == []

    await asyncio.gather(*(s.wait_closed(opened + 8 - time.monotonic()) for s in idle))
    assert time.monotonic() - opened > 4.5  # closed by the timeout, not at once
    for sock in idle:
        assert ErrorName.CONNECT_TIMEOUT in [e.get("name") for e in sock.errors()]
        await sock.close()
    assert streamer.client.connected and len(relay.sessions()) == 1
    await streamer.stop()
    await streamer.close()
    (path,) = (tmp_path / "rec").glob("*-paired.mkv")
    assert probe(path).video_frames > 30


async def test_a_socket_that_leaves_its_namespace_but_stays_open_is_closed_too(
    running_relay: Any,
) -> None:
    relay = await paired_relay(running_relay, connect_timeout=1.0)
    sock = await RawSocket.paired(relay)
    await asyncio.sleep(1.5)
    assert not sock.closed.is_set()  # joined in time: the timeout does not apply
    await sock.send("41")  # socket.io DISCONNECT of "/", the websocket kept open
    left = time.monotonic()
    await sock.wait_closed(5)
    assert time.monotonic() - left > 0.8
    assert [e["name"] for e in sock.errors()] == [ErrorName.CONNECT_TIMEOUT]
    await sock.close()


async def test_connections_per_address_are_capped_before_the_websocket_upgrade(
    running_relay: Any,
) -> None:
    relay = await paired_relay(running_relay)  # default: 32 per address
    refused: list[Any] = []
    relay.add_listener("refused", lambda addr, err: refused.append((addr, err.name)))
    socks = [await RawSocket.open(relay, "127.0.0.2") for _ in range(32)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as excess:
        await RawSocket.open(relay, "127.0.0.2")
    assert excess.value.status == 429
    assert refused == [("127.0.0.2", ErrorName.TOO_MANY_CONNECTIONS)]
    other = await RawSocket.paired(relay, "127.0.0.3")  # another address is not affected
    await socks.pop().close()
    await asyncio.sleep(0.3)
    again = await RawSocket.open(relay, "127.0.0.2")  # a freed slot is usable again
    for sock in [*socks, other, again]:
        await sock.close()


# ---- 3. binary attachments -----------------------------------------------------------

@pytest.mark.parametrize("count", [1_000_000, 2, 0])
async def test_binary_events_must_declare_exactly_one_attachment(
    running_relay: Any, count: int
) -> None:
    relay = await paired_relay(running_relay)
    sock = await RawSocket.paired(relay)
    await sock.send(f'45{count}-["binarystream",{PLACEHOLDER}]')
    try:
        for _ in range(20):  # the old relay buffered all of these, for ever
            await sock.send(bytes(1024 * 1024))
    except (ConnectionError, RuntimeError):
        pass  # refused and closed while we were still sending
    await sock.wait_closed(5)
    assert [e["name"] for e in sock.errors()] == [ErrorName.PROTOCOL_ERROR]
    assert "attachment" in sock.errors()[0]["message"]
    await until(lambda: relay.sessions() == [])
    await sock.close()


async def test_one_attachment_chunks_still_work(running_relay: Any) -> None:
    relay = await paired_relay(running_relay)
    sock = await RawSocket.paired(relay)
    await sock.send(f'451-1["binarystream",{PLACEHOLDER}]')
    await sock.send(b"\x1a\x45\xdf\xa3 data")
    # Before `start`: acked with FFMPEG_NOT_RUNNING, not fatal, socket kept.
    ack = await until(lambda: next((f for f in sock.frames if str(f).startswith("431")), None))
    assert json.loads(ack[3:])[0]["name"] == ErrorName.FFMPEG_NOT_RUNNING
    assert not sock.closed.is_set()
    await sock.close()


# ---- 4. malformed packets, oversized messages -----------------------------------------

@pytest.mark.parametrize(
    "frame",
    [
        "42" + "1" * 150 + '["stop"]',  # an ack id of 150 digits
        '42["start",{"framerate":' + "9" * 5000 + "}]",  # past Python's int digit limit
        "42" + "[" * 100_000 + "]" * 100_000,  # 100k-deep JSON
        "4" + "[" * 100_000 + "]" * 100_000,  # the same at the engine.io layer
        '42{"event":"start"}',  # payloads must be lists
        '42"stop"',
        "42[]",
        '42[42,"start"]',  # event names must be strings
        "x",  # not an engine.io packet at all
        "9",
    ],
    ids=["long-id", "huge-int", "deep-json", "deep-eio-json", "dict", "string", "empty",
         "number-name", "garbage", "bad-type"],
)
async def test_malformed_packets_are_refused_with_a_clear_error(
    running_relay: Any, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await paired_relay(running_relay)
    sock = await RawSocket.paired(relay)
    await sock.send(frame)
    await sock.wait_closed(5)
    assert [e["name"] for e in sock.errors()] == [ErrorName.PROTOCOL_ERROR]
    assert any("PROTOCOL_ERROR" in r.getMessage() and "127.0.0.1" in r.getMessage()
               for r in caplog.records)
    await until(lambda: relay.sessions() == [])
    await sock.close()


async def test_a_chunk_over_the_message_limit_gets_chunk_too_large_before_the_close(
    running_relay: Any, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await running_relay()  # 16 MB chunks; engine.io accepts messages of 17 MB
    operator: list[Any] = []
    relay.add_listener("error", lambda sid, err: operator.append(err.name))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    await streamer.client.emit("binarystream", bytes(50 * 1024 * 1024))
    await asyncio.wait_for(streamer.disconnected.wait(), 10)
    assert [e["name"] for e in streamer.errors] == [ErrorName.CHUNK_TOO_LARGE]
    assert "16777216" in streamer.errors[0]["message"]
    assert ErrorName.CHUNK_TOO_LARGE in operator
    assert any("CHUNK_TOO_LARGE" in r.getMessage() for r in caplog.records)
    await until(lambda: relay.sessions() == [])
    assert not any("-listen" not in c for c in ffmpeg_descendants().values())
    await streamer.close()
