"""The default target: where sessions go when they start (unless a browser may choose)."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..relay import TargetError, mask_target
from .settings import SettingsStore
from .target_widget import RECORDING, TargetWidget, guess_preset, join_target


def saved_default_target(store: SettingsStore) -> str | None:
    """The saved default target, or None (also when a service's key could not be kept)."""
    settings = store.load()
    if settings.target_preset == RECORDING.id or not settings.target_server:
        return None
    key = store.load_stream_key()
    if not key:
        # The key is kept apart from the settings file; without it the URL would only fail
        # at the service: record instead, and let the operator type it again.
        return None
    return join_target(settings.target_server, key)


class TargetPanel(QGroupBox):
    """Edits the default target; Apply hands it to the relay and saves it."""

    applied = Signal(object)  # str | None: the new default target
    message = Signal(str)

    def __init__(self, store: SettingsStore, parent: QWidget | None = None) -> None:
        super().__init__("Default target for new sessions", parent)
        self._store = store
        self._warned: str | None = None
        self.target_widget = TargetWidget(allow_recording=True)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Sessions that start from now on go to this target")
        self.current_label = QLabel()
        self.current_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.current_label, 1)
        row.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.target_widget)
        layout.addLayout(row)
        self.apply_button.clicked.connect(self.apply)
        self.target_widget.changed.connect(lambda: self.apply_button.setDefault(True))

    def show_target(self, url: str | None) -> None:
        """Fill the fields from the relay's current default target."""
        settings = self._store.load()
        if url is None and settings.target_preset != RECORDING.id:
            # A saved service whose key is gone: keep the fields for typing the key again.
            self.target_widget.set_fields(settings.target_preset, settings.target_server, "")
        else:
            self.target_widget.set_target(url)
        self._show_current(url)

    def apply(self) -> bool:
        """Validate, then announce and persist the target; False if it is invalid."""
        try:
            url = self.target_widget.check()
        except TargetError:
            return False
        self.applied.emit(url)
        settings = self._store.load()
        preset = self.target_widget.preset
        server, key = ("", "") if url is None else guess_preset(url)[1:]
        self._store.save(replace(settings, target_preset=preset.id, target_server=server))
        warning = self._store.save_stream_key(key)
        if warning and warning != self._warned:
            self._warned = warning  # once: it does not change until the app restarts
            self.message.emit(warning)
        self.apply_button.setDefault(False)
        self._show_current(url)
        return True

    def _show_current(self, url: str | None) -> None:
        where = mask_target(url) if url else "a local recording (no target)"
        self.current_label.setText(f"New sessions go to {where}")
