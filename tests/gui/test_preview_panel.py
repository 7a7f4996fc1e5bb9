"""The preview panel: a thumbnail becomes an image once, shown at the panel's width, 16:9."""

from __future__ import annotations

import time

from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from desktop_relay.gui.sessions.pictures import thumbnail_image
from desktop_relay.gui.sessions.preview import PLACEHOLDER, PreviewPanel
from desktop_relay.relay import Thumbnail


def rgb_at(image: QImage, x: int, y: int) -> tuple[int, int, int]:
    color = image.pixelColor(x, y)
    return (color.red(), color.green(), color.blue())


def picture(left: tuple[int, int, int], right: tuple[int, int, int]) -> Thumbnail:
    """320x180: the left half one colour, the right half another."""
    row = bytes(left) * 160 + bytes(right) * 160
    return Thumbnail(320, 180, row * 180, time.monotonic())


def test_thumbnail_image_is_a_deep_rgb888_copy() -> None:
    thumb = picture((255, 0, 0), (0, 0, 128))
    image = thumbnail_image(thumb)
    assert image.format() == QImage.Format.Format_RGB888
    assert (image.width(), image.height()) == (320, 180)
    assert rgb_at(image, 10, 90) == (255, 0, 0)
    assert rgb_at(image, 300, 5) == (0, 0, 128)
    # Its own pixels: nothing points into the thumbnail's bytes.
    del thumb
    assert rgb_at(image, 0, 0) == (255, 0, 0)


def test_the_panel_shows_the_latest_picture_at_its_width(qtbot: QtBot) -> None:
    panel = PreviewPanel()
    qtbot.addWidget(panel)
    panel.resize(480, 270)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.image is None
    assert panel.hasHeightForWidth() and panel.heightForWidth(640) == 360
    empty = panel.grab().toImage()
    assert rgb_at(empty, 240, 10) == (0, 0, 0)
    # The placeholder's words, light on the black frame, in the middle.
    middle = [empty.pixelColor(x, y).lightness() for x in range(140, 340) for y in range(125, 145)]
    assert max(middle) > 120

    panel.show_thumbnail(picture((255, 0, 0), (0, 255, 0)))
    shown = panel.grab().toImage()
    assert shown.width() == 480 * panel.devicePixelRatio()
    ratio = panel.devicePixelRatio()
    assert shown.pixelColor(int(20 * ratio), int(135 * ratio)).red() > 200
    assert shown.pixelColor(int(460 * ratio), int(135 * ratio)).green() > 200

    # Converted once per thumbnail, not per paint: repaints keep the same image.
    image = panel.image
    panel.repaint()
    panel.resize(320, 180)
    panel.repaint()
    assert panel.image is image

    # A taller panel keeps 16:9: the picture is as wide as the panel (320x180, centred), and
    # nothing of it is drawn above or below.
    panel.resize(320, 300)
    tall = panel.grab().toImage()
    assert rgb_at(tall, int(10 * ratio), int(150 * ratio)) == (255, 0, 0)
    assert tall.pixelColor(int(10 * ratio), int(70 * ratio)).red() > 200
    assert tall.pixelColor(int(10 * ratio), int(230 * ratio)).red() > 200
    for y in (20, 280):
        assert rgb_at(tall, int(10 * ratio), int(y * ratio)) != (255, 0, 0)

    panel.show_thumbnail(None)
    assert panel.image is None
    assert PLACEHOLDER == "No picture yet"
