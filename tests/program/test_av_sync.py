"""The program keeps a source's picture and sound together, and shows every picture of a source
whose frames arrive in bursts (MediaRecorder's 250 ms chunks), not only the last of each burst.

The source flashes white for 3 frames and beeps at 1 kHz from the same instant on every whole
second (made as the relay's encoder writes it: H.264 + AAC in FLV); it is fed to a real worker
as a page's chunks reach it, every frame at its time (WebCodecs) or a quarter second at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from desktop_relay.relay.program.flv_tags import HEADER_SIZE, Tag, TagSplitter

from .conftest import Decoded, Run, colour_of

pytestmark = pytest.mark.media

FLASH_V = (
    "color=c=black:s=640x480:r=30,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:"
    "enable='lt(mod(t,1),0.1)'"
)
FLASH_A = "aevalsrc=exprs='if(lt(mod(t,1),0.1),0.8*sin(2*PI*1000*t),0)':s=48000"
SECONDS = 7


@pytest.fixture(scope="module")
def flash_source(ffmpeg_exe: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("flash") / "flash.flv"
    subprocess.run(
        [ffmpeg_exe, "-v", "error", "-y", "-f", "lavfi", "-i", FLASH_V,
         "-f", "lavfi", "-i", FLASH_A, "-t", str(SECONDS),
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
         "-f", "flv", "-flvflags", "no_duration_filesize", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


async def feed_in_chunks(run: Run, data: bytes, chunk_s: float) -> None:
    """Each tag once its chunk is complete, as a page sends chunks of `chunk_s` seconds."""
    tags = [t for t in TagSplitter().feed(data) if isinstance(t, Tag)]
    run.engine.feed("flash", data[:HEADER_SIZE])
    t0 = time.monotonic()
    for tag in tags:
        if not tag.is_config:
            chunk_end = (tag.timestamp_ms // int(chunk_s * 1000) + 1) * chunk_s
            delay = t0 + chunk_end - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        run.engine.feed("flash", tag.raw)


def flash_onsets(decoded: Decoded, after: float) -> list[float]:
    """Stream times of the first white picture of each flash."""
    found: list[float] = []
    last_white = -1e9
    for picture in decoded.pictures:
        if picture.pts < after:
            continue
        if colour_of(picture.rgb, 640, 360)[0] > 200:
            if picture.pts - last_white >= 0.5:
                found.append(picture.pts)
            last_white = picture.pts
    return found


def white_pictures(decoded: Decoded, after: float) -> int:
    return sum(
        1 for p in decoded.pictures if p.pts >= after and colour_of(p.rgb, 640, 360)[0] > 200
    )


def beep_onsets(decoded: Decoded, after: float) -> list[float]:
    """Stream times where the beep starts in the program's sound."""
    sound = decoded.audio.mean(axis=0)
    start = decoded.audio_start - (decoded.pictures[0].wall - decoded.pictures[0].pts)
    found: list[float] = []
    last_loud = -1e9
    for j in np.flatnonzero(np.abs(sound) > 0.3):
        t = start + j / decoded.audio_rate
        if t - last_loud >= 0.5 and t >= after:
            found.append(t)
        last_loud = t
    return found


@pytest.mark.parametrize("chunk_s", [0.03, 0.25], ids=["webcodecs", "mediarecorder"])
async def test_picture_and_sound_stay_together(
    program: Callable[..., Awaitable[Run]], flash_source: bytes, chunk_s: float
) -> None:
    run = await program()
    feeder = asyncio.create_task(feed_in_chunks(run, flash_source, chunk_s))
    await asyncio.sleep(0.3)
    await run.engine.take("flash")
    await feeder
    await asyncio.sleep(0.6)  # the last chunk played out
    await run.engine.stop()
    decoded = run.decode()
    settled = 1.5  # stream time: the take done, the first bursts measured
    flashes = flash_onsets(decoded, settled)
    beeps = beep_onsets(decoded, settled - 0.2)
    # Every flash reaches the program (a latest-picture slot lost most of them to bursts)...
    assert len(flashes) >= SECONDS - 3, (flashes, beeps)
    # ...with its 3 frames, not one...
    assert white_pictures(decoded, settled) >= 3 * len(flashes) - 1
    # ...and its beep with it: within 40 ms either way (a picture lasts 33 ms).
    offsets = [
        1000 * (min(beeps, key=lambda b, f=f: abs(b - f)) - f) for f in flashes if beeps
    ]
    assert len(offsets) == len(flashes)
    assert max(abs(o) for o in offsets) <= 40, offsets
