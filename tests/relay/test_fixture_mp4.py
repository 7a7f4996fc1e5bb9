"""The MP4 capture (Chromium's fragmented MP4, H.264 + Opus) through the relay to RTMP."""

from __future__ import annotations

import asyncio
import time

import pytest

from desktop_relay.relay import RelayConfig

from ..media import FIXTURE_SECONDS, MP4_FIXTURE, probe
from ..replay import Streamer, relay_url

pytestmark = pytest.mark.media


def browser_chunks(data: bytes) -> list[bytes]:
    """The capture cut as MediaRecorder delivers MP4: one chunk per fragment (moof + mdat),
    the first one with the file's header (ftyp + moov), whatever the timeslice."""
    chunks: list[bytes] = []
    start = pos = 0
    has_media = False
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        assert size >= 8, f"box {kind!r} at {pos} has size {size}"
        if kind == b"moof" and has_media:
            chunks.append(data[start:pos])
            start, has_media = pos, False
        has_media = has_media or kind == b"mdat"
        pos += size
    assert pos == len(data), "the capture ends inside a box"
    chunks.append(data[start:])
    return chunks


async def test_mp4_capture_arrives_as_h264_with_its_frames(running_relay, rtmp_receiver) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    formats: list[str] = []
    relay.add_listener(
        "stats",
        lambda ss: formats.extend(s.ffmpeg.input_format for s in ss
                                  if s.ffmpeg and s.ffmpeg.input_format),
    )
    chunks = browser_chunks(MP4_FIXTURE.read_bytes())
    assert len(chunks) >= 8, len(chunks)  # 2 s fragments over 20 s

    streamer = await Streamer(relay_url(relay)).connect()
    try:
        assert await streamer.start({"framerate": 20, "mimeType": "video/mp4;codecs=avc1,opus"})
        # A fragment at a time, as the browser sends them once complete; 4x real time, since
        # what arrives is the point (20 s of capture took 20 s of suite).
        t0, period = time.monotonic(), FIXTURE_SECONDS / len(chunks) / 4
        for i, chunk in enumerate(chunks, start=1):
            await asyncio.sleep(max(0.0, t0 + i * period - time.monotonic()))
            assert await streamer.send(chunk) is None
        await streamer.stop()
    finally:
        await streamer.close()
    assert streamer.errors == [] and streamer.ack_errors == []
    await asyncio.to_thread(receiver.wait, 30)

    source, got = probe(MP4_FIXTURE), probe(receiver.path)
    assert source.video_codec == "h264" and source.video_frames >= 0.9 * 20 * FIXTURE_SECONDS
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.width == 640, got
    assert got.video_frames >= 0.9 * source.video_frames, (got, source)
    assert any(f.startswith("mp4 h264") for f in formats), formats
