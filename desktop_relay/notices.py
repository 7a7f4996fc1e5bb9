"""The third-party notices the app ships, and the build of the ffmpeg the relay runs.

Both are shown by Help > About. The notices file is written at build time by
packaging/notices.py from the installed metadata; a source checkout makes it on demand.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .relay.ffmpeg.process import resolve_ffmpeg

log = logging.getLogger(__name__)

NOTICES_FILE = "THIRD-PARTY-NOTICES.txt"
# Where a source checkout writes its notices: in build/ (gitignored), beside but apart from
# build/notices, which a PyInstaller build writes and build.py then packages.
SOURCE_NOTICES_DIR = Path("build") / "notices-checkout"

_CHECKOUT = Path(__file__).resolve().parent.parent
_GENERATOR = _CHECKOUT / "packaging" / "notices.py"


def bundled_notices() -> Path | None:
    """The notices inside a PyInstaller build (None when not frozen or not shipped)."""
    bundle = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's bootloader
    if bundle is None:
        return None
    path = Path(bundle) / NOTICES_FILE
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def notices_path() -> Path | None:
    """The THIRD-PARTY-NOTICES file: the bundled one when frozen; in a source checkout one
    that packaging/notices.py makes once per process from what is installed now (so it never
    goes stale). None when there is none: an installed wheel ships no notices, its
    dependencies being installed separately.

    Generating reads package metadata and runs `ffmpeg -version`: call it off the GUI thread.
    """
    if getattr(sys, "frozen", False):
        return bundled_notices()
    if not _GENERATOR.is_file():
        return None
    try:
        return _generate(_CHECKOUT / SOURCE_NOTICES_DIR)
    except Exception:  # a broken checkout must not break the About dialog
        log.warning("could not generate the third-party notices", exc_info=True)
        return None


def _generate(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("desktop_relay_notices_build", _GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    path: Path = module.generate(folder)
    return path


def notices_text() -> str:
    """The notices, or a sentence saying why there are none."""
    path = notices_path()
    if path is None:
        return (
            "No third-party notices are available: this copy was not built by "
            "packaging/notices.py. Each installed package carries its own licence."
        )
    return path.read_text(encoding="utf-8", errors="replace")


@dataclass(frozen=True)
class FfmpegBuild:
    """What an ffmpeg binary says about itself (`ffmpeg -version`)."""

    path: str
    version: str  # the first line: "ffmpeg version n9.0.2 Copyright (c) 2000-2026 ..."
    configuration: str  # the configure options it was built with
    output: str  # everything it printed


def parse_version_output(path: str, output: str) -> FfmpegBuild:
    """The version line and configure options out of `ffmpeg -version`'s output."""
    lines = output.strip().splitlines()
    version = lines[0].strip() if lines else ""
    configuration = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("configuration:")),
        "",
    )
    return FfmpegBuild(path=path, version=version, configuration=configuration, output=output)


@functools.lru_cache(maxsize=8)
def ffmpeg_build(executable: str, timeout: float = 10.0) -> FfmpegBuild:
    """Run `executable -version` once (cached per path); raises OSError or
    subprocess.SubprocessError when it cannot run."""
    done = subprocess.run(
        [executable, "-hide_banner", "-version"],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=True,
    )
    return parse_version_output(executable, done.stdout)


def relay_ffmpeg_build(configured: str | None) -> FfmpegBuild:
    """The build of the ffmpeg a relay with `ffmpeg_path=configured` runs: resolved the same
    way (configured, else imageio-ffmpeg's, else PATH). Raises RelayError when there is none."""
    return ffmpeg_build(resolve_ffmpeg(configured))
