"""What the installers ship besides the app: icon files, the .desktop entry, the spec."""

from __future__ import annotations

import configparser
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ROOT / "resources"
ICONS = RESOURCES / "icons"


def test_desktop_entry_names_the_launcher_and_icon() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(RESOURCES / "desktop-relay.desktop")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "desktop-relay"
    assert entry["Icon"] == "desktop-relay"
    assert entry["Categories"].endswith(";")


def test_png_icons_have_their_sizes() -> None:
    for size in (16, 32, 48, 128, 256, 512):
        data = (ICONS / f"desktop-relay-{size}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (size, size)


def test_ico_and_icns_index_their_images() -> None:
    ico = (ICONS / "desktop-relay.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 5
    icns = (ICONS / "desktop-relay.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)


def test_spec_is_python_and_reads_the_version_from_pyproject() -> None:
    source = (ROOT / "packaging" / "desktop-relay.spec").read_text()
    compile(source, "desktop-relay.spec", "exec")
    assert 'tomllib.loads((ROOT / "pyproject.toml")' in source
