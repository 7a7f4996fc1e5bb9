"""SRT as a destination kind: validation and masking, then real streams through a real relay to
a real SRT listener (ffmpeg `-i srt://...?mode=listener`), checked with ffprobe, and a
listener killed and started again."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from desktop_relay.relay import OutputState, RelayConfig, RelayServer, mask_target
from desktop_relay.relay.outputs.destinations import (
    SRT,
    TargetError,
    build_output_args,
    classify_exit,
    mask_in_text,
    secrets_of,
    split_key,
    validate_target,
)

from ..media import H264_FIXTURE, SECRETS, free_port, probe, require_tool
from ..polling import wait_for
from ..replay import Streamer, relay_url

PASSPHRASE = "srt-pass-0123456789"
STREAM_ID = "live/srt-stream-0123456789"

GOOD = [
    "srt://127.0.0.1:9000",
    f"srt://127.0.0.1:9000?streamid={STREAM_ID}&passphrase={PASSPHRASE}",
    "srt://ingest.example.com:2088?streamid=abc&latency=200000&pbkeylen=32&mode=caller",
    "srt://[::1]:9000?streamid=x1",
    "SRT://127.0.0.1:9000/",
]

BAD = [
    ("srt://127.0.0.1", "needs a port"),
    ("srt://127.0.0.1:9000?mode=listener", "mode=caller"),
    ("srt://127.0.0.1:9000?mode=rendezvous", "mode=caller"),
    ("srt://127.0.0.1:9000?passphrase=short-789", "10 to 79"),
    ("srt://127.0.0.1:9000?passphrase=" + "p" * 80, "10 to 79"),
    ("srt://127.0.0.1:9000?localport=5000", "'localport' that is not allowed"),
    ("srt://127.0.0.1:9000?streamid=a&streamid=b", "twice"),
    ("srt://127.0.0.1:9000/live/key", "no path"),
    ("srt://user:pw@127.0.0.1:9000", "credentials"),
    ("srt://:9000", "no host"),
    ("srt://127.0.0.1:9000?latency=-1", "latency"),
    ("srt://127.0.0.1:9000?streamid=", "empty streamid"),
    ("srt://127.0.0.1:9000?pbkeylen=8", "pbkeylen"),
    ("udp://127.0.0.1:9000", "rtmp://, rtmps:// or srt://"),
]


@pytest.mark.parametrize("url", GOOD)
def test_good_srt_targets_pass(url: str) -> None:
    assert validate_target(url) == url


@pytest.mark.parametrize(("url", "why"), BAD)
def test_bad_srt_targets_are_refused_naming_what_is_wrong(url: str, why: str) -> None:
    with pytest.raises(TargetError) as info:
        validate_target(url)
    assert why in str(info.value)


def test_streamid_and_passphrase_are_masked_like_keys() -> None:
    url = f"srt://127.0.0.1:9000?streamid={STREAM_ID}&passphrase={PASSPHRASE}&latency=200000"
    masked = mask_target(url)
    assert masked is not None
    assert STREAM_ID not in masked and PASSPHRASE not in masked
    assert masked.startswith("srt://127.0.0.1:9000?streamid=****")
    assert "latency=200000" in masked  # not a secret: still shown
    secrets = secrets_of(url)
    line = f"[srt @ 0x1] Connecting to {url} (streamid {STREAM_ID}, key {PASSPHRASE})"
    shown = mask_in_text(line, secrets)
    assert STREAM_ID not in shown and PASSPHRASE not in shown and "127.0.0.1:9000" in shown
    assert split_key(url) == ("srt://127.0.0.1:9000", url.split("9000", 1)[1])


def test_srt_output_is_mpegts_over_srt_and_its_failures_are_srt_ones() -> None:
    url = f"srt://127.0.0.1:9000?streamid={STREAM_ID}"
    args = build_output_args("ffmpeg", url, 65536)
    assert args[-3:] == ["-f", "mpegts", url]
    assert " ".join(args).count("-f flv -i pipe:0 -map 0 -c copy") == 1
    refused = classify_exit(1, ["[srt @ 0x1] Connection setup failure: connection timed out"],
                            kind=SRT)
    assert refused.name == "SRT_CONNECTION_FAILED" and "SRT server failed" in refused.message
    broken = classify_exit(1, ["[srt @ 0x1] Connection was broken"], kind=SRT)
    assert "SRT server closed" in broken.message
    assert SRT.stall_message(6, True).startswith("The SRT server stopped taking the stream")


# ---- real streams -------------------------------------------------------------------------


@dataclass
class SrtListener:
    """An `ffmpeg -i srt://...?mode=listener` receiver writing what it gets to a TS file."""

    port: int
    path: Path
    process: subprocess.Popen[bytes]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _udp_bound(port: int) -> bool:
    needle = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(needle.strip()) for line in lines):
            return True
    return False


@pytest.fixture
def srt_listener(ffmpeg_exe: str, tmp_path: Path) -> Iterator[Callable[[int], SrtListener]]:
    """Factory: `srt_listener(port)` starts a real SRT listener on 127.0.0.1:port."""
    require_tool("ffprobe")
    made: list[SrtListener] = []

    def make(port: int) -> SrtListener:
        path = tmp_path / f"srt-{port}-{len(made)}.ts"
        url = f"srt://127.0.0.1:{port}?mode=listener&passphrase={PASSPHRASE}"
        log = (tmp_path / f"srt-{port}-{len(made)}.log").open("wb")
        process = subprocess.Popen(
            [ffmpeg_exe, "-hide_banner", "-loglevel", "warning", "-i", url,
             "-c", "copy", "-f", "mpegts", "-y", str(path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 10
        while not _udp_bound(port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"SRT listener did not start on port {port}")
            time.sleep(0.05)
        made.append(SrtListener(port, path, process))
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def srt_target(port: int) -> str:
    SECRETS.update({PASSPHRASE, STREAM_ID})
    return f"srt://127.0.0.1:{port}?streamid={STREAM_ID}&passphrase={PASSPHRASE}"


def output_state(relay: RelayServer, session_id: str) -> OutputState | None:
    status = relay.get(session_id)
    if status is None or len(status.outputs) != 1:
        return None
    return status.outputs[0].state


@pytest.mark.media
async def test_a_session_goes_out_over_srt_with_video_and_audio(
    running_relay, srt_listener  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    listener = srt_listener(port)
    relay = await running_relay(RelayConfig(default_target=srt_target(port)))
    streamer = await Streamer(relay_url(relay)).connect()
    try:
        assert await streamer.start({"framerate": 30})
        (session_id,) = [s.uuid for s in relay.sessions()]
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=6))
        await wait_for(lambda: output_state(relay, session_id) == OutputState.LIVE, timeout=10)
        status = relay.get(session_id)
        assert status is not None
        (output,) = status.outputs
        assert output.kind == "srt"
        assert PASSPHRASE not in output.target and STREAM_ID not in output.target
        await replay
        await streamer.stop()
    finally:
        await streamer.close()
    await asyncio.to_thread(listener.process.wait, 10)
    got = probe(listener.path)
    assert got.video_frames >= 100, got  # 6 s at the capture's ~30 fps
    assert got.video_codec == "h264" and got.audio_codec == "aac", got


@pytest.mark.media
async def test_an_srt_listener_killed_and_back_is_reconnected(
    running_relay, srt_listener  # type: ignore[no-untyped-def]
) -> None:
    port = free_port()
    first = srt_listener(port)
    relay = await running_relay(RelayConfig(default_target=srt_target(port)))
    streamer = await Streamer(relay_url(relay)).connect()
    try:
        assert await streamer.start({"framerate": 30})
        (session_id,) = [s.uuid for s in relay.sessions()]
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=18))
        await wait_for(lambda: output_state(relay, session_id) == OutputState.LIVE, timeout=10)
        await asyncio.sleep(1)
        first.process.kill()
        first.process.wait()
        # SRT notices a silent peer after its idle timeout (5 s), or the stall watch does.
        await wait_for(
            lambda: output_state(relay, session_id) != OutputState.LIVE, timeout=12
        )
        second = srt_listener(port)
        await wait_for(lambda: output_state(relay, session_id) == OutputState.LIVE, timeout=15)
        status = relay.get(session_id)
        assert status is not None and status.outputs[0].reconnects == 1
        assert status.state.value in ("starting", "live")
        await asyncio.sleep(2)
        replay.cancel()
        await asyncio.gather(replay, return_exceptions=True)
        await streamer.stop()
    finally:
        await streamer.close()
    await asyncio.to_thread(second.process.wait, 10)
    got = probe(second.path)
    assert got.video_frames >= 30, got  # at least a second after the reconnect
