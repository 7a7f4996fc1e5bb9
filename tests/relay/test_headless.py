"""`desktop-relay --headless`: serves, relays to RTMP with visible counters, stops on signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from ..media import H264_FIXTURE, probe
from ..procs import ffmpeg_descendants
from ..replay import stream_fixture

pytestmark = pytest.mark.media


async def start_headless(*args: str, env_home: Path) -> tuple[asyncio.subprocess.Process, int]:
    env = {**os.environ, "HOME": str(env_home), "XDG_VIDEOS_DIR": str(env_home / "Videos"),
           "XDG_DATA_HOME": str(env_home / "data")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "desktop_relay", "--headless", "--host", "127.0.0.1",
        "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(_line_matching(proc.stdout, r"listening on"), 20)
    port = int(re.search(r":(\d+)\s*$", line).group(1))  # type: ignore[union-attr]
    return proc, port


async def _line_matching(stream: asyncio.StreamReader, pattern: str) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"output ended before {pattern!r}")
        line = raw.decode()
        if re.search(pattern, line):
            return line


async def test_headless_relays_to_rtmp_and_stops_gracefully_on_sigint(
    rtmp_receiver, tmp_path: Path
) -> None:
    receiver = rtmp_receiver("headless-key-0123456789")
    proc, port = await start_headless(
        "--rtmp-url", receiver.url, "--no-tls", "--no-auth", env_home=tmp_path
    )
    output: list[str] = []

    async def collect() -> None:
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            output.append(raw.decode())

    reader = asyncio.create_task(collect())
    # Stream 8 s, then interrupt while the session is still open: SIGINT must end it cleanly.
    from ..replay import Streamer

    streamer = await Streamer(f"http://127.0.0.1:{port}").connect()
    assert await streamer.start({"framerate": 20})
    await streamer.replay(H264_FIXTURE, seconds=8)
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    await reader
    await streamer.close()
    await asyncio.to_thread(receiver.wait, 30)

    text = "".join(output)
    frames = [int(n) for n in re.findall(r"frames=(\d+)", text)]
    assert frames and max(frames) > 50, text  # counters are visible in the status lines
    assert "headless-key-0123456789" not in text  # the key is masked in everything printed
    assert "Stopped." in text
    got = probe(receiver.path)
    assert got.video_codec == "h264" and got.duration > 6.5, got
    assert not ffmpeg_descendants(proc.pid)


async def test_headless_without_target_records_and_sigterm_exits_zero(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    proc, port = await start_headless(
        "--recordings-dir", str(rec), "--no-tls", "--no-auth", env_home=tmp_path
    )
    await stream_fixture(f"http://127.0.0.1:{port}", H264_FIXTURE, seconds=4)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    (path,) = rec.glob("*.mkv")
    assert probe(path).video_frames > 40


def test_bad_arguments_are_clear_errors(capfd: pytest.CaptureFixture[str]) -> None:
    from desktop_relay.cli import main

    for args, message in [
        (["--headless", "--rtmp-url", "file:/etc/passwd"], "must start with rtmp://"),
        (["--headless", "--allow-client-rtmp", "("], "not a valid regular expression"),
        (["--headless", "--port", "70000"], "between 0 and 65535"),
        (["--headless", "--max-streams", "0"], "at least 1"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 2
        assert message in capfd.readouterr().err


async def test_headless_defaults_to_https_with_a_pairing_token(tmp_path: Path) -> None:
    import ssl

    import aiohttp
    import socketio

    from ..replay import Streamer

    rec = tmp_path / "rec"
    proc, port = await start_headless("--recordings-dir", str(rec), env_home=tmp_path)
    assert proc.stdout is not None
    join = await asyncio.wait_for(_line_matching(proc.stdout, r"join: https://127\.0\.0\.1"), 10)
    token = join.strip().split("?token=")[1]
    data = tmp_path / "data" / "desktop-relay"
    assert (data / "token").read_text().strip() == token
    ctx = ssl.create_default_context(cafile=str(data / "tls" / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        refused = socketio.AsyncClient(http_session=http)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(f"https://127.0.0.1:{port}", transports=["websocket"])
        streamer = Streamer(f"https://127.0.0.1:{port}?token={token}",
                            client=socketio.AsyncClient(http_session=http))
        await streamer.connect()
        assert await streamer.start({"framerate": 20})
        await streamer.replay(H264_FIXTURE, seconds=3)
        await streamer.stop()
        await streamer.close()
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    (path,) = rec.glob("*.mkv")
    assert probe(path).video_frames > 30


async def test_headless_prints_an_output_reconnecting_then_live(
    rtmp_receiver, tmp_path: Path, ffmpeg_exe: str
) -> None:
    from ..media import free_port
    from ..replay import Streamer
    from ..rtmp import start_receiver_on

    # Nothing listens on the target at first: the output retries, and says so.
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/printed-key-0123456789"
    from ..media import SECRETS

    SECRETS.add("printed-key-0123456789")
    proc, relay_port = await start_headless("--rtmp-url", url, "--no-tls", "--no-auth",
                                            env_home=tmp_path)
    output: list[str] = []

    async def collect() -> None:
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            output.append(raw.decode())

    reader = asyncio.create_task(collect())
    streamer = await Streamer(f"http://127.0.0.1:{relay_port}").connect()
    assert await streamer.start({"framerate": 20})
    sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=12))
    deadline = asyncio.get_running_loop().time() + 15
    while not any("reconnecting" in line for line in output):
        assert asyncio.get_running_loop().time() < deadline, "".join(output)
        await asyncio.sleep(0.1)
    receiver = start_receiver_on(ffmpeg_exe, tmp_path, port, "printed-key-0123456789")
    try:
        while not any(re.search(r"output \S+ live", line) for line in output):
            assert asyncio.get_running_loop().time() < deadline + 40, "".join(output)
            await asyncio.sleep(0.1)
        await sending
        await streamer.stop()
        await streamer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await reader
        receiver.close()
    text = "".join(output)
    assert "printed-key-0123456789" not in text  # masked
    assert re.search(r"output rtmp://127\.0\.0\.1:\d+/live/\*\*\*\*\S+ reconnecting in \d+ s", text)
