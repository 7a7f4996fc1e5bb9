"""Render resources/desktop-relay.svg into the PNG, ICO and ICNS files the installers need.

Run by hand when the SVG changes (`.venv/bin/python packaging/render_icons.py`); the results
are committed under resources/icons/ so Windows and macOS builds need no image tools. Qt draws
the PNGs (ImageMagick is not on every machine); ICO and ICNS are written here because both are
just PNGs behind a small index, and Qt writes neither with several sizes.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "resources" / "desktop-relay.svg"
OUT = ROOT / "resources" / "icons"

PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types holding PNG data, by pixel size (ic10 is 512@2x, i.e. 1024).
ICNS_TYPES = {
    16: b"icp4",
    32: b"icp5",
    64: b"icp6",
    128: b"ic07",
    256: b"ic08",
    512: b"ic09",
    1024: b"ic10",
}


def render_png(svg: Path, size: int, out: Path) -> bytes:
    """Draw the SVG on a transparent square of `size` pixels into `out`; returns the PNG."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _ = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    # Through a file: the type stubs and PySide6 disagree on save()'s format argument type.
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")
    return out.read_bytes()


def pack_ico(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico whose images are PNGs (allowed since Vista)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, images = b"", b""
    for size in sizes:
        png = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in the ICO index
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + entries + images


def pack_icns(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns made of PNG entries."""
    body = b"".join(
        ICNS_TYPES[size] + struct.pack(">I", len(png) + 8) + png
        for size, png in sorted(pngs.items())
        if size in ICNS_TYPES
    )
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def main() -> int:
    """Write resources/icons/desktop-relay-SIZE.png, desktop-relay.ico and .icns."""
    # No display is needed to draw into an image.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    OUT.mkdir(parents=True, exist_ok=True)
    pngs = {size: render_png(SVG, size, OUT / f"desktop-relay-{size}.png") for size in PNG_SIZES}
    (OUT / "desktop-relay.ico").write_bytes(pack_ico({s: pngs[s] for s in ICO_SIZES}))
    (OUT / "desktop-relay.icns").write_bytes(pack_icns(pngs))
    print(f"wrote {len(pngs)} PNGs, an ICO and an ICNS into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
