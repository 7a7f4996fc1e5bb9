"""Health checks on real streams: ffmpeg makes each broken in one way (no audio, 10 s
keyframes, 300 kbit/s, 15 fps, a size change), the checks read its FLV tags as the hub does;
then a session through the relay hears its warnings."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from desktop_relay.relay import RelayConfig
from desktop_relay.relay.media.avc import avc_config_size
from desktop_relay.relay.media.flv import TAG_HEADER_SIZE, FlvReader, FlvTag
from desktop_relay.relay.media.stream_health import Check, HealthThresholds, StreamHealth

from ..polling import wait_for
from ..replay import Streamer, relay_url

pytestmark = pytest.mark.media


def make_stream(ffmpeg: str, path: Path, *, size: str = "640x360", fps: int = 30,
                gop: int = 60, kbps: int = 1500, audio: bool = True, seconds: float = 8,
                profile: str = "high", container: str = "flv") -> Path:
    """A noisy test picture (so the bitrate is what was asked) with a tone, by ffmpeg."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps},noise=alls=30:allf=t"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", profile,
             "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
             "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k",
             "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*args, "-f", container, "-y", str(path)], check=True, timeout=60)
    return path


def tags_of(path: Path) -> list[FlvTag]:
    return FlvReader().feed(path.read_bytes())


def health_of(tags: list[FlvTag], **evaluate: Any) -> set[Check]:
    health = StreamHealth()
    for i in range(0, len(tags), 7):  # in reads of a few tags, as the hub gets them
        health.observe(tags[i:i + 7])
    return {w.check for w in health.evaluate(**evaluate)}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory, ffmpeg_exe: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("health")
    cases: dict[str, dict[str, Any]] = {
        "healthy": {},
        "no-audio": {"audio": False},
        "10s-keyframes": {"gop": 300, "seconds": 12},
        "300kbps": {"kbps": 300, "size": "1280x720"},
        "15fps": {"fps": 15, "gop": 30},
        "small": {"size": "320x240", "profile": "baseline"},
        "8mbps": {"kbps": 8000, "size": "1280x720"},
    }
    return {name: make_stream(ffmpeg_exe, folder / f"{name}.flv", **kw)
            for name, kw in cases.items()}


@pytest.mark.parametrize(("size", "profile"), [("640x360", "high"), ("1280x720", "baseline"),
                                               ("1920x1080", "main"), ("322x242", "high")])
def test_the_picture_size_is_read_from_the_sps(
    tmp_path: Path, ffmpeg_exe: str, size: str, profile: str
) -> None:
    path = make_stream(ffmpeg_exe, tmp_path / "s.flv", size=size, profile=profile, seconds=0.2,
                       audio=False)
    header = next(t for t in tags_of(path) if t.type == 9 and t.is_sequence_header)
    record = header.raw[TAG_HEADER_SIZE + 5:]
    width, height = (int(v) for v in size.split("x"))
    assert avc_config_size(record) == (width, height)
    assert avc_config_size(b"\x01garbage") is None


def test_a_healthy_stream_raises_nothing(streams: dict[str, Path]) -> None:
    assert health_of(tags_of(streams["healthy"])) == set()


@pytest.mark.parametrize(("name", "check"), [
    ("no-audio", Check.NO_AUDIO),
    ("10s-keyframes", Check.KEYFRAME_INTERVAL),
    ("300kbps", Check.LOW_BITRATE),
    ("15fps", Check.LOW_FRAME_RATE),
])
def test_each_broken_stream_raises_its_own_warning(
    streams: dict[str, Path], name: str, check: Check
) -> None:
    assert health_of(tags_of(streams[name])) == {check}


def test_nothing_is_said_about_the_first_seconds(streams: dict[str, Path]) -> None:
    tags = [t for t in tags_of(streams["300kbps"]) if t.timestamp < 4000]
    assert health_of(tags) == set()


def test_a_size_change_mid_stream_is_noticed(streams: dict[str, Path]) -> None:
    first = tags_of(streams["healthy"])
    end = first[-1].timestamp
    # The second stream's tags follow the first's, as an encoder's new headers would.
    second = [t._replace(timestamp=t.timestamp + end + 33) for t in tags_of(streams["small"])
              if t.type != 18]
    health = StreamHealth()
    health.observe(first)
    health.observe(second)
    assert health.size_changes == [((640, 360), (320, 240))]
    warnings = health.evaluate()
    assert [w.check for w in warnings] == [Check.RESOLUTION_CHANGED]
    assert "640x360 to 320x240" in warnings[0].message


def test_destination_maximum_and_a_lagging_output(streams: dict[str, Path]) -> None:
    tags = tags_of(streams["8mbps"])
    twitch = "rtmp://live.twitch.tv/app/live_0123456789"
    assert health_of(tags, destinations=[twitch]) == {Check.HIGH_BITRATE}
    assert health_of(tags, destinations=["rtmp://127.0.0.1/live/x"]) == set()
    healthy = tags_of(streams["healthy"])
    assert health_of(healthy, output_speeds=[1.0, None]) == set()
    assert health_of(healthy, output_speeds=[1.0, 0.8]) == {Check.OUTPUT_LAGGING}


def test_a_low_bitrate_is_judged_against_the_picture_size(
    tmp_path: Path, ffmpeg_exe: str
) -> None:
    """300 kbit/s is blocky at 1280x720 (above) but plenty for a 640x480 camera at 20 fps,
    the bitrate Chromium's fake camera and the suite's captures run at."""
    small = make_stream(ffmpeg_exe, tmp_path / "small.flv", size="640x480", fps=20, gop=40,
                        kbps=300)
    assert health_of(tags_of(small)) == set()


def test_thresholds_live_in_one_place() -> None:
    t = HealthThresholds()
    assert (t.max_keyframe_interval_s, t.min_fps, t.min_output_speed) == (4.0, 20.0, 0.95)


async def test_a_session_hears_its_streams_warnings_and_the_operator_sees_them(
    running_relay, ffmpeg_exe: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """Video only, a keyframe every 10 s, through the relay in real time: the page's client
    gets a `health` event naming both problems, the status lists them, the log says them."""
    capture = make_stream(ffmpeg_exe, tmp_path / "broken.mkv", audio=False, gop=300,
                          seconds=9, container="matroska")
    relay = await running_relay(RelayConfig(stats_interval=0.25))
    logs: list[str] = []
    relay.add_listener("log", lambda session_id, message: logs.append(message))
    streamer = await Streamer(relay_url(relay)).connect()
    heard: list[list[dict[str, str]]] = []
    streamer.client.on("health", heard.append)
    try:
        assert await streamer.start({"framerate": 30})
        data = capture.read_bytes()
        step = len(data) // 36
        for i in range(36):  # 9 s in 0.25 s chunks, paced in real time
            await streamer.send(data[i * step:(i + 1) * step if i < 35 else len(data)])
            await asyncio.sleep(0.25)
        await wait_for(lambda: heard and len(heard[-1]) == 2, timeout=5)
        assert {w["check"] for w in heard[-1]} == {"no_audio", "keyframe_interval"}
        assert all(w["message"] for w in heard[-1])
        status = relay.sessions()[0]
        assert {w.check for w in status.health} == {Check.NO_AUDIO, Check.KEYFRAME_INTERVAL}
        assert {w["check"] for w in status.to_dict()["health"]} == {"no_audio",
                                                                    "keyframe_interval"}
        assert any(line.startswith("Health: The stream has no sound") for line in logs), logs
        await streamer.stop()
    finally:
        await streamer.close()
