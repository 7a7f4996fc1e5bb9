"""Settings: edited in the dialog, applied by restarting the relay, kept across restarts."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from desktop_relay.gui.app import startup_config
from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.relay_controller import RelayController
from desktop_relay.gui.settings import SettingsStore
from desktop_relay.gui.settings_dialog import SettingsDialog
from desktop_relay.relay import RelayConfig

from .conftest import close_window, make_store
from .helpers import OpenWindow, accept_restart, until

PATTERN = r"rtmp://127\.0\.0\.1:\d+/live/.*"


@pytest.fixture(autouse=True)
def keep_log_level() -> Iterator[None]:
    """The dialog's log level applies to the process's root logger: restore it."""
    loggers = [logging.getLogger(), logging.getLogger("desktop_relay.relay")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def settings_dialog(window: object) -> SettingsDialog:
    dialog = getattr(window, "dialog", None)
    assert isinstance(dialog, SettingsDialog)
    return dialog


async def test_settings_restart_the_relay_and_persist_across_a_window_restart(
    open_window: OpenWindow, settings_path: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    async with open_window(store=make_store(settings_path)) as window:
        first_relay = window.controller.relay
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        assert dialog.host_combo.currentText() == "127.0.0.1"  # the running config
        dialog.max_spin.setValue(3)
        dialog.allow_client.setChecked(True)
        dialog.pattern_edit.setText(PATTERN)
        dialog.recordings_edit.setText(str(elsewhere))
        dialog.level_combo.setCurrentText("WARNING")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

        assert logging.getLogger().level == logging.WARNING  # at once, no restart
        assert logging.getLogger("desktop_relay.relay").level == logging.WARNING
        question = window.pending_question
        assert question is not None, "a change that needs a restart must say so"
        assert "max streams" in question.text()
        assert window.controller.relay is first_relay  # nothing restarted before asking
        relay = await accept_restart(window, question, first_relay)
        assert relay.config.max_ffmpeg_instances == 3
        assert relay.config.allowed_target_pattern == PATTERN
        assert relay.config.recordings_dir == elsewhere
        assert window.status.address_label.text().startswith("Listening on http://127.0.0.1:")

    # A new window, as after quitting and starting the app again.
    store = make_store(settings_path)
    config = startup_config(store, RelayConfig())
    assert config.host == "127.0.0.1" and config.port == 0
    assert config.max_ffmpeg_instances == 3
    assert config.allowed_target_pattern == PATTERN
    assert config.recordings_dir == elsewhere
    assert config.log_level == "WARNING"
    async with open_window(config=config, store=store) as window:
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        assert dialog.max_spin.value() == 3
        assert dialog.allow_client.isChecked() and dialog.pattern_edit.text() == PATTERN
        assert dialog.recordings_edit.text() == str(elsewhere)
        assert dialog.level_combo.currentText() == "WARNING"
        dialog.reject()


async def test_a_setting_without_restart_applies_silently(open_window: OpenWindow) -> None:
    async with open_window() as window:
        relay = window.controller.relay
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        dialog.level_combo.setCurrentText("ERROR")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert window.pending_question is None
        assert window.controller.relay is relay
        assert logging.getLogger().level == logging.ERROR
        # Opened again, the dialog shows what was chosen (it read the old config before).
        assert window.controller.config.log_level == "ERROR"
        window.settings_action.trigger()
        assert settings_dialog(window).level_combo.currentText() == "ERROR"


async def test_an_invalid_pattern_is_refused_in_the_dialog(open_window: OpenWindow) -> None:
    async with open_window() as window:
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        dialog.allow_client.setChecked(True)
        dialog.pattern_edit.setText("rtmp://(unclosed")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert dialog.isVisible()
        assert "regular expression" in dialog.error_label.text()
        dialog.reject()


async def test_a_busy_port_is_reported_and_a_new_port_restarts_the_relay(
    qapp: object, settings_store: SettingsStore, relay_config: RelayConfig
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        controller = RelayController(replace(relay_config, port=port))
        window = MainWindow(controller, settings_store)
        window.show()
        try:
            assert not await controller.start()
            assert window.banner.isVisible()
            assert f"127.0.0.1:{port}" in window.banner.messages[-1]
            assert window.status.address_label.text() == "Not listening"

            window.settings_action.trigger()
            dialog = settings_dialog(window)
            dialog.port_spin.setValue(0)
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
            # Nothing was running, so nothing to lose: it restarts without asking.
            assert window.pending_question is None
            await until(lambda: controller.running, 10, "the relay to start on the new port")
            assert window.join_panel.urls and window.join_panel.qr_url
        finally:
            await close_window(window)


async def test_quitting_during_a_restart_leaves_no_relay_listening(
    open_window: OpenWindow,
) -> None:
    async with open_window() as window:
        window.restart_action.trigger()
        window.quit()  # at once, while the restart runs
        await until(lambda: not window.isVisible(), 10, "the window to close")
        assert window.controller.relay is None and not window.controller.running


async def test_own_certificate_is_checked_then_served_after_a_restart(
    open_window: OpenWindow, settings_path: Path, tmp_path: Path
) -> None:
    import ssl

    import aiohttp

    from desktop_relay.relay.security.tls import ensure_certificate

    own = ensure_certificate(tmp_path / "own", ["127.0.0.1"])
    async with open_window(store=make_store(settings_path)) as window:
        first_relay = window.controller.relay
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        dialog.cert_edit.setText(str(own.cert))
        ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.click()
        assert dialog.isVisible() and "both the certificate and its key" in dialog.error_label.text()
        dialog.key_edit.setText(str(tmp_path / "missing.key"))
        ok.click()
        assert dialog.isVisible() and "cannot be used" in dialog.error_label.text()
        dialog.key_edit.setText(str(own.key))
        ok.click()
        question = window.pending_question
        assert question is not None and "certificate" in question.text()
        await accept_restart(window, question, first_relay)
        port = window.controller.listen_address[1]  # type: ignore[index]
        ctx = ssl.create_default_context(cafile=str(own.ca_cert))
        url = f"https://127.0.0.1:{port}/api/info"
        async with aiohttp.ClientSession() as http, http.get(url, ssl=ctx) as resp:
            assert resp.status == 200
    assert make_store(settings_path).load().tls_key == str(own.key)
