"""The operator's allowed-target pattern cannot freeze the relay (issue 10, item 6)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from desktop_relay.cli import build_parser
from desktop_relay.relay import RelayConfig
from desktop_relay.relay.target_pattern import PatternError, TargetPattern, check_pattern

from ..media import H264_FIXTURE
from ..replay import Streamer, relay_url

# The pattern of the report: with Python's `re`, each host character doubles the time a
# failing match takes (25 characters froze every session for 3 s; 30 take minutes).
EVIL = r"rtmp://([\w-]+\.?)+(:\d+)?/live/\w+"
HOSTILE_HOST_LENGTH = 30
HOSTILE = "rtmp://" + "a" * HOSTILE_HOST_LENGTH + "/x"


def test_the_evil_pattern_answers_a_hostile_target_at_once() -> None:
    pattern = TargetPattern(EVIL)
    t0 = time.perf_counter()
    assert not pattern.matches(HOSTILE)
    assert not pattern.matches("rtmp://" + "a-" * 500 + "/x")
    assert time.perf_counter() - t0 < 1.0
    assert pattern.matches("rtmp://a.rtmp.example.com:1935/live/key_1")


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        # The patterns the other tests use, in the original's JavaScript style too.
        (".*", "rtmp://127.0.0.1/live/k", None),
        (r"rtmp://127\.0\.0\.1/.*", "rtmp://127.0.0.1/live/k", "rtmp://127.0.0.2/live/k"),
        (r"rtmp://127\.0\.0\.1:\d+/.*", "rtmp://127.0.0.1:1935/a/b", "rtmp://127.0.0.1/a/b"),
        (r"rtmp://127\.0\.0\.1:\d+/live/[\w-]+", "rtmp://127.0.0.1:9/live/a-b_1",
         "rtmp://127.0.0.1:9/live/a/b"),
        (r"^rtmps?:\/\/live\.twitch\.tv\/app\/[a-z0-9_]+$", "rtmps://live.twitch.tv/app/live_1",
         "rtmp://live.twitch.tv/app/LIVE"),
        (r"(?i)RTMP://(?P<host>[a-z.]+)/live/\w{4,}", "rtmp://Host.example/live/abcd",
         "rtmp://host/live/abc"),
    ],
)
def test_ordinary_patterns_still_match_whole_targets(pattern: str, good: str, bad: str | None) -> None:
    compiled = TargetPattern(pattern)
    assert compiled.matches(good)
    if bad is not None:
        assert not compiled.matches(bad)


def test_the_whole_target_must_match_not_a_part() -> None:
    pattern = TargetPattern(r"rtmp://h/live/\w+")
    assert pattern.matches("rtmp://h/live/k")
    assert not pattern.matches("rtmp://h/live/k/more")
    assert not pattern.matches("xrtmp://h/live/k")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"rtmp://(\w+)/\1", "not supported"),  # backreference
        (r"rtmp://(?!evil)\w+/.*", "not supported"),  # lookahead
        (r"rtmp://(", "missing )"),
    ],
)
def test_unsupported_or_invalid_patterns_are_refused_saying_why(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=re.escape(why)):
        check_pattern(pattern)


def test_the_command_line_refuses_an_unsupported_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--allow-client-rtmp", r"(?=x)rtmp://.*"])
    assert "not supported" in capsys.readouterr().err


@pytest.mark.media
async def test_a_hostile_target_does_not_freeze_other_sessions(running_relay) -> None:
    relay = await running_relay(RelayConfig(allowed_target_pattern=EVIL))
    steady = await Streamer(relay_url(relay)).connect()
    assert await steady.start({"framerate": 20})  # no target of its own: a local recording
    data = H264_FIXTURE.read_bytes()
    step = len(data) // 80  # 0.25 s of media per chunk
    ack_times: list[float] = []

    async def stream() -> None:
        for i in range(12):
            t0 = time.perf_counter()
            assert not await steady.send(data[i * step : (i + 1) * step])
            ack_times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.25)

    streaming = asyncio.create_task(stream())
    await asyncio.sleep(1.0)
    hostile = await Streamer(relay_url(relay)).connect()
    t0 = time.perf_counter()
    assert not await hostile.start({"framerate": 20, "rtmp": HOSTILE}, timeout=60)
    refused_in = time.perf_counter() - t0
    await streaming
    await hostile.close()
    await steady.stop()
    await steady.close()
    assert [e["name"] for e in hostile.errors] == ["TARGET_NOT_ALLOWED"]
    assert refused_in < 1.0, refused_in
    assert len(ack_times) == 12 and max(ack_times) < 1.0, ack_times
