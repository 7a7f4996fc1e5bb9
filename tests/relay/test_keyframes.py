"""The relay knows where the latest video keyframe's cluster starts in a live stream."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from desktop_relay.relay.media.container import InputProbe
from desktop_relay.relay.media.keyframes import KeyframeTracker, video_track_number

from ..media import H264_FIXTURE, VP8_FIXTURE, require_tool


def keyframe_positions(path: Path) -> list[int]:
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "v", "-show_entries", "packet=pos,flags",
         "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    return [int(line.split(",")[0]) for line in out.splitlines() if ",K" in line]


@pytest.mark.parametrize("path", [H264_FIXTURE, VP8_FIXTURE], ids=["h264", "vp8"])
def test_the_replayed_gop_starts_at_the_cluster_of_the_latest_keyframe(path: Path) -> None:
    data = path.read_bytes()
    fmt = InputProbe().feed(data[:50_000])
    assert fmt is not None
    assert video_track_number(fmt.header) == 2  # Chromium: audio 1, video 2
    tracker = KeyframeTracker(video_track_number(fmt.header))
    keyframes = keyframe_positions(path)
    rest, offset = data[len(fmt.header):], len(fmt.header)
    seen_starts = set()
    for i in range(0, len(rest), 7777):  # odd chunk sizes: element headers get split
        tracker.feed(rest[i:i + 7777])
        end = offset + i + len(rest[i:i + 7777])
        ready = tracker.ready
        start = end - len(ready)
        assert ready == data[start:end]
        assert data[start:start + 4] == b"\x1f\x43\xb6\x75"  # a cluster starts there
        # ...the one holding the latest keyframe received so far.
        latest = max(k for k in keyframes if k < end - 64)
        next_cluster = data.find(b"\x1f\x43\xb6\x75", start + 4)
        assert start < latest < (next_cluster if next_cluster > 0 else len(data))
        seen_starts.add(start)
    assert len(seen_starts) == len(keyframes)


def test_without_a_video_track_nothing_is_kept() -> None:
    tracker = KeyframeTracker(None)
    tracker.feed(b"\x1f\x43\xb6\x75" + bytes(1000))
    assert tracker.ready == b""
