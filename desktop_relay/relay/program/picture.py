"""Pictures as numpy arrays in I420 (yuv420p) layout, the encoder's own format: one contiguous
uint8 array of shape (height * 3 / 2, width), the Y plane then U then V. Composing in the
encoder's format saves two colour conversions per frame; a cut costs no pixel work at all."""

from __future__ import annotations

from typing import cast

import av
import numpy as np
import numpy.typing as npt

from .config import Corner, PipSize

Picture = npt.NDArray[np.uint8]

# swscale's bilinear: twice as cheap as its bicubic default, and no visible difference when
# a phone's picture is scaled to the program size.
_INTERPOLATION = "BILINEAR"


def to_picture(frame: av.VideoFrame) -> Picture:
    """The I420 array of a yuv420p frame (a copy)."""
    return cast(Picture, frame.to_ndarray())


def planes(picture: Picture, width: int, height: int) -> tuple[Picture, Picture, Picture]:
    """Views of the Y, U and V planes of an I420 picture (writes go to the picture)."""
    flat = picture.reshape(-1)
    y_size = width * height
    c_size = y_size // 4
    y = flat[:y_size].reshape(height, width)
    u = flat[y_size : y_size + c_size].reshape(height // 2, width // 2)
    v = flat[y_size + c_size : y_size + 2 * c_size].reshape(height // 2, width // 2)
    return y, u, v


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> Picture:
    """A picture of one colour (converted by swscale, as the sources' pictures are)."""
    pixel = np.empty((2, 2, 3), dtype=np.uint8)
    pixel[:, :] = rgb
    yuv = av.VideoFrame.from_ndarray(pixel, format="rgb24").reformat(format="yuv420p")
    y0, u0, v0 = (int(p[0, 0]) for p in planes(to_picture(yuv), 2, 2))
    picture = np.empty((height * 3 // 2, width), dtype=np.uint8)
    y, u, v = planes(picture, width, height)
    y[:] = y0
    u[:] = u0
    v[:] = v0
    return picture


def from_rgb(rgb: npt.NDArray[np.uint8]) -> Picture:
    """An I420 picture from an RGB array of shape (height, width, 3), even sides."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return to_picture(frame.reformat(format="yuv420p"))


def fit(src_width: int, src_height: int, box_width: int, box_height: int) -> tuple[int, int]:
    """The largest even size with the source's aspect ratio that fits in the box."""
    scale = min(box_width / src_width, box_height / src_height)
    width = max(2, min(box_width, int(src_width * scale) // 2 * 2))
    height = max(2, min(box_height, int(src_height * scale) // 2 * 2))
    return width, height


PIP_FRACTIONS: dict[PipSize, float] = {"1/4": 0.25, "1/3": 1 / 3}
PIP_MARGIN = 0.025
"""The gap between a picture-in-picture and the program's edges, as a fraction of its width."""


def pip_rect(
    src_width: int, src_height: int, width: int, height: int, corner: Corner, size: PipSize
) -> tuple[int, int, int, int]:
    """Where a picture-in-picture goes: (x, y, w, h), all even. Its width is the size's
    fraction of the program's width, its height follows the source's aspect ratio, capped at
    half the program's height (a phone held upright stays an inset, not a column)."""
    box_width = int(width * PIP_FRACTIONS[size]) // 2 * 2
    pw, ph = fit(src_width, src_height, box_width, height // 2 // 2 * 2)
    margin = int(width * PIP_MARGIN) // 2 * 2
    x = margin if corner[1] == "l" else width - pw - margin
    y = margin if corner[0] == "t" else height - ph - margin
    return x, y, pw, ph


def scaled(frame: av.VideoFrame, width: int, height: int) -> Picture:
    """A decoded frame scaled to exactly width x height (even sides), in I420."""
    if frame.width == width and frame.height == height and frame.format.name == "yuv420p":
        return to_picture(frame)
    return to_picture(
        frame.reformat(width=width, height=height, format="yuv420p", interpolation=_INTERPOLATION)
    )


def paste(
    dst: Picture, dst_size: tuple[int, int], src: Picture, src_size: tuple[int, int], x: int, y: int
) -> None:
    """Copy `src` into `dst` with its top-left corner at (x, y), both even."""
    dw, dh = dst_size
    sw, sh = src_size
    for d_plane, s_plane, div in zip(
        planes(dst, dw, dh), planes(src, sw, sh), (1, 2, 2), strict=True
    ):
        px, py = x // div, y // div
        d_plane[py : py + sh // div, px : px + sw // div] = s_plane


def letterboxed(frame: av.VideoFrame, width: int, height: int, black: Picture) -> Picture:
    """A decoded frame scaled to fit the program's size, keeping its aspect ratio, centred on
    black (a 4:3 phone is pillarboxed in a 16:9 program rather than stretched)."""
    fw, fh = fit(frame.width, frame.height, width, height)
    picture = scaled(frame, fw, fh)
    if (fw, fh) == (width, height):
        return picture
    canvas = black.copy()
    paste(canvas, (width, height), picture, (fw, fh), (width - fw) // 4 * 2, (height - fh) // 4 * 2)
    return canvas


def blend(a: Picture, b: Picture, alpha: float) -> Picture:
    """`a` faded towards `b` by alpha in [0, 1], in integer arithmetic (a fade costs a few
    milliseconds per 720p picture; floats would double it)."""
    k = round(max(0.0, min(1.0, alpha)) * 256)
    if k <= 0:
        return a
    if k >= 256:
        return b
    mixed = a.astype(np.uint16) * (256 - k)
    mixed += b.astype(np.uint16) * k
    mixed >>= 8
    return mixed.astype(np.uint8)
