"""Real media end to end: fixture chunks in real time -> relay -> ffmpeg -> RTMP receiver."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from desktop_relay.relay import ErrorName, FfmpegState, RelayConfig, SessionState
from desktop_relay.relay.status import OutputState

from ..media import H264_FIXTURE, VP8_FIXTURE, probe
from ..polling import wait_for
from ..procs import pid_alive
from ..replay import Streamer, relay_url, stream_fixture

pytestmark = pytest.mark.media




def stand_in_ffmpeg(folder: Path, name: str, script: str) -> Path:
    """An executable shell script to use as the relay's ffmpeg (a real process misbehaving)."""
    path = folder / f"ffmpeg-{name}"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def prefix_duration(tmp_path: Path, source: Path, fraction: float) -> float:
    """Duration of the first `fraction` of a capture's bytes, as ffprobe decodes it."""
    data = source.read_bytes()
    cut = tmp_path / f"prefix-{source.name}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    return probe(cut).duration


@pytest.mark.parametrize(
    ("fixture", "mode"), [(H264_FIXTURE, "copy"), (VP8_FIXTURE, "transcode")], ids=["h264", "vp8"]
)
async def test_whole_capture_arrives_with_its_frames_and_duration(
    running_relay, rtmp_receiver, fixture: Path, mode: str
) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    modes: list[str] = []
    relay.add_listener(
        "stats",
        lambda ss: modes.extend(s.ffmpeg.mode for s in ss if s.ffmpeg and s.ffmpeg.mode),
    )
    # 4x real time: what arrives is the point here, and 20 s of capture took 20 s of suite.
    streamer = await stream_fixture(relay_url(relay), fixture, config={"framerate": 20},
                                    speed=4)
    assert streamer.errors == [] and streamer.ack_errors == []
    await asyncio.to_thread(receiver.wait, 30)

    source, got = probe(fixture), probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac")
    assert got.width == 640
    assert got.video_frames >= 0.95 * source.video_frames, (got, source)
    assert abs(got.duration - source.duration) <= 0.5, (got, source)
    assert mode in modes


async def test_four_concurrent_sessions_reach_their_own_targets(
    running_relay, rtmp_receiver
) -> None:
    receivers = [rtmp_receiver(f"key-{i}-abcdefghijkl") for i in range(4)]
    relay = await running_relay(RelayConfig(allowed_target_pattern=r"rtmp://127\.0\.0\.1:\d+/.*"))
    url = relay_url(relay)
    await asyncio.gather(*(
        stream_fixture(url, H264_FIXTURE, seconds=5, config={"framerate": 20, "rtmp": r.url})
        for r in receivers
    ))
    for receiver in receivers:
        await asyncio.to_thread(receiver.wait, 30)
        got = probe(receiver.path)
        assert got.video_codec == "h264" and got.audio_codec == "aac"
        assert got.video_frames >= 0.95 * 5 * 20 - 10, got


async def test_stop_keeps_the_tail(running_relay, rtmp_receiver, tmp_path: Path) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    seconds = 6.0
    await stream_fixture(relay_url(relay), H264_FIXTURE, seconds=seconds)
    await asyncio.to_thread(receiver.wait, 30)
    sent = prefix_duration(tmp_path, H264_FIXTURE, seconds / 20)
    got = probe(receiver.path)
    # Everything sent before `stop` is in the recording: nothing cut at the end.
    assert got.duration >= sent - 0.3, (got.duration, sent)


async def test_kill_ends_ffmpeg_and_tells_the_client(running_relay, rtmp_receiver) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=15))
    status = await wait_for(lambda: next(
        (s for s in relay.sessions() if s.ffmpeg and s.ffmpeg.frames_sent > 0), None))
    pid = status.ffmpeg.pid
    assert pid and pid_alive(pid)
    destroyed: list[str] = []
    relay.add_listener("destroyed", lambda sid, st: destroyed.append(sid))

    assert await relay.kill(status.uuid)
    await replay
    assert not pid_alive(pid)
    assert [e["name"] for e in streamer.errors] == [ErrorName.KILLED_BY_OPERATOR]
    assert streamer.errors[0]["fatal"] is True
    await asyncio.wait_for(streamer.disconnected.wait(), 5)
    assert destroyed == [status.uuid]
    assert relay.sessions() == []
    await streamer.close()


async def test_without_a_target_the_session_is_recorded_to_a_file(
    running_relay, tmp_path: Path
) -> None:
    relay = await running_relay(RelayConfig(recordings_dir=tmp_path / "rec"))
    statuses = []
    relay.add_listener("stats", lambda ss: statuses.extend(ss))
    streamer = await stream_fixture(relay_url(relay), H264_FIXTURE, seconds=5,
                                    config={"framerate": 20, "name": "Stage cam"})
    assert streamer.errors == []
    files = list((tmp_path / "rec").glob("*-Stage-cam.mkv"))
    assert len(files) == 1
    got = probe(files[0])
    assert (got.video_codec, got.audio_codec) == ("h264", "aac")
    assert got.duration > 3
    assert any(s.recording_path == str(files[0]) for s in statuses)


async def test_changing_a_sessions_target_starts_the_new_one_at_the_latest_keyframe(
    running_relay, rtmp_receiver
) -> None:
    first, second = rtmp_receiver("first-key-0123456789"), rtmp_receiver("second-key-0123456789")
    relay = await running_relay(RelayConfig(default_target=first.url))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    # Keyframes come only every ~5 s in this capture: the new output starts from the relay's
    # cache of the latest one, so it is live at once instead of waiting for the next.
    replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=12))
    status = await wait_for(lambda: next(
        (s for s in relay.sessions() if s.ffmpeg and s.ffmpeg.frames_sent > 20), None))
    old_pid = status.ffmpeg.pid
    old_frames = status.ffmpeg.frames_sent

    await relay.set_session_target(status.uuid, second.url)
    assert relay.get(status.uuid).target == "rtmp://127.0.0.1:{}/live/****6789".format(
        second.url.split(":")[2].split("/")[0])
    # Live within the start of a small `-c copy` ffmpeg, not the next keyframe's 5 s; the
    # encoder is not restarted (encode once, whatever the destinations).
    second_masked = relay.get(status.uuid).target
    await wait_for(lambda: (s := relay.get(status.uuid)) and [
        o for o in s.outputs if o.target == second_masked and o.state == OutputState.LIVE],
        timeout=4)
    now = relay.get(status.uuid)
    assert [o.target for o in now.outputs] == [second_masked]
    assert now.ffmpeg is not None and now.ffmpeg.pid == old_pid
    await replay
    await streamer.stop()
    await streamer.close()
    await asyncio.to_thread(first.wait, 30)
    await asyncio.to_thread(second.wait, 30)
    assert probe(first.path).video_frames > 20
    got = probe(second.path)
    # The second target got the group of pictures in progress and everything after it.
    assert got.video_codec == "h264" and got.video_frames > 12 * 20 - old_frames, (got, old_frames)
    assert streamer.errors == []


async def test_a_refused_rtmp_connection_keeps_retrying_and_says_so(running_relay) -> None:
    # Behaviour changed on purpose (issue 11): a target that refuses no longer ends the
    # session; its output retries with backoff and the client hears a non-fatal error.
    from ..media import free_port

    nobody = f"rtmp://127.0.0.1:{free_port()}/live/unreachable-key-123"
    relay = await running_relay(RelayConfig(default_target=nobody, send_error_details=True))
    operator_errors = []
    relay.add_listener("error", lambda sid, e: operator_errors.append(e))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    await streamer.replay(H264_FIXTURE, seconds=5)
    retrying = [e for e in streamer.errors if e["name"] == ErrorName.OUTPUT_RECONNECTING]
    assert retrying and all(e["fatal"] is False for e in streamer.errors), streamer.errors
    assert "Connection to the RTMP server failed" in retrying[0]["message"]
    assert "unreachable-key-123" not in repr(streamer.errors)  # the key is masked
    assert operator_errors[0].name == ErrorName.OUTPUT_RECONNECTING
    status = relay.sessions()[0]
    assert status.state == SessionState.LIVE  # the encoder runs; only the output is down
    (output,) = status.outputs
    assert output.state in (OutputState.RECONNECTING, OutputState.CONNECTING)
    assert output.attempts >= 2 and output.reconnects == 0
    await streamer.close()


async def test_ffmpeg_exiting_unexpectedly_reports_its_last_lines(
    running_relay, tmp_path: Path
) -> None:
    # A real program standing in for an ffmpeg that crashes at once: prints, exits 3.
    crasher = stand_in_ffmpeg(tmp_path, "crash", "echo 'Segmentation fault in decoder' >&2\nexit 3")
    relay = await running_relay(RelayConfig(ffmpeg_path=str(crasher), send_error_details=True))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    await streamer.replay(H264_FIXTURE, seconds=2)
    await wait_for(lambda: streamer.errors)
    error = streamer.errors[0]
    assert error["name"] == ErrorName.FFMPEG_UNEXPECTED_END
    assert "exit code 3" in error["message"]
    assert "Segmentation fault in decoder" in error["details"]
    await streamer.close()


async def test_a_stalled_ffmpeg_bounds_memory_and_ends_the_session(
    running_relay, tmp_path: Path
) -> None:
    # A real process standing in for an ffmpeg whose RTMP side hangs: it never reads stdin.
    staller = stand_in_ffmpeg(tmp_path, "stalled", "exec sleep 60")
    relay = await running_relay(RelayConfig(ffmpeg_path=str(staller),
                                            max_buffered_bytes=512 * 1024))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    data = H264_FIXTURE.read_bytes()
    peak = 0
    # Send without waiting for acks, like a browser whose acks come late.
    for i in range(0, len(data), 16384):
        await streamer.client.emit("binarystream", data[i:i + 16384])
        sessions = relay.sessions()
        if sessions:
            peak = max(peak, sessions[0].buffered_bytes)
        if streamer.errors:
            break
        await asyncio.sleep(0.005)
    await wait_for(lambda: streamer.errors)
    assert streamer.errors[0]["name"] == ErrorName.RELAY_OVERLOADED
    assert peak <= 512 * 1024
    status = await wait_for(lambda: next(
        (s for s in relay.sessions() if s.state == SessionState.FAILED and s.ffmpeg
         and s.ffmpeg.status == FfmpegState.ENDED), None))
    assert not pid_alive(status.ffmpeg.pid)
    await streamer.close()


async def test_ffmpeg_output_reaches_the_client_when_enabled(running_relay, rtmp_receiver) -> None:
    receiver = rtmp_receiver("visible-key-0123456789")
    relay = await running_relay(RelayConfig(default_target=receiver.url, send_ffmpeg_output=True))
    lines: list[str] = []
    relay.add_listener("ffmpegOutput", lambda sid, line: lines.append(line))
    streamer = await stream_fixture(relay_url(relay), H264_FIXTURE, seconds=4)
    assert any("Input #0" in line for line in streamer.outputs)
    assert any("Input #0" in line for line in lines)
    assert not any("visible-key-0123456789" in line for line in streamer.outputs + lines)
    assert any("****6789" in line for line in lines)


def test_receiver_files_are_real_flv(tmp_path: Path, ffmpeg_exe: str) -> None:
    """The receiver itself is sound: a file made by ffmpeg directly probes as expected."""
    out = tmp_path / "direct.flv"
    subprocess.run([ffmpeg_exe, "-v", "error", "-i", str(H264_FIXTURE), "-t", "2", "-c:v", "copy",
                    "-c:a", "aac", "-f", "flv", str(out)], check=True, timeout=60)
    assert probe(out).video_codec == "h264"
