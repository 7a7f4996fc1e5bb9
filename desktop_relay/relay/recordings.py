"""Where sessions without a target are recorded."""

from __future__ import annotations

import re
import time
from pathlib import Path

import platformdirs

from .errors import ErrorName, RelayError, ServerError
from .ffmpeg_args import Output


def default_recordings_dir() -> Path:
    """The user's videos folder, so a fresh install does something useful unconfigured."""
    return Path(platformdirs.user_videos_dir()) / "Desktop Relay"


def recording_output(folder: Path | None, session_id: str, name: str | None) -> Output:
    """A new file in `folder` named for the time and the session's name (or short id)."""
    folder = folder or default_recordings_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RelayError(
            ServerError(ErrorName.CANT_START_FFMPEG, f"Cannot create the recordings folder: {exc}")
        ) from None
    # Only safe characters from the browser-given name reach the file system.
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "")[:32].strip("-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Output(str(folder / f"{stamp}-{label or session_id[:8]}.mkv"), is_file=True)
