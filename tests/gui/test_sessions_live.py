"""Live sessions in the window: real clients, real ffmpeg, the sessions table and the log pane."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from desktop_relay.gui.log_store import LineKind
from desktop_relay.gui.sessions.model import Column
from desktop_relay.relay import RelayConfig

from ..media import H264_FIXTURE, probe
from ..procs import ffmpeg_descendants, pid_alive
from ..relay.test_media import stand_in_ffmpeg
from .helpers import OpenWindow, frames, new_session, only_row, pid_of, row_of, streaming, until

pytestmark = pytest.mark.media


async def test_row_appears_and_frame_counter_rises(open_window: OpenWindow) -> None:
    async with open_window() as window, streaming(window) as streamer:
        await until(lambda: window.model.rowCount() == 1, 5, "the session's row")
        assert await streamer.start({"framerate": 30, "name": "stage-cam"})
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=6))
        await until(lambda: frames(only_row(window)) > 0, 10, "ffmpeg's first frames")
        first = frames(only_row(window))
        await until(lambda: frames(only_row(window)) >= first + 20, 5, "the counter to rise")
        assert str(only_row(window).status.state) == "live"
        name = window.model.data(window.model.index(0, Column.SESSION)).split("\n")[0]
        assert name == "stage-cam"  # (its second line: address and browser)
        assert window.model.data(window.model.index(0, Column.STATE)) == "live"
        shown = window.model.data(window.model.index(0, Column.FRAMES))
        assert int(shown.replace(",", "")) >= first
        assert window.status.live_label.text() == "1 live"
        # The derived fps is shown once a second of output is behind (none before: ffmpeg's
        # first values mean nothing, see ProgressParser).
        await until(lambda: window.model.data(window.model.index(0, Column.FPS)), 5, "fps")
        await replay
        await streamer.stop()


async def test_log_pane_shows_the_selected_sessions_ffmpeg_lines(
    open_window: OpenWindow, tmp_path: Path
) -> None:
    async with (
        open_window() as window,
        streaming(window) as first,
        streaming(window) as second,
    ):
        one = await new_session(window, first, "one")
        two = await new_session(window, second, "two")
        replays = [asyncio.create_task(s.replay(H264_FIXTURE, seconds=4)) for s in (first, second)]
        await until(lambda: pid_of(window, one) and pid_of(window, two), 10, "both ffmpeg")
        pid_one, pid_two = pid_of(window, one), pid_of(window, two)

        assert window.view.select_session(one)
        pane = window.log_pane
        await until(lambda: "[ffmpeg] Input #0" in pane.shown_text(), 10, "ffmpeg's lines")
        assert f"ffmpeg {pid_one} started" in pane.shown_text()
        assert f"ffmpeg {pid_two} started" not in pane.shown_text()

        assert window.view.select_session(two)
        await until(lambda: f"ffmpeg {pid_two} started" in pane.shown_text(), 5, "the other")
        assert f"ffmpeg {pid_one} started" not in pane.shown_text()

        pane.filter_edit.setText("Stream #")  # filtering applies once typing pauses
        await until(
            lambda: (
                pane.shown_text()
                and all("Stream #" in line for line in pane.shown_text().splitlines())
            ),
            2,
            "the filter",
        )
        saved = tmp_path / "two.log"
        pane.save_to(saved)
        assert "Stream #" in saved.read_text()
        pane.copy()
        assert "Stream #" in QGuiApplication.clipboard().text()
        pane.filter_edit.clear()

        await asyncio.gather(*replays)
        await second.stop()
        await second.close()
        # The relay forgets the session; its row and log stay until dismissed.
        await until(lambda: row_of(window, two).ended, 10, "the session to end")
        await until(lambda: "Session ended" in pane.shown_text(), 2, "the end in the log")
        assert "[ffmpeg]" in pane.shown_text()
        assert any(line.kind == LineKind.FFMPEG for line in window.logs.lines(two))
        await first.stop()


async def test_kill_ends_ffmpeg_and_the_row_shows_it(open_window: OpenWindow) -> None:
    async with (
        open_window() as window,
        streaming(window) as first,
        streaming(window) as second,
    ):
        one = await new_session(window, first, "one")
        two = await new_session(window, second, "two")
        replays = [asyncio.create_task(s.replay(H264_FIXTURE, seconds=8)) for s in (first, second)]
        try:
            await until(lambda: pid_of(window, one) and pid_of(window, two), 10, "both ffmpeg")
            pid_one, pid_two = pid_of(window, one), pid_of(window, two)
            assert pid_one and pid_two

            # Delete on the table kills the selected session.
            window.activateWindow()
            window.view.setFocus()
            assert window.view.select_session(one)
            QTest.keyClick(window.view, Qt.Key.Key_Delete)
            await until(lambda: not pid_alive(pid_one), 10, "ffmpeg of the killed session")
            await until(lambda: row_of(window, one).ended, 5, "the killed row to end")
            view_row = window.view.proxy.mapFromSource(
                window.model.index(window.model.row_of(one) or 0, Column.STATE)
            )
            assert view_row.data() == "killed"
            assert any(e.get("name") == "KILLED_BY_OPERATOR" for e in first.errors)
            assert pid_alive(pid_two)

            # Kill all asks first.
            window.kill_all_action.trigger()
            question = window.pending_question
            assert question is not None
            question.button(QMessageBox.StandardButton.Yes).click()
            await until(lambda: not pid_alive(pid_two), 10, "ffmpeg of the other session")
            await until(lambda: row_of(window, two).ended, 5, "the other row to end")
            assert window.model.live_count() == 0
        finally:
            for task in replays:
                task.cancel()
            await asyncio.gather(*replays, return_exceptions=True)


async def test_failed_session_shows_its_reason_until_dismissed(
    open_window: OpenWindow, relay_config: RelayConfig, tmp_path: Path
) -> None:
    # An encoder that crashes at once, every time it is restarted: the session fails. (An
    # unreachable target no longer fails a session: its output keeps retrying, issue 11.)
    crasher = stand_in_ffmpeg(tmp_path, "crash", "echo 'Segmentation fault' >&2\nexit 3")
    config = replace(relay_config, ffmpeg_path=str(crasher))
    async with open_window(config) as window, streaming(window) as streamer:
        session = await new_session(window, streamer, "doomed")
        await streamer.replay(H264_FIXTURE, seconds=6)
        await until(lambda: row_of(window, session).failed, 10, "the failure")
        await streamer.close()
        await until(lambda: row_of(window, session).ended, 10, "the session to end")

        position = window.model.row_of(session)
        assert position is not None
        state = window.model.index(position, Column.STATE)
        assert str(state.data()).startswith("failed: ")
        assert "RTMP" in str(state.data()) or "ffmpeg" in str(state.data())
        assert state.data(Qt.ItemDataRole.ForegroundRole) is not None
        assert state.data(Qt.ItemDataRole.BackgroundRole) is not None
        assert window.banner.isVisible()
        assert any("doomed" in m for m in window.banner.messages)

        await asyncio.sleep(1.2)  # a few refreshes later, it is still there
        assert window.model.row(session) is not None
        window.view.select_session(session)
        window.dismiss_action.trigger()
        assert window.model.row(session) is None


async def test_quitting_stops_sessions_gracefully_and_leaves_no_ffmpeg(
    open_window: OpenWindow, tmp_path: Path
) -> None:
    async with open_window() as window, streaming(window) as streamer:
        session = await new_session(window, streamer, "last")
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=10))
        try:
            await until(lambda: frames(row_of(window, session)) > 10, 10, "frames")
            pid = pid_of(window, session)
            assert pid is not None
            window.close()  # live sessions: it asks first
            question = window.pending_question
            assert question is not None and window.isVisible()
            question.button(QMessageBox.StandardButton.Yes).click()
            await until(lambda: not window.isVisible(), 20, "the window to close")
            assert not pid_alive(pid)
            assert not ffmpeg_descendants()
        finally:
            replay.cancel()
            await asyncio.gather(replay, return_exceptions=True)
    recordings = list((tmp_path / "recordings").glob("*.mkv"))
    assert len(recordings) == 1
    assert probe(recordings[0]).video_frames > 10  # ffmpeg flushed a readable file
