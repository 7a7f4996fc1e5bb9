"""The control API's token in the window: masked, with Copy and New token (like the pairing
token in the join panel). Stream Deck / Companion and scripts send it as a bearer token."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .words import mask_token


class ControlTokenBox(QGroupBox):
    """The token masked, the API's address, Copy and New token."""

    copied = Signal()
    rotate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Control API", parent)
        self._token: str | None = None
        self.token_label = QLabel()
        self.token_label.setAccessibleName("Control token (masked)")
        self.token_label.setWordWrap(True)
        self.token_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A field, as the join links are: a long address scrolls, the panel stays narrow.
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setMinimumWidth(120)
        self.address.setAccessibleName("Control API address")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the whole control token")
        self.copy_button.clicked.connect(self.copy)
        self.rotate_button = QPushButton("New token")
        self.rotate_button.setToolTip(
            "Make a new control token: controllers (Stream Deck, scripts) need the new one"
        )
        self.rotate_button.clicked.connect(self.rotate_requested.emit)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.copy_button)
        row.addWidget(self.rotate_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.token_label)
        layout.addLayout(row)
        layout.addWidget(self.address)
        self.set_token(None, None)

    @property
    def token(self) -> str | None:
        """The whole token (never shown; Copy puts it on the clipboard)."""
        return self._token

    def set_token(self, token: str | None, api_url: str | None) -> None:
        """The token to show masked, and the API's address (None: the relay is not running)."""
        self._token = token
        self.token_label.setText(f"Token: {mask_token(token)}")
        self.token_label.setToolTip(
            "Send it as 'Authorization: Bearer <token>'. It is not the pairing token: "
            "phones never get it."
        )
        self.copy_button.setEnabled(token is not None)
        self.rotate_button.setEnabled(api_url is not None)
        self.address.setText(api_url or "")
        self.address.setPlaceholderText("The relay is not listening")
        self.address.setCursorPosition(0)
        self.address.setToolTip(f"GET or POST {api_url}" if api_url else "")

    def copy(self) -> None:
        """Put the whole token on the clipboard."""
        if self._token:
            QGuiApplication.clipboard().setText(self._token)
            self.copied.emit()
