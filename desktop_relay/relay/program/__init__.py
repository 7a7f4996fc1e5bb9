"""The program: several sources composed into one show with one encoder (issue 22).

`ProgramEngine` (parent side, asyncio) runs the worker process (`worker.py`) that decodes the
sources, composes on a fixed clock and encodes once. Nothing here imports the rest of the relay:
the integrator feeds it from the sessions' StreamHub taps and fans its FLV out.
"""

from .config import (
    CORNERS,
    PIP_SIZES,
    PROGRAM_SIZES,
    Corner,
    PipSize,
    PipState,
    ProgramConfig,
    ProgramState,
    SlateReason,
    SourceState,
)
from .engine import ProgramCommandError, ProgramEngine, ProgramError
from .errors import SlateImageError


def __getattr__(name: str) -> object:
    # load_slate_image needs PyAV: loaded on first use, not with the relay.
    if name == "load_slate_image":
        from .slate import load_slate_image

        return load_slate_image
    raise AttributeError(name)


__all__ = [
    "CORNERS",
    "PIP_SIZES",
    "PROGRAM_SIZES",
    "Corner",
    "PipSize",
    "PipState",
    "ProgramCommandError",
    "ProgramConfig",
    "ProgramEngine",
    "ProgramError",
    "ProgramState",
    "SlateImageError",
    "SlateReason",
    "SourceState",
    "load_slate_image",
]
