"""The Qt-free relay core: socket.io in, ffmpeg out. Usable as a library and headless."""

from .config import RelayConfig, StartConfig
from .errors import ErrorName, RelayError, ServerError
from .server import Relay
from .status import FfmpegState, FfmpegStats, FfmpegStatus, SessionState, SessionStatus
from .targets import TargetError, mask_target, validate_target

__all__ = [
    "ErrorName",
    "FfmpegState",
    "FfmpegStats",
    "FfmpegStatus",
    "Relay",
    "RelayConfig",
    "RelayError",
    "ServerError",
    "SessionState",
    "SessionStatus",
    "StartConfig",
    "TargetError",
    "mask_target",
    "validate_target",
]
