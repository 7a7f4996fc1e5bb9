"""The raw safety copy: the browser's bytes as received, whatever happens to ffmpeg."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState
from desktop_relay.relay.outputs.safety_copy import SafetyCopy, safety_copy_path

from ..media import H264_FIXTURE
from ..polling import wait_for
from ..replay import Streamer, relay_url, stream_fixture
from .test_media import stand_in_ffmpeg

MKV = "video/x-matroska;codecs=avc1,opus"


def test_the_name_follows_the_browsers_container(tmp_path: Path) -> None:
    planned = tmp_path / "20260101-000000-cam.mkv"
    assert safety_copy_path(planned, "video/webm;codecs=vp8,opus").name == (
        "20260101-000000-cam.browser.webm")
    assert safety_copy_path(planned, "video/mp4;codecs=avc1").suffix == ".mp4"
    assert safety_copy_path(planned, None).suffix == ".bin"


def test_a_write_error_ends_the_copy_not_the_caller(tmp_path: Path) -> None:
    copy = SafetyCopy(tmp_path / "missing-folder" / "x.browser.mkv")
    copy.write(b"abc")  # the folder does not exist: no exception
    assert copy.failed and copy.path is None


@pytest.mark.media
async def test_the_copy_holds_exactly_the_bytes_the_browser_sent(
    running_relay, tmp_path: Path
) -> None:
    folder = tmp_path / "rec"
    relay = await running_relay(RelayConfig(recordings_dir=folder, safety_copy=True))
    streamer = await stream_fixture(relay_url(relay), H264_FIXTURE, seconds=3,
                                    config={"framerate": 20, "mimeType": MKV, "name": "cam"})
    assert streamer.errors == []
    (copy,) = folder.glob("*.browser.mkv")
    data = copy.read_bytes()
    sent = H264_FIXTURE.read_bytes()
    assert len(data) > 100_000 and data == sent[: len(data)]
    assert len(data) == int(len(sent) * 3 / 20)  # every byte the replay sent
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # The normalized recording exists beside it.
    assert len(list(folder.glob("*-cam.mkv"))) == 1


@pytest.mark.media
async def test_the_copy_survives_an_encoder_that_never_works(
    running_relay, tmp_path: Path
) -> None:
    crasher = stand_in_ffmpeg(tmp_path, "crash", "exit 3")
    folder = tmp_path / "rec"
    relay = await running_relay(
        RelayConfig(recordings_dir=folder, safety_copy=True, ffmpeg_path=str(crasher))
    )
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20, "mimeType": MKV})
    await streamer.replay(H264_FIXTURE, seconds=2, stop_on_error=False)
    await wait_for(lambda: any(e.get("fatal") for e in streamer.errors), timeout=15)
    fatal = [e for e in streamer.errors if e.get("fatal")]
    assert fatal[0]["name"] == ErrorName.FFMPEG_UNEXPECTED_END, streamer.errors
    status = relay.sessions()[0]
    assert status.state == SessionState.FAILED and status.safety_copy_path
    await streamer.close()
    data = Path(status.safety_copy_path).read_bytes()
    assert len(data) > 10_000 and data == H264_FIXTURE.read_bytes()[: len(data)]
