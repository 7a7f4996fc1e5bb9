"""ffmpeg's -progress blocks become counters; fps comes from frame deltas."""

from __future__ import annotations

from desktop_relay.relay.progress import ProgressParser


def block(frame: int, extra: str = "") -> list[str]:
    return [f"frame={frame}", "fps=12.5", "bitrate= 380.5kbits/s", "total_size=1000",
            "out_time_us=2000000", "dup_frames=1", "drop_frames=2", "speed=1.02x",
            *extra.split(), "progress=continue"]


def feed(parser: ProgressParser, lines: list[str], now: float):  # type: ignore[no-untyped-def]
    result = None
    for line in lines:
        result = parser.feed_line(line, now=now) or result
    return result


def test_a_block_gives_counters() -> None:
    parser = ProgressParser()
    stats = feed(parser, block(10), now=100.0)
    assert stats.frames == 10
    assert stats.bitrate_kbps == 380.5
    assert stats.speed == 1.02
    assert stats.duplicated_frames == 1 and stats.dropped_frames == 2
    assert stats.out_time_s == 2.0
    assert stats.last_frame_time == 100.0


def test_fps_is_from_recent_frame_deltas_not_ffmpegs_average() -> None:
    parser = ProgressParser(window_s=2.0)
    for i in range(10):
        stats = feed(parser, block(i * 15), now=100.0 + i * 0.5)
    assert abs(stats.fps - 30.0) < 0.01  # 15 frames per 0.5 s, whatever ffmpeg's "fps=" says
    # Frames stop rising: fps falls to zero within the window.
    for i in range(10, 16):
        stats = feed(parser, block(135), now=100.0 + i * 0.5)
    assert stats.fps == 0.0
    assert stats.last_frame_time == 104.5


def test_na_values_and_end() -> None:
    parser = ProgressParser()
    stats = feed(parser, ["frame=0", "bitrate=N/A", "speed=N/A", "progress=end"], now=1.0)
    assert stats.bitrate_kbps is None and stats.speed is None
    assert parser.ended
