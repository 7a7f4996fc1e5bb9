"""How numbers look in the window: durations, bitrates, rates. Pure functions, no Qt."""

from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str:
    """`0:07`, `12:03`, `1:02:03`; empty for no value."""
    if seconds is None or seconds <= 0:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_kbps(kbps: float | None) -> str:
    """`850 kbit/s`, `2.45 Mbit/s`; empty for no value."""
    if kbps is None or kbps < 0:
        return ""
    if kbps >= 1000:
        return f"{kbps / 1000:.2f} Mbit/s"
    return f"{kbps:.0f} kbit/s"


def format_speed(speed: float | None) -> str:
    """ffmpeg's speed as a factor of real time: `1.00x`."""
    return "" if speed is None else f"{speed:.2f}x"


_FULL, _EMPTY = "\u25ae", "\u25af"  # a filled and an empty vertical rectangle


def format_level(db: float) -> str:
    """An RMS level as a 6-step bar from -60 to 0 dBFS, then its value (3 of 6 at -27 dB)."""
    if math.isinf(db):
        return f"{_EMPTY * 6} -\u221e dB"
    steps = max(0, min(6, round((db + 60) / 10)))
    return f"{_FULL * steps}{_EMPTY * (6 - steps)} {db:.0f} dB"


def format_fps(fps: float | None) -> str:
    """Frames per second with one decimal."""
    return "" if fps is None else f"{fps:.1f}"
