"""Write the third-party notices of Desktop Relay from what is installed, never from a list.

Usage: `.venv/bin/python packaging/notices.py [--out build/notices]`. The PyInstaller spec
calls `generate()` with what it bundles, so the app's notices name exactly its contents.

Writes into the output folder:
  THIRD-PARTY-NOTICES.txt   every bundled component: version, licence, its licence and notice
                            files, copyright lines; FFmpeg's build and where its source is;
                            how to replace Qt; the GPL and LGPL texts. Shipped in the app
                            (Help > About shows it), the .deb and the tarball.
  copyright                 the same, summarised in Debian's machine-readable format (DEP-5),
                            for /usr/share/doc/desktop-relay/copyright.

Sources, all read at build time:
  Python packages  importlib.metadata: the runtime dependency closure of `desktop-relay`
                   (its Requires-Dist, markers evaluated, extras left out: no test tools),
                   plus any other distribution a module in the bundle belongs to.
  npm packages     desktop_relay/web/dist/THIRD_PARTY_LICENSES.json, which
                   resources/web/build.mjs writes from esbuild's metafile (exactly what the
                   page bundles); without a page build, resources/web/package-lock.json's
                   production packages.
  FFmpeg           `ffmpeg -version` of imageio-ffmpeg's binary (the one the spec bundles).
  Qt, CPython      the installed PySide6 and the interpreter's own LICENSE.txt.
  System libraries the shared libraries the bundle carries from the build machine, with their
                   Debian copyright files (dpkg -S), when the spec passes its file list.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: desktop_relay from the checkout
    sys.path.insert(0, str(ROOT))

from desktop_relay.notices import (  # noqa: E402
    NOTICES_FILE,
    FfmpegBuild,
    ffmpeg_build,
)

APP = "desktop-relay"
DISTRIBUTION = "desktop-relay"
INSTALL_DIR = f"opt/{APP}"  # the .deb's install folder, as DEP-5 paths (no leading slash)
WEB = ROOT / "resources" / "web"
WEB_DIST = ROOT / "desktop_relay" / "web" / "dist"
NPM_MANIFEST = WEB_DIST / "THIRD_PARTY_LICENSES.json"
LICENSE_TEXTS = Path(__file__).resolve().parent / "licenses"  # verbatim FSF texts
COPYRIGHT_FILE = "copyright"
# Who answers the written offer for FFmpeg's source (and the .deb's Maintainer). The
# placeholder must become a real address before a public release.
SOURCE_OFFER_CONTACT = "Desktop Relay developers <desktop-relay@localhost>"

RULE = "=" * 78
THIN_RULE = "-" * 78
_LICENSE_FILE_NAME = re.compile(r"^(licen[cs]e|copying|notice|copyright)", re.IGNORECASE)
_COPYRIGHT_LINE = re.compile(r"^\s*(?:copyright\b|\(c\)|©).{0,200}\d{4}", re.IGNORECASE)
# Licence templates' blanks ("Copyright [yyyy] [name of copyright owner]", "<copyright holders>").
_PLACEHOLDER = re.compile(
    r"\[[^\]]*(?:yyyy|name|owner)[^\]]*\]|<[^>@]*(?:holder|owner|name|year)[^>@]*>|\{yyyy\}",
    re.IGNORECASE,
)
_SPDX_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_SPDX_OPERATORS = {"AND", "OR", "WITH"}
# Trove classifiers of packages that declare no SPDX licence, by their last part.
_CLASSIFIER_SPDX = {
    "MIT License": "MIT",
    "Apache Software License": "Apache-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "ISC License (ISCL)": "ISC",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
}
# Free-text licence fields of packages we know, read as the SPDX expression they mean.
_FREE_TEXT_SPDX = {
    "Apache 2.0": "Apache-2.0",
    "Apache License 2.0": "Apache-2.0",
    "GPLv2-or-later with a special exception": "GPL-2.0-or-later WITH Bootloader-exception",
}
# Configure options that bring GPL-only code into FFmpeg (FFmpeg's LICENSE.md), named in the
# notices to say why the binary is GPL.
_FFMPEG_GPL_OPTIONS = {
    f"--enable-{name}"
    for name in (
        "libx264",
        "libx265",
        "libxvid",
        "libvidstab",
        "libxavs",
        "libxavs2",
        "libdavs2",
        "librubberband",
        "frei0r",
        "libcdio",
        "avisynth",
    )
}
# Licences whose text Debian keeps in /usr/share/common-licenses (DEP-5 may point there).
_DEBIAN_COMMON = {
    "Apache-2.0": "Apache-2.0",
    "GPL-2.0-only": "GPL-2",
    "GPL-2.0-or-later": "GPL-2",
    "GPL-3.0-only": "GPL-3",
    "GPL-3.0-or-later": "GPL-3",
    "LGPL-2.1-only": "LGPL-2.1",
    "LGPL-2.1-or-later": "LGPL-2.1",
    "LGPL-3.0-only": "LGPL-3",
    "LGPL-3.0-or-later": "LGPL-3",
    "MPL-2.0": "MPL-2.0",
    "CC0-1.0": "CC0-1.0",
}


@dataclass
class Component:
    """One bundled thing with its licence, as the notices and the DEP-5 file show it."""

    name: str
    version: str
    license: str  # an SPDX expression, or a short description
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file name, text)
    url: str = ""
    note: str = ""  # printed before the texts
    files: list[str] = field(default_factory=list)  # DEP-5 patterns of its installed files
    copyright: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """Name and version."""
        return f"{self.name} {self.version}".strip()


@dataclass
class Bundle:
    """What the PyInstaller spec bundles (destination names relative to the app's _internal)."""

    modules: list[str] = field(default_factory=list)  # a.pure: dotted module names
    files: list[tuple[str, str]] = field(default_factory=list)  # (destination, source) pairs
    links: list[tuple[str, str]] = field(default_factory=list)  # (destination, target) pairs
    pyinstaller: bool = True


# ---- Python packages -----------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_applies(requirement: str) -> tuple[str, bool]:
    """The requirement's project name, and whether it applies to a plain install here (its
    marker holds and asks for no extra)."""
    name = re.split(r"[\s;\[<>=!~(]", requirement.strip(), maxsplit=1)[0]
    if ";" not in requirement:
        return name, True
    marker = requirement.split(";", 1)[1]
    if re.search(r"\bextra\s*==", marker):
        return name, False
    try:
        from packaging.markers import Marker
    except ImportError:  # no `packaging`: keep it (a notice too many is harmless)
        return name, True
    return name, Marker(marker).evaluate({"extra": ""})


def runtime_distributions(roots: Iterable[str] | None = None) -> list[metadata.Distribution]:
    """The installed distributions `roots` (default: pyproject.toml's dependencies) need at
    run time, and theirs: markers evaluated, extras left out.

    pyproject.toml rather than the installed desktop-relay's metadata, which an editable
    install leaves as it was when installed.
    """
    seen: dict[str, metadata.Distribution] = {}
    queue = list(declared_dependencies() if roots is None else roots)
    while queue:
        name = queue.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            print(f"notices: WARNING: {name} is required but not installed", file=sys.stderr)
            continue
        key = _canonical(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = dist
        for requirement in dist.requires or []:
            dependency, applies = _requirement_applies(requirement)
            if applies:
                queue.append(dependency)
    seen.pop(_canonical(DISTRIBUTION), None)
    return sorted(seen.values(), key=lambda d: _canonical(d.metadata["Name"]))


def declared_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The names in pyproject.toml's [project] dependencies (what the notices must cover)."""
    data = tomllib.loads(pyproject.read_text())
    return [_requirement_applies(r)[0] for r in data["project"]["dependencies"]]


def _is_expression(text: str) -> bool:
    tokens = text.replace("(", " ").replace(")", " ").split()
    if not tokens:
        return False
    expect_id = True
    for token in tokens:
        if expect_id:
            if token in _SPDX_OPERATORS or not _SPDX_TOKEN.match(token):
                return False
        elif token not in _SPDX_OPERATORS:
            return False
        expect_id = not expect_id
    return not expect_id


def _bsd_variant(texts: Iterable[tuple[str, str]]) -> str:
    # The "BSD License" classifier names no variant: the third clause says which.
    body = " ".join(text for _, text in texts)
    return "BSD-3-Clause" if re.search(r"endorse\s+or\s+promote", body) else "BSD-2-Clause"


def python_license(dist: metadata.Distribution, texts: list[tuple[str, str]]) -> str:
    """The licence a distribution declares, as an SPDX expression where it can be read as one."""
    meta = dist.metadata
    for value in (meta.get("License-Expression"), meta.get("License")):
        value = (value or "").strip()
        if not value:
            continue
        if _is_expression(value):
            return value
        for prefix, spdx in _FREE_TEXT_SPDX.items():
            if value.startswith(prefix):
                return spdx
    names = []
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License :: "):
            last = classifier.split(" :: ")[-1]
            if last == "BSD License":
                names.append(_bsd_variant(texts))
            elif last in _CLASSIFIER_SPDX:
                names.append(_CLASSIFIER_SPDX[last])
    if names:
        return " OR ".join(dict.fromkeys(names))
    return "LicenseRef-" + _canonical(meta["Name"])  # only its own text says


def python_license_texts(dist: metadata.Distribution) -> list[tuple[str, str]]:
    """The licence, notice and copyright files a distribution ships in its metadata folder."""
    texts: list[tuple[str, str]] = []
    declared = dist.metadata.get_all("License-File") or []
    for name in declared:
        for candidate in (f"licenses/{name}", name):
            text = dist.read_text(candidate)
            if text is not None:
                texts.append((name, text))
                break
    if texts:
        return texts
    for file in dist.files or []:
        parts = file.parts
        in_metadata = bool(parts) and parts[0].endswith((".dist-info", ".egg-info"))
        if in_metadata and _LICENSE_FILE_NAME.match(file.name):
            text = file.read_text(encoding="utf-8", errors="replace")
            texts.append(("/".join(parts[1:]), text))
    return texts


def copyright_lines(texts: Iterable[tuple[str, str]], limit: int = 6) -> list[str]:
    """The copyright statements in licence texts (without licence templates' placeholders)."""
    found: list[str] = []
    for _, text in texts:
        for line in text.splitlines():
            line = line.strip().strip("#*/ ").strip()
            line = re.sub(r"^copyright:\s*", "", line, flags=re.IGNORECASE)  # DEP-5 files
            if _COPYRIGHT_LINE.match(line) and not _PLACEHOLDER.search(line) and line not in found:
                found.append(line)
    return found[:limit]


def _url(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("Home-page"):
        return str(meta["Home-page"])
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in {"homepage", "home", "source", "repository"}:
            return url.strip()
    return ""


def _record_owners(
    dists: Iterable[metadata.Distribution],
) -> dict[str, metadata.Distribution]:
    owners: dict[str, metadata.Distribution] = {}
    for dist in dists:
        for file in dist.files or []:
            owners[file.as_posix()] = dist
    return owners


def bundled_distributions(bundle: Bundle) -> list[metadata.Distribution]:
    """The distributions a module or file in the bundle belongs to."""
    by_module = metadata.packages_distributions()
    names: set[str] = set()
    for module in bundle.modules:
        names.update(by_module.get(module.split(".")[0], []))
    for dest, _ in bundle.files:
        names.update(by_module.get(dest.replace("\\", "/").split("/")[0], []))
    dists = []
    for name in sorted(names):
        try:
            dists.append(metadata.distribution(name))
        except metadata.PackageNotFoundError:
            continue
    return dists


# Wheels that bundle native libraries under other terms than the package's own.
_BUNDLED = {
    "av": (
        "GPL-2.0-or-later",
        "PyAV's wheel bundles FFmpeg's libraries (libavcodec, libavformat, libswscale...) built "
        "with libx264 and other GPL parts, so that part is GPL-2.0-or-later (the text is at the "
        "end of this file); their sources and build scripts: "
        "https://github.com/PyAV-Org/pyav-ffmpeg. The program's worker uses them to decode, "
        "compose and encode.",
    ),
}


def python_components(
    dists: Iterable[metadata.Distribution], bundle: Bundle | None
) -> list[Component]:
    """A component per distribution, with the bundle's files each one owns."""
    dists = list(dists)
    owners = _record_owners(dists)
    placed: dict[str, set[str]] = {}
    for dest, _ in bundle.files if bundle else []:
        dest = dest.replace("\\", "/")
        owner = owners.get(dest)
        if owner is None:
            continue
        # A package's folder as a whole; a lone extension module by its name.
        where = f"{dest.split('/')[0]}/*" if "/" in dest else dest
        placed.setdefault(_canonical(owner.metadata["Name"]), set()).add(
            f"{INSTALL_DIR}/_internal/{where}"
        )
    # PyInstaller links some libraries into _internal/ (libQt6Core.so.6 -> PySide6/Qt/lib/...):
    # a link belongs to its target's package.
    for dest, target in bundle.links if bundle else []:
        resolved = os.path.normpath(os.path.join(os.path.dirname(dest), target)).replace("\\", "/")
        owner = owners.get(resolved)
        if owner is not None:
            placed.setdefault(_canonical(owner.metadata["Name"]), set()).add(
                f"{INSTALL_DIR}/_internal/{dest}"
            )
    components = []
    for dist in dists:
        texts = python_license_texts(dist)
        name = dist.metadata["Name"]
        licence = python_license(dist, texts)
        note = ""
        if not texts:  # PySide6's wheels, for one
            shipped = next((t for t in ("LGPL-3.0", "GPL-3.0") if t in licence), None)
            note = "The package ships no licence file" + (
                f"; the {shipped} text is at the end of this file." if shipped else "."
            )
        bundled = _BUNDLED.get(_canonical(name))
        if bundled is not None:
            licence = f"{licence} AND {bundled[0]}"
            note = f"{note} {bundled[1]}".strip()
        components.append(
            Component(
                name=name,
                version=dist.version,
                license=licence,
                texts=texts,
                url=_url(dist),
                note=note,
                files=sorted(placed.get(_canonical(name), set())),
                copyright=copyright_lines(texts) or [_authors(dist)],
            )
        )
    return components


def _authors(dist: metadata.Distribution) -> str:
    """Who the metadata says wrote a package, for want of a copyright line."""
    meta = dist.metadata
    author = (meta.get("Author") or "").strip()
    if not author and meta.get("Author-email"):
        author = re.sub(r"\s*<[^>]*>", "", str(meta["Author-email"])).strip().strip('"')
    return author or f"the {meta['Name']} authors"


# ---- FFmpeg --------------------------------------------------------------------------------


def ffmpeg_license(configuration: str) -> str:
    """The licence FFmpeg's configure options put the build under (see FFmpeg's LICENSE.md)."""
    options = set(configuration.split())
    if "--enable-nonfree" in options:
        return "LicenseRef-ffmpeg-nonfree"  # not redistributable: generate() refuses it
    gpl = "--enable-gpl" in options
    version3 = "--enable-version3" in options
    if gpl:
        return "GPL-3.0-or-later" if version3 else "GPL-2.0-or-later"
    return "LGPL-3.0-or-later" if version3 else "LGPL-2.1-or-later"


def ffmpeg_origin(build: FfmpegBuild) -> str:
    """Who built the binary, as far as its version output tells."""
    if "/ffbuild/" in build.configuration or "ffbuild" in build.output:
        return (
            "BtbN's FFmpeg-Builds (https://github.com/BtbN/FFmpeg-Builds): its scripts at the "
            "release this binary comes from name the exact source of FFmpeg and of every "
            "library linked into it, and build it reproducibly"
        )
    if "johnvansickle" in build.output:
        return "John Van Sickle's static builds (https://johnvansickle.com/ffmpeg/)"
    if "tessus" in build.output:
        return "evermeet.cx (https://evermeet.cx/ffmpeg/)"
    return "an unknown builder: see imageio-ffmpeg's release notes"


def _imageio_ffmpeg() -> tuple[str, str, str]:
    """imageio-ffmpeg's version, home page and the path of its ffmpeg."""
    import imageio_ffmpeg

    dist = metadata.distribution("imageio-ffmpeg")
    return dist.version, _url(dist), str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_component(executable: str | None = None) -> Component:
    """The bundled FFmpeg: licence from its configure line, the pointer to its source and the
    written offer for it."""
    wheel_version, wheel_url, bundled = _imageio_ffmpeg()
    build = ffmpeg_build(executable or bundled)
    spdx = ffmpeg_license(build.configuration)
    options = set(build.configuration.split())
    gpl_parts = sorted(o.removeprefix("--enable-") for o in options & _FFMPEG_GPL_OPTIONS)
    match = re.search(r"ffmpeg version (\S+)", build.version)
    years = re.search(r"Copyright \(c\) (\S+) the FFmpeg developers", build.version)
    version = match.group(1) if match else "unknown"
    commit = re.search(r"-g([0-9a-f]{7,40})\b", version)
    release = re.match(r"n?(\d+\.\d+(?:\.\d+)?)", version)
    where = [
        f"FFmpeg {version}, the ffmpeg program of imageio-ffmpeg {wheel_version} "
        f"({wheel_url}), built by {ffmpeg_origin(build)}.",
        "",
        f"Licence: {spdx}, read from its configure line (below)"
        + (
            f": --enable-gpl with GPL parts ({', '.join(gpl_parts)}) puts the whole binary under "
            "the GNU GPL"
            if gpl_parts
            else ""
        )
        + ". The text of GPL version 3 is at the end of this file; FFmpeg's own terms: "
        "https://ffmpeg.org/legal.html.",
        "",
        "Corresponding source:",
    ]
    if commit:
        where.append(
            f"  FFmpeg at commit {commit.group(1)}: https://git.ffmpeg.org/ffmpeg.git "
            f"(mirror https://github.com/FFmpeg/FFmpeg/commit/{commit.group(1)})"
        )
    if release:
        where.append(f"  FFmpeg {release.group(1)} releases: https://ffmpeg.org/releases/")
    where += [
        "  The libraries linked into it and the build scripts: the builder named above.",
        "  How imageio-ffmpeg picks the binary: tools/ffmpeg-sources.json in its repository.",
        "",
        "Written offer: for three years from the date you received this copy, the Desktop "
        "Relay developers will give anyone who asks the complete corresponding source code "
        "of this FFmpeg binary (FFmpeg, every library linked into it, and the scripts that "
        "built it) on a medium customarily used for software interchange, for no more than "
        f"the cost of physically making the copy. Ask {SOURCE_OFFER_CONTACT}.",
        "",
        "ffmpeg -version:",
        "",
        build.output.strip(),
    ]
    return Component(
        name="FFmpeg",
        version=version,
        license=spdx,
        url="https://ffmpeg.org/",
        note="\n".join(where),
        files=[f"{INSTALL_DIR}/_internal/imageio_ffmpeg/binaries/*"],
        copyright=[
            f"{years.group(1) if years else ''} the FFmpeg developers".strip(),
            "the authors of the libraries linked into it (see its configure line)",
        ],
    )


# ---- Qt, CPython, Desktop Relay, PyInstaller ------------------------------------------------

# Where PyInstaller puts CPython's own files: extension modules, the library, the frozen stdlib.
_CPYTHON_FILES = ("python3*", "libpython3*", "base_library.zip")


def qt_note() -> str:
    """Qt's LGPL notice and how to replace the bundled Qt (LGPL-3.0 section 4)."""
    try:
        import PySide6
        from PySide6 import QtCore

        versions = f"PySide6 {PySide6.__version__} with Qt {QtCore.qVersion()}"
    except ImportError:
        versions = "PySide6 (not installed where these notices were made)"
    return "\n".join(
        [
            f"The window uses {versions}, from the PySide6-Essentials and shiboken6 "
            "packages, under the GNU Lesser General Public License version 3 (LGPL-3.0-only; "
            "The Qt Company also offers them under GPL-2.0 and GPL-3.0). The LGPL-3.0 text, "
            "and the GPL-3.0 text it builds on, are at the end of this file.",
            "",
            "Replacing Qt. The app is a PyInstaller one-folder build: Qt's libraries, its "
            "plugins and the PySide6/shiboken6 bindings are separate files under _internal/ "
            "(on Linux _internal/PySide6/Qt/lib/libQt6*.so.6, _internal/PySide6/Qt/plugins/, "
            "_internal/PySide6/*.abi3.so and _internal/shiboken6/; on Windows the .dll files in "
            "_internal/PySide6/; on macOS the frameworks in _internal/PySide6/Qt/lib/), loaded "
            "when the app starts. To run the app with a modified Qt, build Qt (and, for another "
            "Qt version, PySide6) from source and put your files in place of these, under the "
            "same names. Nothing else in the app needs rebuilding: its own code is Python "
            "(in the executable's archive, and in the project's source).",
            "",
            "Source: Qt https://download.qt.io/official_releases/qt/ and "
            "https://code.qt.io/cgit/qt/qt5.git, PySide6 and shiboken6 "
            "https://download.qt.io/official_releases/QtForPython/ and "
            "https://code.qt.io/cgit/pyside/pyside-setup.git. Qt carries third-party code "
            "under its own licences: https://doc.qt.io/qt-6/licenses-used-in-qt.html.",
        ]
    )


def cpython_component(bundle: Bundle | None) -> Component:
    """The interpreter and its standard library, with CPython's LICENSE.txt."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for candidate in (stdlib / "LICENSE.txt", Path(sys.base_prefix) / "LICENSE.txt"):
        if candidate.is_file():
            texts.append(("LICENSE.txt", candidate.read_text(encoding="utf-8", errors="replace")))
            break
    version = ".".join(str(n) for n in sys.version_info[:3])
    return Component(
        name="Python (CPython)",
        version=version,
        license="PSF-2.0",
        texts=texts,
        url="https://www.python.org/",
        note="The interpreter and its standard library"
        + (" run the app inside the executable." if bundle else "."),
        files=[f"{INSTALL_DIR}/_internal/{name}" for name in _CPYTHON_FILES] if bundle else [],
        # Its LICENSE.txt quotes the holders inside sentences: named here, as it names them.
        copyright=[
            "Python Software Foundation",
            "Corporation for National Research Initiatives, BeOpen.com, "
            "Stichting Mathematisch Centrum Amsterdam (see its LICENSE.txt)",
        ],
    )


def project_component() -> Component:
    """Desktop Relay itself: its LICENSE file when the source tree has one."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = data.get("license", "LicenseRef-unknown")
    if isinstance(licence, dict):  # the older table form: {text = ...} or {file = ...}
        licence = licence.get("text", "LicenseRef-unknown")
    files = sorted(p for p in ROOT.iterdir() if p.is_file() and _LICENSE_FILE_NAME.match(p.name))
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in files]
    note = (
        ""
        if texts
        else f"Licence {licence}, as pyproject.toml declares. No LICENSE file was found in "
        "the source tree when these notices were made."
    )
    return Component(
        name="Desktop Relay",
        version=str(data["version"]),
        license=str(licence),
        texts=texts,
        note=note,
        copyright=copyright_lines(texts) or ["Desktop Relay developers"],
    )


def pyinstaller_component() -> Component | None:
    """PyInstaller's bootloader and runtime hooks, which the build puts in the app."""
    try:
        dist = metadata.distribution("pyinstaller")
    except metadata.PackageNotFoundError:
        return None
    texts = python_license_texts(dist)
    return Component(
        name="PyInstaller bootloader and runtime",
        version=dist.version,
        license=python_license(dist, texts),
        texts=texts,
        url=_url(dist),
        note="The executable's start-up code and the runtime hooks come from PyInstaller; its "
        "bootloader exception lets them be distributed with any program.",
        # In the executable, whose DEP-5 paragraph names its licence with the others.
        copyright=copyright_lines(texts)[:3] or ["the PyInstaller Development Team"],
    )


# ---- npm packages --------------------------------------------------------------------------


def _npm_texts(package_dir: Path) -> list[tuple[str, str]]:
    if not package_dir.is_dir():
        return []
    return [
        (p.name, p.read_text(encoding="utf-8", errors="replace"))
        for p in sorted(package_dir.iterdir())
        if p.is_file() and _LICENSE_FILE_NAME.match(p.name)
    ]


def npm_components(manifest: Path = NPM_MANIFEST, web: Path = WEB) -> tuple[list[Component], str]:
    """The npm packages the page bundles, and where that list came from."""
    source_note = (
        "Inside the join page and the browser client (desktop_relay/web/dist); their source is "
        "also in the shipped source maps (*.map)."
    )
    if manifest.is_file():
        entries = json.loads(manifest.read_text())
        components = [
            Component(
                name=entry["name"],
                version=entry["version"],
                license=entry.get("license") or f"LicenseRef-{entry['name']}",
                texts=[(t["file"], t["text"]) for t in entry.get("texts", [])],
                url=entry.get("homepage") or f"https://www.npmjs.com/package/{entry['name']}",
            )
            for entry in entries
        ]
        return components, f"{source_note} Listed from esbuild's metafile of the page build."
    lock = json.loads((web / "package-lock.json").read_text())
    components = []
    for key, entry in sorted(lock.get("packages", {}).items()):
        if not key or entry.get("dev") or entry.get("devOptional"):
            continue
        name = key.rsplit("node_modules/", 1)[-1]
        components.append(
            Component(
                name=name,
                version=str(entry.get("version", "")),
                license=entry.get("license") or f"LicenseRef-{name}",
                texts=_npm_texts(web / key),
                url=f"https://www.npmjs.com/package/{name}",
            )
        )
    return components, (
        "The page was not built when these notices were made: every production package of "
        "resources/web/package-lock.json, a superset of what the page bundles."
    )


def declared_npm_dependencies(web: Path = WEB) -> list[str]:
    """The production dependencies in resources/web/package.json."""
    return sorted(json.loads((web / "package.json").read_text()).get("dependencies", {}))


# ---- system libraries ----------------------------------------------------------------------


def debian_package_of(path: str) -> str | None:
    """The installed Debian package owning `path` (dpkg -S), trying usrmerge's aliases."""
    if shutil.which("dpkg") is None:
        return None
    candidates = {path, str(Path(path).resolve())}
    candidates |= {c.removeprefix("/usr") for c in list(candidates) if c.startswith("/usr/")}
    candidates |= {"/usr" + c for c in list(candidates) if not c.startswith("/usr/")}
    for candidate in sorted(candidates):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":")[0].split(",")[0].strip()
    return None


def _debian_version(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else ""


def _dep5_licenses(text: str) -> str:
    """The licence names a DEP-5 copyright file gives, or '' for a free-form one."""
    if not text.startswith("Format:"):
        return ""
    names = re.findall(r"^License:[ \t]*(\S.*)$", text, re.MULTILINE)
    return "; ".join(dict.fromkeys(n.strip() for n in names))


def _python_owned_roots() -> list[Path]:
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        roots.add(Path(sysconfig.get_paths()[key]).resolve())
    return sorted(roots)


def system_library_components(bundle: Bundle) -> list[Component]:
    """The shared libraries the bundle took from the build machine (not from Python or a
    Python package), with their Debian package's copyright file where dpkg knows them."""
    roots = _python_owned_roots()
    by_package: dict[str, Component] = {}
    for dest, source in bundle.files:
        name = Path(dest).name
        if not (".so" in name or name.endswith((".dll", ".dylib"))) or not source:
            continue
        real = Path(source).resolve()
        if any(real.is_relative_to(root) for root in roots):
            continue
        package = debian_package_of(source)
        key = package or name
        component = by_package.get(key)
        if component is None:
            texts: list[tuple[str, str]] = []
            copyright_file = Path("/usr/share/doc") / package / "copyright" if package else None
            if copyright_file is not None and copyright_file.is_file():
                text = copyright_file.read_text(encoding="utf-8", errors="replace")
                texts.append((str(copyright_file), text))
            names = _dep5_licenses(texts[0][1]) if texts else ""
            origin = f"the build machine's Debian package {package}" if package else "the system"
            component = Component(
                name=package or name,
                version=_debian_version(package) if package else "",
                # Debian's copyright files mix many licences per package: the file is quoted
                # whole below, and DEP-5 names it as a whole.
                license=f"LicenseRef-debian-{key}" if package else f"LicenseRef-{key}",
                texts=texts,
                note=f"From {origin}" + (f"; its copyright file names: {names}." if names else "."),
                copyright=copyright_lines(texts)[:4] or [f"the {key} authors"],
            )
            by_package[key] = component
        component.files.append(f"{INSTALL_DIR}/_internal/{dest}")
    for component in by_package.values():
        component.note += " Files: " + ", ".join(Path(f).name for f in component.files)
    return sorted(by_package.values(), key=lambda c: c.name)


# ---- writing -------------------------------------------------------------------------------


def _common_license_texts(components: Iterable[Component]) -> list[tuple[str, str]]:
    # Debian copyright files point to /usr/share/common-licenses instead of quoting: quote the
    # ones they name, so the notices stand alone outside Debian (the tarball).
    wanted: list[str] = []
    for component in components:
        for _, text in component.texts:
            for name in re.findall(r"/usr/share/common-licenses/([A-Za-z0-9.+-]+)", text):
                if name not in wanted and name not in {"GPL-3", "LGPL-3", "GPL", "LGPL"}:
                    wanted.append(name)
    found = []
    for name in wanted:
        path = Path("/usr/share/common-licenses") / name
        if path.is_file():
            found.append((f"{name} (from /usr/share/common-licenses)", path.read_text()))
    return found


def _component_block(component: Component) -> str:
    lines = [THIN_RULE, component.title, f"Licence: {component.license}"]
    if component.url:
        lines.append(f"Home: {component.url}")
    if component.note:
        lines += ["", component.note]
    for name, text in component.texts:
        lines += ["", f"--- {name}", "", text.strip()]
    return "\n".join(lines) + "\n"


def render_notices(
    project: Component,
    ffmpeg: Component,
    qt: str,
    python: list[Component],
    npm: tuple[list[Component], str],
    system: list[Component],
) -> str:
    """THIRD-PARTY-NOTICES.txt."""
    npm_components_, npm_source = npm
    appendix = [
        ("GNU GENERAL PUBLIC LICENSE, version 3", (LICENSE_TEXTS / "GPL-3.0.txt").read_text()),
        (
            "GNU LESSER GENERAL PUBLIC LICENSE, version 3",
            (LICENSE_TEXTS / "LGPL-3.0.txt").read_text(),
        ),
        *_common_license_texts(system),
    ]
    sections = [
        ("1. Desktop Relay", [_component_block(project)]),
        ("2. FFmpeg (GNU GPL): build, source and written offer", [_component_block(ffmpeg)]),
        ("3. Qt and PySide6 (GNU LGPL version 3): how to replace them", [qt + "\n"]),
        (
            f"4. Python and the Python packages inside the app ({len(python)})",
            [_component_block(c) for c in python],
        ),
        (
            f"5. npm packages inside the join page ({len(npm_components_)})",
            [npm_source + "\n", *(_component_block(c) for c in npm_components_)],
        ),
    ]
    if system:
        sections.append(
            (
                f"6. System libraries bundled from the build machine ({len(system)})",
                [_component_block(c) for c in system],
            )
        )
    sections.append(
        (
            f"{len(sections) + 1}. Licence texts",
            [f"{THIN_RULE}\n{title}\n\n{text.strip()}\n" for title, text in appendix],
        )
    )
    head = [
        f"THIRD-PARTY NOTICES: Desktop Relay {project.version}",
        "",
        "Desktop Relay bundles the components below, each under its own licence. This file "
        "is generated from their installed metadata by packaging/notices.py when the app is "
        "built. Contents:",
        "",
        *(f"  {title}" for title, _ in sections),
        "",
    ]
    body = [f"{RULE}\n{title}\n{RULE}\n\n" + "\n".join(blocks) for title, blocks in sections]
    return "\n".join(head) + "\n" + "\n".join(body)


def _dep5_field(name: str, value: str) -> str:
    """A DEP-5 field: continuation lines indented, empty lines as ' .'."""
    lines = value.strip("\n").splitlines() or [""]
    first, rest = lines[0], lines[1:]
    out = [f"{name}: {first}".rstrip()]
    out += [f" {line}" if line.strip() else " ." for line in rest]
    return "\n".join(out)


def _dep5_license(spdx: str) -> str:
    """An SPDX expression in DEP-5's syntax (lower-case operators)."""
    return re.sub(r"\b(AND|OR|WITH)\b", lambda m: m.group(1).lower(), spdx)


def _dep5_atoms(expression: str) -> list[str]:
    tokens = re.split(r"\s+(?:and|or)\s+", expression.replace("(", " ").replace(")", " "))
    return [t.strip() for t in tokens if t.strip()]


def render_copyright(
    project: Component, components: list[Component], notices_at: str, install_dir: str
) -> str:
    """/usr/share/doc/desktop-relay/copyright in Debian's machine-readable format 1.0."""
    paragraphs = [
        "\n".join(
            [
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
                "Upstream-Name: Desktop Relay",
                f"Upstream-Contact: {SOURCE_OFFER_CONTACT}",
                _dep5_field(
                    "Comment",
                    f"Desktop Relay {project.version} bundles the components below in "
                    f"/{install_dir}. The full licence texts, notices and copyright lines of "
                    f"each, FFmpeg's build and the written offer for its source, and how to "
                    f"replace Qt are in {notices_at} (also shown in the app's Help > About).",
                ),
            ]
        ),
        "\n".join(
            [
                "Files: *",
                _dep5_field("Copyright", "\n".join(project.copyright)),
                f"License: {_dep5_license(project.license)}",
            ]
        ),
    ]
    used: dict[str, None] = {}
    for component in components:
        if not component.files:
            continue
        licence = _dep5_license(component.license)
        for atom in _dep5_atoms(licence):
            used[atom] = None
        paragraphs.append(
            "\n".join(
                [
                    _dep5_field("Files", "\n".join(component.files)),
                    _dep5_field("Copyright", "\n".join(dict.fromkeys(component.copyright))),
                    f"License: {licence}",
                    _dep5_field("Comment", component.title),
                ]
            )
        )
    for atom in [*dict.fromkeys([*_dep5_atoms(_dep5_license(project.license)), *used])]:
        base = atom.split(" with ")[0]
        text = f"The full text, with each component's notice, is in {notices_at}."
        if base.startswith("LicenseRef-debian-"):
            package = base.removeprefix("LicenseRef-debian-")
            text = (
                f"The terms of Debian package {package}, whose /usr/share/doc/{package}/copyright "
                f"is quoted in full in {notices_at}."
            )
        elif base in _DEBIAN_COMMON:
            text = (
                "On Debian systems the full text of this licence is in "
                f"/usr/share/common-licenses/{_DEBIAN_COMMON[base]}.\n{text}"
            )
        paragraphs.append(_dep5_field("License", f"{atom}\n{text}"))
    return "\n\n".join(paragraphs) + "\n"


def _write(path: Path, text: str) -> None:
    # Atomic: test workers and a build may generate at the same time.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def components(bundle: Bundle | None = None) -> Iterator[tuple[str, Component]]:
    """Every component the notices name, with its kind (for tests and the DEP-5 file)."""
    dists = {_canonical(d.metadata["Name"]): d for d in runtime_distributions()}
    if bundle is not None:
        for dist in bundled_distributions(bundle):
            dists.setdefault(_canonical(dist.metadata["Name"]), dist)
    dists.pop(_canonical(DISTRIBUTION), None)
    dists.pop("pyinstaller", None)  # its own component below
    yield "python", cpython_component(bundle)
    for component in python_components(sorted(dists.values(), key=_dist_key), bundle):
        yield "python", component
    if bundle is not None and bundle.pyinstaller:
        found = pyinstaller_component()
        if found is not None:
            yield "python", found


def _all_of(expressions: Iterable[str]) -> str:
    """One expression that requires every one of `expressions`: AND-ed, each choice (OR) kept
    whole in parentheses."""
    parts: dict[str, None] = {}
    for expression in expressions:
        if re.search(r"\bOR\b", expression):
            parts[f"({expression})"] = None
        else:
            parts.update(dict.fromkeys(p.strip() for p in re.split(r"\bAND\b", expression)))
    return " AND ".join(parts)


def _dist_key(dist: metadata.Distribution) -> str:
    return _canonical(dist.metadata["Name"])


def generate(out: Path, bundle: Bundle | None = None) -> Path:
    """Write THIRD-PARTY-NOTICES.txt and the DEP-5 `copyright` into `out`; returns the notices
    file's path. `bundle`: what PyInstaller bundles (None: describe the installed packages)."""
    project = project_component()
    ffmpeg = ffmpeg_component()
    if ffmpeg.license.startswith("LicenseRef-ffmpeg-nonfree"):
        raise SystemExit("the bundled ffmpeg was built with --enable-nonfree: not redistributable")
    python = [c for _, c in components(bundle)]
    npm = npm_components()
    system = system_library_components(bundle) if bundle is not None else []
    notices = render_notices(project, ffmpeg, qt_note(), python, npm, system)
    path = out / NOTICES_FILE
    _write(path, notices)
    pyside = [c for c in python if _canonical(c.name) in {"pyside6-essentials", "shiboken6"}]
    for component in pyside:
        component.license = "LGPL-3.0-only"  # the option we use (see section 3)
    web = Component(
        name="the join page and the npm packages it bundles",
        version="",
        license=_all_of([project.license, *(c.license for c in npm[0])]),
        files=[f"{INSTALL_DIR}/_internal/desktop_relay/web/dist/*"],
        copyright=[
            *project.copyright,
            *(line for c in npm[0] for line in copyright_lines(c.texts)),
        ],
    )
    # The executable holds the compiled modules of the app, the standard library and every
    # pure-Python package: all of their licences apply to it.
    executable = Component(
        name="the executable and its archive of Python modules",
        version="",
        license=_all_of([project.license, *(c.license for c in python)]),
        files=[f"{INSTALL_DIR}/{APP}"],
        copyright=[*project.copyright, "the authors of the Python packages in the notices"],
    )
    notices_at = f"/usr/share/doc/{APP}/{NOTICES_FILE}"
    dep5 = render_copyright(
        project, [executable, *python, web, ffmpeg, *system], notices_at, INSTALL_DIR
    )
    _write(out / COPYRIGHT_FILE, dep5)
    return path


def main(argv: list[str] | None = None) -> int:
    """Write the notices of the installed packages (no bundle: what a source checkout runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "notices")
    args = parser.parse_args(argv)
    path = generate(args.out)
    print(f"wrote {path} and {args.out / COPYRIGHT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
