"""Out of file descriptors while starting a session's encoder (issue 23, item 7): only that
session ends, with CANT_START_FFMPEG; nothing leaks, nothing stays STARTING, and the relay
still stops at once. The descriptor table really is full: the test fills it."""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState

from ..media import H264_FIXTURE
from ..polling import wait_for
from ..replay import Streamer, relay_url

pytestmark = pytest.mark.media


def _pipes() -> set[str]:
    """This process's open pipe descriptors, as `fd -> pipe:[inode]` strings."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            found.add(f"{name}->{target}")
    return found


@contextmanager
def descriptors_left(free: int) -> Iterator[None]:
    """Leave exactly `free` descriptors to open: lower the soft limit a little above the
    highest one in use and fill every hole below it, then give back `free` of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(n) for n in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 64, hard))
    fillers: list[int] = []
    try:
        while True:
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        for _ in range(free):
            os.close(fillers.pop())
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# 0: the first os.pipe() fails; 6: the encoder's three pipes are made, the spawn then fails.
@pytest.mark.parametrize("free", [0, 6])
async def test_no_descriptor_left_ends_only_that_session(running_relay, free: int) -> None:
    relay = await running_relay(RelayConfig(max_ffmpeg_instances=1))
    streamer = await Streamer(relay_url(relay)).connect()
    assert await streamer.start({"framerate": 20})
    first = H264_FIXTURE.read_bytes()[:200_000]
    pipes_before = _pipes()
    with descriptors_left(free):
        # The ack waits for the encoder to take the bytes: it carries the failure.
        ack = await asyncio.wait_for(
            streamer.client.call("binarystream", first, timeout=10), 10
        )
    assert ack and ack["name"] == ErrorName.CANT_START_FFMPEG, ack
    assert "file descriptors" in ack["message"], ack
    await wait_for(lambda: relay.sessions()[0].state == SessionState.FAILED, timeout=5)
    status = relay.sessions()[0]
    assert status.error is not None and status.error.name == ErrorName.CANT_START_FFMPEG
    # Its output (a recording) is stopped with it; none of the pipes made is left open.
    await wait_for(lambda: not (_pipes() - pipes_before), timeout=5)

    # The slot is free again (--max-streams 1): another client streams.
    other = await Streamer(relay_url(relay)).connect()
    assert await other.start({"framerate": 20})
    await other.replay(H264_FIXTURE, seconds=2)
    await wait_for(lambda: any(s.state == SessionState.LIVE for s in relay.sessions()))
    await other.stop()

    # And the failed session does not slow the relay's stop (it took 19.4 s).
    began = time.monotonic()
    await relay.stop()
    assert time.monotonic() - began < 1.5
    await streamer.close()
    await other.close()
