"""Parsing of ffmpeg's `-progress` key=value blocks into counters and rates."""

from __future__ import annotations

import time
from collections import deque

from .status import FfmpegStats


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip().rstrip("x").replace("kbits/s", "")
    try:
        return float(value)
    except ValueError:  # "N/A"
        return None


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class ProgressParser:
    """Feeds on `-progress` lines; a block ends with `progress=continue|end`.

    ffmpeg's own `fps=` is an average since start, useless for a live health view, so fps is
    computed from frame deltas over a short window of recent blocks.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        self._block: dict[str, str] = {}
        self._samples: deque[tuple[float, int]] = deque()
        self._window_s = window_s
        self.stats = FfmpegStats()
        self.ended = False

    def feed_line(self, line: str, now: float | None = None) -> FfmpegStats | None:
        """Take one line; return new stats when a block is complete."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        self._block[key] = value
        if key != "progress":
            return None
        block, self._block = self._block, {}
        self.ended = value == "end"
        return self._apply(block, time.time() if now is None else now)

    def _apply(self, block: dict[str, str], now: float) -> FfmpegStats:
        frames = _int(block.get("frame"))
        prev = self.stats
        self._samples.append((now, frames))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()
        t0, f0 = self._samples[0]
        fps = (frames - f0) / (now - t0) if now > t0 else prev.fps
        out_us = _int(block.get("out_time_us") or block.get("out_time_ms"))
        self.stats = FfmpegStats(
            frames=frames,
            fps=max(fps, 0.0),
            bitrate_kbps=_float(block.get("bitrate")),
            total_size=_int(block.get("total_size")),
            out_time_s=out_us / 1_000_000,
            speed=_float(block.get("speed")),
            dropped_frames=_int(block.get("drop_frames")),
            duplicated_frames=_int(block.get("dup_frames")),
            last_frame_time=now if frames > prev.frames else prev.last_frame_time,
        )
        return self.stats
