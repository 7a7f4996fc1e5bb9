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

from desktop_relay.relay import ErrorName, RelayConfig
from desktop_relay.relay.load import BACKLOG_BYTES, SLOW_FOR_S, LoadMonitor

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
        monitor.sample([])
    assert monitor.cpu == pytest.approx(0.5) and monitor.busy() is None
    for busy, total in ((195, 300), (290, 400), (385, 500)):  # then 95 %
        clock.now += 1
        counters.append((busy, total))
        monitor.sample([])
    assert monitor.cpu is not None and monitor.cpu > 0.9
    assert "95% busy" in (monitor.busy() or "")
    # Off for CPU: only encoders that stay behind say busy, and only after a while.
    off = LoadMonitor(None, clock=clock, cpu_times=lambda: None)
    off.sample([BACKLOG_BYTES + 1])
    assert off.busy() is None
    clock.now += SLOW_FOR_S
    off.sample([BACKLOG_BYTES + 1, 0])
    assert "fall behind" in (off.busy() or "")
    off.sample([0, 0])
    assert off.busy() is None


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
