"""The window as a streamer's laptop shows it: 1280x800, nothing cut off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from PySide6.QtWidgets import QStyle

from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.sessions.columns import COLUMNS, Column

OpenWindow = Callable[..., AbstractAsyncContextManager[MainWindow]]


async def test_every_column_header_fits_at_1280x800(open_window: OpenWindow) -> None:
    async with open_window() as window:
        window.resize(1280, 800)
        await asyncio.sleep(0.2)  # (the loop is Qt's: the resize is laid out meanwhile)
        view = window.view
        header = view.horizontalHeader()
        metrics = header.fontMetrics()
        style = header.style()
        # What a header needs: its text, the margins on both sides, and the sort arrow's room.
        margin = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMargin, None, header)
        arrow = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize, None, header)
        for column, spec in COLUMNS.items():
            needed = metrics.horizontalAdvance(spec.header) + 2 * margin + arrow
            width = header.sectionSize(column)
            assert width >= needed, f"{spec.header}: {width} px < {needed} px"
        # And every column is on screen: no sideways scrolling to reach Audio.
        shown = sum(header.sectionSize(c) for c in Column)
        assert shown <= view.viewport().width(), (shown, view.viewport().width())
        assert view.horizontalScrollBar().maximum() == 0
        assert window.width() <= 1280 and window.height() <= 800
        # The side panel (targets, join links) is not cut on its right either.
        side = window.side_panel
        content = side.widget().minimumSizeHint().width()
        assert content <= side.viewport().width(), (content, side.viewport().width())
