"""The catch-up hold on a real hub and event loop (issue 23, item 7): its timeout fires on a
timer even when no tag arrives, and its byte bound releases the hold and says so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from desktop_relay.relay.media import catch_up
from desktop_relay.relay.media.flv import FlvTag
from desktop_relay.relay.outputs.stream_hub import StreamHub
from desktop_relay.relay.status import OutputStatus

FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


def video_tag(ts_ms: int, key: bool, size: int = 40) -> bytes:
    """One FLV video tag (AVC NALU), its header and PreviousTagSize included."""
    body = bytes([0x17 if key else 0x27, 0x01, 0, 0, 0]) + b"\x55" * size
    header = (bytes([9]) + len(body).to_bytes(3, "big") + (ts_ms & 0xFFFFFF).to_bytes(3, "big")
              + bytes([(ts_ms >> 24) & 0xFF]) + b"\x00\x00\x00")
    return header + body + (11 + len(body)).to_bytes(4, "big")


class Events:
    def output_changed(self, status: OutputStatus) -> None: ...
    def ffmpeg_output(self, line: str) -> None: ...


class Tap:
    """A reader of the live stream: what live outputs get."""

    def __init__(self) -> None:
        self.tags: list[FlvTag] = []

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None:
        self.tags += tags

    def restart(self) -> None: ...


def primed_hub() -> tuple[StreamHub, Tap]:
    """A hub whose stream flowed (its live edge is at 20 s of media), then resumed."""
    hub = StreamHub(ffmpeg_binary="ffmpeg", send_buffer_size=1 << 20, stall_timeout=5.0,
                    start_stall_timeout=20.0, events=Events(), catch_up_lag_s=3.0)
    tap = Tap()
    hub.add_tap(tap)
    hub.feed(FLV_HEADER + b"".join(video_tag(t, t == 20_000) for t in range(20_000, 21_000, 40)))
    hub.expect_backlog()
    assert hub.catch_up.armed
    return hub, tap


async def test_the_catch_up_timeout_fires_with_no_tag_arriving(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(catch_up, "ARMED_TIMEOUT_S", 0.5)
    hub, tap = primed_hub()
    live_before = len(tap.tags)
    # 20 s behind live: held, none close enough to live to go on from.
    hub.feed(b"".join(video_tag(t, t == 1000) for t in range(1000, 1400, 40)))
    assert len(tap.tags) == live_before and hub.catch_up.held_bytes > 0
    with caplog.at_level(logging.WARNING):
        await asyncio.sleep(1.0)  # and then nothing comes
    assert not hub.catch_up.armed and hub.catch_up.held_bytes == 0
    assert [t.timestamp for t in tap.tags[live_before:]] == list(range(1000, 1400, 40))
    assert any("found no keyframe close to live" in r.message for r in caplog.records)
    await hub.stop()


async def test_the_hold_is_released_at_its_byte_bound_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub, tap = primed_hub()
    hub.catch_up.max_held_bytes = 10_000
    live_before = len(tap.tags)
    with caplog.at_level(logging.WARNING):
        for t in range(1000, 1400, 40):  # 10 tags of about 1 kB, late, never a keyframe
            hub.feed(video_tag(t, False, size=1000))
            assert hub.catch_up.held_bytes <= 10_000
    assert not hub.catch_up.armed
    assert [t.timestamp for t in tap.tags[live_before:]] == list(range(1000, 1400, 40))[:10]
    assert any("(its bound)" in r.message for r in caplog.records)
    await hub.stop()
