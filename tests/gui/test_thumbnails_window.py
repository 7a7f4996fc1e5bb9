"""Live thumbnails in the window: each row's picture, the selected session's preview, and no
decoding while the window is hidden."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from desktop_relay.gui.sessions.columns import THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH, Column

from ..relay.test_thumbnails import make_capture, tap_pids
from .helpers import OpenWindow, new_session, row_of, streaming, until

pytestmark = pytest.mark.media


def mean_and_spread(image: QImage) -> tuple[float, float]:
    """Mean grey level and its standard deviation, sampled on a grid."""
    values = [
        image.pixelColor(x, y).lightness()
        for x in range(0, image.width(), 4)
        for y in range(0, image.height(), 4)
    ]
    return statistics.fmean(values), statistics.pstdev(values)


async def test_rows_show_their_own_picture_and_the_preview_follows_the_selection(
    open_window: OpenWindow, tmp_path: Path, ffmpeg_exe: str
) -> None:
    bars = make_capture(ffmpeg_exe, tmp_path / "bars.mkv", "smptebars")
    navy = make_capture(ffmpeg_exe, tmp_path / "navy.mkv", "color=c=navy")
    async with open_window() as window, streaming(window) as one, streaming(window) as two:
        first = await new_session(window, one, "bars")
        second = await new_session(window, two, "navy")
        replays = [
            asyncio.create_task(one.replay(bars, seconds=8)),
            asyncio.create_task(two.replay(navy, seconds=8)),
        ]
        try:
            await until(
                lambda: all(row_of(window, s).thumbnail is not None for s in (first, second)),
                15,
                "a picture in both rows",
            )
            images = [row_of(window, s).thumbnail for s in (first, second)]
            assert all(i is not None for i in images)
            bars_image, navy_image = images[0], images[1]
            assert bars_image is not None and navy_image is not None
            assert bars_image.width() <= THUMBNAIL_WIDTH
            assert bars_image.height() <= THUMBNAIL_HEIGHT
            bars_mean, bars_spread = mean_and_spread(bars_image)
            navy_mean, _ = mean_and_spread(navy_image)
            assert bars_spread > 20, "colour bars must not come out blank"
            assert abs(bars_mean - navy_mean) > 20, (bars_mean, navy_mean)
            # The table draws it: the Picture cell's decoration is the row's image.
            position = window.model.row_of(first)
            assert position is not None
            cell = window.model.index(position, Column.PICTURE)
            assert cell.data(Qt.ItemDataRole.DecorationRole) == row_of(window, first).thumbnail

            # The preview shows the selected session, large.
            assert window.view.select_session(second)
            await until(lambda: window.preview.image is not None, 5, "the preview")
            preview = window.preview.image
            assert preview is not None and preview.width() > THUMBNAIL_WIDTH
            assert window.preview.thumbnail is row_of(window, second).picture

            # Hidden window: no picture is decoded (the taps stop), the sessions go on.
            assert tap_pids()
            window.hide()
            await until(lambda: not tap_pids(), 10, "the thumbnail ffmpegs to stop")
            live = lambda: str(row_of(window, first).status.state) == "live"  # noqa: E731
            await until(live, 10, "the session live with its window hidden")
            window.show()
            await until(lambda: bool(tap_pids()), 10, "thumbnails back once shown")
        finally:
            for replay in replays:
                replay.cancel()
            await asyncio.gather(*replays, return_exceptions=True)
