"""What the operator sees of a stream's health, from real streams made to break one way each:
the Audio column's meter moving (or saying "no audio"), warnings in the State column with
their sentences in its tooltip."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop_relay.gui.sessions.columns import Column
from desktop_relay.relay import HealthCheck

from ..media import FIXTURE_SECONDS, H264_FIXTURE
from ..relay.test_stream_health import make_stream
from .helpers import OpenWindow, new_session, row_of, streaming, until

pytestmark = pytest.mark.media


def cell(window, session_id: str, column: Column, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
    position = window.model.row_of(session_id)
    return window.model.index(position, column).data(role)


async def test_meters_move_and_each_broken_stream_shows_its_warning(
    open_window: OpenWindow, tmp_path: Path, ffmpeg_exe: str
) -> None:
    # As long as the suite's captures (the replay paces by FIXTURE_SECONDS).
    silent_video = make_stream(ffmpeg_exe, tmp_path / "video-only.mkv", audio=False, gop=300,
                               seconds=FIXTURE_SECONDS, container="matroska")
    starved = make_stream(ffmpeg_exe, tmp_path / "300k.mkv", kbps=300, size="1280x720",
                          seconds=FIXTURE_SECONDS, container="matroska")
    async with open_window() as window, streaming(window) as a, streaming(window) as b, \
            streaming(window) as c:
        with_sound = await new_session(window, a, "camera")
        no_sound = await new_session(window, b, "video-only")
        low = await new_session(window, c, "starved")
        replays = [asyncio.create_task(s.replay(path, seconds=11)) for s, path in
                   ((a, H264_FIXTURE), (b, silent_video), (c, starved))]
        try:
            # The meter: a level from the first second, and it moves (the capture beeps).
            await until(lambda: "dB" in str(cell(window, with_sound, Column.AUDIO)), 8, "a level")
            levels = set()
            for _ in range(30):
                levels.add(cell(window, with_sound, Column.AUDIO))
                await asyncio.sleep(0.2)
            assert len(levels) >= 2, levels

            def checks(session_id: str) -> set[HealthCheck]:
                return {w.check for w in row_of(window, session_id).status.health}

            await until(lambda: {HealthCheck.NO_AUDIO, HealthCheck.KEYFRAME_INTERVAL}
                        <= checks(no_sound), 10, "no audio and the keyframe interval")
            await until(lambda: HealthCheck.LOW_BITRATE in checks(low), 10, "the low bitrate")
            await asyncio.sleep(0.6)  # the window's next refresh

            assert cell(window, no_sound, Column.AUDIO) == "no audio"
            assert "\u26a0" in cell(window, no_sound, Column.STATE)
            tip = cell(window, no_sound, Column.STATE, Qt.ItemDataRole.ToolTipRole)
            assert "no sound" in tip and "keyframe" in tip.lower()
            assert "low bitrate" in cell(window, low, Column.STATE)
            # The healthy capture has audio: no "no audio" for it (its 5 s keyframes may warn).
            assert HealthCheck.NO_AUDIO not in checks(with_sound)
            assert HealthCheck.LOW_BITRATE not in checks(with_sound)
        finally:
            for replay in replays:
                replay.cancel()
            await asyncio.gather(*replays, return_exceptions=True)
