"""Bad days for the relay: a stalled or vanished RTMP server, a relay killed or stopped, a
client that repeats a refused request. Real ffmpeg, real receivers, a real TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from desktop_relay.relay import ErrorName, RelayConfig

from ..media import H264_FIXTURE
from ..netfaults import TcpProxy
from ..polling import wait_for
from ..procs import ffmpeg_descendants, pid_alive
from ..replay import Streamer, relay_url
from .test_headless import start_headless

pytestmark = pytest.mark.media


def _via(proxy: TcpProxy, receiver_url: str) -> str:
    """The receiver's URL with the proxy's port in front of it."""
    rest = receiver_url.split("/", 3)[3]
    return f"rtmp://127.0.0.1:{proxy.port}/{rest}"


def _port(receiver_url: str) -> int:
    return int(receiver_url.split("/")[2].split(":")[1])


def _errors(streamer: Streamer, name: ErrorName) -> list[dict[str, object]]:
    return [e for e in streamer.errors if e.get("name") == name]


async def test_a_stalled_rtmp_server_is_reported_within_10_s(running_relay, rtmp_receiver) -> None:
    receiver = rtmp_receiver("stall-key-0123456789")
    proxy = TcpProxy(_port(receiver.url))
    try:
        relay = await running_relay(RelayConfig(default_target=_via(proxy, receiver.url)))
        streamer = await Streamer(relay_url(relay)).connect()
        assert await streamer.start({"framerate": 20})
        sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=20))
        await wait_for(lambda: any(s.ffmpeg and s.ffmpeg.frames_sent > 30
                                   for s in relay.sessions()))
        pid = relay.sessions()[0].outputs[0].pid
        assert pid is not None
        proxy.stall()  # the server stops reading; its connection stays open
        stalled_at = time.monotonic()
        # Since issue 11 the output restarts on its own: the client hears a non-fatal
        # OUTPUT_RECONNECTING that names the stall (it was a fatal OUTPUT_STALLED).
        await wait_for(lambda: _errors(streamer, ErrorName.OUTPUT_RECONNECTING), timeout=20)
        noticed = time.monotonic() - stalled_at
        assert noticed <= 10.0, f"stall noticed after {noticed:.1f} s"
        error = _errors(streamer, ErrorName.OUTPUT_RECONNECTING)[0]
        assert error["fatal"] is False
        assert "stopped taking the stream" in str(error["message"]), error
        # The stalled output's ffmpeg does not linger holding the connection.
        await wait_for(lambda: not pid_alive(pid), timeout=8)
        await asyncio.wait_for(sending, 30)
        await streamer.close()
    finally:
        proxy.close()


async def test_an_rtmp_server_that_goes_away_is_named_not_an_exit_code(
    running_relay, rtmp_receiver
) -> None:
    receiver = rtmp_receiver("gone-key-0123456789")
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=12))
    await wait_for(lambda: any(s.ffmpeg and s.ffmpeg.frames_sent > 30 for s in relay.sessions()))
    receiver.process.kill()  # the server process dies: its socket closes under ffmpeg
    await wait_for(lambda: _errors(streamer, ErrorName.OUTPUT_RECONNECTING), timeout=20)
    error = _errors(streamer, ErrorName.OUTPUT_RECONNECTING)[0]
    assert error["fatal"] is False, error  # the output retries (issue 11)
    assert "closed the connection" in str(error["message"]), error
    assert "exit code" not in str(error["message"])
    await asyncio.wait_for(sending, 30)
    await streamer.close()


async def test_stopping_the_relay_tells_clients_and_answers_their_queued_chunks(
    running_relay, rtmp_receiver
) -> None:
    receiver = rtmp_receiver("shutdown-key-0123456789")
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    await streamer.replay(H264_FIXTURE, seconds=3)
    data = H264_FIXTURE.read_bytes()
    # Chunks in flight while the relay stops: each must hear why it was not taken.
    calls = [asyncio.create_task(streamer.client.call("binarystream", data[i:i + 4096], timeout=10))
             for i in range(0, 40 * 4096, 4096)]
    await asyncio.sleep(0)
    started = time.monotonic()
    await relay.stop()
    assert time.monotonic() - started < 5.0
    await wait_for(lambda: streamer.errors or streamer.disconnected.is_set(), timeout=5)
    assert [e["name"] for e in streamer.errors] == [ErrorName.RELAY_SHUTTING_DOWN], streamer.errors
    results = await asyncio.gather(*calls, return_exceptions=True)
    refusals = [r for r in results if isinstance(r, dict)]
    assert all(r["name"] == ErrorName.RELAY_SHUTTING_DOWN for r in refusals), refusals
    assert not any("send 'start'" in str(r) for r in results)
    await streamer.close()


@pytest.fixture(scope="module")
def heavy_capture(tmp_path_factory: pytest.TempPathFactory, ffmpeg_exe: str) -> Path:
    """6 s of noisy 720p H.264 in Matroska, about 17 MB: more than every buffer between the
    relay and a stalled server holds (the kernel's autotuned socket buffers take 4 MiB), so
    ffmpeg really ends up blocked on its RTMP write, as behind a stalled server on the Internet."""
    path = tmp_path_factory.mktemp("heavy") / "heavy-720p.mkv"
    subprocess.run(
        [ffmpeg_exe, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=30", "-vf", "noise=alls=60:allf=t", "-t", "6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-b:v", "20M",
         "-f", "matroska", "-y", str(path)],
        check=True, timeout=60,
    )
    return path


async def _stream_into_a_stall(port: int, proxy: TcpProxy, capture: Path) -> Streamer:
    """Start a session, let ffmpeg reach the server, stall the server, then push the rest of a
    heavy capture without waiting for acks: ffmpeg ends up blocked writing to the server."""
    streamer = await Streamer(f"http://127.0.0.1:{port}").connect()
    assert await streamer.start({"framerate": 30})
    data = capture.read_bytes()
    step = 256 * 1024
    head = len(data) // 6  # about a second, acked: ffmpeg is connected and publishing
    for i in range(0, head, step):
        await streamer.send(data[i:min(i + step, head)])
    await asyncio.sleep(1.0)
    proxy.stall()
    for i in range(head, len(data), step):
        await streamer.client.emit("binarystream", data[i:i + step])
    await asyncio.sleep(1.5)
    return streamer


async def test_sigterm_during_a_stall_exits_within_5_s_leaving_no_ffmpeg(
    rtmp_receiver, tmp_path: Path, heavy_capture: Path
) -> None:
    receiver = rtmp_receiver("sigterm-stall-key-0123456789")
    proxy = TcpProxy(_port(receiver.url))
    children: dict[int, str] = {}
    try:
        proc, port = await start_headless(
            "--rtmp-url", _via(proxy, receiver.url), "--no-tls", "--no-auth", env_home=tmp_path
        )
        streamer = await _stream_into_a_stall(port, proxy, heavy_capture)
        children = ffmpeg_descendants(proc.pid)
        assert children
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        took = time.monotonic() - started
        assert took < 5.0, f"shutdown took {took:.1f} s"
        assert not any(pid_alive(pid) for pid in children)
        await streamer.close()
    finally:
        proxy.close()
        _reap(children)


async def test_ffmpeg_dies_with_a_relay_killed_by_sigkill(
    rtmp_receiver, tmp_path: Path, heavy_capture: Path
) -> None:
    receiver = rtmp_receiver("orphan-key-0123456789")
    proxy = TcpProxy(_port(receiver.url))
    children: dict[int, str] = {}
    try:
        proc, port = await start_headless(
            "--rtmp-url", _via(proxy, receiver.url), "--no-tls", "--no-auth", env_home=tmp_path
        )
        # Blocked on a stalled server, ffmpeg never reads the end of its input: without a
        # parent-death signal it outlives the relay (PPID 1), holding the RTMP connection.
        streamer = await _stream_into_a_stall(port, proxy, heavy_capture)
        children = ffmpeg_descendants(proc.pid)
        assert children
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await wait_for(lambda: not any(pid_alive(pid) for pid in children), timeout=5)
        await streamer.close()
    finally:
        proxy.close()
        _reap(children)


def _reap(pids: dict[int, str]) -> None:
    """Kill what a failed test left behind (an orphan is no longer our descendant)."""
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_thousands_of_refused_chunks_write_a_handful_of_log_lines(
    running_relay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await running_relay()
    streamer = await Streamer(relay_url(relay)).connect()
    caplog.set_level(logging.DEBUG, logger="desktop_relay")
    count = 3000
    for _ in range(count):  # media before `start`: each one refused
        await streamer.client.emit("binarystream", b"\x1a\x45\xdf\xa3")
    await wait_for(lambda: len(streamer.errors) >= count, timeout=60)
    # The client heard every refusal; the operator's log got one line per kind and spell.
    assert {e["name"] for e in streamer.errors} == {ErrorName.FFMPEG_NOT_RUNNING}
    lines = [r for r in caplog.records if "FFMPEG_NOT_RUNNING" in r.getMessage()]
    assert 1 <= len(lines) <= 5, len(lines)
    await streamer.close()
