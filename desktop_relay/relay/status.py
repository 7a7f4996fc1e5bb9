"""Frozen snapshots of a session, the only relay data that crosses into the GUI or to callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import ServerError
from .media.audio_meter import AudioLevel
from .media.stream_health import HealthWarning


class FfmpegState(StrEnum):
    """ffmpeg's life cycle, named as in the original server's status."""

    CREATED = "CREATED"
    RUNNING = "RUNNING"
    ENDING = "ENDING"
    ENDED = "ENDED"


class SessionState(StrEnum):
    """Where a browser session stands, from the operator's point of view."""

    CONNECTED = "connected"  # socket open, no `start` yet (or stopped, may start again)
    STARTING = "starting"  # started, waiting for the first media or for ffmpeg's output
    LIVE = "live"  # ffmpeg reports frames
    ENDING = "ending"
    WAITING = "waiting"  # its socket was lost; ffmpeg runs on, a resume may take it over
    FAILED = "failed"  # ended on an error; `error` says why
    ENDED = "ended"


@dataclass(frozen=True)
class FfmpegStats:
    """Counters from ffmpeg's `-progress` output, plus rates the relay derives from them."""

    frames: int = 0
    # Rates over the last seconds (ProgressParser), not ffmpeg's averages since its start;
    # None until they mean something (the first second after the first output).
    fps: float | None = None
    bitrate_kbps: float | None = None
    total_size: int = 0
    out_time_s: float = 0.0
    speed: float | None = None
    dropped_frames: int = 0
    duplicated_frames: int = 0
    last_frame_time: float | None = None  # epoch seconds when `frames` last rose


@dataclass(frozen=True)
class FfmpegStatus:
    """The original's `ffmpeg` status object, extended with derived stats."""

    status: FfmpegState
    frames_sent: int
    last_frame_sent_time: float | None
    pid: int | None
    options: dict[str, Any]
    stats: FfmpegStats = field(default_factory=FfmpegStats)
    mode: str | None = None  # "copy" (H.264 passthrough) or "transcode"
    input_format: str | None = None
    video_encoder: str | None = None  # "libx264" or a hardware encoder; None when copied


class OutputState(StrEnum):
    """Where an output stands."""

    CONNECTING = "connecting"  # waiting for the stream, or ffmpeg started and not yet sending
    LIVE = "live"  # ffmpeg reports output: the target takes the stream
    RECONNECTING = "reconnecting"  # ended or stalled; the next attempt is scheduled
    STOPPED = "stopped"  # stop() was called
    FAILED = "failed"  # cannot work: ffmpeg missing, the recording cannot be written


@dataclass(frozen=True)
class OutputStatus:
    """A snapshot of one output, safe to show and send (the target's key is masked)."""

    id: str
    target: str  # masked
    state: OutputState
    bytes_sent: int  # bytes ffmpeg wrote to the target, over every connection
    uptime_s: float  # of the current connection (0 unless LIVE)
    reconnects: int  # times it came back live after losing its connection
    attempts: int  # failed attempts since it was last live
    next_attempt_in_s: float | None  # while RECONNECTING
    last_error: str | None
    pid: int | None = None
    dropped_tags: int = 0  # tags not sent: output down, or its queue full
    recording_path: str | None = None  # for a recording: the file being written
    skipped_s: float = 0.0  # media seconds skipped to catch up after resumes (catch_up.py)
    kind: str = "rtmp"  # the destination's kind: rtmp, rtmps, srt or file (a recording)

    @property
    def is_recording(self) -> bool:
        """Whether this output writes a local recording (its kind is `file`; a snapshot made
        without a kind but with a recording's path is one too)."""
        return self.kind == "file" or self.recording_path is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (what a client hears in `outputState`)."""
        return {
            "id": self.id,
            "target": self.target,
            "state": str(self.state),
            "bytesSent": self.bytes_sent,
            "uptime": round(self.uptime_s, 1),
            "reconnects": self.reconnects,
            "attempts": self.attempts,
            "nextAttemptIn": None
            if self.next_attempt_in_s is None
            else round(self.next_attempt_in_s, 1),
            "error": self.last_error,
            "skipped": round(self.skipped_s, 1),
            "kind": self.kind,
        }


@dataclass(frozen=True)
class SessionStatus:
    """One session as the operator sees it; `uuid` is the id every control method takes."""

    uuid: str
    remote_address: str
    user_agent: str
    name: str | None
    state: SessionState
    connected_at: float
    started_at: float | None
    uptime_s: float
    bytes_received: int
    chunks_received: int
    buffered_bytes: int
    target: str | None  # masked
    recording_path: str | None
    ffmpeg: FfmpegStatus | None
    error: ServerError | None = None
    # Where the session's stream goes: one entry per RTMP(S) target or recording.
    outputs: tuple[OutputStatus, ...] = ()
    # The raw safety copy of the browser's bytes, when the relay keeps one.
    safety_copy_path: str | None = None
    # Times a client took this session over from a new socket after losing its own.
    resumes: int = 0
    # What the stream's health checks found (stream_health.py); empty: all well.
    health: tuple[HealthWarning, ...] = ()
    # The sound's latest levels (audio_meter.py); None: no audio, or not measured yet.
    audio: AudioLevel | None = None

    @property
    def skipped_s(self) -> float:
        """Media seconds the audience missed: the most any live output skipped to catch up."""
        return max((o.skipped_s for o in self.outputs if o.recording_path is None), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, shaped like the original's `getConnections()` entries."""
        ff = self.ffmpeg
        return {
            "uuid": self.uuid,
            "remoteAddress": self.remote_address,
            "userAgent": self.user_agent,
            "name": self.name,
            "state": str(self.state),
            "uptime": round(self.uptime_s, 1),
            "bytesReceived": self.bytes_received,
            "target": self.target,
            "recordingPath": self.recording_path,
            "error": None if self.error is None else self.error.to_wire(send_details=False),
            "outputs": [o.to_dict() for o in self.outputs],
            "resumes": self.resumes,
            "health": [w.to_dict() for w in self.health],
            "audio": None if self.audio is None else self.audio.to_dict(),
            "ffmpeg": None
            if ff is None
            else {
                "status": str(ff.status),
                "framesSent": ff.frames_sent,
                "lastFrameSentTime": ff.last_frame_sent_time,
                "pid": ff.pid,
                "options": ff.options,
                "mode": ff.mode,
                "fps": None if ff.stats.fps is None else round(ff.stats.fps, 2),
                "bitrateKbps": ff.stats.bitrate_kbps,
                "speed": ff.stats.speed,
                "droppedFrames": ff.stats.dropped_frames,
                "duplicatedFrames": ff.stats.duplicated_frames,
            },
        }
