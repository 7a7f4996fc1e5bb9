"""The headless relay's paced event loop (relay/event_loop.py): under a stream of I/O it
wakes at most about once per interval, for its I/O and its timers alike; a timer waits at
most one interval, and an idle loop answers at once and keeps its timers' times. Real pipes
and a writer thread, on loops of their own (not pytest-asyncio's)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator

from desktop_relay.relay import event_loop
from desktop_relay.relay.event_loop import PacedSelector


def _stream_into(fd: int, every_s: float, for_s: float) -> threading.Thread:
    """A producer writing a byte to `fd` every `every_s` for `for_s` (as 32 sessions'
    sockets and pipes turn readable one after another)."""

    def write() -> None:
        end = time.monotonic() + for_s
        while time.monotonic() < end:
            os.write(fd, b"x")
            time.sleep(every_s)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


async def _read_stream(seconds: float) -> tuple[int, int]:
    """(bytes read, loop wake-ups) while a producer writes every 2 ms for `seconds`."""
    loop = asyncio.get_running_loop()
    selector = loop._selector  # type: ignore[attr-defined]
    r, w = os.pipe()
    os.set_blocking(r, False)
    got = 0

    def readable() -> None:
        nonlocal got
        got += len(os.read(r, 4096))

    loop.add_reader(r, readable)
    start = getattr(selector, "wakeups", 0)
    producer = _stream_into(w, 0.002, seconds)
    await asyncio.to_thread(producer.join)
    await asyncio.sleep(0.2)
    loop.remove_reader(r)
    wakeups = getattr(selector, "wakeups", 0) - start
    os.close(r)
    os.close(w)
    return got, wakeups


def test_a_stream_of_io_wakes_the_loop_about_once_per_interval() -> None:
    got, wakeups = event_loop.run(_read_stream(1.0), interval=0.025, per_source=0)
    assert got >= 200  # every byte read (about 1 / 2 ms over 1 s, on a busy machine fewer)
    # 1.2 s at one wake-up per 25 ms is 48 (and the thread hand-off's own); unpaced, a
    # wake-up per write: about 400.
    assert wakeups <= 70, wakeups


async def _timer_lateness(delay: float, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    os.set_blocking(r, False)
    loop.add_reader(r, lambda: os.read(r, 4096))
    producer = _stream_into(w, 0.002, delay * count + 0.5)
    late = []
    try:
        for _ in range(count):
            due = loop.time() + delay
            await asyncio.sleep(delay)
            late.append(loop.time() - due)
    finally:
        await asyncio.to_thread(producer.join)
        loop.remove_reader(r)
        os.close(r)
        os.close(w)
    return late


def test_timers_wait_at_most_one_interval_under_a_stream_of_io() -> None:
    # Paced by 200 ms, a 10 ms timer fires at the end of the interval it falls in: late, but
    # never by more than the interval (before timers were gathered they kept their times).
    late = event_loop.run(_timer_lateness(0.01, 10), interval=0.2, per_source=0)
    assert max(late) < 0.2 + 0.08, late


async def _io_and_timers(seconds: float) -> tuple[int, int]:
    """(timers run, loop wake-ups) while a producer writes every 2 ms and a timer re-arms
    itself every 5 ms, for `seconds` (as 32 sessions' pipe reads and checks come due)."""
    loop = asyncio.get_running_loop()
    ran = 0
    end = loop.time() + seconds

    def tick() -> None:
        nonlocal ran
        ran += 1
        if loop.time() < end:
            loop.call_later(0.005, tick)

    loop.call_later(0.005, tick)
    _, wakeups = await _read_stream(seconds)
    return ran, wakeups


def test_timers_are_gathered_with_the_io() -> None:
    ran, wakeups = event_loop.run(_io_and_timers(1.0), interval=0.025, per_source=0)
    # Each pass runs the timer once (it re-arms from there): about one per wake-up.
    assert ran >= 20, ran
    # 1.2 s at one wake-up per 25 ms is 48; a timer that woke the loop on its own every 5 ms
    # would add 200.
    assert wakeups <= 80, wakeups


async def _quiet_timer_lateness(delay: float) -> float:
    loop = asyncio.get_running_loop()
    due = loop.time() + delay
    await asyncio.sleep(delay)
    return loop.time() - due


def test_a_timer_longer_than_the_interval_keeps_its_time() -> None:
    # Nothing else happens: the pace is over before the timer is due, so it runs on time.
    late = event_loop.run(_quiet_timer_lateness(0.5), interval=0.2, per_source=0)
    assert late < 0.05, late


async def _answer_after_idle() -> float:
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    arrived = loop.create_future()
    loop.add_reader(r, lambda: arrived.done() or arrived.set_result(time.monotonic()))
    sent: list[float] = []

    def write() -> None:
        sent.append(time.monotonic())
        os.write(w, b"x")

    try:
        # Nothing for 0.5 s, longer than the interval since the loop's last wake-up.
        threading.Timer(0.5, write).start()
        return await asyncio.wait_for(arrived, 5) - sent[0]
    finally:
        loop.remove_reader(r)
        os.close(r)
        os.close(w)


def test_an_idle_loop_answers_the_first_event_at_once() -> None:
    latency = event_loop.run(_answer_after_idle(), interval=0.3, per_source=0)
    assert latency < 0.15, latency  # paced, it would have waited up to 0.3 s


def test_the_headless_loop_is_paced_and_zero_turns_pacing_off() -> None:
    async def selector() -> object:
        return asyncio.get_running_loop()._selector  # type: ignore[attr-defined]

    async def said_pace() -> float:
        return event_loop.pace(asyncio.get_running_loop())

    paced = event_loop.run(selector())
    assert isinstance(paced, PacedSelector) and paced.interval == event_loop.PACE_S
    assert paced.per_source == event_loop.PACE_PER_SOURCE_S
    assert not isinstance(event_loop.run(selector(), interval=0), PacedSelector)
    assert event_loop.run(said_pace()) == event_loop.PACE_S
    assert event_loop.run(said_pace(), interval=0) == 0.0
    assert asyncio.run(said_pace()) == 0.0


@contextlib.contextmanager
def _idle_pipes(count: int) -> Iterator[None]:
    """`count` more pipes watched by the running loop (nothing is ever written to them)."""
    loop = asyncio.get_running_loop()
    pipes = [os.pipe() for _ in range(count)]
    try:
        for r, _ in pipes:
            loop.add_reader(r, lambda: None)
        yield
    finally:
        for r, w in pipes:
            loop.remove_reader(r)
            os.close(r)
            os.close(w)


async def _intervals(sources: int) -> tuple[float, float]:
    """The pace with the loop's own descriptors, then with `sources` more pipes watched."""
    selector: PacedSelector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    alone = selector.current_interval()
    with _idle_pipes(sources):
        return alone, selector.current_interval()


def test_the_pace_grows_with_what_the_loop_watches_up_to_its_interval() -> None:
    # A lone stream is hardly held back; 32 sessions' sockets and pipes (about 100
    # descriptors) are gathered for the whole interval.
    alone, many = event_loop.run(_intervals(10), interval=0.05, per_source=0.001)
    assert alone < 0.005, alone
    assert abs(many - (alone + 0.01)) < 1e-9, (alone, many)
    _, capped = event_loop.run(_intervals(100), interval=0.05, per_source=0.001)
    assert capped == 0.05
    _, fixed = event_loop.run(_intervals(10), interval=0.05, per_source=0)
    assert fixed == 0.05


async def _stream_wakeups_with(sources: int, seconds: float) -> int:
    """Loop wake-ups under a 2 ms stream of I/O while `sources` idle pipes are watched."""
    with _idle_pipes(sources):
        _, wakeups = await _read_stream(seconds)
        return wakeups


def test_a_loop_watching_more_wakes_less_often() -> None:
    few = event_loop.run(_stream_wakeups_with(0, 1.0), interval=0.05, per_source=0.001)
    many = event_loop.run(_stream_wakeups_with(60, 1.0), interval=0.05, per_source=0.001)
    # 1.2 s paced at about 3 ms is up to 400 passes, at 50 ms about 24 (on a busy machine the
    # writer thread's own pace gives fewer at the low end).
    assert many <= 40, many
    assert few >= 2 * many, (few, many)
