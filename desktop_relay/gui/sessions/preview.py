"""The selected session's live picture: its latest thumbnail (relay.Thumbnail), shown large.

Cheap on the shared loop: a thumbnail is turned into an image once when it arrives, and
scaled once per new picture or new size; a paint only draws the scaled pixmap.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...relay import Thumbnail
from .pictures import thumbnail_image

PLACEHOLDER = "No picture yet"


class PreviewPanel(QWidget):
    """The latest thumbnail of one session, as wide as the panel, 16:9; a placeholder text
    until there is one. Feed it with `show_thumbnail` (None clears it)."""

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = PLACEHOLDER) -> None:
        super().__init__(parent)
        self._placeholder = placeholder
        self._image: QImage | None = None
        self._thumbnail: Thumbnail | None = None
        self._scaled: QPixmap | None = None
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setMinimumSize(160, 90)
        self.setAccessibleName("Live preview")

    @property
    def image(self) -> QImage | None:
        """The picture shown now (None: the placeholder)."""
        return self._image

    @property
    def thumbnail(self) -> Thumbnail | None:
        """The relay's picture shown now."""
        return self._thumbnail

    @property
    def placeholder(self) -> str:
        """What the panel says while it has no picture."""
        return self._placeholder

    def set_placeholder(self, text: str) -> None:
        """Say `text` while there is no picture (the program's monitors say why)."""
        if text != self._placeholder:
            self._placeholder = text
            self.update()

    def show_thumbnail(self, thumbnail: Thumbnail | None) -> None:
        """Show `thumbnail` (converted once, here), or the placeholder for None."""
        self._thumbnail = thumbnail
        self._image = thumbnail_image(thumbnail) if thumbnail is not None else None
        self._scaled = None
        self.update()

    # ---- geometry -----------------------------------------------------------------------

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width * 9 // 16

    def sizeHint(self) -> QSize:
        return QSize(320, 180)

    def picture_rect_size(self) -> QSize:
        """The picture's size in the panel: its full width at 16:9, or less if too short."""
        width = self.width()
        height = width * 9 // 16
        if height > self.height():
            height = self.height()
            width = height * 16 // 9
        return QSize(width, height)

    # ---- painting -----------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._scaled = None
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        size = self.picture_rect_size()
        left = (self.width() - size.width()) // 2
        top = (self.height() - size.height()) // 2
        painter.fillRect(left, top, size.width(), size.height(), Qt.GlobalColor.black)
        if self._image is None:
            painter.setPen(Qt.GlobalColor.lightGray)  # on the black frame, whatever the theme
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect(), flags, self._placeholder)
            return
        scaled = self._scaled
        if scaled is None or scaled.size() != size:
            scaled = QPixmap.fromImage(
                self._image.scaled(
                    size,
                    Qt.AspectRatioMode.IgnoreAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
            self._scaled = scaled
        painter.drawPixmap(left, top, scaled)
