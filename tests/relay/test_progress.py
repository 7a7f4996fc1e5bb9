"""ffmpeg's -progress blocks become counters; fps comes from frame deltas."""

from __future__ import annotations

from desktop_relay.relay.ffmpeg.progress import ProgressParser


def block(frame: int, extra: str = "", out_s: float = 2.0, size: int = 1000) -> list[str]:
    return [f"frame={frame}", "fps=12.5", "bitrate= 380.5kbits/s", f"total_size={size}",
            f"out_time_us={int(out_s * 1_000_000)}", "dup_frames=1", "drop_frames=2",
            "speed=1.02x", *extra.split(), "progress=continue"]


def feed(parser: ProgressParser, lines: list[str], now: float):  # type: ignore[no-untyped-def]
    result = None
    for line in lines:
        result = parser.feed_line(line, now=now) or result
    return result


def test_a_block_gives_counters_and_no_rates_yet() -> None:
    """Behaviour changed on purpose (issue 13): ffmpeg's own `bitrate=`/`speed=` are averages
    since its start, meaningless in the first second; a first block gives no rates at all."""
    parser = ProgressParser()
    stats = feed(parser, block(10), now=100.0)
    assert stats.frames == 10
    assert stats.fps is None and stats.bitrate_kbps is None and stats.speed is None
    assert stats.duplicated_frames == 1 and stats.dropped_frames == 2
    assert stats.out_time_s == 2.0
    assert stats.last_frame_time == 100.0


def test_the_first_second_shows_nothing_then_rates_over_the_recent_window() -> None:
    """A start as ffmpeg reports it: a burst of buffered input (speed=6.09x, fps=0.0 in its
    own fields), then real time. Rates appear once a second of output is behind, and they
    are the stream's: 30 fps, 1.0x, 2000 kbit/s, whatever ffmpeg's averages say."""
    parser = ProgressParser(window_s=2.0, settle_s=1.0)
    assert feed(parser, block(0, out_s=0.0, size=0), now=99.5).fps is None  # no output yet
    first = feed(parser, block(90, out_s=3.0, size=750_000), now=100.0)  # the burst
    assert first.fps is None and first.speed is None and first.bitrate_kbps is None
    half = feed(parser, block(105, out_s=3.5, size=875_000), now=100.5)
    assert half.fps is None and half.speed is None  # half a second means nothing yet
    for i in range(2, 9):
        stats = feed(parser, block(90 + 15 * i, out_s=3.0 + 0.5 * i, size=750_000 + 125_000 * i),
                     now=100.0 + 0.5 * i)
    assert stats.fps is not None and abs(stats.fps - 30.0) < 0.01
    assert stats.speed is not None and abs(stats.speed - 1.0) < 0.01
    assert stats.bitrate_kbps is not None and abs(stats.bitrate_kbps - 2000.0) < 0.1


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


def test_bytes_split_anywhere_give_the_same_blocks_as_lines() -> None:
    # What the relay reads from the pipe: blocks in any split, a partial line held over.
    data = ("\n".join(block(10) + block(40, out_s=3.0, size=5000)) + "\n").encode()
    by_line = ProgressParser()
    expected = [feed(by_line, block(10), now=100.0), feed(by_line, block(40, out_s=3.0, size=5000), now=100.0)]
    for step in (1, 7, len(data)):
        parser = ProgressParser()
        got = []
        for i in range(0, len(data), step):
            got += parser.feed(data[i:i + step], now=100.0)
        assert got == expected, step
    assert expected[1].frames == 40 and expected[1].total_size == 5000


def test_an_unfinished_last_block_line_is_read_at_the_end() -> None:
    parser = ProgressParser()
    assert parser.feed(b"frame=5\r\ntotal_size=77\nprogress=end", now=1.0) == []
    (stats,) = parser.flush(now=1.0)
    assert stats.frames == 5 and stats.total_size == 77
    assert parser.ended
    assert parser.flush() == []
