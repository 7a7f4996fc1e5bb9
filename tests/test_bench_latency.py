"""The clock that scripts/bench_latency.py paints into frames: read back after H.264, and the
same cells from the page's JavaScript as from Python. The benchmark itself is not run here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from latency_clock import (
    CLOCK_BITS_JS,
    FPS,
    HEIGHT,
    WIDTH,
    clock_bits,
    decode_frame,
    paint_frame,
)

# Epoch ms of today and of the far future, and the edges of the 48 bits.
TIMES = [1_764_000_000_000, 1_764_000_000_001, 1_999_999_999_999, 0, (1 << 48) - 1]


def test_painted_frame_reads_back() -> None:
    for ms in TIMES:
        assert decode_frame(paint_frame(ms)) == ms


def test_grey_or_damaged_frames_are_refused() -> None:
    assert decode_frame(bytes([128]) * (WIDTH * HEIGHT)) is None
    assert decode_frame(bytes(WIDTH * HEIGHT)) is None  # all black: the CRC disagrees
    frame = bytearray(paint_frame(TIMES[0]))
    # One cell flipped (the first time bit's): a valid-looking frame with a wrong CRC.
    for y in range(60):
        frame[y * WIDTH : y * WIDTH + 80] = bytes(
            255 - b for b in frame[y * WIDTH : y * WIDTH + 80]
        )
    assert decode_frame(bytes(frame)) is None


def test_clock_survives_h264_at_a_low_bitrate_and_another_size() -> None:
    """Frames painted as the page paints them, through libx264 at 400 kbit/s and scaled to
    1280x720 (a relay or browser may scale), decode to the same times."""
    ffmpeg = resolve_ffmpeg()
    times = [TIMES[0] + 33 * i for i in range(15)]
    raw = b"".join(paint_frame(ms) for ms in times)
    encoded = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error",
         "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
         "-i", "pipe:0", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
         "-b:v", "400k", "-pix_fmt", "yuv420p", "-f", "h264", "pipe:1"],
        input=raw, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    decoded = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", "pipe:0",
         "-vf", "scale=1280:720", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"],
        input=encoded, capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    size = 1280 * 720
    frames = [decoded[i : i + size] for i in range(0, len(decoded), size)]
    assert [decode_frame(f, width=1280) for f in frames] == times


def test_page_paints_the_same_cells_as_python() -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not installed (apt-get install nodejs)")
        pytest.skip("node is not installed")
    script = CLOCK_BITS_JS + f"console.log(JSON.stringify({TIMES}.map(clockBits)));"
    out = subprocess.run(
        [node, "-e", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert json.loads(out) == [clock_bits(ms) for ms in TIMES]
