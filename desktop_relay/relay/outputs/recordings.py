"""Where sessions without a target are recorded, and how a recording file is made safely."""

from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

import platformdirs

from ..errors import ErrorName, RelayError, ServerError
from ..security.private_files import private_dir
from .destinations import Destination

# How many "-2", "-3"... variants of a taken name are tried before giving up.
_MAX_VARIANTS = 1000


def default_recordings_dir() -> Path:
    """The user's videos folder, so a fresh install does something useful unconfigured."""
    return Path(platformdirs.user_videos_dir()) / "Desktop Relay"


def _recording_error(message: str) -> RelayError:
    return RelayError(ServerError(ErrorName.RECORDING_FAILED, message))


def recording_output(folder: Path | None, session_id: str, name: str | None) -> Destination:
    """The planned file in `folder` named for the time and the session's name (or short id).

    The folder is made private (0700): recordings are the user's own. The file itself is
    created only when ffmpeg starts, by `create_recording`, which never reuses a name.
    """
    folder = folder or default_recordings_dir()
    try:
        private_dir(folder)
    except OSError as exc:
        raise _recording_error(f"Cannot create the recordings folder {folder}: {exc}") from None
    # Only safe characters from the browser-given name reach the file system.
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "")[:32].strip("-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Destination(str(folder / f"{stamp}-{label or session_id[:8]}.mkv"), is_file=True)


def create_recording(planned: Path) -> tuple[Path, int]:
    """Create a new, empty recording file for `planned` and return its path and an open fd.

    Created exclusively, 0600, never following a symlink: two sessions with the same name in
    the same second get `name.mkv` and `name-2.mkv`, and a file or link planted under the
    name is left alone, never overwritten or written through. The caller passes the fd to
    ffmpeg (`fd:` protocol, still seekable, so the file gets its cues) and closes its copy.
    """
    stem, suffix = planned.stem, planned.suffix
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for n in range(1, _MAX_VARIANTS + 1):
        path = planned if n == 1 else planned.with_name(f"{stem}-{n}{suffix}")
        try:
            return path, os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink where O_NOFOLLOW forbids one
                continue
            raise _recording_error(f"Cannot create the recording {path}: {exc.strerror}") from None
    raise _recording_error(
        f"Cannot create the recording: {_MAX_VARIANTS} names like {planned} are taken"
    )
