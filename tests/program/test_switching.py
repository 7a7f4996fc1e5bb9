"""The program with two real sources: cuts, a fade, picture-in-picture, sound that follows the
picture, at a constant size and rate (the program decoded back from its FLV)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from itertools import pairwise

import numpy as np
import pytest

from .conftest import (
    BLUE,
    BLUE_HZ,
    RED,
    RED_HZ,
    Decoded,
    Run,
    SourceFile,
    colour_of,
    dominant_hz,
    feed_paced,
    near,
)

pytestmark = pytest.mark.media

CENTRE = (640, 360)


def first_showing(
    decoded: Decoded, after: float, rgb: tuple[int, int, int], xy: tuple[int, int] = CENTRE
) -> float:
    """Seconds from `after` to the first picture whose centre is `rgb`."""
    for picture in decoded.pictures:
        if picture.wall >= after - 0.05 and near(colour_of(picture.rgb, *xy), rgb):
            return picture.wall - after
    raise AssertionError(f"no picture showed {rgb} after the command")


async def test_cut_fade_pip_and_sound(
    program: Callable[..., Awaitable[Run]], sources: dict[str, SourceFile]
) -> None:
    run = await program()
    engine = run.engine
    red, blue = sources["red"], sources["blue"]
    feeders = [
        asyncio.create_task(feed_paced(engine, "red", red.data, seconds=6.8)),
        asyncio.create_task(feed_paced(engine, "blue", blue.data, seconds=6.8)),
    ]
    marks: dict[str, float] = {}

    async def at(offset: float, name: str, command: Awaitable[object]) -> None:
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        marks[name] = time.time()
        await command

    t0 = time.monotonic()
    await at(0.6, "red", engine.take("red"))
    await at(1.8, "blue", engine.take("blue"))
    await at(3.0, "fade", engine.take("red", fade_ms=600))
    await at(4.2, "pip_tl", engine.take("red"))
    await engine.pip("blue", "tl", "1/4")
    await at(5.4, "pip_br", engine.take("blue"))
    state = await engine.pip("red", "br", "1/3")
    assert state.on_air == "blue" and state.pip is not None and state.pip.corner == "br"
    await asyncio.gather(*feeders)
    await engine.stop()
    decoded = run.decode()
    pictures = decoded.pictures

    # One size, a steady rate, timestamps from the clock.
    assert {(p.width, p.height) for p in pictures} == {(1280, 720)}
    assert decoded.video_profile == "Main"
    times = [p.pts for p in pictures]
    assert all(b > a for a, b in pairwise(times))
    for second in range(1, int(times[-1])):
        count = sum(1 for t in times if second <= t < second + 1)
        assert count >= 29, f"{count} pictures in second {second} ({run.states[-1]})"

    # Before the first take: the slate. Each take shows its source within 0.5 s.
    assert not near(colour_of(decoded.at(marks["red"] - 0.1).rgb, *CENTRE), RED)
    assert first_showing(decoded, marks["red"], RED) <= 0.5
    assert first_showing(decoded, marks["blue"], BLUE) <= 0.5
    # The red source is 4:3: pillarboxed, not stretched.
    red_picture = decoded.at(marks["blue"] - 0.1)
    assert near(colour_of(red_picture.rgb, 80, 360), (0, 0, 0))
    assert near(colour_of(red_picture.rgb, 200, 360), RED)

    # The fade passes through a blend of both, and ends on red.
    blends = [
        colour_of(p.rgb, *CENTRE) for p in decoded.between(marks["fade"], marks["fade"] + 0.6)
    ]
    assert any(r > 70 and b > 70 for r, _, b in blends), blends
    assert first_showing(decoded, marks["fade"], RED) <= 0.6 + 0.2

    # PiP top-left at a quarter of the width: the 16:9 blue source is 320x180, 32 px in.
    pip = decoded.at(marks["pip_br"] - 0.1).rgb
    for x, y in ((40, 40), (343, 40), (40, 203), (343, 203), (190, 120)):
        assert near(colour_of(pip, x, y, 2), BLUE), (x, y)
    assert near(colour_of(pip, 365, 120, 2), RED)  # right of the inset
    assert near(colour_of(pip, 190, 226, 2), RED)  # below it (x 190 is inside red's picture)
    assert near(colour_of(pip, *CENTRE), RED)
    # PiP bottom-right at a third: the 4:3 red source is 426x318, 32 px from the edges.
    pip = decoded.at(marks["pip_br"] + 0.6).rgb
    for x, y in ((830, 378), (1240, 378), (830, 680), (1240, 680), (1035, 529)):
        assert near(colour_of(pip, x, y, 2), RED), (x, y)
    assert near(colour_of(pip, 810, 529, 2), BLUE)  # left of the inset
    assert near(colour_of(pip, 1035, 360, 2), BLUE)  # above it
    assert near(colour_of(pip, *CENTRE), BLUE)

    # Sound: continuous timestamps (silence, not gaps), and it follows the picture.
    packets = decoded.audio_packets
    assert packets and packets[-1][0] >= times[-1] * 1000 - 200
    gaps = [b[0] - (a[0] + a[1]) for a, b in pairwise(packets)]
    assert max(abs(g) for g in gaps) <= 1, gaps
    rate = decoded.audio_rate
    assert rate == 48000 and decoded.audio.shape[0] == 2
    slate_sound = decoded.sound(marks["red"] - 0.5, marks["red"] - 0.05)
    assert float(abs(slate_sound).max()) < 0.01  # silence on the slate
    on_red = decoded.sound(marks["red"] + 0.3, marks["blue"])
    assert abs(dominant_hz(on_red, rate) - RED_HZ) < 15
    on_blue = decoded.sound(marks["blue"] + 0.3, marks["fade"])
    assert abs(dominant_hz(on_blue, rate) - BLUE_HZ) < 15
    # No click at the cuts: the tones peak at ~0.09 here, so a sample-to-sample step is at
    # most ~0.008 at 660 Hz; hard cuts (measured with the crossfade off) stepped 0.02-0.06.
    for cut in ("red", "blue", "pip_br"):
        around = decoded.sound(marks[cut] - 0.2, marks[cut] + 0.4)
        assert float(np.abs(np.diff(around)).max()) < 0.0125, cut


async def test_pinned_sound_stays_with_its_source(
    program: Callable[..., Awaitable[Run]], sources: dict[str, SourceFile]
) -> None:
    run = await program()
    engine = run.engine
    feeders = [
        asyncio.create_task(feed_paced(engine, name, sources[name].data, seconds=3.0))
        for name in ("red", "blue")
    ]
    await asyncio.sleep(0.4)
    await engine.pin_audio("red")
    await engine.take("blue")
    taken = time.time()
    await asyncio.sleep(1.2)
    state = await engine.pin_audio(None)
    unpinned = time.time()
    assert state.on_air == "blue"
    await asyncio.gather(*feeders)
    await engine.stop()
    decoded = run.decode()
    assert first_showing(decoded, taken, BLUE) <= 0.5
    rate = decoded.audio_rate
    pinned = decoded.sound(taken + 0.3, unpinned)
    assert abs(dominant_hz(pinned, rate) - RED_HZ) < 15  # blue's picture, red's sound
    following = decoded.sound(unpinned + 0.3, unpinned + 1.2)
    assert abs(dominant_hz(following, rate) - BLUE_HZ) < 15
