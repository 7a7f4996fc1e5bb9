"""One of the program's two monitors (Preview, Program): a caption over the latest small
picture the relay sends (`program_picture`), drawn like the sessions' preview."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ...relay import Thumbnail
from ..sessions.preview import PreviewPanel

# Tally colours, as switchers light them: red on air, green next.
PROGRAM_COLOUR = "#d03030"
PREVIEW_COLOUR = "#2a9a40"


class _MonitorPicture(PreviewPanel):
    """The sessions' preview, asking for half its room: two monitors share the side panel."""

    def sizeHint(self) -> QSize:
        return QSize(150, 84)


class Monitor(QWidget):
    """A captioned 16:9 picture; `show_thumbnail(None)` shows `placeholder` instead."""

    def __init__(self, caption: str, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel(caption)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # The caption is the tally: white on the monitor's colour, whatever the theme.
        self.caption.setStyleSheet(
            f"background: {colour}; color: white; font-weight: bold; padding: 1px;"
        )
        self.picture = _MonitorPicture(placeholder="No picture")
        self.picture.setMinimumSize(128, 72)  # two side by side in the narrow side panel
        self.picture.setAccessibleName(f"{caption} monitor")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.caption)
        layout.addWidget(self.picture)

    @property
    def image(self) -> QImage | None:
        """The picture shown now (None: the placeholder)."""
        return self.picture.image

    @property
    def thumbnail(self) -> Thumbnail | None:
        """The relay's picture shown now."""
        return self.picture.thumbnail

    def show_thumbnail(self, thumbnail: Thumbnail | None) -> None:
        """Show a picture from the relay (None: the placeholder)."""
        self.picture.show_thumbnail(thumbnail)

    def set_placeholder(self, text: str) -> None:
        """What the monitor says while it has no picture."""
        self.picture.set_placeholder(text)
