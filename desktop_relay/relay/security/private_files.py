"""Files and folders only the user may read: the pairing token, keys, stream keys, logs.

On POSIX the modes are enforced (0600 files, 0700 folders), also on files an older version
left open to others. On Windows `chmod` only sets the read-only flag; the profile folders
are private to the user already.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) and leave it 0700; returns `path`.

    An existing folder is tightened too. Raises OSError when that is not possible (for
    example a folder of another user in a shared temporary folder): better no file there
    than one others can read or replace.
    """
    # mkdir's mode applies to the last folder only and umask may loosen it: chmod after.
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def tighten(path: Path) -> None:
    """Make an existing file 0600 if others may read or write it (no error if absent)."""
    if os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, FILE_MODE)
            log.info("made %s readable only by its owner (it was %o)", path, mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc)


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An `opener` for `open()` that creates files 0600 and tightens existing ones before a
    byte is written (O_CREAT's mode applies to new files only)."""
    fd = os.open(path, flags, FILE_MODE)
    if os.name == "posix":
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
                os.fchmod(fd, FILE_MODE)
        except OSError:
            os.close(fd)
            raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Replace the contents of `path` with `data`, the file readable only by the user."""
    with open(path, "wb", opener=private_opener) as f:
        f.write(data)
