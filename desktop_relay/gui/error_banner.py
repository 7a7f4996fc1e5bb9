"""A banner over the sessions table: errors must reach the operator, not only the logs."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class ErrorBanner(QFrame):
    """Shows the latest error and how many came before it, until dismissed."""

    show_session = Signal(str)  # the operator wants to see the failed session

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet(
            "#errorBanner { background: #fde2e1; border: 1px solid #e0a0a0; border-radius: 4px; }"
            "#errorBanner QLabel { color: #7a1010; }"
        )
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.show_button = QPushButton("Show session")
        self.close_button = QPushButton("Dismiss")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.show_button)
        layout.addWidget(self.close_button)
        self.show_button.clicked.connect(self._show_session)
        self.close_button.clicked.connect(self.dismiss)
        self._session_id: str | None = None
        self._count = 0
        self.messages: list[str] = []  # every message since the last dismiss, oldest first
        self.hide()

    def report(self, message: str, session_id: str | None = None) -> None:
        """Show `message` (the latest wins; earlier ones are counted)."""
        self._count += 1
        self.messages.append(message)
        self._session_id = session_id
        more = f"  (+{self._count - 1} earlier)" if self._count > 1 else ""
        self.label.setText(f"⚠ {message}{more}")
        self.show_button.setVisible(session_id is not None)
        self.show()

    def dismiss(self) -> None:
        """Hide and forget the messages."""
        self._count = 0
        self.messages.clear()
        self._session_id = None
        self.hide()

    def _show_session(self) -> None:
        if self._session_id is not None:
            self.show_session.emit(self._session_id)
