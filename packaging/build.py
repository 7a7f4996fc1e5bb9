"""Build Desktop Relay for Linux: the one-folder app, a .deb and a .tar.gz, with figures.

Usage: `.venv/bin/python packaging/build.py [--skip-web] [--no-deb] [--fast]`, or
`bash packaging/build.sh`, which also installs PyInstaller into the virtualenv.

Outputs, all under dist/ (gitignored):
  dist/desktop-relay/                          the PyInstaller one-folder app
  dist/desktop-relay_VERSION_ARCH.deb          installs to /opt/desktop-relay
  dist/desktop-relay-VERSION-linux-MACHINE.tar.gz
  dist/build-figures.json                      sizes and times, also printed

Third-party notices: the spec writes build/notices/ (packaging/notices.py) and bundles
THIRD-PARTY-NOTICES.txt; this puts it at the top of the one-folder app too (so the tarball
shows it), and in the .deb as /usr/share/doc/desktop-relay/ with the DEP-5 `copyright`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from notices import COPYRIGHT_FILE, NOTICES_FILE, SOURCE_OFFER_CONTACT, debian_package_of

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
BUILD = ROOT / "build"
APP = "desktop-relay"
SPEC = ROOT / "packaging" / "desktop-relay.spec"
WEB = ROOT / "resources" / "web"
WEB_DIST = ROOT / "desktop_relay" / "web" / "dist"
ICONS = ROOT / "resources" / "icons"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
NOTICES_DIR = BUILD / "notices"  # written by the spec (packaging/notices.py)
INSTALL_DIR = Path("/opt") / APP

# What Qt's xcb platform plugin needs from the system on a user's desktop. The build machine
# may lack some of them (then PyInstaller could not bundle them), and a desktop without them
# fails with "could not load the Qt platform plugin xcb" (Debian does not install the first
# three by default). The .deb depends on these whatever the build found; build.py adds
# whatever else ldd resolves outside the bundle.
BASE_DEPENDS = (
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-cursor0",
    "libxcb-image0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-randr0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libxcb1",
    "libx11-xcb1",
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libdbus-1-3",
)


@dataclass
class Figures:
    """What a build measured; printed and written to dist/build-figures.json."""

    version: str
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    depends: list[str] = field(default_factory=list)
    page_included: bool = False
    fast: bool = False


def project_version() -> str:
    """The version in pyproject.toml (the spec reads the same)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return str(data["project"]["version"])


def run(cmd: list[str], cwd: Path = ROOT, **kwargs: object) -> None:
    """Run a command, echoing it; fail the build on a non-zero exit."""
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, **kwargs)  # type: ignore[call-overload]


def tree_size(path: Path) -> int:
    """Bytes of the files under `path` (symlinks counted as links, not as their targets)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def build_web(figures: Figures) -> None:
    """`npm ci` (only when node_modules is missing) and `npm run build` in resources/web."""
    if not (WEB / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        print("WARNING: npm not found: packaging the page as it is in desktop_relay/web/dist")
        return
    t0 = time.monotonic()
    # `npm ci` wipes node_modules: skip it when the tree is there (a developer's watch build
    # may be using it).
    if not (WEB / "node_modules").is_dir():
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB)
    run([npm, "run", "build", "--silent"], cwd=WEB)
    figures.seconds["web_build"] = round(time.monotonic() - t0, 1)


def build_app(figures: Figures) -> Path:
    """The PyInstaller one-folder build, dist/desktop-relay/."""
    t0 = time.monotonic()
    # nice: real-time media tests may share this machine; a build is not in a hurry.
    run(
        [
            "nice",
            "-n",
            "10",
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            str(DIST),
            "--workpath",
            str(BUILD / "pyinstaller"),
            str(SPEC),
        ]
    )
    figures.seconds["pyinstaller"] = round(time.monotonic() - t0, 1)
    app = DIST / APP
    figures.page_included = (
        app / "_internal" / "desktop_relay" / "web" / "dist" / "index.html"
    ).is_file()
    ship_notices(app)
    return app


def ship_notices(app: Path) -> None:
    """Check the spec bundled the notices it wrote; copy them to the top of the one-folder
    app, where someone who unpacks the tarball sees them."""
    written = NOTICES_DIR / NOTICES_FILE
    bundled = app / "_internal" / NOTICES_FILE
    if not written.is_file() or not bundled.is_file():
        raise SystemExit(f"the spec did not write and bundle {NOTICES_FILE}: see its output")
    if bundled.read_bytes() != written.read_bytes():
        raise SystemExit(f"{bundled} differs from {written}: a stale build folder?")
    shutil.copyfile(written, app / NOTICES_FILE)


def _elf_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def system_libraries(app: Path) -> set[str]:
    """Libraries the bundle's ELF files load from the system; fails on any not found."""
    internal = app / "_internal"
    env = dict(os.environ, LD_LIBRARY_PATH=str(internal))  # as the bootloader sets it
    outside: set[str] = set()
    missing: list[str] = []
    for elf in _elf_files(app):
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env)
        for line in out.stdout.splitlines():
            parts = line.split()
            if "not found" in line:
                missing.append(f"{elf.relative_to(app)}: {parts[0]}")
            elif (
                "=>" in parts
                and len(parts) >= 3
                and parts[2].startswith("/")
                and not Path(parts[2]).resolve().is_relative_to(internal.resolve())
            ):
                outside.add(parts[2])
    if missing:
        raise SystemExit(
            "libraries not found (a dropped Qt part is still linked?):\n  "
            + "\n  ".join(sorted(missing))
        )
    return outside


def glibc_needed(app: Path) -> str:
    """The newest glibc symbol version any bundled ELF file asks for, e.g. "2.34"."""
    newest: tuple[int, ...] = (2, 17)
    pattern = re.compile(rb"GLIBC_(2\.\d+(?:\.\d+)?)\x00")
    for elf in _elf_files(app):
        for match in pattern.finditer(elf.read_bytes()):
            version = tuple(int(n) for n in match.group(1).split(b"."))
            newest = max(newest, version)
    return ".".join(str(n) for n in newest)


def debian_packages(paths: set[str]) -> set[str]:
    """The installed Debian packages that own `paths` (dpkg -S)."""
    packages: set[str] = set()
    for path in sorted(paths):
        package = debian_package_of(path)
        if package is None:
            print(f"WARNING: no Debian package owns {path}")
        else:
            packages.add(package)
    return packages


def _install(src: Path, dest: Path, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def build_deb(app: Path, figures: Figures, depends: list[str], fast: bool = False) -> Path:
    """A .deb installing the app to /opt/desktop-relay, /usr/bin/desktop-relay on PATH."""
    t0 = time.monotonic()
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stage = BUILD / "deb" / APP
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / INSTALL_DIR.relative_to("/")
    shutil.copytree(app, opt, symlinks=True)
    usr = stage / "usr"
    (usr / "bin").mkdir(parents=True)
    (usr / "bin" / APP).symlink_to(INSTALL_DIR / APP)
    _install(
        ROOT / "resources" / f"{APP}.desktop", usr / "share" / "applications" / f"{APP}.desktop"
    )
    icons = usr / "share" / "icons" / "hicolor"
    _install(ROOT / "resources" / f"{APP}.svg", icons / "scalable" / "apps" / f"{APP}.svg")
    for size in ICON_SIZES:
        _install(ICONS / f"{APP}-{size}.png", icons / f"{size}x{size}" / "apps" / f"{APP}.png")
    # Debian's place for licences: the DEP-5 summary and the full notices beside it.
    doc = usr / "share" / "doc" / APP
    _install(NOTICES_DIR / COPYRIGHT_FILE, doc / "copyright")
    _install(NOTICES_DIR / NOTICES_FILE, doc / NOTICES_FILE)
    # dpkg-deb takes modes from the tree: make them the usual ones whatever the umask was.
    for path in stage.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)
    installed_kb = (tree_size(stage) + 1023) // 1024
    control = stage / "DEBIAN" / "control"
    control.parent.mkdir()
    control.write_text(
        f"Package: {APP}\n"
        f"Version: {figures.version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {SOURCE_OFFER_CONTACT}\n"
        f"Installed-Size: {installed_kb}\n"
        f"Depends: {', '.join(depends)}\n"
        "Section: video\n"
        "Priority: optional\n"
        "Description: relay browser camera, microphone and screen streams to RTMP\n"
        " Phones, tablets and laptops on the LAN open a page the app serves, pick a\n"
        " camera, microphone or screen and stream; every session goes through its own\n"
        " ffmpeg (bundled) to Twitch, YouTube or any RTMP(S) server, or to a file.\n"
        " Run `desktop-relay` for the window, `desktop-relay --headless` for a server.\n"
    )
    deb = DIST / f"{APP}_{figures.version}_{arch}.deb"
    # Release: xz, dpkg's default and readable by every dpkg (zstd is not, before 1.21.18);
    # ~30 % smaller than gzip but minutes of CPU. --fast: gzip -1 for test builds.
    compression = ["-Zgzip", "-z1"] if fast else ["-Zxz", "-z6"]
    run(
        [
            "nice",
            "-n",
            "10",
            "dpkg-deb",
            "--root-owner-group",
            *compression,
            "--build",
            str(stage),
            str(deb),
        ]
    )
    figures.seconds["deb"] = round(time.monotonic() - t0, 1)
    figures.bytes["deb"] = deb.stat().st_size
    figures.bytes["deb_installed"] = installed_kb * 1024
    return deb


def build_tarball(app: Path, figures: Figures, fast: bool = False) -> Path:
    """dist/desktop-relay-VERSION-linux-MACHINE.tar.gz holding the desktop-relay/ folder."""
    t0 = time.monotonic()
    tarball = DIST / f"{APP}-{figures.version}-linux-{platform.machine()}.tar.gz"
    gzip = "gzip -1" if fast else "gzip -6"
    run(
        [
            "nice",
            "-n",
            "10",
            "tar",
            "-C",
            str(app.parent),
            "-I",
            gzip,
            "-cf",
            str(tarball),
            app.name,
        ]
    )
    figures.seconds["tarball"] = round(time.monotonic() - t0, 1)
    figures.bytes["tar_gz"] = tarball.stat().st_size
    return tarball


def print_figures(figures: Figures) -> None:
    """A small table of the figures, in MB (10^6 bytes) and seconds."""
    print("\nBuild figures")
    for name, size in figures.bytes.items():
        print(f"  {name:<22} {size / 1e6:8.1f} MB")
    for name, seconds in figures.seconds.items():
        print(f"  {name + ' time':<22} {seconds:8.1f} s")
    print(f"  {'page included':<22} {'yes' if figures.page_included else 'NO'}")
    print(f"  Depends: {', '.join(figures.depends)}")


def main(argv: list[str] | None = None) -> int:
    """Build everything; returns 0 or raises."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-web", action="store_true", help="don't run the npm build")
    parser.add_argument("--no-deb", action="store_true", help="one-folder and tarball only")
    parser.add_argument(
        "--fast", action="store_true", help="light compression (test builds, not releases)"
    )
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        raise SystemExit("build.py builds the Linux packages: see packaging/windows and macos")
    t0 = time.monotonic()
    figures = Figures(version=project_version(), fast=args.fast)
    DIST.mkdir(exist_ok=True)
    if not args.skip_web:
        build_web(figures)
    app = build_app(figures)
    figures.bytes["one_folder"] = tree_size(app)
    ffmpeg = next((app / "_internal" / "imageio_ffmpeg" / "binaries").glob("ffmpeg-*"), None)
    if ffmpeg is None:
        raise SystemExit("imageio-ffmpeg's ffmpeg is not in the bundle")
    figures.bytes["of_which_ffmpeg"] = ffmpeg.stat().st_size
    outside = system_libraries(app)
    found = debian_packages(outside) if shutil.which("dpkg") else set()
    # Libraries bundled from the build machine carry its glibc floor: say so in Depends.
    glibc = glibc_needed(app)
    figures.depends = [*sorted((set(BASE_DEPENDS) | found) - {"libc6"}), f"libc6 (>= {glibc})"]
    if not args.no_deb:
        build_deb(app, figures, figures.depends, args.fast)
    build_tarball(app, figures, args.fast)
    figures.seconds["total"] = round(time.monotonic() - t0, 1)
    (DIST / "build-figures.json").write_text(json.dumps(asdict(figures), indent=2) + "\n")
    print_figures(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
