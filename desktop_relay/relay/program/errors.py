"""The program's errors, apart from the modules that need PyAV: the relay imports these
without loading FFmpeg's libraries (only the worker process does)."""

from __future__ import annotations


class SlateImageError(ValueError):
    """The operator's slate image cannot be used (the message says why, for the operator)."""
