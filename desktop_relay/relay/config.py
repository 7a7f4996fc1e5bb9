"""The relay's options (the original server's, in Python form) and a session's start config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .security.tls import TlsFiles

if TYPE_CHECKING:
    from .status import SessionStatus


@dataclass(frozen=True)
class StartConfig:
    """A validated `start` request. Numbers are within sane ranges; `rtmp` is a safe target."""

    framerate: float = 25.0
    audio_sample_rate: int = 44100
    audio_bits_per_second: int = 128_000
    video_bits_per_second: int = 2_500_000
    rtmp: str | None = None
    mime_type: str | None = None
    name: str | None = None

    def to_options(self) -> dict[str, Any]:
        """The options in the original client's field names (for status snapshots)."""
        return {
            "framerate": self.framerate,
            "audioSampleRate": self.audio_sample_rate,
            "audioBitsPerSecond": self.audio_bits_per_second,
            "videoBitsPerSecond": self.video_bits_per_second,
            "mimeType": self.mime_type,
            "name": self.name,
        }


StartHook = Callable[["SessionStatus", StartConfig], "StartConfig | Awaitable[StartConfig]"]
"""Called on `start` with the session and its validated config; returns the config to use
(possibly rewritten) or raises to refuse: a RelayError is sent as is, any other exception as
CANT_START_FFMPEG with its message."""


@dataclass(frozen=True)
class RelayConfig:
    """Everything that shapes a relay. Immutable: build a new relay to change listen options."""

    host: str = "0.0.0.0"
    port: int = 8086
    log_level: str = "INFO"
    send_error_details: bool = False
    send_ffmpeg_output: bool = False
    max_ffmpeg_instances: int | None = None
    # Regular expression a client-supplied target must fully match; None: clients may not
    # choose targets (the operator's default target or a local recording is used).
    allowed_target_pattern: str | None = None
    default_target: str | None = None
    # More targets every new session also goes to (`--rtmp-url` given several times); each
    # is its own output, restarting on its own. Only with a `default_target`.
    extra_targets: tuple[str, ...] = ()
    # Also record every new session that goes to the default targets to a file in
    # `recordings_dir` (one more output; the window's "local recording" destination beside
    # RTMP ones). Without default targets sessions are recorded anyway.
    record: bool = False
    # Also append every session's browser bytes, as received, to a file in the recordings
    # folder (no ffmpeg: the copy to fall back on when everything else failed).
    safety_copy: bool = False
    cors_allowed_origins: str | list[str] | None = None
    socketio_options: Mapping[str, Any] = field(default_factory=dict)
    start_hook: StartHook | None = None
    ffmpeg_path: str | None = None
    # The H.264 encoder for VP8/VP9/AV1 input (H.264 input is copied): "auto" (a hardware
    # encoder this machine really has, else libx264), "libx264", "h264_nvenc", "h264_qsv" or
    # "h264_vaapi". A hardware encoder that fails mid-session falls back to libx264.
    video_encoder: str = "auto"
    recordings_dir: Path | None = None
    # Largest single chunk a client may send (socket.io's max_http_buffer_size).
    max_chunk_bytes: int = 16 * 1024 * 1024
    # Bytes a session may hold in memory while ffmpeg or the RTMP side is slow; past it the
    # session ends with RELAY_OVERLOADED rather than growing without bound.
    max_buffered_bytes: int = 64 * 1024 * 1024
    # Sustained limits per client; bursts of `limit_burst_s` seconds' worth are allowed.
    max_chunks_per_second: float = 100.0
    max_ingest_bits_per_second: int = 60_000_000
    limit_burst_s: float = 4.0
    # A streaming session that sends nothing for this long ends and frees its ffmpeg
    # (a paused browser sends empty chunks as a heartbeat). None: never.
    idle_timeout: float | None = 60.0
    # Browsers must present this token (socket.io `auth.token` or `?token=`); None: no check.
    auth_token: str | None = None
    # Serve https with these files; None: plain http (loopback, or behind a proxy).
    tls: TlsFiles | None = None
    # Seconds a graceful stop waits for ffmpeg to flush before terminating it.
    stop_timeout: float = 10.0
    # Relay.stop() ends every session within this many seconds, whatever ffmpeg does (a
    # service manager's SIGKILL usually follows SIGTERM after a few seconds).
    shutdown_timeout: float = 3.0
    # ffmpeg given input but writing nothing for this long (after its first output) means the
    # RTMP server or the disk stopped taking the stream: the session ends with OUTPUT_STALLED.
    # Before the first output (connecting, probing) `start_stall_timeout` applies. None: never.
    stall_timeout: float | None = 5.0
    start_stall_timeout: float = 20.0
    stats_interval: float = 0.5
    # A websocket that has not completed the socket.io connect (with a valid token) within
    # this many seconds is closed: idle sockets must not hold file descriptors. None: never.
    connect_timeout: float | None = 5.0
    # Open engine.io connections one remote address may hold; the excess is refused (HTTP
    # 429) before the websocket upgrade. Behind a proxy every client shares its address.
    # None: no cap.
    max_connections_per_address: int | None = 32
    # Past this share of all cores busy (a few seconds' mean), new streams are refused with
    # RELAY_BUSY while the live ones go on (load.py). None: never refuse for CPU (the
    # default: the operator's own programs, a game or OBS, use the same processors, and
    # refusing phones for them must be the operator's choice). Encoders that fall behind
    # refuse new streams whatever this says.
    max_cpu_percent: float | None = None
    # A streaming session whose socket is lost (not stopped, not killed) waits this many
    # seconds for its client to resume it from a new socket, its ffmpeg still running.
    # None or 0: the session ends with its socket.
    resume_grace_s: float | None = 30.0
    # engine.io pings: a link that answers no ping for `ping_interval_s + ping_timeout_s`
    # is dead, on the relay's side and the browser's (a resumable session then waits for its
    # client; see docs/ARCHITECTURE.md for why these values). socketio_options may override.
    ping_interval_s: float = 2.0
    ping_timeout_s: float = 3.0
    # After a resume the client resends what it recorded meanwhile: RTMP outputs skip to the
    # first keyframe at most this many seconds behind live, so the audience is back to live
    # (a recording keeps everything). None: never skip.
    catch_up_lag_s: float | None = 3.0
    # The program (several sessions, one show, one encoder: program/): on when it has a
    # destination (any kind). Its size and rate never change while it runs.
    program_targets: Sequence[str] | None = None
    program_size: str = "1280x720"
    program_fps: int = 30
    program_bitrate: int = 4_500_000
    program_name: str = "Desktop Relay"
    # A PNG or JPEG shown instead of the built-in "We'll be right back" card.
    slate_image: Path | None = None
    # The operator's token for the control API (/api/program); never the pairing token,
    # which every phone holds. None: the control API refuses everything.
    control_token: str | None = None

    def with_targets(self, urls: Sequence[str], *, record: bool = False) -> RelayConfig:
        """This config sending new sessions to all of `urls` (the first is `default_target`,
        the rest `extra_targets`), and also recording them when `record`. Not validated."""
        first, rest = (urls[0], tuple(urls[1:])) if urls else (None, ())
        return replace(self, default_target=first, extra_targets=rest, record=record)

    def __post_init__(self) -> None:
        # A truthy string ("no") would silently record every session.
        if not isinstance(self.record, bool):
            raise ValueError(f"record must be True or False, not {self.record!r}")
