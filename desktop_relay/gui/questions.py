"""Yes/Cancel questions that do not block: `QMessageBox.exec()` would spin a nested Qt loop,
and inside qasync a nested loop stalls asyncio (or breaks the task that opened it)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget


def ask(
    parent: QWidget,
    title: str,
    text: str,
    yes_text: str,
    on_yes: Callable[[], None],
    on_no: Callable[[], None] | None = None,
) -> QMessageBox:
    """Open a window-modal question; `on_yes` or `on_no` runs when it is answered.

    Cancel is the default button: the questions guard actions that end streams.
    """
    box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Yes).setText(yes_text)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)

    def finished(_result: int) -> None:
        if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
            on_yes()
        elif on_no is not None:
            on_no()
        box.deleteLater()

    box.finished.connect(finished)
    box.open()
    return box
