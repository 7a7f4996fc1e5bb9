"""Catching up for real: a client that recorded through an 8 s drop resends its backlog at once
after resuming; the RTMP receiver (`-listen 1`, one publisher) is back to live by skipping the
backlog to a keyframe, and a recording of the same session keeps every frame."""

from __future__ import annotations

import asyncio

import pytest

from desktop_relay.relay import RelayConfig

from ..media import FIXTURE_SECONDS, H264_FIXTURE, probe
from ..polling import wait_for
from ..replay import relay_url
from .test_resume import Client, fixture_chunks

pytestmark = pytest.mark.media

CHUNK_S = 0.25
DROP_S = 8.0
GOP_S = 5.0  # the Chromium capture's keyframe interval


async def test_a_backlog_is_skipped_live_and_kept_in_the_recording(
    running_relay, rtmp_receiver, tmp_path
) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(
        RelayConfig(default_target=receiver.url, recordings_dir=tmp_path, catch_up_lag_s=3.0)
    )
    chunks = fixture_chunks(chunk_s=CHUNK_S)
    loop = asyncio.get_running_loop()
    first = await Client(relay_url(relay)).connect()
    ticket = await first.start_ticket()
    sid = ticket["sessionId"]
    t0 = loop.time()
    await first.send_in_time(chunks, 0, int(4.0 / CHUNK_S), t0, CHUNK_S)
    await wait_for(lambda: relay.get(sid).outputs and relay.get(sid).outputs[0].state == "live")
    await relay.add_output(sid, None)  # a recording beside the RTMP output
    await first.send_in_time(chunks, int(4.0 / CHUNK_S), int(6.0 / CHUNK_S), t0, CHUNK_S)
    first.cut()
    # The browser records on through the drop; nothing reaches the relay.
    await asyncio.sleep(DROP_S)
    second = await Client(relay_url(relay)).connect()
    ack = await second.resume(sid, ticket["resumeToken"])
    # What was recorded meanwhile is due already: it goes at link speed, then the rest live.
    await second.send_in_time(chunks, ack["lastSeq"] + 1, len(chunks), t0, CHUNK_S)
    await second.stop()
    status = relay.get(sid)
    await second.close()
    assert second.errors == []
    await asyncio.to_thread(receiver.wait, 30)

    rtmp, recording = status.outputs[0], status.outputs[1]
    assert rtmp.recording_path is None and recording.recording_path is not None
    # The live output skipped most of the drop, up to a keyframe close to live (the capture
    # has one every 5 s, so it may skip up to a GOP past the drop); the recording nothing.
    assert DROP_S - 3.0 - 0.5 <= rtmp.skipped_s <= DROP_S + GOP_S + 1.0, rtmp
    assert recording.skipped_s == 0
    source = probe(H264_FIXTURE)
    live, kept = probe(receiver.path), probe(recording.recording_path)
    fps = source.video_frames / FIXTURE_SECONDS
    assert kept.video_frames >= 0.95 * source.video_frames * (1 - 4.0 / FIXTURE_SECONDS), kept
    # What the receiver lacks is what was skipped (give or take a GOP), nothing else.
    missing = kept.video_frames - live.video_frames
    assert abs(missing - rtmp.skipped_s * fps) <= 2.5 * fps, (live, kept, rtmp.skipped_s)
    assert (live.video_codec, live.audio_codec) == ("h264", "aac")
