"""Encode once, push to many, through the whole relay: one browser session to several
targets, a target that goes away and comes back, and ffmpegs killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState
from desktop_relay.relay.status import OutputState

from ..media import H264_FIXTURE, SECRETS, probe
from ..polling import wait_for
from ..procs import pid_alive
from ..replay import Streamer, relay_url
from ..rtmp import port_of, start_receiver_on

pytestmark = pytest.mark.media

SECONDS = 10


def _fixture_frames(seconds: float) -> float:
    """Video frames in the first `seconds` of the capture (20 fps fake camera, by ffprobe)."""
    whole = probe(H264_FIXTURE)
    return whole.video_frames * seconds / whole.duration


def _errors(streamer: Streamer, name: ErrorName) -> list[dict[str, object]]:
    return [e for e in streamer.errors if e.get("name") == name]


async def test_one_session_reaches_two_targets_with_all_their_frames(
    running_relay, rtmp_receiver, nginx_rtmp, tmp_path: Path
) -> None:
    single = rtmp_receiver("two-a-0123456789abcd")
    key = "two-b-0123456789abcd"
    SECRETS.add(key)
    relay = await running_relay(
        RelayConfig(default_target=single.url, extra_targets=(nginx_rtmp.url(key),))
    )
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    await streamer.replay(H264_FIXTURE, seconds=SECONDS)
    status = relay.sessions()[0]
    assert [o.state for o in status.outputs] == [OutputState.LIVE, OutputState.LIVE]
    encoder_pid = status.ffmpeg.pid if status.ffmpeg else None
    await streamer.stop()
    await streamer.close()
    assert streamer.errors == [] and streamer.ack_errors == []
    await asyncio.to_thread(single.wait, 30)
    expected = 0.95 * _fixture_frames(SECONDS)
    recording = nginx_rtmp.recording(key)
    await wait_for(lambda: recording.exists() and recording.stat().st_size > 0, timeout=10)
    await asyncio.sleep(1)  # nginx closes the recording when the publisher leaves
    for path in (single.path, recording):
        got = probe(path)
        assert (got.video_codec, got.audio_codec) == ("h264", "aac"), path
        assert got.video_frames >= expected, (path, got, expected)
    # One encoder for both targets.
    assert encoder_pid is not None and not pid_alive(encoder_pid)


async def test_a_target_killed_and_back_2_s_later_gets_the_rest_the_other_loses_nothing(
    running_relay, rtmp_receiver, ffmpeg_exe: str, tmp_path: Path
) -> None:
    flaky, steady = rtmp_receiver("flaky-0123456789abcd"), rtmp_receiver("steady-0123456789abc")
    relay = await running_relay(
        RelayConfig(default_target=flaky.url, extra_targets=(steady.url,))
    )
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=14))
    await wait_for(lambda: (s := relay.sessions()) and s[0].outputs
                   and s[0].outputs[0].state == OutputState.LIVE)
    await asyncio.sleep(2)
    flaky.process.kill()
    flaky.process.wait()
    await wait_for(lambda: _errors(streamer, ErrorName.OUTPUT_RECONNECTING), timeout=8)
    await asyncio.sleep(2)
    back = start_receiver_on(ffmpeg_exe, tmp_path, port_of(flaky.url), "flaky-0123456789abcd")
    try:
        await wait_for(lambda: (o := relay.sessions()[0].outputs[0]).state == OutputState.LIVE
                       and o.reconnects == 1, timeout=40)
        back_at = relay.sessions()[0].uptime_s
        await sending
        await streamer.stop()
        await streamer.close()
        await asyncio.to_thread(back.wait, 30)
        await asyncio.to_thread(steady.wait, 30)
    finally:
        back.close()
    # Nothing fatal: the session lived on; the client heard the output reconnecting.
    assert not [e for e in streamer.errors if e.get("fatal")], streamer.errors
    assert streamer.ack_errors == []
    # The steady target lost nothing; the one that came back has the rest from a keyframe.
    assert probe(steady.path).video_frames >= 0.95 * _fixture_frames(14)
    rest = 14 - back_at
    got = probe(back.path)
    assert got.video_codec == "h264"
    # From the cached keyframe (up to 5 s before it came back) to the end.
    assert got.video_frames >= 0.9 * _fixture_frames(rest), (got, rest)


async def test_kill_9_of_the_encoder_and_of_an_output_both_come_back(
    running_relay, nginx_rtmp
) -> None:
    # nginx takes a publisher again after one died (`ffmpeg -listen 1` ends with its first).
    relay = await running_relay(RelayConfig(default_target=nginx_rtmp.url("kill9-0123456789abc")))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=16))
    await wait_for(lambda: (s := relay.sessions()) and s[0].outputs
                   and s[0].outputs[0].state == OutputState.LIVE and s[0].ffmpeg
                   and s[0].ffmpeg.frames_sent > 40)
    status = relay.sessions()[0]
    encoder, output = status.ffmpeg.pid, status.outputs[0].pid  # type: ignore[union-attr]
    assert encoder and output
    os.kill(output, signal.SIGKILL)
    await wait_for(lambda: (o := relay.sessions()[0].outputs[0]).state == OutputState.LIVE
                   and o.pid not in (None, output), timeout=15)
    os.kill(encoder, signal.SIGKILL)
    await wait_for(lambda: (s := relay.sessions()[0]).ffmpeg is not None
                   and s.ffmpeg.pid not in (None, encoder) and s.ffmpeg.frames_sent > 0,
                   timeout=15)
    await wait_for(lambda: relay.sessions()[0].outputs[0].state == OutputState.LIVE, timeout=15)
    assert relay.sessions()[0].state == SessionState.LIVE
    await sending
    await streamer.stop()
    await streamer.close()
    assert _errors(streamer, ErrorName.OUTPUT_RECONNECTING)
    assert not [e for e in streamer.errors if e.get("fatal")], streamer.errors
    assert not pid_alive(encoder) and not pid_alive(output)


async def test_an_output_added_and_removed_live_leaves_the_other_alone(
    running_relay, rtmp_receiver, nginx_rtmp
) -> None:
    steady = rtmp_receiver("steady-add-0123456789")
    relay = await running_relay(RelayConfig(default_target=steady.url))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    sending = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=10))
    await wait_for(lambda: (s := relay.sessions()) and s[0].outputs
                   and s[0].outputs[0].state == OutputState.LIVE)
    session_id = relay.sessions()[0].uuid
    with pytest.raises(KeyError):
        await relay.add_output("no-such-session", nginx_rtmp.url("added-0123456789ab"))
    added = await relay.add_output(session_id, nginx_rtmp.url("added-0123456789ab"))
    await wait_for(lambda: [o for o in relay.sessions()[0].outputs
                            if o.id == added and o.state == OutputState.LIVE], timeout=10)
    assert await relay.remove_output(session_id, added)
    assert not await relay.remove_output(session_id, added)
    assert all(o.id != added for o in relay.sessions()[0].outputs)
    await sending
    await streamer.stop()
    await streamer.close()
    await asyncio.to_thread(steady.wait, 30)
    assert probe(steady.path).video_frames >= 0.95 * _fixture_frames(10)
    assert not [e for e in streamer.errors if e.get("fatal")], streamer.errors
