"""The worker process's life: it starts, stops gracefully with a complete stream, is terminated
or killed when it does not, is always reaped, and never outlives the relay; a worker that dies
is reported; feeding never blocks the event loop."""

from __future__ import annotations

import asyncio
import io
import itertools
import multiprocessing
import os
import signal
import time
from collections.abc import Awaitable, Callable

import av
import pytest

from desktop_relay.relay.program import ProgramConfig, ProgramError
from desktop_relay.relay.program.worker import worker_main

from .conftest import Run, SourceFile

pytestmark = pytest.mark.media


def gone(pid: int) -> bool:
    """The process no longer exists (reaped, not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_graceful_stop_completes_the_stream(program: Callable[..., Awaitable[Run]]) -> None:
    run = await program(ProgramConfig(width=1920, height=1080, fps=25))
    pid = run.engine.pid
    assert pid is not None and run.engine.running
    await asyncio.sleep(1.0)
    await run.engine.stop()
    assert gone(pid) and not run.engine.running and not run.engine.state.running
    assert run.engine.state.error is None
    await run.engine.stop()  # twice is harmless
    # The FLV ends on whole tags and decodes to its last picture; the header was kept.
    with av.open(io.BytesIO(bytes(run.output)), format="flv") as container:
        frames = [f for f in container.decode(video=0)]
    assert {(f.width, f.height) for f in frames} == {(1920, 1080)}
    assert len(frames) >= 20
    header = run.engine.header
    assert header.startswith(b"FLV") and bytes(run.output).startswith(header)
    with pytest.raises(ProgramError):
        await run.engine.take("a")


async def test_a_killed_worker_is_reported_and_reaped(
    program: Callable[..., Awaitable[Run]],
) -> None:
    run = await program()
    pid = run.engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    state = await run.wait_for(lambda s: not s.running, 5.0)
    assert state.error is not None and "exited" in state.error
    with pytest.raises(ProgramError, match="exited"):
        await run.engine.take("a")
    await run.engine.stop()
    assert gone(pid)


async def test_a_hung_worker_is_killed_and_feeding_never_blocks(
    program: Callable[..., Awaitable[Run]], sources: dict[str, SourceFile]
) -> None:
    run = await program(max_queue_bytes=256 * 1024, command_timeout=1.0)
    engine = run.engine
    pid = engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung: reads nothing, answers nothing, ignores SIGTERM
    try:
        data = sources["blue"].data
        started = time.monotonic()
        for _ in range(40):  # several MB, far more than the pipe and the bound hold
            engine.feed("blue", data)
        assert time.monotonic() - started < 1.0
        assert engine.dropped_bytes("blue") > 0
        with pytest.raises(ProgramError, match="did not answer"):
            await asyncio.wait_for(engine.take("blue"), 10)
        started = time.monotonic()
        await engine.stop(timeout=0.5)
        assert time.monotonic() - started < 5.0
        assert gone(pid)
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_worker_exits_when_the_relay_goes() -> None:
    """The parent's end of the pipe closing (the relay crashed) ends the worker."""
    ctx = multiprocessing.get_context("spawn")
    child_in, to_worker = ctx.Pipe(duplex=False)
    from_worker, child_out = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker_main, args=(ProgramConfig(), child_in, child_out))
    process.start()
    try:
        child_in.close()
        child_out.close()
        assert from_worker.poll(30)  # running: it sends its first state
        to_worker.close()
        process.join(10)
        assert process.exitcode == 0
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        from_worker.close()


async def test_a_starved_worker_skips_pictures_but_not_sound(
    program: Callable[..., Awaitable[Run]],
) -> None:
    """Frozen for a second (a starved machine, a laptop lid): the clock skips the pictures it
    missed rather than bursting, and the sound stays continuous (silence for the gap)."""
    run = await program()
    pid = run.engine.pid
    assert pid is not None
    await asyncio.sleep(0.5)
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(1.2)
    os.kill(pid, signal.SIGCONT)
    await asyncio.sleep(1.0)
    state = await run.engine.refresh()
    assert state.late_frames >= 20
    await run.engine.stop()
    decoded = run.decode()
    times = [p.pts for p in decoded.pictures]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert max(b - a for a, b in itertools.pairwise(times)) >= 0.6  # the skipped pictures
    packets = decoded.audio_packets
    gaps = [b[0] - (a[0] + a[1]) for a, b in itertools.pairwise(packets)]
    assert max(abs(g) for g in gaps) <= 1
    assert packets[-1][0] / 1000 >= times[-1] - 0.2
