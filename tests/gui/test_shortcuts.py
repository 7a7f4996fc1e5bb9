"""Keyboard shortcuts: every action has the key the table gives it, and the keys act."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.shortcuts import SHORTCUTS, key_of, shortcuts_html

from .helpers import until
from .test_models import snapshot

OpenWindow = Callable[..., AbstractAsyncContextManager[MainWindow]]

_ACTIONS = {
    "change_target": "change_target_action",
    "kill": "kill_action",
    "kill_all": "kill_all_action",
    "dismiss": "dismiss_action",
    "clear_ended": "clear_ended_action",
    "copy_join_link": "copy_link_action",
    "find_in_log": "find_action",
    "settings": "settings_action",
    "restart": "restart_action",
    "shortcuts": "shortcuts_action",
    "quit": "quit_action",
    "take": "take_action",
    "fade": "fade_action",
    "slate": "slate_action",
}


async def test_each_action_has_its_key_and_the_keys_act(open_window: OpenWindow) -> None:
    async with open_window() as window:
        for name, attribute in _ACTIONS.items():
            assert getattr(window, attribute).shortcut() == key_of(name), name
        assert set(SHORTCUTS) == set(_ACTIONS) | {"select_session", "preview_session"}
        # Every key in the help's list, in the platform's spelling.
        assert all(what in shortcuts_html() for _, what in SHORTCUTS.values())

        window.activateWindow()
        await until(lambda: QApplication.activeWindow() is window, 5, "the window active")
        for uuid in ("a" * 36, "b" * 36, "c" * 36):
            window.model.upsert(snapshot(uuid))
        QTest.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
        assert window.view.current_session() == "b" * 36
        QTest.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
        assert window.view.current_session() == "c" * 36

        QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        await asyncio.sleep(0.05)
        assert window.log_pane.filter_edit.hasFocus()

        modifiers = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        QTest.keyClick(window, Qt.Key.Key_C, modifiers)
        assert QGuiApplication.clipboard().text() == window.join_panel.urls[0]

        QTest.keyClick(window, Qt.Key.Key_F1)
        box = window.findChild(type(window.show_shortcuts()))
        assert box is not None and "Kill every session" in box.text()
