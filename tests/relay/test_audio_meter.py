"""The sound meter: the encoder measures the browser's audio on a side branch, the relay reads
the levels out of its log; silence is noticed; the stream and the log are untouched."""

from __future__ import annotations

import asyncio
import math
import subprocess
from pathlib import Path

import pytest

from desktop_relay.relay import RelayConfig
from desktop_relay.relay.config import StartConfig
from desktop_relay.relay.ffmpeg.encoder_args import build_encoder_args
from desktop_relay.relay.ffmpeg.process import FfmpegProcess
from desktop_relay.relay.media.audio_meter import SILENCE_DB, AudioMeter
from desktop_relay.relay.media.container import InputFormat
from desktop_relay.relay.media.flv import FlvReader
from desktop_relay.relay.media.stream_health import Check, StreamHealth

from ..media import H264_FIXTURE, probe
from ..polling import wait_for
from ..replay import Streamer, relay_url

pytestmark = pytest.mark.media


def test_the_meter_branch_is_there_only_with_audio() -> None:
    with_audio = build_encoder_args("ffmpeg", InputFormat("matroska", "h264", "opus", b""),
                                    StartConfig())
    assert "-filter_complex" in with_audio
    # The stream to the relay is the first output, unchanged; the meter's is a null output.
    assert with_audio[with_audio.index("pipe:1") + 1:] == [
        "-map", "[meter]", "-c:a", "pcm_s16le", "-f", "null", "-"]
    video_only = build_encoder_args("ffmpeg", InputFormat("matroska", "h264", None, b""),
                                    StartConfig())
    assert "-filter_complex" not in video_only and video_only[-1] == "pipe:1"


def _tone(ffmpeg: str, path: Path, source: str) -> Path:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", source, "-t", "3",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus", "-f", "matroska",
         "-y", str(path)], check=True, timeout=60)
    return path


async def _encode(ffmpeg: str, capture: Path) -> tuple[AudioMeter, list[str], bytes]:
    """Run the relay's encoder command on a capture, as a pipeline does."""
    meter, lines, out = AudioMeter(), [], bytearray()
    args = build_encoder_args(ffmpeg, InputFormat("matroska", "h264", "opus", b""),
                              StartConfig())
    proc = FfmpegProcess(args, on_line=lines.append, on_stats=lambda s: None,
                         on_data=out.extend, take_line=meter.feed_line)
    await proc.start()
    await proc.write(capture.read_bytes())
    assert await proc.stop(timeout=10) == 0, list(proc.last_lines)
    return meter, [*lines, *proc.last_lines], bytes(out)


async def test_a_tone_reads_its_level_and_the_stream_and_log_are_untouched(
    ffmpeg_exe: str, tmp_path: Path
) -> None:
    # sine's default amplitude is 1/8: peak -18 dBFS, RMS -21 dBFS.
    capture = _tone(ffmpeg_exe, tmp_path / "tone.mkv", "sine=frequency=440:sample_rate=48000")
    meter, lines, flv = await _encode(ffmpeg_exe, capture)
    level = meter.level
    assert level is not None
    assert -19.5 < level.peak_db < -16.5 and -22.5 < level.rms_db < -19.5, level
    assert level.silent_s == 0.0
    assert not any("astats" in line or "Parsed_ametadata" in line for line in lines)
    tags = FlvReader().feed(flv)
    assert {t.type for t in tags} >= {8, 9}  # audio and video still in the stream
    assert probe(capture).video_frames > 80


async def test_digital_silence_is_silence(ffmpeg_exe: str, tmp_path: Path) -> None:
    capture = _tone(ffmpeg_exe, tmp_path / "quiet.mkv", "anullsrc=r=48000:cl=mono")
    meter, _, _ = await _encode(ffmpeg_exe, capture)
    level = meter.level
    assert level is not None and math.isinf(level.rms_db) and level.rms_db < 0
    assert level.silent_s >= 2.0  # 3 s of it, measured in 0.2 s blocks


def test_silence_counts_from_the_last_sound_and_warns_after_10_s() -> None:
    meter = AudioMeter()
    head = "[Parsed_ametadata_2 @ 0x1] "
    # Blocks at these media times: sound until 0.2 s, then quiet (under SILENCE_DB).
    for t, rms in [(0.0, -30.0), (0.2, -25.0), (0.4, -90.0), (5.0, -90.0), (11.0, -95.0)]:
        assert meter.feed_line(f"{head}frame:1 pts:{int(t * 48000)} pts_time:{t}")
        assert meter.feed_line(f"{head}lavfi.astats.Overall.Peak_level={rms + 3}")
        assert meter.feed_line(f"{head}lavfi.astats.Overall.RMS_level={rms}")
    level = meter.level
    assert level is not None and level.silent_s == pytest.approx(10.8)  # 0.4 s to 11.2 s
    assert SILENCE_DB > -90.0
    assert not meter.feed_line("Stream #0:1: Audio: opus")
    assert meter.feed_line("[Parsed_astats_1 @ 0x2] RMS level dB: -20.1")  # its summary
    health = StreamHealth()
    health._audio, health._first_ms, health._last_ms = True, 0, 20_000  # 20 s of stream
    assert [w.check for w in health.evaluate(silent_s=level.silent_s)] == [Check.AUDIO_SILENT]
    assert health.evaluate(silent_s=9.0) == ()


async def test_a_sessions_status_carries_its_sound_level(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig())
    streamer = await Streamer(relay_url(relay)).connect()
    try:
        assert await streamer.start({"framerate": 20})
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=4))
        await wait_for(lambda: relay.sessions()[0].audio is not None, timeout=10)
        audio = relay.sessions()[0].audio
        assert audio is not None
        assert set(relay.sessions()[0].to_dict()["audio"]) == {"peakDb", "rmsDb", "silentFor"}
        await replay
        await streamer.stop()
    finally:
        await streamer.close()
