"""Light or dark, as the system says: the palette follows the desktop's colour scheme.

Qt's native styles on Windows 11 and macOS turn dark by themselves; Fusion on a Linux desktop
learns the scheme (through the desktop portal) but keeps a light palette unless given one.
So a dark palette is applied only where the system asks for dark and the style's palette is
still light, and taken back when the system turns light again.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

log = logging.getLogger(__name__)

_DARK_COLOURS = {
    QPalette.ColorRole.Window: QColor(37, 38, 41),
    QPalette.ColorRole.WindowText: QColor(230, 230, 230),
    QPalette.ColorRole.Base: QColor(28, 29, 31),
    QPalette.ColorRole.AlternateBase: QColor(44, 45, 49),
    QPalette.ColorRole.ToolTipBase: QColor(50, 51, 55),
    QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
    QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
    QPalette.ColorRole.Text: QColor(230, 230, 230),
    QPalette.ColorRole.Button: QColor(50, 51, 55),
    QPalette.ColorRole.ButtonText: QColor(230, 230, 230),
    QPalette.ColorRole.BrightText: QColor(255, 90, 90),
    QPalette.ColorRole.Light: QColor(70, 71, 75),
    QPalette.ColorRole.Midlight: QColor(60, 61, 65),
    QPalette.ColorRole.Mid: QColor(45, 46, 50),
    QPalette.ColorRole.Dark: QColor(20, 20, 22),
    QPalette.ColorRole.Shadow: QColor(0, 0, 0),
    QPalette.ColorRole.Highlight: QColor(42, 110, 190),
    QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
    QPalette.ColorRole.Link: QColor(100, 160, 240),
    QPalette.ColorRole.LinkVisited: QColor(170, 130, 230),
}
_DISABLED_TEXT = QColor(120, 120, 120)


def dark_palette() -> QPalette:
    """A dark palette for Fusion, in the greys dark desktop themes and OBS use."""
    palette = QPalette()
    for role, colour in _DARK_COLOURS.items():
        palette.setColor(role, colour)
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, _DISABLED_TEXT)
    return palette


class _OutlinedFusion(QProxyStyle):
    """Fusion, with check boxes and radio buttons outlined on dark palettes: Fusion draws
    their frame a shade darker than the window, which on a dark window is invisible (an
    unticked destination would look like no box at all)."""

    def __init__(self) -> None:
        super().__init__("Fusion")

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        """Fusion's drawing, then a visible frame for check boxes and radios when dark."""
        super().drawPrimitive(element, option, painter, widget)
        boxes = (
            QStyle.PrimitiveElement.PE_IndicatorCheckBox,
            QStyle.PrimitiveElement.PE_IndicatorRadioButton,
        )
        if element not in boxes or not is_dark(option.palette):
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(option.palette.color(QPalette.ColorRole.PlaceholderText))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = option.rect.adjusted(1, 1, -1, -1)
        if element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            painter.drawEllipse(rect)
        else:
            painter.drawRoundedRect(rect, 2, 2)
        painter.restore()


def is_dark(palette: QPalette) -> bool:
    """Whether a palette draws light text on a dark window."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


class ColorSchemeFollower:
    """Keeps the application's palette in step with the system's colour scheme."""

    def __init__(self, app: QApplication) -> None:
        self._app = app
        self._ours = False  # whether the palette in use is our dark one
        hints = QGuiApplication.styleHints()
        hints.colorSchemeChanged.connect(self.apply)
        self.apply(hints.colorScheme())

    @property
    def dark_applied(self) -> bool:
        """Whether this follower put its dark palette in place."""
        return self._ours

    def apply(self, scheme: Qt.ColorScheme) -> None:
        """Use a dark palette for a dark scheme unless the style already is dark."""
        if scheme == Qt.ColorScheme.Dark:
            if self._ours or is_dark(self._app.palette()):
                return
            if not isinstance(self._app.style(), _OutlinedFusion):
                # Only Fusion draws every control from the palette; other styles would mix
                # dark fields with light native parts.
                self._app.setStyle(_OutlinedFusion())
            self._app.setPalette(dark_palette())
            self._ours = True
            log.debug("dark colour scheme: dark palette applied")
        elif self._ours:
            self._app.setPalette(self._app.style().standardPalette())
            self._ours = False
            log.debug("light colour scheme: standard palette back")
