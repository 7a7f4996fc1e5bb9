"""Parsing of ffmpeg's `-progress` key=value blocks into counters and rates."""

from __future__ import annotations

import time
from collections import deque

from ..status import FfmpegStats

# `-stats_period` of the encoders and outputs: how often each prints a `-progress` block.
# Once a second: the window's counters and the health checks need no more, and every block
# is a wake-up and a parse in the relay, for two ffmpegs per session (at 0.5 s, about 4 % of
# the relay's own CPU at 32 sessions went to them). The stall watchdogs wait seconds.
STATS_PERIOD = "1"


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class ProgressParser:
    """Feeds on `-progress` lines; a block ends with `progress=continue|end`.

    ffmpeg's own `fps=`, `bitrate=` and `speed=` are averages since its start: a second after
    the start they read `speed=6.09x fps=0.0` (the first burst of buffered input against almost
    no elapsed time), and later they hide a stall for minutes. The rates here are over a
    short window of recent blocks instead, and None until that window spans `settle_s` of
    wall time with frames or bytes coming out: nothing is shown before it means something.
    """

    def __init__(self, window_s: float = 2.0, settle_s: float = 1.0) -> None:
        self._block: dict[str, str] = {}
        self._pending = b""  # an unfinished line of `feed`
        # (wall time, frames, output seconds, output bytes) of recent blocks
        self._samples: deque[tuple[float, int, float, int]] = deque()
        self._window_s = window_s
        self._settle_s = settle_s
        self._started_at: float | None = None  # first block with output
        self.stats = FfmpegStats()
        self.ended = False

    def feed_line(self, line: str, now: float | None = None) -> FfmpegStats | None:
        """Take one line; return new stats when a block is complete."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        return self._take(key, value, now)

    def _take(self, key: str, value: str, now: float | None) -> FfmpegStats | None:
        """One key=value of the current block; the block's stats when `progress=` ends it."""
        self._block[key] = value
        if key != "progress":
            return None
        block, self._block = self._block, {}
        self.ended = value == "end"
        return self._apply(block, time.time() if now is None else now)

    def feed(self, data: bytes, now: float | None = None) -> list[FfmpegStats]:
        """Take the pipe's next bytes (any split); the stats of each block they complete.

        Every ffmpeg of every session prints a block of a dozen lines twice a second: read
        here in one loop, not line by line through a splitter and `feed_line`.
        """
        *lines, self._pending = (self._pending + data).split(b"\n")
        done: list[FfmpegStats] = []
        for line in lines:
            key, sep, value = line.partition(b"=")
            if not sep:
                continue
            name = key.strip().decode("utf-8", "replace")
            stats = self._take(name, value.strip().decode("utf-8", "replace"), now)
            if stats is not None:
                done.append(stats)
        return done

    def flush(self, now: float | None = None) -> list[FfmpegStats]:
        """The pipe ended: an unfinished last line is a line too."""
        pending, self._pending = self._pending, b""
        return self.feed(pending + b"\n", now) if pending else []

    def _apply(self, block: dict[str, str], now: float) -> FfmpegStats:
        frames = _int(block.get("frame"))
        prev = self.stats
        out_us = _int(block.get("out_time_us") or block.get("out_time_ms"))
        out_s = max(out_us, 0) / 1_000_000
        size = _int(block.get("total_size"))
        samples = self._samples
        samples.append((now, frames, out_s, size))
        while len(samples) > 2 and now - samples[0][0] > self._window_s:
            samples.popleft()
        if self._started_at is None and (frames > 0 or size > 0):
            self._started_at = now
        fps = speed = kbps = None
        t0, f0, o0, s0 = samples[0]
        span = now - t0
        settled = self._started_at is not None and now - self._started_at >= self._settle_s
        if settled and span >= self._settle_s:
            fps = max(frames - f0, 0) / span
            speed = max(out_s - o0, 0.0) / span
            kbps = max(size - s0, 0) * 8 / span / 1000
        self.stats = FfmpegStats(
            frames=frames,
            fps=fps,
            bitrate_kbps=kbps,
            total_size=size,
            out_time_s=out_s,
            speed=speed,
            dropped_frames=_int(block.get("drop_frames")),
            duplicated_frames=_int(block.get("dup_frames")),
            last_frame_time=now if frames > prev.frames else prev.last_frame_time,
        )
        return self.stats
