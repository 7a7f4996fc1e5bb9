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
    sent = 0

    async def send_live(c: Client, until_seq: int) -> None:
        # In the pace of time: chunk n goes out once n+1 chunks' worth of time has passed.
        nonlocal sent
        while sent < until_seq:
            await asyncio.sleep(max(0.0, t0 + (sent + 1) * CHUNK_S - loop.time()))
            assert await c.send_seq(chunks[sent], sent) is None
            sent += 1

    await send_live(first, int(4.0 / CHUNK_S))
    await wait_for(lambda: relay.get(sid).outputs and relay.get(sid).outputs[0].state == "live")
    await relay.add_output(sid, None)  # a recording beside the RTMP output
    await send_live(first, int(6.0 / CHUNK_S))
    first.cut()
    # The browser records on through the drop; nothing reaches the relay.
    await asyncio.sleep(DROP_S)
    second = await Client(relay_url(relay)).connect()
    ack = await second.resume(sid, ticket["resumeToken"])
    sent = ack["lastSeq"] + 1
    # The backlog at link speed: everything recorded up to now, at once.
    due = min(len(chunks), int((loop.time() - t0) / CHUNK_S))
    for seq in range(sent, due):
        assert await second.send_seq(chunks[seq], seq) is None
    sent = due
    await send_live(second, len(chunks))
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
