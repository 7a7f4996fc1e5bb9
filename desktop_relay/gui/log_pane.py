"""The selected session's log: ffmpeg output and relay events, filterable, copyable, savable."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .log_store import LineKind, LogLine, LogStore

log = logging.getLogger(__name__)

POLL_MS = 200
_KINDS: tuple[tuple[str, frozenset[LineKind]], ...] = (
    ("All lines", frozenset(LineKind)),
    ("ffmpeg output", frozenset({LineKind.FFMPEG})),
    ("Relay events", frozenset({LineKind.RELAY, LineKind.ERROR})),
    ("Errors", frozenset({LineKind.ERROR})),
)


class LogPane(QWidget):
    """Shows one session's lines from a `LogStore`, polling it a few times a second."""

    def __init__(self, store: LogStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._session_id: str | None = None
        self._seen = 0

        self.title = QLabel("Select a session to see its log")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter lines")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMaximumWidth(260)
        self.kind_combo = QComboBox()
        for label, _ in _KINDS:
            self.kind_combo.addItem(label)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selected lines, or every shown line")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the shown lines to a text file")

        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setMaximumBlockCount(store.max_lines)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("No lines yet")

        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.filter_edit)
        bar.addWidget(self.kind_combo)
        bar.addWidget(self.copy_button)
        bar.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.text)

        # Typing in the filter re-renders once the operator pauses, not on every key.
        self._refilter = QTimer(self, singleShot=True, interval=150)
        self._refilter.timeout.connect(self._render)
        self.filter_edit.textChanged.connect(self._refilter.start)
        self.kind_combo.currentIndexChanged.connect(self._render)
        self.copy_button.clicked.connect(self.copy)
        self.save_button.clicked.connect(self._ask_save)
        self._poll = QTimer(self, interval=POLL_MS)
        self._poll.timeout.connect(self.poll)
        self._poll.start()
        self._update_buttons()

    @property
    def session_id(self) -> str | None:
        """The session shown."""
        return self._session_id

    def focus_filter(self) -> None:
        """Put the cursor in the filter field, its text selected (Ctrl+F)."""
        self.filter_edit.setFocus()
        self.filter_edit.selectAll()

    def show_session(self, session_id: str | None, title: str = "") -> None:
        """Show another session's log (None: none)."""
        if session_id == self._session_id:
            if title:
                self.title.setText(title)
            return
        self._session_id = session_id
        self.title.setText(title if session_id else "Select a session to see its log")
        self._render()

    def poll(self) -> None:
        """Append what the store got since the last look."""
        if self._session_id is None:
            return
        new = self._store.since(self._session_id, self._seen)
        if new is None:
            self._render()
            return
        self._seen += len(new)
        shown = [line.format() for line in new if self._accepts(line)]
        if shown:
            bar = self.text.verticalScrollBar()
            # Follow the tail, unless the operator scrolled up to read something.
            following = bar.value() >= bar.maximum() - 2
            self.text.appendPlainText("\n".join(shown))
            if following:
                bar.setValue(bar.maximum())
            self._update_buttons()

    def shown_text(self) -> str:
        """Every line shown (after filtering)."""
        return self.text.toPlainText()

    def copy(self) -> None:
        """Copy the selection, or everything shown when nothing is selected."""
        selected = self.text.textCursor().selectedText()
        # QTextCursor gives paragraph separators, not newlines.
        text = selected.replace("\u2029", "\n") if selected else self.shown_text()
        QGuiApplication.clipboard().setText(text)

    def save_to(self, path: Path) -> None:
        """Write the shown lines to `path` (raises OSError)."""
        path.write_text(self.shown_text() + "\n", encoding="utf-8")

    # ---- internals -------------------------------------------------------------------

    def _accepts(self, line: LogLine) -> bool:
        kinds = _KINDS[max(0, self.kind_combo.currentIndex())][1]
        if line.kind not in kinds:
            return False
        needle = self.filter_edit.text().strip().lower()
        return not needle or needle in line.text.lower()

    def _render(self) -> None:
        self.text.clear()
        if self._session_id is None:
            self._seen = 0
        else:
            lines = self._store.lines(self._session_id)
            self._seen = self._store.total(self._session_id)
            shown = [line.format() for line in lines if self._accepts(line)]
            if shown:
                self.text.setPlainText("\n".join(shown))
                self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_text = not self.text.document().isEmpty()
        self.copy_button.setEnabled(has_text)
        self.save_button.setEnabled(has_text)

    def _ask_save(self) -> None:
        # A plain slot (not a coroutine): a modal dialog's nested loop is safe here.
        name = f"session-{(self._session_id or 'log')[:8]}.log"
        chosen, _ = QFileDialog.getSaveFileName(self, "Save log", name, "Log files (*.log *.txt)")
        if not chosen:
            return
        try:
            self.save_to(Path(chosen))
        except OSError as exc:
            log.warning("could not save the log: %s", exc)
            self.title.setText(f"Could not save the log: {exc.strerror or exc}")
