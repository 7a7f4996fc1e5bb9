"""A source on air that stalls: its last picture for at most a second, then the slate, and back
on air when it returns (or not, with auto return off, until the next take)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from desktop_relay.relay.program import ProgramCommandError
from desktop_relay.relay.program.slate import SLATE_BACKGROUND_RGB

from .conftest import RED, Run, SourceFile, colour_of, feed_paced, near

pytestmark = pytest.mark.media

CENTRE = (640, 360)
BACKGROUND = (640, 80)  # the slate card away from its text


def is_slate(rgb: object) -> bool:
    return near(colour_of(rgb, *BACKGROUND), SLATE_BACKGROUND_RGB, 20)  # type: ignore[arg-type]


async def test_stall_freezes_then_slate_then_returns(
    program: Callable[..., Awaitable[Run]], sources: dict[str, SourceFile]
) -> None:
    run = await program()
    engine = run.engine
    red = sources["red"].data
    assert run.engine.state.slate_reason == "no_source"

    await engine.take("red")
    last = await feed_paced(engine, "red", red, seconds=1.5)
    # The source goes quiet: on the slate within 1.5 s of its last data, for a stall.
    state = await run.wait_for(lambda s: s.slate, 2.0)
    assert state.slate_reason == "stalled" and state.taken == "red"
    source = state.source("red")
    assert source is not None and source.stalled and (source.width, source.height) == (640, 480)
    await asyncio.sleep(0.5)
    # Back (its encoder restarted: a new FLV stream): on air again by itself.
    back = time.time()
    feeder = asyncio.create_task(feed_paced(engine, "red", red, seconds=1.5))
    state = await run.wait_for(lambda s: s.on_air == "red", 1.0)
    await feeder

    # Auto return off: a stall holds the slate after the source is back, until a take.
    await engine.set_auto_return(False)
    await run.wait_for(lambda s: s.slate_reason == "stalled", 2.0)
    back_held = time.time()
    feeder = asyncio.create_task(feed_paced(engine, "red", red, seconds=2.0))
    await asyncio.sleep(1.2)
    assert engine.state.slate and engine.state.slate_reason == "stalled"
    source = engine.state.source("red")
    assert source is not None and not source.stalled
    retake = time.time()
    state = await engine.take("red")
    assert state.on_air == "red"
    await feeder
    await engine.stop()

    decoded = run.decode()
    assert {(p.width, p.height) for p in decoded.pictures} == {(1280, 720)}
    # Frozen on the last picture (red) for about a second, then the slate by 1.5 s.
    frozen = decoded.between(last + 0.1, last + 0.85)
    assert frozen and all(near(colour_of(p.rgb, *CENTRE), RED) for p in frozen)
    slate = next(p for p in decoded.pictures if p.wall > last and is_slate(p.rgb))
    assert 0.85 <= slate.wall - last <= 1.5, slate.wall - last
    # The card: its colour, and white text across the middle.
    text_rows = slate.rgb[300:420]
    assert (text_rows.min(axis=2) > 200).sum() > 2000
    # Back within half a second of the source's new stream.
    returned = next(
        p for p in decoded.pictures if p.wall > back and near(colour_of(p.rgb, *CENTRE), RED)
    )
    assert returned.wall - back <= 0.5
    # Held on the slate while the source was back, red again after the take.
    held = decoded.between(back_held + 0.5, retake - 0.05)
    assert held and all(is_slate(p.rgb) for p in held)
    retaken = next(
        p for p in decoded.pictures if p.wall > retake and near(colour_of(p.rgb, *CENTRE), RED)
    )
    assert retaken.wall - retake <= 0.5


async def test_removed_source_ends_and_comes_back(
    program: Callable[..., Awaitable[Run]], sources: dict[str, SourceFile]
) -> None:
    run = await program()
    engine = run.engine
    red = sources["red"].data
    feeder = asyncio.create_task(feed_paced(engine, "red", red, seconds=1.0))
    await engine.take("red")
    await run.wait_for(lambda s: s.on_air == "red", 2.0)
    await feeder
    state = await engine.remove_source("red")
    assert state.slate and state.slate_reason == "ended" and state.source("red") is None
    feeder = asyncio.create_task(feed_paced(engine, "red", red, seconds=1.0))
    await run.wait_for(lambda s: s.on_air == "red", 2.0)
    await feeder
    state = await engine.slate(True)
    assert state.slate and state.slate_reason == "manual"
    state = await engine.slate(False)
    assert state.slate_reason in (None, "stalled")
    # Refused commands name the problem and change nothing.
    with pytest.raises(ProgramCommandError, match="corner"):
        await engine.pip("red", "middle")  # type: ignore[arg-type]
    with pytest.raises(ProgramCommandError, match="size"):
        await engine.pip("red", "br", "1/2")  # type: ignore[arg-type]
    with pytest.raises(ProgramCommandError, match="fade"):
        await engine.take("blue", fade_ms=-1)
    assert (await engine.refresh()).taken == "red"
