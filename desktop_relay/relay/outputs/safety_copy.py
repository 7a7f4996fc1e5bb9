"""The raw safety copy: a session's browser bytes, exactly as received, appended to a file.

No ffmpeg and nothing to fail: when every output and the encoder had a bad day, this file is
what the streamer falls back on (it plays in VLC or a browser, or converts with ffmpeg). A
write error stops the copy (logged once), never the stream.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import RelayError
from .recordings import create_recording

log = logging.getLogger(__name__)

_EXTENSIONS = {"webm": ".webm", "mp4": ".mp4", "x-matroska": ".mkv", "matroska": ".mkv"}


def safety_copy_path(recording: Path, mime_type: str | None) -> Path:
    """`name.browser.webm` (or .mp4, .mkv) beside where `recording` would be."""
    subtype = (mime_type or "").partition("/")[2].partition(";")[0].strip().lower()
    extension = _EXTENSIONS.get(subtype, ".bin")
    return recording.with_name(f"{recording.stem}.browser{extension}")


class SafetyCopy:
    """Appends what it is given to a file created (exclusively, 0600) on the first write."""

    def __init__(self, planned: Path) -> None:
        self._planned = planned
        self._fd: int | None = None
        self.path: Path | None = None
        self.bytes_written = 0
        self.failed: str | None = None

    def write(self, data: bytes) -> None:
        """Append `data`; never raises (a failure ends the copy, not the stream)."""
        if self.failed is not None or not data:
            return
        try:
            if self._fd is None:
                self.path, self._fd = create_recording(self._planned)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self.bytes_written += len(data)
        except (OSError, RelayError) as exc:
            self.failed = str(exc)
            log.warning("safety copy %s stopped: %s", self.path or self._planned, exc)
            self.close()

    def close(self) -> None:
        """Close the file (what was written stays)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                log.warning("safety copy %s: %s", self.path, exc)
