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


def _block(track: int, keyframe: bool, payload: bytes, size_bytes: int = 1) -> bytes:
    # SimpleBlock: track number, 16-bit relative timecode, flags, frame; its size written
    # with `size_bytes` bytes (EBML allows any length up to 8).
    body = bytes([0x80 | track]) + b"\x00\x00" + bytes([0x80 if keyframe else 0]) + payload
    marker = 1 << (8 * size_bytes - size_bytes)
    return b"\xa3" + (marker | len(body)).to_bytes(size_bytes, "big") + body


_CLUSTER_UNKNOWN = b"\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff"  # live: size unknown
_TIMECODE = b"\xe7\x40\x01\x07"  # a 2-byte size


@pytest.mark.parametrize("step", [1, 3, 10_000], ids=["byte by byte", "3 bytes", "whole"])
def test_any_size_length_and_any_split_find_the_same_cluster(step: int) -> None:
    first = _CLUSTER_UNKNOWN + _TIMECODE + _block(1, True, b"a" * 40) + _block(2, True, b"K" * 300, 8)
    second = _CLUSTER_UNKNOWN + _TIMECODE + _block(2, False, b"p" * 200, 3) + _block(1, True, b"a")
    third = _CLUSTER_UNKNOWN + _TIMECODE + _block(2, True, b"k" * 70_000, 4)
    tracker = KeyframeTracker(2)
    stream = first + second
    for i in range(0, len(stream), step):
        tracker.feed(stream[i:i + step])
    # The second cluster opens with a delta frame: the replay still starts at the first.
    assert tracker.ready == stream
    for i in range(0, len(third), step):
        tracker.feed(third[i:i + step])
    assert tracker.ready == third
    assert tracker.enabled


def test_a_broken_element_stops_tracking_and_keeps_nothing() -> None:
    tracker = KeyframeTracker(2)
    tracker.feed(_CLUSTER_UNKNOWN + _block(2, True, b"K" * 10))
    assert tracker.ready
    tracker.feed(b"\x00\x81\x00")  # a zero byte starts no EBML integer
    assert not tracker.enabled
    assert tracker.ready == b""


def test_a_block_of_unknown_size_stops_tracking() -> None:
    tracker = KeyframeTracker(2)
    tracker.feed(_CLUSTER_UNKNOWN + b"\xa3\xff" + b"\x82\x00\x00\x80" + b"K" * 10)
    assert not tracker.enabled


@pytest.mark.parametrize("path", [H264_FIXTURE, VP8_FIXTURE], ids=["h264", "vp8"])
def test_every_split_of_a_real_capture_keeps_the_same_gop(path: Path) -> None:
    # Element headers and bodies cut anywhere (a body's rest skipped in the next chunk, a
    # header completed by it): the same cluster is found as from whole reads.
    data = path.read_bytes()
    fmt = InputProbe().feed(data[:50_000])
    assert fmt is not None
    rest = data[len(fmt.header) : len(fmt.header) + 400_000]
    found = []
    for step in (3, 64, 1000, 65_536, len(rest)):
        tracker = KeyframeTracker(video_track_number(fmt.header))
        for i in range(0, len(rest), step):
            tracker.feed(rest[i : i + step])
        assert tracker.enabled
        found.append(tracker.ready)
    assert found[0] and all(ready == found[0] for ready in found)
