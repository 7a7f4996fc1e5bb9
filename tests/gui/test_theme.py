"""Dark or light as the system says, with the table's colours readable on both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from desktop_relay.gui.sessions import columns as session_columns
from desktop_relay.gui.theme import ColorSchemeFollower, is_dark


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: QColor, b: QColor) -> float:
    """WCAG's contrast ratio (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def follower(qapp: QApplication) -> Iterator[ColorSchemeFollower]:
    before = qapp.palette()
    follower = ColorSchemeFollower(qapp)
    yield follower
    follower.apply(Qt.ColorScheme.Light)
    qapp.setPalette(before)


def test_the_palette_follows_the_system_scheme_both_ways(
    qapp: QApplication, follower: ColorSchemeFollower
) -> None:
    assert not is_dark(qapp.palette())  # the test platform's default is light
    follower.apply(Qt.ColorScheme.Dark)
    assert is_dark(qapp.palette()) and follower.dark_applied
    text = qapp.palette().color(QPalette.ColorRole.Text)
    base = qapp.palette().color(QPalette.ColorRole.Base)
    assert contrast(text, base) >= 7
    follower.apply(Qt.ColorScheme.Light)
    assert not is_dark(qapp.palette()) and not follower.dark_applied


@pytest.mark.parametrize("scheme", [Qt.ColorScheme.Light, Qt.ColorScheme.Dark])
def test_state_colours_read_on_either_palette(
    qapp: QApplication, follower: ColorSchemeFollower, scheme: Qt.ColorScheme
) -> None:
    follower.apply(scheme)
    palette = qapp.palette()
    for name in ("LIVE_TEXT", "WARN_TEXT", "FAILED_TEXT", "STARTING_TEXT", "ENDED_TEXT"):
        colour = getattr(session_columns, name)
        for role in (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase):
            ratio = contrast(colour, palette.color(role))
            # 3:1 is WCAG's floor for bold or large text; these are status words.
            assert ratio >= 3.0, f"{name} on {role.name} ({scheme.name}): {ratio:.2f}"


def test_an_unticked_box_is_visible_on_the_dark_palette(
    qapp: QApplication, follower: ColorSchemeFollower
) -> None:
    from PySide6.QtWidgets import QCheckBox

    def frame_pixels() -> int:
        box = QCheckBox()
        box.resize(box.sizeHint())
        image = box.grab().toImage()
        window = qapp.palette().color(QPalette.ColorRole.Window).lightness()
        return sum(
            1
            for x in range(image.width())
            for y in range(image.height())
            if image.pixelColor(x, y).lightness() > window + 40
        )

    follower.apply(Qt.ColorScheme.Dark)
    # Fusion alone draws the frame a shade darker than the window: nothing to see.
    assert frame_pixels() >= 20
