"""Local recordings: unique names, created exclusively and privately, file errors named so."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from desktop_relay.relay import ErrorName, RelayConfig
from desktop_relay.relay.errors import RelayError
from desktop_relay.relay.outputs.destinations import classify_exit
from desktop_relay.relay.outputs.recordings import create_recording, recording_output

from ..media import H264_FIXTURE, probe
from ..replay import Streamer, relay_url, stream_fixture


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_taken_name_gets_a_variant_and_nothing_is_overwritten(tmp_path: Path) -> None:
    planned = tmp_path / "20260101-000000-cam.mkv"
    first, fd1 = create_recording(planned)
    second, fd2 = create_recording(planned)
    os.close(fd1)
    os.close(fd2)
    assert first == planned
    assert second == tmp_path / "20260101-000000-cam-2.mkv"
    assert _mode(first) == _mode(second) == 0o600


def test_a_planted_symlink_or_file_is_never_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planned = tmp_path / "rec.mkv"
    planned.symlink_to(victim)
    (tmp_path / "rec-2.mkv").write_text("someone else's")
    path, fd = create_recording(planned)
    os.write(fd, b"recording")
    os.close(fd)
    assert path == tmp_path / "rec-3.mkv"
    assert victim.read_text() == "precious"
    assert (tmp_path / "rec-2.mkv").read_text() == "someone else's"
    assert planned.is_symlink()


def test_the_recordings_folder_is_private_and_its_errors_are_file_errors(tmp_path: Path) -> None:
    folder = tmp_path / "videos" / "Desktop Relay"
    output = recording_output(folder, "0123456789abcdef", "my cam")
    assert Path(output.url).parent == folder and output.is_file
    assert _mode(folder) == 0o700
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(RelayError) as info:
        recording_output(blocker / "sub", "0123456789abcdef", None)
    assert info.value.error.name == ErrorName.RECORDING_FAILED
    assert "recordings folder" in info.value.error.message


def test_exit_of_a_recording_ffmpeg_is_a_file_error_not_an_rtmp_one() -> None:
    lines = ["[matroska @ 0x1] Error writing packet: No space left on device",
             "Error submitting a packet to the muxer: Connection refused"]
    error = classify_exit(1, lines, to_file=True)
    assert error.name == ErrorName.RECORDING_FAILED
    assert "No space left on device" in error.message
    rtmp = classify_exit(224, ["av_interleaved_write_frame(): Broken pipe"])
    assert rtmp.name == ErrorName.RTMP_CONNECTION_FAILED
    assert "closed the connection" in rtmp.message


@pytest.mark.media
async def test_two_sessions_with_one_name_in_one_second_both_record(
    running_relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import desktop_relay.relay.outputs.recordings as recordings

    # The same second for both, every time: the race the issue saw, made certain.
    monkeypatch.setattr(recordings.time, "strftime", lambda fmt, *a: "20260101-000000")
    folder = tmp_path / "recordings"
    relay = await running_relay(RelayConfig(recordings_dir=folder))
    url = relay_url(relay)
    streamers = await asyncio.gather(*(
        stream_fixture(url, H264_FIXTURE, seconds=3, config={"framerate": 20, "name": "cam"})
        for _ in range(2)
    ))
    assert all(s.errors == [] and s.ack_errors == [] for s in streamers), [
        (s.errors, s.ack_errors) for s in streamers]
    files = sorted(folder.glob("*.mkv"))
    assert [f.name for f in files] == ["20260101-000000-cam-2.mkv", "20260101-000000-cam.mkv"]
    for path in files:
        assert _mode(path) == 0o600
        assert probe(path).video_frames > 30, path


@pytest.mark.media
async def test_an_unusable_recordings_folder_is_refused_as_a_file_error(
    running_relay, tmp_path: Path
) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    relay = await running_relay(RelayConfig(recordings_dir=blocker / "rec"))
    streamer = await Streamer(relay_url(relay)).connect()
    assert not await streamer.start({"framerate": 20})
    assert streamer.errors[-1]["name"] == ErrorName.RECORDING_FAILED
    await streamer.close()


@pytest.mark.media
async def test_record_beside_default_targets_adds_a_recording_output(
    running_relay, rtmp_receiver, tmp_path: Path
) -> None:
    receiver = rtmp_receiver("beside-0123456789abcd")
    folder = tmp_path / "recordings"
    relay = await running_relay(RelayConfig(recordings_dir=folder))
    with pytest.raises(ValueError, match="record"):
        relay.set_default_targets([receiver.url], record="yes")  # type: ignore[arg-type]
    relay.set_default_targets([receiver.url], record=True)
    assert relay.config.record and relay.default_targets == [receiver.url]
    streamer = await stream_fixture(
        relay_url(relay), H264_FIXTURE, seconds=4, config={"framerate": 20, "name": "both"}
    )
    assert streamer.errors == [] and streamer.ack_errors == [], streamer.errors
    await asyncio.to_thread(receiver.wait, 30)
    assert probe(receiver.path).video_frames > 30
    files = list(folder.glob("*-both.mkv"))
    assert len(files) == 1 and probe(files[0]).video_frames > 30, files
    # Targets set again without `record`: new sessions go to the targets only.
    relay.set_default_targets([receiver.url])
    assert not relay.config.record
    with pytest.raises(ValueError, match="record"):
        RelayConfig(record="no")  # type: ignore[arg-type]
