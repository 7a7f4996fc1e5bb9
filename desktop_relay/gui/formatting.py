"""How numbers look in the window: durations, bitrates, rates. Pure functions, no Qt."""

from __future__ import annotations


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


def format_fps(fps: float | None) -> str:
    """Frames per second with one decimal."""
    return "" if fps is None else f"{fps:.1f}"
