"""Load shedding: past its headroom the relay refuses a new start with RELAY_BUSY, in words,
while the sessions it has keep streaming; when the machine has room again, starts are taken.
The machine is really loaded (busy processes on every core), the relay is a real one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, core
from desktop_relay.relay.load import (
    BACKLOG_BYTES,
    DEFAULT_SESSION_CORES,
    MIN_SESSION_CORES,
    RESERVE_S,
    SLOW_FOR_S,
    WINDOW_S,
    LoadMonitor,
)
from desktop_relay.relay.session.state import ACTIVE_STATES

from ..media import H264_FIXTURE
from ..polling import wait_for
from ..replay import Streamer, relay_url


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_monitor_says_busy_past_the_cpu_share_and_for_encoders_behind() -> None:
    clock = Clock()
    counters = [(0, 0)]
    monitor = LoadMonitor(0.9, clock=clock, cpu_times=lambda: counters[-1])
    for busy, total in ((50, 100), (100, 200)):  # 50 % busy
        clock.now += 1
        counters.append((busy, total))
        monitor.sample({})
    assert monitor.cpu == pytest.approx(0.5) and monitor.busy() is None
    for busy, total in ((195, 300), (290, 400), (385, 500)):  # then 95 %
        clock.now += 1
        counters.append((busy, total))
        monitor.sample({})
    assert monitor.cpu is not None and monitor.cpu > 0.9
    assert "95% busy" in (monitor.busy() or "")
    # Off for CPU: only encoders that stay behind say busy, and only after a while.
    off = LoadMonitor(None, clock=clock, cpu_times=lambda: None)
    off.sample({"a": BACKLOG_BYTES + 1})
    assert off.busy() is None
    clock.now += SLOW_FOR_S
    off.sample({"a": BACKLOG_BYTES + 1, "b": 0})
    assert "fall behind" in (off.busy() or "")
    off.sample({"a": 0, "b": 0})
    assert off.busy() is None


class SteadyCpu:
    """/proc/stat's counters for a machine whose cores are `share` busy, 100 jiffies a read."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.busy = 0.0
        self.total = 0

    def __call__(self) -> tuple[int, int]:
        self.busy += 100 * self.share
        self.total += 100
        return round(self.busy), self.total


def burst(monitor: LoadMonitor, starts: int, prefix: str = "s") -> list[str]:
    """`starts` starts at the same instant, as check_capacity takes them: the keys taken."""
    taken = []
    for n in range(starts):
        key = f"{prefix}{n}"
        if monitor.busy(key) is None:
            monitor.admit(key)
            taken.append(key)
    return taken


def tick(monitor: LoadMonitor, clock: Clock, live: list[str], seconds: float) -> None:
    """The relay's stats ticks (every 0.5 s) for `seconds`, with `live` sessions streaming."""
    for _ in range(round(seconds / 0.5)):
        clock.now += 0.5
        monitor.sample(dict.fromkeys(live, 0))


def test_a_burst_of_starts_is_cut_where_the_reserved_sessions_would_pass_the_headroom() -> None:
    clock = Clock()
    cpu = SteadyCpu(0.20)
    monitor = LoadMonitor(0.51, clock=clock, cpu_times=cpu, cores=2)
    tick(monitor, clock, [], 3)
    assert monitor.cpu == pytest.approx(0.20)
    # No session yet: each start reserves the default, 5 % of a core (2.5 % of 2 cores).
    assert monitor.session_cost == pytest.approx(DEFAULT_SESSION_CORES / 2)
    # 128 at once, before the mean moved: 20 % + 12 x 2.5 % = 50 % <= 51 %, the 14th is out.
    taken = burst(monitor, 128)
    assert len(taken) == 13
    refusal = monitor.busy("late") or ""
    assert "20% busy" in refusal and "13 stream(s) just started" in refusal and (
        f"take it to about {0.20 + 13 * 0.025:.0%}" in refusal
    )
    # A start checked again (after the start hook) does not count against itself.
    assert monitor.busy(taken[-1]) is None and monitor.pending(taken[-1]) == 12
    # Measured alone (the reservations ignored) the burst would all have been taken.
    assert monitor.cpu is not None and monitor.cpu <= monitor.max_cpu  # type: ignore[operator]


def test_reservations_last_until_the_mean_has_seen_the_session_then_costs_are_learned() -> None:
    clock = Clock()
    cpu = SteadyCpu(0.20)
    monitor = LoadMonitor(0.51, clock=clock, cpu_times=cpu, cores=2)
    tick(monitor, clock, [], 3)
    taken = burst(monitor, 128)
    assert len(taken) == 13
    # Their encoders are slow to start: not live, the reservations hold past WINDOW_S.
    tick(monitor, clock, [], WINDOW_S + 1)
    assert monitor.pending() == 13 and burst(monitor, 4, "b") == []
    # Live now (seen on the next tick), using 2 % of the machine each: held until the mean has
    # seen them a whole window.
    cpu.share = 0.20 + 13 * 0.02
    tick(monitor, clock, taken, WINDOW_S)
    assert monitor.pending() == 13 and monitor.busy("x") is not None
    tick(monitor, clock, taken, 0.5)
    assert monitor.pending() == 0
    # Learned: the mean per live session (the machine's other 20 % counted against them).
    assert monitor.cpu == pytest.approx(0.46, abs=0.01)
    assert monitor.session_cost == pytest.approx(0.46 / 13, abs=0.001)
    # The next burst: 46 % + 1 x 3.5 % <= 51 %, 46 % + 2 x 3.5 % is not.
    assert len(burst(monitor, 8, "c")) == 2
    # A start that never goes live lapses after RESERVE_S; with no live session the default
    # cost comes back.
    tick(monitor, clock, [], RESERVE_S)
    assert monitor.pending() == 0
    assert monitor.session_cost == pytest.approx(DEFAULT_SESSION_CORES / 2)


def test_paused_sessions_teach_no_cost_below_the_floor_and_no_proc_means_no_cpu_refusal() -> None:
    clock = Clock()
    monitor = LoadMonitor(0.51, clock=clock, cpu_times=SteadyCpu(0.001), cores=2)
    tick(monitor, clock, ["a", "b", "c"], 3)
    assert monitor.session_cost == pytest.approx(MIN_SESSION_CORES / 2)
    assert len(burst(monitor, 200)) == 68  # 0.1 % + 67 x 0.75 % <= 51 %
    # A burst into a relay just started (no mean yet) is projected from an idle machine.
    fresh = LoadMonitor(0.51, clock=clock, cpu_times=SteadyCpu(0.2), cores=2)
    assert fresh.cpu is None and len(burst(fresh, 128)) == 21  # 20 x 2.5 % <= 51 %
    refusal = fresh.busy("one-more")
    assert refusal is not None and "not measured yet" in refusal and "0%" not in refusal
    # Without /proc the CPU never refuses, reservations or not.
    blind = LoadMonitor(0.51, clock=clock, cpu_times=lambda: None, cores=2)
    assert len(burst(blind, 128)) == 128


@pytest.mark.media
async def test_a_busy_machine_refuses_new_streams_and_keeps_the_live_one(running_relay) -> None:  # type: ignore[no-untyped-def]
    # 97 %: only a machine with every core taken is refused, so that the other pytest worker's
    # tests leave room again for the last part (the burners take every core, and one more).
    relay = await running_relay(RelayConfig(max_cpu_percent=97))
    live = await Streamer(relay_url(relay)).connect()
    burners: list[subprocess.Popen[bytes]] = []
    try:
        assert await live.start({"framerate": 30})
        (session_id,) = [s.uuid for s in relay.sessions()]
        replay = asyncio.create_task(live.replay(H264_FIXTURE, seconds=16))
        await wait_for(lambda: (relay.get(session_id).ffmpeg or None) is not None  # type: ignore[union-attr]
                       and relay.get(session_id).ffmpeg.frames_sent > 0, timeout=10)  # type: ignore[union-attr]
        for _ in range((os.cpu_count() or 2) + 1):
            burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))  # noqa: ASYNC220
        # Within a few seconds' mean the relay sees the machine busy: a new start is refused.
        refused = None
        deadline = time.monotonic() + 12
        while refused is None and time.monotonic() < deadline:
            late = await Streamer(relay_url(relay)).connect()
            try:
                if not await late.start({"framerate": 30}):
                    refused = late.errors[-1]
                else:
                    await late.stop()
            finally:
                await late.close()
            await asyncio.sleep(0.5)
        assert refused is not None, "never refused while the machine was busy"
        assert refused["name"] == ErrorName.RELAY_BUSY and "at capacity" in refused["message"]
        frames = relay.get(session_id).ffmpeg.frames_sent  # type: ignore[union-attr]
        for burner in burners:
            burner.kill()
            burner.wait()
        burners.clear()
        # The live session went on all along, and goes on.
        await wait_for(lambda: relay.get(session_id).ffmpeg.frames_sent > frames + 30,  # type: ignore[union-attr]
                       timeout=10)
        assert live.errors == [] and not live.disconnected.is_set()
        # Room again: a start is taken (the mean forgets the burners within a few seconds).
        accepted = False
        deadline = time.monotonic() + 30
        while not accepted and time.monotonic() < deadline:
            again = await Streamer(relay_url(relay)).connect()
            try:
                accepted = await again.start({"framerate": 30})
                if accepted:
                    await again.stop()
            finally:
                await again.close()
            if not accepted:
                await asyncio.sleep(1)
        assert accepted
        replay.cancel()
        await asyncio.gather(replay, return_exceptions=True)
        await live.stop()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
        await live.close()


@pytest.mark.media
async def test_a_burst_of_starts_past_the_headroom_is_cut_and_the_taken_ones_stream(  # type: ignore[no-untyped-def]
    running_relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's CPU is told (a steady 20 % of 2 cores), so that the cut does not depend on
    # what else runs: everything else is real. 20 % + 2 reserved x 2.5 % <= 26 %: 3 of 8 starts
    # sent together are taken, the other 5 are refused before the mean could see anything.
    monitors: list[LoadMonitor] = []

    def monitor(max_cpu: float | None) -> LoadMonitor:
        monitors.append(LoadMonitor(max_cpu, cpu_times=SteadyCpu(0.20), cores=2))
        return monitors[-1]

    monkeypatch.setattr(core, "LoadMonitor", monitor)
    relay = await running_relay(RelayConfig(max_cpu_percent=26))
    (load,) = monitors
    await wait_for(lambda: load.cpu is not None, timeout=10)
    clients = [await Streamer(relay_url(relay)).connect() for _ in range(8)]
    replays: list[asyncio.Task[int]] = []
    try:
        started = await asyncio.gather(*(c.start({"framerate": 30}) for c in clients))
        taken = [c for c, ok in zip(clients, started, strict=True) if ok]
        refused = [c for c, ok in zip(clients, started, strict=True) if not ok]
        assert len(taken) == 3 and len(refused) == 5
        for client in refused:
            (error,) = client.errors
            assert error["name"] == ErrorName.RELAY_BUSY and "at capacity" in error["message"]
            assert "just started" in error["message"]
        # The taken ones stream, every one of them, and none hears of the refusals.
        replays = [asyncio.create_task(c.replay(H264_FIXTURE, seconds=12)) for c in taken]
        streaming = [s.uuid for s in relay.sessions() if s.state in ACTIVE_STATES]
        assert len(streaming) == 3

        def frames(session_id: str) -> int:
            status = relay.get(session_id)
            return status.ffmpeg.frames_sent if status and status.ffmpeg else 0

        await wait_for(lambda: all(frames(s) > 90 for s in streaming), timeout=30)
        # Once the mean has seen them a window, their reservations end: a start is taken again
        # (20 % measured, no start pending).
        await wait_for(lambda: load.pending() == 0, timeout=30)
        again = await Streamer(relay_url(relay)).connect()
        try:
            assert await again.start({"framerate": 30})
            await again.stop()
        finally:
            await again.close()
        before = {s: frames(s) for s in streaming}
        await wait_for(lambda: all(frames(s) > before[s] + 30 for s in streaming), timeout=30)
        for client in taken:
            assert client.errors == [] and not client.disconnected.is_set()
        for replay in replays:
            replay.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
        for client in taken:
            await client.stop()
    finally:
        for replay in replays:
            replay.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
        for client in clients:
            await client.close()
