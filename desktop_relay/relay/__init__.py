"""The Qt-free relay core: socket.io in, ffmpeg out. Usable as a library and headless.

This package's names are its public API: the window (desktop_relay.gui) imports only these,
a contract import-linter checks (see pyproject.toml).
"""

from .config import RelayConfig, StartConfig
from .core import Relay
from .errors import ErrorName, RelayError, ServerError
from .media.audio_meter import AudioLevel
from .media.stream_health import Check as HealthCheck
from .media.stream_health import HealthThresholds, HealthWarning
from .observer import BaseObserver, RelayObserver
from .options import LOG_LEVELS, OPTION_GROUPS, OPTIONS, Option, OptionKind, option
from .outputs.destinations import TargetError, mask_target, split_key, validate_target
from .outputs.recordings import default_recordings_dir
from .outputs.thumbnails import Thumbnail
from .program.config import CORNERS, PIP_SIZES, PipState
from .program.show import ProgramRequestError, ProgramSource, ProgramStatus
from .security.auth import save_token
from .security.keystore import KeyStore
from .security.tls import TlsFiles, fingerprint
from .server import RelayServer
from .status import (
    FfmpegState,
    FfmpegStats,
    FfmpegStatus,
    OutputState,
    OutputStatus,
    SessionState,
    SessionStatus,
)
from .target_pattern import PatternError, check_pattern
from .tasks import TaskSet
from .transport.network import join_urls, lan_addresses

__all__ = [
    "CORNERS",
    "LOG_LEVELS",
    "OPTIONS",
    "OPTION_GROUPS",
    "PIP_SIZES",
    "AudioLevel",
    "BaseObserver",
    "ErrorName",
    "FfmpegState",
    "FfmpegStats",
    "FfmpegStatus",
    "HealthCheck",
    "HealthThresholds",
    "HealthWarning",
    "KeyStore",
    "Option",
    "OptionKind",
    "OutputState",
    "OutputStatus",
    "PatternError",
    "PipState",
    "ProgramRequestError",
    "ProgramSource",
    "ProgramStatus",
    "Relay",
    "RelayConfig",
    "RelayError",
    "RelayObserver",
    "RelayServer",
    "ServerError",
    "SessionState",
    "SessionStatus",
    "StartConfig",
    "TargetError",
    "TaskSet",
    "Thumbnail",
    "TlsFiles",
    "check_pattern",
    "default_recordings_dir",
    "fingerprint",
    "join_urls",
    "lan_addresses",
    "mask_target",
    "option",
    "save_token",
    "split_key",
    "validate_target",
]
