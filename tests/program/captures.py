"""Synthetic browser captures for the program's tests: one colour and one tone each, H.264 +
Opus in Matroska as Chromium's MediaRecorder and our WebCodecs path send them, as long as the
suite's real captures (FIXTURE_SECONDS, which `Streamer.replay` paces by).

Run `python -m tests.program.captures DIR` to write the two the tests use into DIR.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..media import FIXTURE_SECONDS

# Name -> (lavfi colour, size, tone in Hz). Different sizes on purpose: the program must never
# change its own.
SOURCES = {
    "red": ("red", "640x480", 440),
    "blue": ("blue", "1280x720", 660),
}


def make_capture(ffmpeg: str, path: Path, colour: str, size: str, tone_hz: int) -> Path:
    """Write one capture: `colour` at `size`, 30 fps, a keyframe a second, and a tone."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", f"color=c={colour}:s={size}:r=30",
         "-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=48000",
         "-t", str(FIXTURE_SECONDS),
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
         "-sc_threshold", "0", "-b:v", "600k", "-pix_fmt", "yuv420p", "-profile:v", "baseline",
         "-c:a", "libopus", "-b:a", "64k",
         "-f", "matroska", "-y", str(path)],
        check=True, timeout=120,
    )
    return path


def make_all(ffmpeg: str, folder: Path) -> dict[str, Path]:
    """Both captures in `folder`, by name."""
    return {name: make_capture(ffmpeg, folder / f"{name}.mkv", colour, size, tone)
            for name, (colour, size, tone) in SOURCES.items()}


if __name__ == "__main__":
    from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg

    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    for name, path in make_all(resolve_ffmpeg(), out).items():
        print(name, path)
