"""A session's thumbnail as a Qt image: data for the model and the preview alike (no widget)."""

from __future__ import annotations

from PySide6.QtGui import QImage

from ...relay import Thumbnail


def thumbnail_image(thumbnail: Thumbnail) -> QImage:
    """The thumbnail as a QImage (RGB888) that owns its pixels (a deep copy: the relay's
    bytes may go away)."""
    image = QImage(
        thumbnail.rgb,
        thumbnail.width,
        thumbnail.height,
        thumbnail.width * 3,
        QImage.Format.Format_RGB888,
    )
    return image.copy()
