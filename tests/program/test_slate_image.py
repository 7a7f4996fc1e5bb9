"""The operator's slate image: validated (missing, huge, over 8K, undecodable -> a clear error
and the built-in card), and shown when it is good."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import av
import numpy as np
import pytest

from desktop_relay.relay.program import ProgramConfig, SlateImageError, load_slate_image
from desktop_relay.relay.program.picture import planes
from desktop_relay.relay.program.slate import SLATE_BACKGROUND_RGB, builtin_card

from .conftest import Run, colour_of, near

GREEN = (0, 200, 0)


def write_image(path: Path, width: int, height: int, rgb: tuple[int, int, int], codec: str) -> Path:
    """A real PNG or JPEG made by FFmpeg's encoders."""
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:, :] = rgb
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for packet in stream.encode(frame.reformat(format=pix_fmt)):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def centre_rgb(picture: np.ndarray, width: int, height: int) -> tuple[int, int, int]:
    frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
    return colour_of(frame.to_ndarray(format="rgb24"), width // 2, height // 2)


def test_good_png_and_jpeg_are_fitted_on_black(tmp_path: Path) -> None:
    png = write_image(tmp_path / "slate.png", 400, 400, GREEN, "png")
    picture = load_slate_image(png, 1280, 720)
    assert picture.shape == (1080, 1280)
    assert near(centre_rgb(picture, 1280, 720), GREEN)
    y, _, _ = planes(picture, 1280, 720)
    assert y[360, 100] < 20  # square on 16:9: black bars at the sides
    # A JPEG under a misleading name is judged by its content.
    jpeg = write_image(tmp_path / "slate.jpg", 1920, 1080, (200, 0, 200), "mjpeg")
    renamed = jpeg.rename(tmp_path / "slate.png")
    assert near(centre_rgb(load_slate_image(renamed, 1920, 1080), 1920, 1080), (200, 0, 200))


@pytest.mark.parametrize("case", ["missing", "directory", "huge", "over_8k", "garbage", "text"])
def test_bad_images_are_refused_with_a_clear_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "slate.png"
    expected = {
        "missing": "does not exist",
        "directory": "not a file",
        "huge": "the limit is 20 MB",
        "over_8k": "the limit is 8K",
        "garbage": "cannot be decoded",
        "text": "cannot be decoded",
    }[case]
    if case == "directory":
        path.mkdir()
    elif case == "huge":
        with path.open("wb") as f:
            f.truncate(21 * 1024 * 1024)  # sparse: no 21 MB written
    elif case == "over_8k":
        write_image(path, 8200, 2, GREEN, "png")
    elif case == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    elif case == "text":
        path.write_text("not a picture\n" * 50)
    with pytest.raises(SlateImageError, match=expected) as caught:
        load_slate_image(path, 1280, 720)
    assert str(path) in str(caught.value)


def test_builtin_card_has_its_colour_and_text() -> None:
    for width, height in ((1280, 720), (1920, 1080)):
        card = builtin_card(width, height, "A program name far too long to fit on one line " * 3)
        rgb = av.VideoFrame.from_ndarray(card, format="yuv420p").to_ndarray(format="rgb24")
        assert near(colour_of(rgb, width // 2, height // 8), SLATE_BACKGROUND_RGB, 6)
        white = rgb.min(axis=2) > 200
        assert white[: height // 4].sum() == 0 and white[height - height // 4 :].sum() == 0
        assert white.sum() > 5000


@pytest.mark.media
async def test_engine_falls_back_to_the_card_and_swaps_images(
    program: Callable[..., Awaitable[Run]], tmp_path: Path
) -> None:
    run = await program(ProgramConfig(slate_image=tmp_path / "missing.png", name="Test Show"))
    state = run.engine.state
    assert state.slate and state.slate_image_error is not None
    assert "does not exist" in state.slate_image_error
    await asyncio.sleep(0.3)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    with pytest.raises(SlateImageError, match="cannot be decoded"):
        await run.engine.set_slate_image(bad)
    good = write_image(tmp_path / "good.png", 1280, 720, GREEN, "png")
    state = await run.engine.set_slate_image(good)
    assert state.slate_image_error is None
    await asyncio.sleep(0.3)
    await run.engine.stop()
    pictures = run.decode().pictures
    first, last = pictures[0].rgb, pictures[-1].rgb
    assert near(colour_of(first, 640, 80), SLATE_BACKGROUND_RGB, 20)
    assert near(colour_of(last, 640, 80), GREEN)
