"""The Qt-free relay core: socket.io in, ffmpeg out. Usable as a library and headless.

This package's names are its public API: the window (desktop_relay.gui) imports only these,
a contract import-linter checks (see pyproject.toml).
"""

from .audio_meter import AudioLevel
from .auth import save_token
from .config import RelayConfig, StartConfig
from .core import Relay
from .errors import ErrorName, RelayError, ServerError
from .keystore import KeyStore
from .network import join_urls, lan_addresses
from .observer import BaseObserver, RelayObserver
from .options import LOG_LEVELS, OPTION_GROUPS, OPTIONS, Option, OptionKind, option
from .recordings import default_recordings_dir
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
from .stream_health import Check as HealthCheck
from .stream_health import HealthThresholds, HealthWarning
from .target_pattern import PatternError, check_pattern
from .targets import TargetError, mask_target, split_key, validate_target
from .tasks import TaskSet
from .thumbnails import Thumbnail
from .tls import TlsFiles, fingerprint

__all__ = [
    "LOG_LEVELS",
    "OPTIONS",
    "OPTION_GROUPS",
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
