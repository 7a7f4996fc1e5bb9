"""Help > About: the version, the ffmpeg the relay runs, where the app keeps things, and the
third-party licences it ships."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__, paths
from ..notices import FfmpegBuild, notices_path, notices_text, relay_ffmpeg_build
from ..relay import RelayConfig, RelayError, default_recordings_dir

LOADING = "Loading…"


@dataclass(frozen=True)
class AboutFacts:
    """What takes a subprocess or file reads to learn: gathered off the GUI thread."""

    ffmpeg: FfmpegBuild | None
    ffmpeg_problem: str  # why `ffmpeg` is None
    notices_file: Path | None
    notices: str


def gather_facts(ffmpeg_path: str | None) -> AboutFacts:
    """Run `ffmpeg -version` (the binary a relay with this setting runs) and read the notices.

    Blocking (a subprocess, maybe generating the notices in a source checkout): both are
    cached after the first call, but call it from a worker thread.
    """
    build: FfmpegBuild | None = None
    problem = ""
    try:
        build = relay_ffmpeg_build(ffmpeg_path)
    except RelayError as exc:
        problem = exc.error.message
    except Exception as exc:  # OSError, a timeout, a non-zero exit: say so, don't crash
        problem = f"could not run ffmpeg -version: {exc}"
    return AboutFacts(
        ffmpeg=build, ffmpeg_problem=problem, notices_file=notices_path(), notices=notices_text()
    )


def places(config: RelayConfig, settings_file: Path | None) -> list[tuple[str, str, str]]:
    """(object name, label, where) of each place the app reads or writes."""
    tls = config.tls
    rows = [
        ("logFile", "Log file", str(paths.log_file())),
        ("settingsFile", "Settings", str(settings_file or paths.config_dir())),
        ("dataFolder", "Pairing token and keys", str(paths.data_dir())),
        ("recordingsFolder", "Recordings", str(config.recordings_dir or default_recordings_dir())),
        (
            "certificate",
            "TLS certificate",
            str(tls.cert) if tls is not None else "none: the relay serves plain http",
        ),
    ]
    if tls is not None and tls.ca_cert is not None:
        rows.append(("caCertificate", "Local CA certificate", str(tls.ca_cert)))
    return rows


class _Bridge(QObject):
    """Carries the worker thread's result to the GUI thread (a queued signal)."""

    done = Signal(object)  # AboutFacts


def _selectable(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    label.setToolTip(text)
    return label


def _read_only_text(name: str, text: str = LOADING) -> QPlainTextEdit:
    edit = QPlainTextEdit(text)
    edit.setObjectName(name)
    edit.setReadOnly(True)
    edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    return edit


class AboutDialog(QDialog):
    """Non-modal About box; what needs ffmpeg or file reads fills in when a worker is done."""

    facts_shown = Signal()

    def __init__(
        self,
        config: RelayConfig,
        settings_file: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Desktop Relay")
        self.setObjectName("aboutDialog")
        self.facts: AboutFacts | None = None

        self.version_label = QLabel(f"<b>Desktop Relay {__version__}</b>")
        self.version_label.setObjectName("aboutVersion")
        blurb = QLabel(
            "Browsers on your network stream their camera, microphone or screen to RTMP(S) "
            "servers or to files, through ffmpeg."
        )
        blurb.setWordWrap(True)

        self.ffmpeg_version = _selectable(LOADING, "ffmpegVersion")
        self.ffmpeg_binary = _selectable(LOADING, "ffmpegBinary")
        self.ffmpeg_configuration = _read_only_text("ffmpegConfiguration")
        self.ffmpeg_configuration.setMaximumHeight(110)
        ffmpeg_box = QGroupBox("ffmpeg (as the relay runs it)")
        ffmpeg_form = QFormLayout(ffmpeg_box)
        ffmpeg_form.addRow("Version", self.ffmpeg_version)
        ffmpeg_form.addRow("Binary", self.ffmpeg_binary)
        ffmpeg_form.addRow("Build configuration", self.ffmpeg_configuration)

        self.place_labels: dict[str, QLabel] = {}
        places_box = QGroupBox("Where things are")
        places_form = QFormLayout(places_box)
        for name, label, where in places(config, settings_file):
            self.place_labels[name] = _selectable(where, name)
            places_form.addRow(label, self.place_labels[name])
        self.notices_label = _selectable(LOADING, "noticesFile")
        places_form.addRow("Third-party notices", self.notices_label)

        about = QWidget()
        about_layout = QVBoxLayout(about)
        about_layout.addWidget(self.version_label)
        about_layout.addWidget(blurb)
        about_layout.addWidget(ffmpeg_box)
        about_layout.addWidget(places_box)
        about_layout.addStretch(1)

        licences = QWidget()
        licences_layout = QVBoxLayout(licences)
        intro = QLabel(
            "Desktop Relay bundles the components below, each under its own licence: the "
            "bundled ffmpeg under the GNU GPL, Qt under the GNU LGPL."
        )
        intro.setWordWrap(True)
        licences_layout.addWidget(intro)
        self.licences_text = _read_only_text("licencesText")
        self.licences_text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        licences_layout.addWidget(self.licences_text)

        self.tabs = QTabWidget()
        self.tabs.addTab(about, "About")
        self.tabs.addTab(licences, "Licences")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)
        self.resize(780, 600)

        self._bridge = _Bridge()
        self._bridge.done.connect(self.show_facts)
        bridge = self._bridge
        threading.Thread(
            target=lambda: bridge.done.emit(gather_facts(config.ffmpeg_path)),
            name="about-facts",
            daemon=True,
        ).start()

    def show_facts(self, facts: AboutFacts) -> None:
        """Fill in ffmpeg's build and the notices."""
        self.facts = facts
        if facts.ffmpeg is not None:
            self.ffmpeg_version.setText(facts.ffmpeg.version)
            self.ffmpeg_binary.setText(facts.ffmpeg.path)
            self.ffmpeg_configuration.setPlainText(facts.ffmpeg.configuration or "(none given)")
        else:
            self.ffmpeg_version.setText(f"unavailable: {facts.ffmpeg_problem}")
            self.ffmpeg_binary.setText("none")
            self.ffmpeg_configuration.setPlainText("")
        self.ffmpeg_binary.setToolTip(self.ffmpeg_binary.text())
        where = str(facts.notices_file) if facts.notices_file else "none shipped with this copy"
        self.notices_label.setText(where)
        self.notices_label.setToolTip(where)
        self.licences_text.setPlainText(facts.notices)
        self.facts_shown.emit()
