"""Help > About: version, the ffmpeg the relay runs, where things live, the licences."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_relay import __version__, paths
from desktop_relay.gui.about_dialog import LOADING, AboutDialog
from desktop_relay.gui.help_menu import settings_file_of
from desktop_relay.gui.main_window import MainWindow
from desktop_relay.relay import RelayConfig, TlsFiles
from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg

from .helpers import OpenWindow, until

FACTS_TIMEOUT_MS = 60_000  # a source checkout generates its notices on first use


def open_dialog(
    qtbot: QtBot, config: RelayConfig, settings_file: Path | None = None
) -> AboutDialog:
    dialog = AboutDialog(config, settings_file)
    qtbot.addWidget(dialog)
    # Nothing slow ran in the constructor: ffmpeg and the notices come from a worker thread.
    assert dialog.facts is None
    assert dialog.ffmpeg_version.text() == LOADING
    dialog.show()
    qtbot.waitUntil(lambda: dialog.facts is not None, timeout=FACTS_TIMEOUT_MS)
    return dialog


def test_about_shows_version_ffmpeg_places_and_licences(qtbot: QtBot, tmp_path: Path) -> None:
    tls = TlsFiles(
        tmp_path / "tls" / "server.crt",
        tmp_path / "tls" / "server.key",
        tmp_path / "tls" / "ca.crt",
    )
    config = RelayConfig(recordings_dir=tmp_path / "recordings", tls=tls)
    settings_file = tmp_path / "settings" / "desktop-relay.ini"
    dialog = open_dialog(qtbot, config, settings_file)

    assert __version__ in dialog.version_label.text()
    # The ffmpeg a relay with this config runs: imageio-ffmpeg's, as the relay resolves it.
    binary = resolve_ffmpeg(None)
    version_line = subprocess.run(
        [binary, "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    assert dialog.ffmpeg_version.text() == version_line
    assert dialog.ffmpeg_version.text().startswith("ffmpeg version ")
    assert dialog.ffmpeg_binary.text() == binary
    assert "--enable-gpl" in dialog.ffmpeg_configuration.toPlainText()

    places = {name: label.text() for name, label in dialog.place_labels.items()}
    assert places["logFile"] == str(paths.log_file())
    assert places["settingsFile"] == str(settings_file)
    assert places["dataFolder"] == str(paths.data_dir())
    assert places["recordingsFolder"] == str(tmp_path / "recordings")
    assert places["certificate"] == str(tls.cert)
    assert places["caCertificate"] == str(tls.ca_cert)

    licences = dialog.licences_text.toPlainText()
    assert dialog.facts is not None and licences == dialog.facts.notices
    assert "GNU GENERAL PUBLIC LICENSE" in licences
    assert "LGPL" in licences
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in licences
    assert "mediabunny" in licences
    assert version_line in licences  # the bundled ffmpeg's build, in the notices too
    assert dialog.licences_text.isReadOnly()
    assert Path(dialog.notices_label.text()).is_file()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg on PATH")
def test_about_shows_the_configured_ffmpeg(qtbot: QtBot) -> None:
    system = shutil.which("ffmpeg")
    assert system is not None
    dialog = open_dialog(qtbot, RelayConfig(ffmpeg_path=system, tls=None))
    expected = subprocess.run(
        [system, "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    assert dialog.ffmpeg_version.text() == expected
    assert dialog.ffmpeg_binary.text() == system
    assert dialog.place_labels["certificate"].text().startswith("none")
    assert "caCertificate" not in dialog.place_labels


def test_about_says_when_ffmpeg_is_missing(qtbot: QtBot, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-ffmpeg")
    dialog = open_dialog(qtbot, RelayConfig(ffmpeg_path=missing))
    assert dialog.ffmpeg_version.text().startswith("unavailable: ")
    assert missing in dialog.ffmpeg_version.text()
    assert "GNU GENERAL PUBLIC LICENSE" in dialog.licences_text.toPlainText()


def about_dialog(window: MainWindow) -> AboutDialog | None:
    dialog = window.findChild(AboutDialog)
    return dialog if dialog is not None and dialog.isVisible() else None


async def test_help_about_opens_one_dialog_for_the_running_relay(
    open_window: OpenWindow, tmp_path: Path
) -> None:
    async with open_window() as window:
        actions = {a.objectName(): a for a in window.help_menu.actions()}
        actions["aboutAction"].trigger()
        await until(lambda: about_dialog(window) is not None, 10, "the About dialog")
        dialog = about_dialog(window)
        assert dialog is not None
        await until(lambda: dialog.facts is not None, FACTS_TIMEOUT_MS / 1000, "its facts")
        config = window.controller.config
        certificate = str(config.tls.cert) if config.tls else "none: the relay serves plain http"
        assert dialog.place_labels["certificate"].text() == certificate
        assert dialog.place_labels["recordingsFolder"].text() == str(config.recordings_dir)
        # The window's own settings file (the test's temporary one), not a guess.
        settings_file = settings_file_of(window)
        assert settings_file is not None and settings_file.is_relative_to(tmp_path)
        assert dialog.place_labels["settingsFile"].text() == str(settings_file)
        assert dialog.ffmpeg_version.text().startswith("ffmpeg version ")
        # A second Help > About raises the open dialog instead of stacking another.
        actions["aboutAction"].trigger()
        assert len([d for d in window.findChildren(AboutDialog) if d.isVisible()]) == 1
        dialog.close()
        await until(lambda: about_dialog(window) is None, 10, "the dialog to close")
