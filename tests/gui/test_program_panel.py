"""The Program panel with a real relay and a real program: two browser-like sources (red and
blue, tests/program/captures.py), the program to an `ffmpeg -listen 1` receiver. Keys preview,
take, fade and slate; the monitors show the pictures; the rows say where each session is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QMessageBox

from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.program.panel import ProgramPanel
from desktop_relay.gui.program.words import ON_PIP, ON_PREVIEW, ON_PROGRAM, session_marks
from desktop_relay.gui.sessions.columns import Column
from desktop_relay.relay import PipState, ProgramSource, ProgramStatus, RelayConfig

from ..media import RtmpReceiver
from ..program.captures import make_all
from .helpers import OpenWindow, new_session, row_of, streaming, until

CONTROL = "control-token-0123456789abcdef"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory, ffmpeg_exe: str) -> dict[str, Path]:
    return make_all(ffmpeg_exe, tmp_path_factory.mktemp("gui-program-captures"))


def colour(image: QImage | None) -> str:
    """red, blue or other: the mean of the picture's middle."""
    if image is None:
        return "none"
    w, h = image.width(), image.height()
    points = [image.pixelColor(w * x // 8, h * y // 8) for x in (3, 4, 5) for y in (3, 4, 5)]
    r = sum(p.red() for p in points) / len(points)
    g = sum(p.green() for p in points) / len(points)
    b = sum(p.blue() for p in points) / len(points)
    if r > 170 and g < 70 and b < 70:
        return "red"
    if b > 170 and r < 70 and g < 70:
        return "blue"
    return "other"


def program(window: MainWindow) -> ProgramStatus:
    status = window.controller.program_status()
    assert status is not None
    return status


def state_cell(window: MainWindow, session_id: str, role: Qt.ItemDataRole) -> str:
    position = window.model.row_of(session_id)
    assert position is not None
    return str(window.model.index(position, Column.STATE).data(role) or "")


@pytest.mark.media
async def test_keys_preview_take_fade_and_slate_and_the_monitors_show_them(
    open_window: OpenWindow,
    relay_config: RelayConfig,
    rtmp_receiver: Callable[..., RtmpReceiver],
    captures: dict[str, Path],
) -> None:
    receiver = rtmp_receiver("program-gui-0123456789")
    config = replace(relay_config, program_targets=(receiver.url,), control_token=CONTROL)
    async with (
        open_window(config) as window,
        streaming(window) as red_streamer,
        streaming(window) as blue_streamer,
    ):
        # Red first: it is row 1, blue row 2 (the table keeps arrival order).
        red = await new_session(window, red_streamer, "red")
        blue = await new_session(window, blue_streamer, "blue")
        replays = [
            asyncio.create_task(red_streamer.replay(captures["red"], seconds=16)),
            asyncio.create_task(blue_streamer.replay(captures["blue"], seconds=16)),
        ]
        try:
            await until(
                lambda: program(window).live
                and sum(s.state == "live" for s in program(window).sources) == 2,
                20,
                "the program live with both sources",
            )
            panel = window.program_panel
            assert window.side_tabs.currentWidget() is window.program_scroll
            assert panel.controls.isEnabled() and not panel.off_label.isVisible()
            window.activateWindow()
            await until(lambda: QApplication.activeWindow() is window, 5, "the window active")

            # A text field with the focus takes the keys: nothing happens to the show.
            field = window.log_pane.filter_edit
            field.setFocus()
            QTest.keyClick(field, Qt.Key.Key_1)
            QTest.keyClick(field, Qt.Key.Key_Space)
            await asyncio.sleep(0.2)
            assert field.text() == "1 " and program(window).preview is None
            field.clear()
            window.view.setFocus()

            started = time.monotonic()
            QTest.keyClick(window, Qt.Key.Key_1)
            await until(lambda: program(window).preview == red, 5, "red on preview")
            await until(
                lambda: colour(panel.preview_monitor.image) == "red", 10, "red in Preview"
            )
            assert ON_PREVIEW in state_cell(window, red, Qt.ItemDataRole.DisplayRole)
            print(f"preview shown in {time.monotonic() - started:.2f} s")

            started = time.monotonic()
            QTest.keyClick(window, Qt.Key.Key_Space)
            await until(lambda: program(window).source == red, 5, "red taken")
            await until(
                lambda: colour(panel.program_monitor.image) == "red", 10, "red in Program"
            )
            print(f"take shown in {time.monotonic() - started:.2f} s")
            assert ON_PROGRAM in state_cell(window, red, Qt.ItemDataRole.DisplayRole)
            assert ON_PROGRAM in state_cell(window, red, Qt.ItemDataRole.ToolTipRole)
            assert "Live" in panel.state_label.text() and "red" in panel.state_label.text()

            QTest.keyClick(window, Qt.Key.Key_2)
            await until(lambda: program(window).preview == blue, 5, "blue on preview")
            await until(
                lambda: colour(panel.preview_monitor.image) == "blue", 10, "blue in Preview"
            )
            assert ON_PREVIEW in state_cell(window, blue, Qt.ItemDataRole.DisplayRole)
            assert panel.preview_combo.currentData() == blue

            # The slate: on with B (the Program monitor leaves red), off with B again.
            QTest.keyClick(window, Qt.Key.Key_B)
            await until(lambda: program(window).slate_reason == "manual", 5, "the slate")
            await until(lambda: panel.slate_button.isChecked(), 2, "Slate checked")
            await until(
                lambda: colour(panel.program_monitor.image) == "other", 5, "the slate shown"
            )
            QTest.keyClick(window, Qt.Key.Key_B)
            await until(lambda: not program(window).slate, 5, "the slate off")
            await until(
                lambda: colour(panel.program_monitor.image) == "red", 5, "red back in Program"
            )

            # F: the preview taken with the panel's fade; red goes to preview (Studio Mode).
            panel.fade_ms.setValue(300)
            QTest.keyClick(window, Qt.Key.Key_F)
            await until(lambda: program(window).source == blue, 5, "blue taken")
            await until(
                lambda: colour(panel.program_monitor.image) == "blue", 10, "blue in Program"
            )
            assert program(window).preview == red
            assert ON_PROGRAM in state_cell(window, blue, Qt.ItemDataRole.DisplayRole)
            assert ON_PREVIEW in state_cell(window, red, Qt.ItemDataRole.DisplayRole)
            # The program's destination, with its state.
            await until(
                lambda: "live" in panel.destinations_label.text(), 10, "the destination live"
            )
            assert window.banner.isHidden(), "no command failed"
        finally:
            for task in replays:
                task.cancel()
            await asyncio.gather(*replays, return_exceptions=True)
        assert row_of(window, red).program_mark == ON_PREVIEW


async def test_without_a_program_the_panel_says_how_and_the_control_token_rotates(
    open_window: OpenWindow, relay_config: RelayConfig, tmp_path: Path
) -> None:
    config = replace(relay_config, control_token=CONTROL)
    async with open_window(config) as window:
        panel = window.program_panel
        window.side_tabs.setCurrentWidget(window.program_scroll)
        await asyncio.sleep(0.1)
        assert panel.off_label.isVisible() and "--program-url" in panel.off_label.text()
        assert not panel.controls.isEnabled()
        assert not panel.take_button.isEnabled() or not panel.controls.isEnabled()
        assert panel.program_monitor.image is None
        QTest.keyClick(window, Qt.Key.Key_Space)
        assert "program is off" in window.status.currentMessage()
        assert window.banner.isHidden()

        # The control token: masked, copied whole, rotated (asked first) and kept.
        box = panel.token_box
        assert CONTROL not in box.token_label.text() and CONTROL[:4] in box.token_label.text()
        assert box.address.text().endswith("/api/program")
        box.copy_button.click()
        assert QGuiApplication.clipboard().text() == CONTROL
        kept = tmp_path / "control-token"
        window.controller.control_token_file = kept
        box.rotate_button.click()
        question = window.pending_question
        assert question is not None
        question.button(QMessageBox.StandardButton.Yes).click()
        relay = window.controller.relay
        assert relay is not None
        new = relay.control_token
        assert new and new != CONTROL and box.token == new
        assert kept.read_text().strip() == new
        assert window.controller.config.control_token == new


def choose(combo: QComboBox, data: str | None) -> None:
    """As the operator picks an item: it becomes current, then `activated`."""
    index = combo.findData(data)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _status(**changes: object) -> ProgramStatus:
    base = ProgramStatus(
        enabled=True,
        live=True,
        source="a" * 36,
        on_air="a" * 36,
        preview="b" * 36,
        slate=False,
        slate_reason=None,
        pip=None,
        sources=(
            ProgramSource("a" * 36, "stage", "live"),
            ProgramSource("b" * 36, "guest", "live"),
        ),
        width=1280,
        height=720,
        fps=30,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_panel_shows_snapshots_and_asks_only_for_what_the_operator_chooses(
    qapp: QApplication,
) -> None:
    panel = ProgramPanel()
    asked: list[tuple[str, object]] = []
    panel.preview_requested.connect(lambda source: asked.append(("preview", source)))
    panel.slate_requested.connect(lambda on: asked.append(("slate", on)))
    panel.take_requested.connect(lambda: asked.append(("take", None)))
    panel.fade_requested.connect(lambda ms: asked.append(("fade", ms)))
    panel.pip_requested.connect(lambda *pip: asked.append(("pip", pip)))
    panel.show_status(_status())
    panel.show_status(_status(pip=PipState("b" * 36, "tl", "1/3"), preview=None))
    assert asked == [], "showing a snapshot never sends a command"
    assert panel.pip_source.currentData() == "b" * 36
    assert panel.pip_corner.currentData() == "tl" and panel.pip_size.currentData() == "1/3"
    assert "On air: stage" in panel.state_label.text() and "PiP guest" in panel.state_label.text()
    assert not panel.take_button.isEnabled(), "nothing on preview: nothing to take"

    # The operator's choices: a corner moves the PiP, "off" removes it, a preview is asked.
    choose(panel.pip_corner, "br")
    choose(panel.pip_source, None)
    choose(panel.preview_combo, "b" * 36)
    panel.slate_button.click()
    panel.show_status(_status())  # guest on preview again: Take and Fade work
    panel.take_button.click()
    panel.fade_button.click()
    assert asked == [
        ("pip", ("b" * 36, "br", "1/3")),
        ("pip", (None, "br", "1/3")),
        ("preview", "b" * 36),
        ("slate", True),
        ("take", None),
        ("fade", 500),
    ]

    # The slate the operator asked for checks Slate; an automatic one does not.
    panel.show_status(_status(slate=True, slate_reason="stalled", on_air=None))
    assert not panel.slate_button.isChecked()
    assert "the source stalled" in panel.state_label.text()
    panel.show_status(_status(slate=True, slate_reason="manual", on_air=None))
    assert panel.slate_button.isChecked()

    # Off: says how to turn it on, nothing to press.
    panel.show_status(replace(_status(), enabled=False, sources=()))
    assert not panel.controls.isEnabled() and "--program-url" in panel.off_label.text()
    assert session_marks(replace(_status(), enabled=False)) == {}
    assert session_marks(_status(pip=PipState("b" * 36, "br", "1/4"))) == {
        "a" * 36: ON_PROGRAM,
        "b" * 36: ON_PIP,
    }
    panel.deleteLater()
