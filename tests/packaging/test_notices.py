"""packaging/notices.py: the third-party notices cover every runtime dependency, from metadata."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

from desktop_relay import notices as runtime_notices

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "resources" / "web"
TEST_TOOLS = {"pytest", "pytest-qt", "pytest-asyncio", "mypy", "ruff", "playwright"}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "desktop_relay_notices_build", ROOT / "packaging" / "notices.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


notices = _load_generator()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The notices and the DEP-5 file as a source checkout makes them."""
    out = tmp_path_factory.mktemp("notices")
    path = notices.generate(out)
    return path.read_text(), (out / notices.COPYRIGHT_FILE).read_text()


def test_every_runtime_dependency_of_pyproject_is_listed(generated: tuple[str, str]) -> None:
    declared = notices.declared_dependencies()
    assert "PySide6-Essentials" in declared and "aiohttp" in declared
    listed = {canonical(c.name): c for kind, c in notices.components() if kind == "python"}
    text, _ = generated
    for name in declared:
        component = listed.get(canonical(name))
        assert component is not None, f"{name} (pyproject.toml) is not in the notices"
        assert component.version == metadata.version(name)
        assert f"\n{component.name} {component.version}\n" in text
        # Its own licence files, or (PySide6's wheels ship none) the text in the appendix.
        assert component.texts or "text is at the end of this file" in component.note, name


def test_dependencies_of_dependencies_are_listed_and_test_tools_are_not() -> None:
    listed = {canonical(d.metadata["Name"]) for d in notices.runtime_distributions()}
    # python-socketio needs python-engineio, aiohttp needs yarl: both end up in the app.
    assert {"python-engineio", "yarl", "multidict", "shiboken6"} <= listed
    assert not listed & TEST_TOOLS
    assert "desktop-relay" not in listed


def test_every_production_npm_dependency_is_listed() -> None:
    declared = notices.declared_npm_dependencies()
    assert {"mediabunny", "socket.io-client"} <= set(declared)
    dev = set(json.loads((WEB / "package.json").read_text()).get("devDependencies", {}))
    components, _ = notices.npm_components()
    names = {c.name for c in components}
    assert set(declared) <= names
    assert not names & dev, "a devDependency is listed as bundled"
    mediabunny = next(c for c in components if c.name == "mediabunny")
    assert mediabunny.license == "MPL-2.0"


def test_without_a_page_build_the_lock_file_lists_the_production_packages(
    tmp_path: Path,
) -> None:
    components, source = notices.npm_components(manifest=tmp_path / "missing.json")
    names = {c.name for c in components}
    assert set(notices.declared_npm_dependencies()) <= names
    assert not names & {"esbuild", "typescript"}
    assert "package-lock.json" in source


def test_notices_hold_the_licence_texts_ffmpeg_build_and_source(
    generated: tuple[str, str],
) -> None:
    text, _ = generated
    assert "GNU GENERAL PUBLIC LICENSE" in text
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in text
    assert "Replacing Qt" in text
    assert "mediabunny" in text
    build = runtime_notices.relay_ffmpeg_build(None)
    assert build.version in text
    assert f"configuration: {build.configuration}" in text
    assert "Written offer" in text and notices.SOURCE_OFFER_CONTACT in text
    assert "Corresponding source" in text
    # No LICENSE file in the repository yet: the notices say so instead of inventing one.
    if not any(ROOT.glob("LICEN[CS]E*")):
        assert "No LICENSE file was found" in text


def dep5_paragraphs(text: str) -> list[dict[str, str]]:
    """Parse a DEP-5 file into paragraphs of fields (continuation lines joined)."""
    paragraphs = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        name = ""
        for line in block.splitlines():
            assert line.strip(), "an empty line inside a paragraph"
            if line.startswith(" "):
                assert name, f"a continuation line with no field: {line!r}"
                fields[name] += "\n" + line[1:]
            else:
                name, _, value = line.partition(":")
                assert re.fullmatch(r"[A-Za-z-]+", name), f"bad field name: {line!r}"
                fields[name] = value.strip()
        paragraphs.append(fields)
    return paragraphs


def check_dep5(text: str) -> list[dict[str, str]]:
    """Header, complete Files paragraphs, and a License paragraph for every name used."""
    paragraphs = dep5_paragraphs(text)
    header = paragraphs[0]
    assert header["Format"] == (
        "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    files = [p for p in paragraphs if "Files" in p]
    assert files[0]["Files"] == "*"
    defined = {p["License"].split("\n")[0] for p in paragraphs if set(p) == {"License"}}
    for paragraph in files:
        assert paragraph["Copyright"].strip() and paragraph["License"].strip(), paragraph
        expression = paragraph["License"].replace("(", " ").replace(")", " ")
        for atom in re.split(r"\s+(?:and|or)\s+", expression.strip()):
            assert atom.strip() in defined, f"no License paragraph for {atom!r}"
    return paragraphs


def test_copyright_file_is_machine_readable(generated: tuple[str, str]) -> None:
    _, copyright_text = generated
    paragraphs = check_dep5(copyright_text)
    by_files = {p["Files"]: p for p in paragraphs if "Files" in p}
    ffmpeg = by_files[f"{notices.INSTALL_DIR}/_internal/imageio_ffmpeg/binaries/*"]
    assert ffmpeg["License"] == "GPL-3.0-or-later"
    assert "/usr/share/doc/desktop-relay/THIRD-PARTY-NOTICES.txt" in copyright_text


def test_a_bundle_names_its_files_in_the_copyright_file(tmp_path: Path) -> None:
    qt_core = next(
        f for f in metadata.distribution("PySide6-Essentials").files or [] if "Qt6Core" in f.name
    )
    files = [(qt_core.as_posix(), str(qt_core.locate()))]
    system_zlib = Path("/lib/x86_64-linux-gnu/libz.so.1")
    with_dpkg = shutil.which("dpkg") is not None and system_zlib.is_file()
    if with_dpkg:
        files.append(("libz.so.1", str(system_zlib)))
    bundle = notices.Bundle(
        modules=["aiohttp.web", "socketio", "json"],
        files=files,
        links=[(qt_core.name, qt_core.as_posix())],
    )
    path = notices.generate(tmp_path, bundle)
    copyright_text = (tmp_path / notices.COPYRIGHT_FILE).read_text()
    by_files = {p["Files"]: p for p in check_dep5(copyright_text) if "Files" in p}
    qt = next(p for files, p in by_files.items() if "_internal/PySide6/*" in files)
    assert qt["License"] == "LGPL-3.0-only"
    assert f"_internal/{qt_core.name}" in next(f for f in by_files if "PySide6/*" in f)
    if importlib.util.find_spec("PyInstaller") is not None:
        # Only a machine that builds has PyInstaller (the `package` extra, not the test one);
        # the smoke test checks the built .deb's notices name its bootloader.
        assert "PyInstaller bootloader" in path.read_text()
    if with_dpkg:
        zlib = by_files[f"{notices.INSTALL_DIR}/_internal/libz.so.1"]
        assert zlib["License"] == "LicenseRef-debian-zlib1g"
        assert "/usr/share/doc/zlib1g/copyright" in path.read_text()


@pytest.mark.parametrize(
    ("configuration", "licence"),
    [
        ("--enable-gpl --enable-version3 --enable-libx264", "GPL-3.0-or-later"),
        ("--enable-gpl --enable-libx264", "GPL-2.0-or-later"),
        ("--enable-version3", "LGPL-3.0-or-later"),
        ("--disable-debug", "LGPL-2.1-or-later"),
        ("--enable-gpl --enable-nonfree", "LicenseRef-ffmpeg-nonfree"),
    ],
)
def test_ffmpeg_licence_follows_its_configure_line(configuration: str, licence: str) -> None:
    assert notices.ffmpeg_license(configuration) == licence


def test_version_output_is_parsed() -> None:
    output = (
        "ffmpeg version 7.1 Copyright (c) 2000-2024 the FFmpeg developers\n"
        "built with gcc 12\n"
        "configuration: --enable-gpl --enable-libx264\n"
        "libavutil      59. 39.100 / 59. 39.100\n"
    )
    build = runtime_notices.parse_version_output("/x/ffmpeg", output)
    assert build.version.startswith("ffmpeg version 7.1 ")
    assert build.configuration == "--enable-gpl --enable-libx264"


def test_a_source_checkout_finds_or_makes_its_notices() -> None:
    path = runtime_notices.notices_path()
    assert path is not None and path.name == runtime_notices.NOTICES_FILE
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in runtime_notices.notices_text()
