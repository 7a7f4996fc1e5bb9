"""Replaying a MediaRecorder capture through a python-socketio client, in real time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import socketio

from desktop_relay.relay import RelayServer

from .media import FIXTURE_SECONDS, SECRETS


def relay_url(relay: RelayServer) -> str:
    """The http URL of a relay started on 127.0.0.1 (for example by `running_relay`)."""
    return f"http://127.0.0.1:{relay.port}"


# Everything any relay sent any test client (errors, acks, ffmpeg output), for the
# end-of-run check that no stream key leaked.
CLIENT_MESSAGES: list[str] = []


@dataclass
class Streamer:
    """A socket.io client speaking the browser client's protocol; records what it receives."""

    url: str
    client: socketio.AsyncClient = field(default_factory=socketio.AsyncClient)
    errors: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ack_errors: list[dict[str, Any]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(self, **kwargs: Any) -> Self:
        """Connect over websocket, like the browser client."""
        def on_error(error: dict[str, Any]) -> None:
            self.errors.append(error)
            CLIENT_MESSAGES.append(repr(error))

        def on_output(line: str) -> None:
            self.outputs.append(line)
            CLIENT_MESSAGES.append(line)

        self.client.on("error", on_error)
        self.client.on("ffmpegOutput", on_output)
        self.client.on("disconnect", lambda *a: self.disconnected.set())
        await self.client.connect(self.url, transports=["websocket"], **kwargs)
        return self

    async def start(self, config: dict[str, Any] | None = None, timeout: float = 5.0) -> bool:
        """Send `start`; True if acked, False if refused (an `error` came instead)."""
        n = len(self.errors)
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[tuple[Any, ...]] = loop.create_future()

        def on_ack(*args: Any) -> None:
            if not acked.done():
                acked.set_result(args)

        await self.client.emit(
            "start", config if config is not None else {"framerate": 20}, callback=on_ack
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if acked.done():
                return True
            if len(self.errors) > n:
                return False
            await asyncio.sleep(0.02)
        raise TimeoutError("start was neither acked nor refused")

    async def send(self, chunk: bytes, timeout: float = 30.0) -> Any:
        """Send one chunk and wait for its ack."""
        result = await self.client.call("binarystream", chunk, timeout=timeout)
        if result:
            self.ack_errors.append(result)
            CLIENT_MESSAGES.append(repr(result))
        return result

    async def replay(self, path: Path, seconds: float | None = None, chunk_s: float = 0.25,
                     stop_on_error: bool = True, speed: float = 1.0) -> int:
        """Send the first `seconds` of a capture in chunks of `chunk_s`, paced in real time
        (`speed` times faster: for tests about what arrives, not when).

        Captures are cut by bytes in proportion to time, as MediaRecorder's timeslice does
        roughly. Returns the number of bytes sent.
        """
        data = path.read_bytes()
        total = len(data) if seconds is None else int(len(data) * seconds / FIXTURE_SECONDS)
        step = max(1, int(len(data) * chunk_s / FIXTURE_SECONDS))
        t0 = time.monotonic()
        sent = 0
        i = 0
        while sent < total and not self.disconnected.is_set():
            chunk = data[sent:min(sent + step, total)]
            try:
                await self.send(chunk)
            except (socketio.exceptions.SocketIOError, TimeoutError):
                if self.disconnected.is_set():
                    break  # the relay ended the session (kill): stop like a browser would
                raise
            sent += len(chunk)
            i += 1
            if stop_on_error and any(e.get("fatal") for e in self.errors):
                break
            await asyncio.sleep(max(0.0, t0 + i * chunk_s / speed - time.monotonic()))
        return sent

    async def stop(self, timeout: float = 30.0) -> None:
        """Send `stop` and wait until the relay has ended ffmpeg."""
        await self.client.call("stop", timeout=timeout)

    async def close(self) -> None:
        """Disconnect."""
        if self.client.connected:
            await self.client.disconnect()



@dataclass
class ResumingStreamer(Streamer):
    """A streamer that numbers its chunks and can resume, as our page's client does; it never
    reconnects on its own (a test or a benchmark decides when it comes back)."""

    client: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    ticket: dict[str, Any] = field(default_factory=dict)

    async def start_ticket(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """`start`, returning the ack's argument (the resume ticket)."""
        result = await self.client.call("start", config or {"framerate": 20}, timeout=10)
        assert isinstance(result, dict), f"start ack carries no ticket: {result!r}"
        SECRETS.add(result["resumeToken"])  # the run-wide leak check watches it from now on
        self.ticket = result
        return result

    async def send_seq(self, chunk: bytes, seq: Any, timeout: float = 30.0) -> Any:
        """Send a numbered chunk; returns the ack (None, one value or a tuple of them)."""
        return await self.client.call("binarystream", (chunk, seq), timeout=timeout)

    async def send_in_time(
        self, chunks: list[bytes], first: int, end: int, t0: float, chunk_s: float
    ) -> None:
        """Send chunks[first:end], numbered, chunk n once its time has come (t0 + (n + 1) *
        chunk_s on the loop's clock), as a recorder produces them; every ack must be a
        success."""
        loop = asyncio.get_running_loop()
        for seq in range(first, end):
            await asyncio.sleep(max(0.0, t0 + (seq + 1) * chunk_s - loop.time()))
            ack = await self.send_seq(chunks[seq], seq)
            assert ack is None, f"chunk {seq} refused: {ack!r}"

    async def resume(self, session_id: str, token: Any) -> Any:
        """Send `resume`; returns the ack's argument."""
        return await self.client.call(
            "resume", {"sessionId": session_id, "token": token}, timeout=10
        )

    def cut(self) -> None:
        """Lose the connection abruptly: the TCP connection is aborted, no socket.io or
        engine.io goodbye is sent (a phone leaving its Wi-Fi, a crashed tab)."""
        ws = self.client.eio.ws
        ws._conn.transport.abort()


async def stream_fixture(url: str, path: Path, seconds: float | None = None,
                         config: dict[str, Any] | None = None, speed: float = 1.0) -> Streamer:
    """Connect, start, replay (`speed` times real time), stop and disconnect: one whole
    browser session."""
    streamer = await Streamer(url).connect()
    try:
        assert await streamer.start(config), f"start refused: {streamer.errors}"
        await streamer.replay(path, seconds, speed=speed)
        await streamer.stop()
    finally:
        await streamer.close()
    return streamer
