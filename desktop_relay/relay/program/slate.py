"""The slate: the picture on the program when no source is (a "We'll be right back" card with
the program's name, or a PNG/JPEG the operator picked)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av
import numpy as np

from .errors import SlateImageError
from .font import GLYPH_HEIGHT, GLYPH_WIDTH, text_mask
from .picture import Picture, fit, from_rgb, paste, scaled, solid

logger = logging.getLogger(__name__)

SLATE_BACKGROUND_RGB = (24, 64, 112)
"""The built-in card's colour: a dark blue-teal no test source and few cameras produce."""
SLATE_TEXT_RGB = (255, 255, 255)
SLATE_TITLE = "We'll be right back"

MAX_SLATE_BYTES = 20 * 1024 * 1024
"""A bigger file is not a slate but a mistake (or a decompression bomb's wrapper)."""
MAX_SLATE_SIDE = 8192
MAX_SLATE_PIXELS = 7680 * 4320
"""8K: decoding more would take seconds and hundreds of MB for a card shown at 720p."""
_IMAGE_CODECS = {"png": "PNG", "mjpeg": "JPEG"}


def builtin_card(width: int, height: int, name: str) -> Picture:
    """The built-in slate: the title and the program's name in white capitals on the slate
    colour, centred."""
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:, :] = SLATE_BACKGROUND_RGB
    title_scale = max(1, height // 90)  # 8 px font pixels at 720p, 12 at 1080p
    lines = [(SLATE_TITLE, title_scale)]
    name = " ".join(name.split())[:60]
    if name:
        lines.append((name, max(1, title_scale // 2)))
    masks = []
    for text, scale in lines:
        # Shrink a long name until it fits the width with a margin.
        while scale > 1 and len(text) * (GLYPH_WIDTH + 1) * scale > width * 0.9:
            scale -= 1
        mask = text_mask(text, scale)[:, : int(width * 0.95)]
        masks.append(mask)
    gap = title_scale * GLYPH_HEIGHT
    total = sum(m.shape[0] for m in masks) + gap * (len(masks) - 1)
    y = (height - total) // 2
    for mask in masks:
        x = (width - mask.shape[1]) // 2
        region = rgb[y : y + mask.shape[0], x : x + mask.shape[1]]
        region[mask] = SLATE_TEXT_RGB
        y += mask.shape[0] + gap
    return from_rgb(rgb)


def load_slate_image(path: Path, width: int, height: int) -> Picture:
    """The operator's PNG or JPEG scaled to fit the program's size on black.

    Raises SlateImageError naming the problem: a missing or unreadable file, one over 20 MB,
    one over 8K pixels, or one that is not a decodable PNG/JPEG."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise SlateImageError(f"slate image {path} does not exist") from None
    except OSError as e:
        raise SlateImageError(f"slate image {path} cannot be read: {e.strerror}") from None
    if not path.is_file():
        raise SlateImageError(f"slate image {path} is not a file")
    if size > MAX_SLATE_BYTES:
        raise SlateImageError(
            f"slate image {path} is {size / 1e6:.1f} MB; the limit is "
            f"{MAX_SLATE_BYTES // (1024 * 1024)} MB"
        )
    try:
        # FFmpeg probes the content, not the name: a renamed file is judged by what it is.
        with av.open(str(path), mode="r") as container:
            streams = container.streams.video
            if not streams:
                raise SlateImageError(f"slate image {path} is not a picture")
            stream = streams[0]
            codec = stream.codec_context.name
            if codec not in _IMAGE_CODECS:
                raise SlateImageError(f"slate image {path} is {codec}, not a PNG or JPEG")
            w, h = stream.codec_context.width, stream.codec_context.height
            # Checked before decoding: the header's size is what a decoder would allocate.
            if w > MAX_SLATE_SIDE or h > MAX_SLATE_SIDE or w * h > MAX_SLATE_PIXELS:
                raise SlateImageError(f"slate image {path} is {w}x{h}; the limit is 8K (7680x4320)")
            frame = next(container.decode(stream), None)
    except SlateImageError:
        raise
    except (av.FFmpegError, OSError, StopIteration, ValueError) as e:
        raise SlateImageError(f"slate image {path} cannot be decoded as PNG/JPEG: {e}") from None
    if frame is None or frame.width < 2 or frame.height < 2:
        raise SlateImageError(f"slate image {path} holds no picture")
    fw, fh = fit(frame.width, frame.height, width, height)
    canvas = solid(width, height, (0, 0, 0))
    paste(
        canvas,
        (width, height),
        scaled(frame, fw, fh),
        (fw, fh),
        (width - fw) // 4 * 2,
        (height - fh) // 4 * 2,
    )
    return canvas


def slate_picture(
    width: int, height: int, name: str, image: Path | None
) -> tuple[Picture, str | None]:
    """The slate to use and, when the operator's image cannot be, why (the built-in card is
    used instead)."""
    if image is not None:
        try:
            return load_slate_image(image, width, height), None
        except SlateImageError as e:
            logger.warning("%s; using the built-in slate", e)
            return builtin_card(width, height, name), str(e)
    return builtin_card(width, height, name), None
