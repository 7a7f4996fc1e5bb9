"""The H.264 encoder for VP8/VP9 input: libx264, or a hardware encoder this machine really has.

No GPU is lent to this project: NVENC, Quick Sync and VA-API cannot encode here. What runs for
real: the trial that finds them (it finds none here), and a forced hardware encoder failing
for real, which the relay survives by going to libx264. A stand-in ffmpeg that "has" Quick
Sync (a shell script, the only mock here) checks that a working encoder is found and picked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.config import StartConfig
from desktop_relay.relay.ffmpeg.encoder_args import build_encoder_args
from desktop_relay.relay.ffmpeg.video_encoders import (
    HARDWARE,
    SOFTWARE,
    find_hardware_encoders,
    trial_args,
    video_args,
)
from desktop_relay.relay.media.container import InputFormat

from ..media import VP8_FIXTURE, probe
from ..polling import wait_for
from ..replay import relay_url, stream_fixture
from .test_media import stand_in_ffmpeg

VP8 = InputFormat("matroska", "vp8", "opus", b"")
H264 = InputFormat("matroska", "h264", "opus", b"")
CONFIG = StartConfig(framerate=30, video_bits_per_second=1_500_000)


def value_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize("encoder", [SOFTWARE, *HARDWARE])
def test_every_encoder_gets_the_clients_bitrate_and_a_keyframe_every_2_s(encoder: str) -> None:
    args = build_encoder_args("ffmpeg", VP8, CONFIG, encoder)
    assert value_after(args, "-c:v") == encoder
    assert value_after(args, "-b:v") == value_after(args, "-maxrate") == "1500000"
    assert value_after(args, "-g") == "60" and value_after(args, "-r") == "30"
    # A hardware device is set up before the input, where ffmpeg reads global options.
    if encoder in ("h264_vaapi", "h264_qsv"):
        assert args.index("-init_hw_device") < args.index("-i")
        assert "hwupload" in value_after(args, "-vf")
    else:
        assert "-init_hw_device" not in args


def test_h264_input_is_copied_whatever_the_encoder() -> None:
    args = build_encoder_args("ffmpeg", H264, CONFIG, "h264_nvenc")
    assert value_after(args, "-c:v") == "copy"
    assert "-init_hw_device" not in args and "h264_nvenc" not in args


def test_an_unknown_encoder_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown video encoder 'x265'"):
        video_args("x265", CONFIG)
    with pytest.raises(ValueError, match="unknown video encoder 'x265'"):
        RelayServer(RelayConfig(video_encoder="x265"))


async def test_the_trial_finds_no_hardware_encoder_on_a_machine_without_devices(
    ffmpeg_exe: str,
) -> None:
    """The bundled ffmpeg has all three compiled in; only a device makes one usable."""
    if Path("/dev/dri").exists() or Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU device: the trial may rightly find an encoder")
    assert await find_hardware_encoders(ffmpeg_exe) == []


async def test_a_working_hardware_encoder_is_found_and_new_sessions_use_it(
    tmp_path: Path,
) -> None:
    # The stand-in "encodes" only with Quick Sync, and only the trial's command line.
    script = 'case "$*" in *h264_qsv*-f\\ null*) exit 0;; esac\nexit 1'
    fake = stand_in_ffmpeg(tmp_path, "qsv-only", script)
    assert await find_hardware_encoders(str(fake)) == ["h264_qsv"]
    assert "h264_qsv" in trial_args(str(fake), "h264_qsv")

    relay = RelayServer(RelayConfig(host="127.0.0.1", port=0, ffmpeg_path=str(fake)))
    assert relay.video_encoder == SOFTWARE  # until the trial has answered
    await relay.start()
    try:
        await wait_for(lambda: relay.video_encoder == "h264_qsv", timeout=10)
    finally:
        await relay.stop()


async def test_a_hardware_encoder_failing_for_real_falls_back_to_libx264(
    running_relay, rtmp_receiver, ffmpeg_exe: str  # type: ignore[no-untyped-def]
) -> None:
    """NVENC forced on a machine without an NVIDIA GPU fails as a broken driver does: the
    session goes on with libx264 and the RTMP server gets the stream."""
    if await find_hardware_encoders(ffmpeg_exe):
        pytest.skip("this machine has a working hardware encoder: it cannot be made to fail")
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=receiver.url, video_encoder="h264_nvenc")
    )
    logs: list[str] = []
    relay.add_listener("log", lambda session_id, message: logs.append(message))
    encoders: list[str | None] = []
    relay.add_listener(
        "stats",
        lambda ss: encoders.extend(s.ffmpeg.video_encoder for s in ss if s.ffmpeg),
    )
    streamer = await stream_fixture(relay_url(relay), VP8_FIXTURE, seconds=6,
                                    config={"framerate": 20})
    assert [e for e in streamer.errors if e.get("fatal")] == []
    await asyncio.to_thread(receiver.wait, 30)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac")
    assert got.duration >= 4.0, got
    assert any("hardware encoder h264_nvenc failed" in line for line in logs), logs
    assert "libx264" in encoders


async def test_a_relay_stopped_during_the_trial_leaves_no_trial_running(tmp_path: Path) -> None:
    """A slow driver (a stand-in that takes 30 s to answer): stopping the relay mid-trial
    ends the trial's process too."""
    fake = stand_in_ffmpeg(tmp_path, "slow-driver", "sleep 30")

    def trials() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if b"ffmpeg-slow-driver" in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    relay = RelayServer(RelayConfig(host="127.0.0.1", port=0, ffmpeg_path=str(fake)))
    await relay.start()
    await wait_for(trials, timeout=10)
    await relay.stop()
    assert trials() == []
