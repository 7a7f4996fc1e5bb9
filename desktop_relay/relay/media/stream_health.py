"""Health checks of a live stream: what a streamer would want to hear before the audience
notices. Every threshold is in `HealthThresholds` and `DESTINATION_LIMITS`, here and nowhere
else (docs/ARCHITECTURE.md lists them).

The checks read the session's normalized FLV stream (what every output sends) as it passes
the hub, so they see what the destination will get: its video bitrate, frame rate, keyframe
interval, picture size and whether it has audio at all; plus each RTMP output's speed.
`StreamHealth.observe` takes tags in bulk and keeps a few numbers (it runs on the relay's
hottest path); `evaluate` turns them into warnings when the status is taken.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from .avc import avc_config_size
from .flv import TAG_HEADER_SIZE, FlvTag, TagType


class Check(StrEnum):
    """What a warning is about (stable names: the page and the window key on them)."""

    NO_AUDIO = "no_audio"
    AUDIO_SILENT = "audio_silent"
    LOW_BITRATE = "low_bitrate"
    HIGH_BITRATE = "high_bitrate"
    KEYFRAME_INTERVAL = "keyframe_interval"
    LOW_FRAME_RATE = "low_frame_rate"
    RESOLUTION_CHANGED = "resolution_changed"
    OUTPUT_LAGGING = "output_lagging"
    # Not from the stream's numbers: the session's own watch (session.py) that the browser,
    # started and not paused, has delivered nothing the encoder could turn into media.
    NO_MEDIA = "no_media"


@dataclass(frozen=True)
class HealthWarning:
    """One problem, in plain words for the streamer and the operator."""

    check: Check
    message: str

    def to_dict(self) -> dict[str, str]:
        """The wire form (the client's `health` event)."""
        return {"check": str(self.check), "message": self.message}


@dataclass(frozen=True)
class HealthThresholds:
    """When a check speaks up. Rates are measured over `window_s` of stream time."""

    # No verdict on a stream younger than this (encoders settle, the first GOP is special).
    settle_s: float = 5.0
    window_s: float = 10.0
    # Twitch and YouTube want a keyframe every 2 s; past 4 s viewers wait and players stall.
    max_keyframe_interval_s: float = 4.0
    min_fps: float = 20.0
    # Bits per pixel per frame under which the picture turns blocky: a third of the "Kush
    # gauge" rule of thumb for low motion (width x height x fps x 0.07). 300 kbit/s is fine
    # for 640x480 at 20 fps (0.05) and blocky for 1280x720 at 30 (0.011).
    min_bits_per_pixel: float = 0.023
    # Sound under audio_meter.SILENCE_DB this long: a muted or dead microphone.
    silent_audio_s: float = 10.0
    # An RTMP output sending slower than real time falls behind and will drop.
    min_output_speed: float = 0.95


@dataclass(frozen=True)
class DestinationLimits:
    """What a streaming service accepts, recognised by its ingest host."""

    name: str
    host_suffixes: tuple[str, ...]
    max_video_kbps: float | None = None


# Documented maxima only (a service's *recommended* ranges depend on resolution and change
# often; they are not enforced here).
DESTINATION_LIMITS: tuple[DestinationLimits, ...] = (
    # Twitch's broadcast guidelines: at most 6000 kbit/s of video.
    DestinationLimits("Twitch", ("twitch.tv", "contribute.live-video.net"), 6000.0),
)


@functools.lru_cache(maxsize=1024)
def destination_of(url: str) -> DestinationLimits | None:
    """The service an RTMP(S) target belongs to, if it is one with documented limits (kept:
    every session's health checks ask for each of its outputs, twice a second)."""
    host = (urlsplit(url).hostname or "").lower()
    for limits in DESTINATION_LIMITS:
        if any(host == s or host.endswith("." + s) for s in limits.host_suffixes):
            return limits
    return None


class StreamHealth:
    """The numbers the checks need, kept from the stream's tags (see module doc)."""

    def __init__(self, thresholds: HealthThresholds | None = None) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new one begins when the encoder restarts)."""
        # (timestamp ms, video bytes) per video frame within the window
        self._frames: deque[tuple[int, int]] = deque()
        self._frame_bytes = 0  # the sum of the window's video bytes, kept as frames come and go
        self._first_ms: int | None = None
        self._last_ms = 0
        self._keyframes: deque[int] = deque()  # timestamps of keyframes within the window
        self._last_keyframe_ms: int | None = None
        self._audio = False
        self._video = False
        self.size: tuple[int, int] | None = None
        self.size_changes: list[tuple[tuple[int, int], tuple[int, int]]] = []

    def observe(self, tags: list[FlvTag]) -> None:
        """Take the next tags of the stream."""
        for tag in tags:
            kind = tag.type
            if kind == TagType.AUDIO:
                self._audio = True
                continue
            if kind != TagType.VIDEO:
                continue
            if tag.is_sequence_header:
                self._sequence_header(tag)
                continue
            ts = tag.timestamp
            if self._first_ms is None:
                self._first_ms = ts
            self._video = True
            self._last_ms = max(self._last_ms, ts)
            size = len(tag.raw) - TAG_HEADER_SIZE - 4
            self._frames.append((ts, size))
            self._frame_bytes += size
            if tag.is_keyframe:
                self._keyframes.append(ts)
                self._last_keyframe_ms = ts
        horizon = self._last_ms - int(self.thresholds.window_s * 1000)
        while self._frames and self._frames[0][0] < horizon:
            self._frame_bytes -= self._frames.popleft()[1]
        # One keyframe older than the window stays: the interval to the next one counts.
        while len(self._keyframes) > 1 and self._keyframes[1] < horizon:
            self._keyframes.popleft()

    def _sequence_header(self, tag: FlvTag) -> None:
        body = tag.raw[TAG_HEADER_SIZE:]
        if len(body) < 6 or body[0] & 0x0F != 7:  # AVC only
            return
        size = avc_config_size(body[5:])
        if size is None:
            return
        if self.size is not None and size != self.size:
            self.size_changes.append((self.size, size))
        self.size = size

    @property
    def stream_s(self) -> float:
        """Seconds of video seen."""
        return 0.0 if self._first_ms is None else (self._last_ms - self._first_ms) / 1000

    def video_kbps(self) -> float | None:
        """Video bitrate over the window, None before there is a second of it."""
        span = self._span_s()
        if span is None:
            return None
        return self._frame_bytes * 8 / span / 1000

    def fps(self) -> float | None:
        """Frames per second over the window, None before there is a second of it."""
        span = self._span_s()
        return None if span is None else (len(self._frames) - 1) / span

    def keyframe_interval_s(self) -> float | None:
        """The longest time between keyframes lately, counting the wait since the last one."""
        if self._last_keyframe_ms is None:
            return self.stream_s if self._video else None
        marks = [*self._keyframes, self._last_ms]
        return max(b - a for a, b in itertools.pairwise(marks)) / 1000

    def _span_s(self) -> float | None:
        if len(self._frames) < 2:
            return None
        span = (self._frames[-1][0] - self._frames[0][0]) / 1000
        return span if span >= 1.0 else None

    def evaluate(
        self,
        destinations: Sequence[str] = (),
        output_speeds: Sequence[float | None] = (),
        silent_s: float = 0.0,
    ) -> tuple[HealthWarning, ...]:
        """The warnings that hold now, for a stream going to `destinations` (RTMP URLs) whose
        outputs run at `output_speeds` (None: not known yet)."""
        t = self.thresholds
        if self.stream_s < t.settle_s:
            return ()
        out: list[HealthWarning] = []
        if not self._audio:
            out.append(
                HealthWarning(
                    Check.NO_AUDIO, "The stream has no sound: no microphone is being sent."
                )
            )
        if self._audio and silent_s >= t.silent_audio_s:
            out.append(
                HealthWarning(
                    Check.AUDIO_SILENT,
                    f"No sound for {silent_s:.0f} s: is the microphone muted or turned down?",
                )
            )
        kbps = self.video_kbps()
        fps = self.fps()
        if kbps is not None and fps and self.size is not None:
            width, height = self.size
            floor = t.min_bits_per_pixel * width * height * fps / 1000
            if kbps < floor:
                out.append(
                    HealthWarning(
                        Check.LOW_BITRATE,
                        f"Video is only {kbps:.0f} kbit/s for {width}x{height} at {fps:.0f} "
                        f"fps: the picture will look blocky (aim for {floor:.0f} kbit/s or more).",
                    )
                )
        for url in destinations if kbps else ():
            limits = destination_of(url)
            if limits and limits.max_video_kbps and kbps and kbps > limits.max_video_kbps:
                out.append(
                    HealthWarning(
                        Check.HIGH_BITRATE,
                        f"Video is {kbps:.0f} kbit/s, over {limits.name}'s maximum of "
                        f"{limits.max_video_kbps:.0f}: lower the bitrate or it may be refused.",
                    )
                )
        interval = self.keyframe_interval_s()
        if interval is not None and interval > t.max_keyframe_interval_s:
            out.append(
                HealthWarning(
                    Check.KEYFRAME_INTERVAL,
                    f"A keyframe comes only every {interval:.0f} s (services want 2 s): "
                    "viewers joining wait, and players may stall.",
                )
            )
        # Rounded: a 20 fps camera measured at 19.9 is not below 20.
        if fps is not None and round(fps) < t.min_fps:
            out.append(
                HealthWarning(
                    Check.LOW_FRAME_RATE,
                    f"Only {fps:.0f} frames per second (under {t.min_fps:.0f}): motion will "
                    "stutter. The device may be too busy or the light too low.",
                )
            )
        if self.size_changes:
            (w0, h0), (w1, h1) = self.size_changes[-1]
            out.append(
                HealthWarning(
                    Check.RESOLUTION_CHANGED,
                    f"The picture changed size mid-stream ({w0}x{h0} to {w1}x{h1}): some "
                    "services and players show a black or frozen picture after that.",
                )
            )
        slow = [s for s in output_speeds if s is not None and s < t.min_output_speed]
        if slow:
            out.append(
                HealthWarning(
                    Check.OUTPUT_LAGGING,
                    f"Sending to the stream service at {min(slow):.2f}x real time: the "
                    "connection cannot keep up and the stream will fall behind.",
                )
            )
        return tuple(out)
