"""Catching up after a resume: live outputs skip the backlog to the first keyframe close to
live, recordings keep everything, and a paused recorder (timestamps without the pause) is never
mistaken for a backlog."""

from __future__ import annotations

import pytest

from desktop_relay.relay.media.catch_up import ARMED_TIMEOUT_S, CatchUp
from desktop_relay.relay.media.flv import FlvTag, TagType

FRAME_MS = 40  # 25 fps
GOP_MS = 2000


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def frame(ts_ms: int) -> FlvTag:
    """A video tag; a keyframe (with a picture) every GOP_MS."""
    key = ts_ms % GOP_MS == 0
    body = bytes([0x17 if key else 0x27, 0x01, 0, 0, 0])
    return FlvTag(TagType.VIDEO, ts_ms, key, False, b"\0" * 11 + body + b"\0" * 4)


def frames(start_ms: int, end_ms: int) -> list[FlvTag]:
    return [frame(t) for t in range(start_ms, end_ms, FRAME_MS)]


def flow(catch: CatchUp, clock: Clock, start_ms: int, seconds: float, chunk_ms: int = 250) -> int:
    """Real time: a chunk's worth of frames every `chunk_ms`, arriving just after its end."""
    ts = start_ms
    for _ in range(int(seconds * 1000 / chunk_ms)):
        clock.now += chunk_ms / 1000
        catch.observe(frames(ts, ts + chunk_ms))
        ts += chunk_ms
    return ts


def test_backlog_is_skipped_to_the_first_keyframe_within_the_lag() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 10.0)
    clock.now += 20.0  # a 20 s drop: the browser records on, nothing arrives
    catch.arm()
    backlog = frames(ts, ts + 20_000)
    # It all arrives within a second, in 50 batches.
    cuts = []
    for i in range(0, len(backlog), 10):
        clock.now += 0.02
        cuts.append(catch.cut(backlog[i : i + 10]))
        if cuts[-1].done:
            break
    cut = cuts[-1]
    assert cut.done and all(not c.release for c in cuts[:-1])
    first_live = cut.release[0]
    assert first_live.starts_gop
    # About 3 s behind live at most, and not more than one GOP further ahead than needed.
    behind_s = (ts + 20_000 - first_live.timestamp) / 1000
    assert 3.0 - GOP_MS / 1000 < behind_s <= 3.0 + 1.1
    assert cut.skipped_s == pytest.approx((first_live.timestamp - ts) / 1000)
    assert catch.total_skipped_s == pytest.approx(cut.skipped_s) and catch.catch_ups == 1
    assert not catch.armed


def test_a_short_drop_skips_nothing() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 6.0)
    clock.now += 1.5
    catch.arm()
    clock.now += 0.05
    late = frames(ts, ts + 1500)
    cut = catch.cut(late)
    assert cut.done and cut.release == late and cut.skipped_s == 0
    assert catch.catch_ups == 0


def test_a_pause_without_arming_never_skips_and_the_edge_forgets_it() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 5.0)
    clock.now += 30.0  # the recorder was paused: its timestamps go on without the pause
    ts = flow(catch, clock, ts, 12.0)
    assert not catch.armed
    # A drop after that is measured against the new edge, not the one before the pause.
    clock.now += 2.0
    catch.arm()
    clock.now += 0.05
    assert catch.cut(frames(ts, ts + 2000)).skipped_s == 0


def test_off_or_without_an_edge_it_is_never_armed() -> None:
    clock = Clock()
    off = CatchUp(None, clock=clock)
    flow(off, clock, 0, 3.0)
    off.arm()
    assert not off.armed
    fresh = CatchUp(3.0, clock=clock)
    fresh.arm()  # the stream never flowed: nothing to measure lag against
    assert not fresh.armed


def test_an_armed_catch_up_that_never_gets_close_gives_up_at_a_keyframe() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 4.0)
    clock.now += 10.0
    catch.arm()
    # A backlog burst with no keyframe close to live yet: held, nothing released.
    cut = catch.cut(frames(ts, ts + 1000))
    assert not cut.done and cut.release == []
    clock.now += ARMED_TIMEOUT_S + 1
    late = frames(ts + 1000, ts + 5000)
    cut = catch.cut(late)
    assert cut.done and cut.release[-len(late) :] == late


def test_a_stream_that_only_goes_on_late_is_held_briefly_then_sent_whole() -> None:
    # A client that did not record through the drop: its next chunks come at the pace of
    # time, 4 s late. There is nothing newer to skip to: nothing may be lost.
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 6.0)
    clock.now += 4.0
    catch.arm()
    sent: list[FlvTag] = []
    late: list[FlvTag] = []
    for _ in range(12):
        clock.now += 0.25
        batch = frames(ts, ts + 250)
        ts += 250
        late += batch
        cut = catch.cut(batch) if catch.armed else None
        if cut is None:
            sent += batch
            continue
        sent += cut.release
        assert cut.skipped_s == 0
    assert not catch.armed and sent == late and catch.catch_ups == 0


def test_a_late_stream_with_a_keyframe_while_deciding_loses_nothing() -> None:
    # Late at the pace of time, and a keyframe comes before the decision: the tags held
    # before it must not be dropped as if they were a backlog.
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 6.0)  # ends at 6000 ms: the next keyframe is at 6000
    clock.now += 4.0
    catch.arm()
    late: list[FlvTag] = []
    sent: list[FlvTag] = []
    ts -= 1000  # it goes on from a second before the drop's end of data, mid-GOP
    for _ in range(8):
        clock.now += 0.25
        batch = frames(ts, ts + 250)
        ts += 250
        late += batch
        if catch.armed:
            cut = catch.cut(batch)
            sent += cut.release
            assert cut.skipped_s == 0
        else:
            sent += batch
    assert any(t.starts_gop for t in late[1:]) and sent == late


def test_reset_forgets_the_edge_and_the_arming() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    flow(catch, clock, 0, 3.0)
    catch.arm()
    catch.reset()
    assert not catch.armed
    catch.arm()
    assert not catch.armed


# ---- bounds (issue 23, item 7) ----------------------------------------------------------

def test_the_hold_is_bounded_in_bytes_then_released_whole() -> None:
    # A backlog whose keyframes never come close to live (here: none at all after the first)
    # used to be held without bound: 66 MB for a 22 s cut.
    clock = Clock()
    catch = CatchUp(3.0, clock=clock, max_held_bytes=1000)
    ts = flow(catch, clock, 0, 6.0)
    clock.now += 20.0
    catch.arm()
    size = len(frame(1).raw)
    held: list[FlvTag] = []
    cut = None
    for i in range(200):
        clock.now += 0.01
        batch = [frame(ts + i * FRAME_MS + 1)]  # never a keyframe
        cut = catch.cut(batch)
        if cut.done:
            break
        held += batch
        assert catch.held_bytes <= 1000
    assert cut is not None and cut.done and cut.gave_up == "bound"
    # Deterministic: the first tag past the bound ends the hold; everything is released.
    assert len(held) == 1000 // size
    assert cut.release == [*held, batch[0]]
    assert not catch.armed and catch.held_bytes == 0


def test_the_timeout_ends_a_hold_without_any_new_tag() -> None:
    clock = Clock()
    catch = CatchUp(3.0, clock=clock)
    ts = flow(catch, clock, 0, 10.0)
    clock.now += 20.0
    catch.arm()
    assert catch.due_at == clock.now + ARMED_TIMEOUT_S
    backlog = frames(ts, ts + 1000)
    assert catch.cut(backlog).release == []  # held: nothing close to live yet
    assert catch.expire() is None  # not due
    clock.now += ARMED_TIMEOUT_S + 0.1
    cut = catch.expire()
    assert cut is not None and cut.done and cut.gave_up == "timeout"
    assert cut.release and cut.release[-1] == backlog[-1]
    assert not catch.armed and catch.due_at is None and catch.expire() is None
