"""The program's settings and the state it reports: plain, picklable values that cross from the
relay's process to the program's worker process and back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

Corner = Literal["tl", "tr", "bl", "br"]
"""Where a picture-in-picture sits: top/bottom, left/right."""

PipSize = Literal["1/4", "1/3"]
"""A picture-in-picture's width as a fraction of the program's width (a short list on purpose:
operators pick from buttons, and each size is known to fit in every corner)."""

CORNERS: tuple[Corner, ...] = get_args(Corner)
PIP_SIZES: tuple[PipSize, ...] = get_args(PipSize)
PROGRAM_SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))

SlateReason = Literal["manual", "no_source", "stalled", "ended"]
"""Why the slate is on air: the operator asked; nothing was taken; the source on air sent no
picture for `stall_s` (or none yet); the source on air was removed (or never fed)."""


@dataclass(frozen=True)
class ProgramConfig:
    """How the program is made. Constant for a worker's life: the encoder never changes size,
    rate or bitrate mid-stream (platform transcoders break on that)."""

    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate: int = 4_500_000
    """Bits per second: bitrate = maxrate, bufsize = one second's worth (CBR-like)."""
    keyframe_interval_s: float = 2.0
    """Twitch's and YouTube's ingest rule."""
    x264_preset: str = "veryfast"
    audio_bitrate: int = 160_000
    name: str = "Desktop Relay"
    """The program's name, drawn on the built-in slate."""
    slate_image: Path | None = None
    """A PNG or JPEG the operator picked instead of the built-in card (validated)."""
    auto_return: bool = True
    """Go back on air by itself when the stalled or ended source on air comes back."""
    stall_s: float = 1.0
    """How long the source on air may freeze on its last picture before the slate."""
    audio_crossfade_ms: int = 30
    """The audio crossfade on a cut (20-50 ms: no click, no audible overlap)."""
    audio_pinned: str | None = None
    """A source whose sound is always on the program, whatever picture is on air."""

    def __post_init__(self) -> None:
        if (self.width, self.height) not in PROGRAM_SIZES:
            raise ValueError(
                f"program size {self.width}x{self.height} is not one of {PROGRAM_SIZES}"
            )
        if not 1 <= self.fps <= 60:
            raise ValueError(f"program rate {self.fps} fps is out of 1..60")
        if not 100_000 <= self.video_bitrate <= 50_000_000:
            raise ValueError(f"program bitrate {self.video_bitrate} is out of 100k..50M")
        if self.x264_preset not in ("ultrafast", "superfast", "veryfast", "faster", "fast"):
            raise ValueError(f"x264 preset {self.x264_preset!r} is not a real-time one")
        if not 20 <= self.audio_crossfade_ms <= 50:
            raise ValueError("the audio crossfade must be 20-50 ms")
        if self.stall_s <= 0:
            raise ValueError("stall_s must be positive")

    @property
    def gop(self) -> int:
        """Frames between keyframes."""
        return max(1, round(self.fps * self.keyframe_interval_s))


@dataclass(frozen=True)
class PipState:
    """A picture-in-picture on the program."""

    source: str
    corner: Corner
    size: PipSize


@dataclass(frozen=True)
class SourceState:
    """One source as the worker sees it."""

    id: str
    width: int | None
    """The size of its last decoded picture (None before the first)."""
    height: int | None
    last_frame_time: float | None
    """Wall-clock time (time.time()) its last picture was decoded, None before the first."""
    stalled: bool
    """No picture for longer than the program's stall_s."""
    has_audio: bool
    audio_underruns: int = 0
    """Times its sound ran dry (its chunks arrived late): a jittery link."""


@dataclass(frozen=True)
class ProgramState:
    """What the program shows, as the worker last reported it."""

    running: bool = False
    on_air: str | None = None
    """The source whose picture is on the program now (None on the slate)."""
    taken: str | None = None
    """The source the operator took (on air unless the slate covers it)."""
    slate: bool = True
    slate_reason: SlateReason | None = "no_source"
    pip: PipState | None = None
    audio_source: str | None = None
    auto_return: bool = True
    clock_start: float | None = None
    """Wall-clock time (time.time()) of the program's timestamp 0: a picture with timestamp t
    was composed at clock_start + t."""
    frames: int = 0
    """Pictures encoded since the start."""
    late_frames: int = 0
    """Clock ticks skipped because the worker fell more than half a second behind."""
    sources: tuple[SourceState, ...] = field(default_factory=tuple)
    slate_image_error: str | None = None
    """Why the operator's slate image is not used (the built-in card is), else None."""
    error: str | None = None
    """Why the worker is not running (it exited or failed), else None."""

    def source(self, source_id: str) -> SourceState | None:
        """The state of one source, None if the worker does not know it."""
        return next((s for s in self.sources if s.id == source_id), None)

    def summary(self) -> tuple[object, ...]:
        """What changes on a take, a slate, a stall or a new source: a state with another
        summary is worth telling observers at once (last frame times are not)."""
        return (
            self.running,
            self.on_air,
            self.taken,
            self.slate,
            self.slate_reason,
            self.pip,
            self.audio_source,
            self.auto_return,
            tuple((s.id, s.stalled, s.width, s.height, s.has_audio) for s in self.sources),
            self.slate_image_error,
            self.error,
        )
