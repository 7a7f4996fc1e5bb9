"""Choosing an RTMP target: a service preset, its server and a stream key hidden by default."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from ..relay import TargetError, validate_target
from .target_presets import (
    PRESETS,
    RECORDING,
    SRT_SERVER,
    TYPED_SERVERS,
    Preset,
    guess_preset,
    join_target,
    preset_by_id,
)


class TargetWidget(QWidget):
    """Preset, server and key fields; `target()` validates and joins them."""

    changed = Signal()

    def __init__(self, *, allow_recording: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preset_combo = QComboBox()
        # Narrow side panel: long service names are cut in the closed box, not the panel.
        self.preset_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.preset_combo.setMinimumContentsLength(14)
        for preset in PRESETS:
            if preset is RECORDING and not allow_recording:
                continue
            self.preset_combo.addItem(preset.label, preset.id)
        self.server_edit = QLineEdit()
        self.server_edit.setPlaceholderText("rtmp://host/app")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("stream key")
        self.show_key = QCheckBox("Show")
        self.show_key.setToolTip("Show the stream key")
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #dc3c3c;")  # reads on light and dark
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        key_row = QHBoxLayout()
        key_row.setContentsMargins(0, 0, 0, 0)
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.show_key)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Service", self.preset_combo)
        form.addRow("Server", self.server_edit)
        form.addRow("Stream key", key_row)
        form.addRow(self.error_label)
        self._form = form

        self.preset_combo.currentIndexChanged.connect(self._preset_changed)
        self.show_key.toggled.connect(self._toggle_key)
        self.server_edit.textEdited.connect(self._edited)
        self.key_edit.textEdited.connect(self._edited)
        self._preset_changed()

    @property
    def preset(self) -> Preset:
        """The chosen preset."""
        return preset_by_id(str(self.preset_combo.currentData()))

    def set_preset(self, preset_id: str) -> None:
        """Choose a preset (its server fills the server field)."""
        index = self.preset_combo.findData(preset_id)
        self.preset_combo.setCurrentIndex(max(0, index))

    def set_target(self, url: str | None) -> None:
        """Show an existing target (None: local recording)."""
        if url is None:
            self.set_preset(RECORDING.id)
            return
        preset, server, key = guess_preset(url)
        self.set_preset(preset.id)
        self.server_edit.setText(server)
        self.key_edit.setText(key)

    def set_fields(self, preset_id: str, server: str, key: str) -> None:
        """Restore saved fields."""
        self.set_preset(preset_id)
        if server:
            self.server_edit.setText(server)
        self.key_edit.setText(key)

    def target(self) -> str | None:
        """The validated target URL, None for a local recording; raises TargetError."""
        if self.preset is RECORDING:
            return None
        server = self.server_edit.text().strip()
        if not server:
            raise TargetError("needs a server address")
        return validate_target(join_target(server, self.key_edit.text()))

    def check(self) -> str | None:
        """`target()`, showing the problem under the fields instead of raising.

        Returns the URL, or None for local recording; raises TargetError as well, so that
        callers can tell "recording" from "invalid".
        """
        try:
            url = self.target()
        except TargetError as exc:
            self.error_label.setText(f"The target {exc}.")
            self.error_label.show()
            raise
        self.error_label.hide()
        return url

    # ---- internals -------------------------------------------------------------------

    def _preset_changed(self) -> None:
        preset = self.preset
        recording = preset is RECORDING
        self.server_edit.setEnabled(not recording)
        self.key_edit.setEnabled(not recording)
        self.show_key.setEnabled(not recording)
        if preset.server:
            self.server_edit.setText(preset.server)
        elif preset in TYPED_SERVERS and self.server_edit.text() in {p.server for p in PRESETS}:
            self.server_edit.clear()
        srt = preset is SRT_SERVER
        self.server_edit.setPlaceholderText("srt://host:port" if srt else "rtmp://host/app")
        self.key_edit.setPlaceholderText("streamid=...&passphrase=..." if srt else "stream key")
        self.error_label.hide()
        self.changed.emit()

    def _toggle_key(self, shown: bool) -> None:
        self.key_edit.setEchoMode(
            QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        )

    def _edited(self) -> None:
        self.error_label.hide()
        self.changed.emit()
