"""Change target… for one session: its ffmpeg restarts on the chosen target."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from ..relay import TargetError
from .target_widget import TargetWidget


class TargetDialog(QDialog):
    """Asks for a new target; after `accepted`, `target_url` holds it (None: record)."""

    def __init__(
        self, session_label: str, current: str | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Change target of {session_label}")
        self.target_url: str | None = None
        self.target_widget = TargetWidget(allow_recording=True)
        # The current target arrives masked: show it, but do not prefill a masked key.
        now = QLabel(f"Now: {current or 'local recording'}")
        now.setWordWrap(True)
        note = QLabel("The session's ffmpeg restarts on the new target; viewers see a short gap.")
        note.setWordWrap(True)
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Change target")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(now)
        layout.addWidget(self.target_widget)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(460, self.sizeHint().height())

    def _accept(self) -> None:
        try:
            self.target_url = self.target_widget.check()
        except TargetError:
            return
        self.accept()
