"""The Settings dialog: listen address, limits, client targets, ffmpeg, recordings, logging."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..relay import PatternError, TlsFiles, check_pattern, default_recordings_dir, lan_addresses
from .settings import LOG_LEVELS, GuiSettings


class SettingsDialog(QDialog):
    """Edits a `GuiSettings`; `settings_chosen` carries the result when OK is pressed."""

    settings_chosen = Signal(object)  # GuiSettings

    def __init__(self, settings: GuiSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._original = settings

        self.host_combo = QComboBox()
        self.host_combo.setEditable(True)
        self.host_combo.addItems(["0.0.0.0", "127.0.0.1", *lan_addresses()])
        self.host_combo.setCurrentText(settings.host)
        self.host_combo.setToolTip(
            "0.0.0.0 accepts browsers from every network interface; 127.0.0.1 only this computer"
        )
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("any free port")
        self.port_spin.setValue(settings.port)
        self.max_spin = QSpinBox()
        self.max_spin.setRange(0, 256)
        self.max_spin.setSpecialValueText("unlimited")
        self.max_spin.setValue(settings.max_streams or 0)
        self.allow_client = QCheckBox("Browsers may choose their own target, if it matches:")
        self.pattern_edit = QLineEdit(settings.allowed_target_pattern or "")
        self.pattern_edit.setPlaceholderText(r"rtmps?://live\.example\.com/app/.*")
        self.allow_client.setChecked(settings.allowed_target_pattern is not None)
        self.ffmpeg_edit = QLineEdit(settings.ffmpeg_path or "")
        self.ffmpeg_edit.setPlaceholderText("bundled ffmpeg")
        self.recordings_edit = QLineEdit(settings.recordings_dir or "")
        self.recordings_edit.setPlaceholderText(str(default_recordings_dir()))
        self.cert_edit = QLineEdit(settings.tls_cert or "")
        self.cert_edit.setPlaceholderText("the relay's own (generated) certificate")
        self.key_edit = QLineEdit(settings.tls_key or "")
        self.key_edit.setPlaceholderText("key of your certificate (PEM)")
        self.level_combo = QComboBox()
        self.level_combo.addItems(LOG_LEVELS)
        self.level_combo.setCurrentText(settings.log_level)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #dc3c3c;")  # reads on light and dark
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        note = QLabel(
            "Changing the address, port, limits, client targets, ffmpeg, the recording "
            "folder or the certificate restarts the relay: live sessions end. The log level "
            "applies at once."
        )
        note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Bind address", self.host_combo)
        form.addRow("Port", self.port_spin)
        form.addRow("Max streams", self.max_spin)
        form.addRow(self.allow_client)
        form.addRow("Target pattern", self.pattern_edit)
        form.addRow("ffmpeg", self._with_browse(self.ffmpeg_edit, self._browse_ffmpeg))
        form.addRow("Recording folder", self._with_browse(self.recordings_edit, self._browse_dir))
        form.addRow(
            "Certificate",
            self._with_browse(self.cert_edit, lambda: self._browse_pem(self.cert_edit)),
        )
        form.addRow(
            "Certificate key",
            self._with_browse(self.key_edit, lambda: self._browse_pem(self.key_edit)),
        )
        form.addRow("Log level", self.level_combo)
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.allow_client.toggled.connect(self.pattern_edit.setEnabled)
        self.pattern_edit.setEnabled(self.allow_client.isChecked())
        self.resize(520, self.sizeHint().height())

    def chosen(self) -> GuiSettings:
        """The settings as edited (not validated)."""
        pattern = self.pattern_edit.text().strip() if self.allow_client.isChecked() else ""
        return replace(
            self._original,
            host=self.host_combo.currentText().strip() or "0.0.0.0",
            port=self.port_spin.value(),
            max_streams=self.max_spin.value() or None,
            allowed_target_pattern=pattern or None,
            ffmpeg_path=self.ffmpeg_edit.text().strip() or None,
            recordings_dir=self.recordings_edit.text().strip() or None,
            log_level=self.level_combo.currentText(),
            tls_cert=self.cert_edit.text().strip() or None,
            tls_key=self.key_edit.text().strip() or None,
        )

    def validate(self) -> str | None:
        """Why the edited settings cannot be used, or None."""
        settings = self.chosen()
        if self.allow_client.isChecked() and not settings.allowed_target_pattern:
            return "Give the pattern client targets must match, or untick the option."
        if settings.allowed_target_pattern:
            try:
                check_pattern(settings.allowed_target_pattern)
            except PatternError as exc:
                return f"The target pattern is not a usable regular expression: {exc}"
        if bool(settings.tls_cert) != bool(settings.tls_key):
            return "Give both the certificate and its key, or neither."
        if settings.tls_cert and settings.tls_key:
            try:
                TlsFiles(Path(settings.tls_cert), Path(settings.tls_key)).context()
            except ValueError as exc:
                return f"The certificate cannot be used: {exc}"
        return None

    def _accept(self) -> None:
        problem = self.validate()
        if problem:
            self.error_label.setText(problem)
            self.error_label.show()
            return
        self.settings_chosen.emit(self.chosen())
        self.accept()

    @staticmethod
    def _with_browse(edit: QLineEdit, browse: object) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        row.addWidget(button)
        return box

    def _browse_ffmpeg(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "ffmpeg executable", self.ffmpeg_edit.text())
        if chosen:
            self.ffmpeg_edit.setText(chosen)

    def _browse_pem(self, edit: QLineEdit) -> None:
        chosen, _ = QFileDialog.getOpenFileName(
            self, "PEM file", edit.text(), "PEM files (*.pem *.crt *.key);;All files (*)"
        )
        if chosen:
            edit.setText(chosen)

    def _browse_dir(self) -> None:
        start = self.recordings_edit.text() or str(default_recordings_dir())
        chosen = QFileDialog.getExistingDirectory(self, "Recording folder", start)
        if chosen:
            self.recordings_edit.setText(chosen)
