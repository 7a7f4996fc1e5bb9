"""Live thumbnails of a session: its normalized stream's keyframes, decoded small by ffmpeg.

A `ThumbnailTap` reads the session's StreamHub as an output does (it starts from the cache's
headers and latest keyframe, then takes live tags), but passes on only what a picture needs:
the metadata, the video sequence headers and at most one keyframe a second. Its ffmpeg
decodes keyframes only (`-skip_frame nokey`), scales them to 320x180 RGB and writes raw
frames to stdout, so it sleeps between keyframes and costs almost nothing.

It is a supervised sink (sink.py) like an output, configured otherwise: it takes only those
tags, its ffmpeg's stdout is pictures, a stall is keyframes gone unanswered, and it never
fails. It is not an output: no OutputStatus, no state the client hears, never a session
failure. A dead ffmpeg is restarted quietly with a backoff, and so is a stalled one (alive,
but no picture for keyframes it was given: a frozen thumbnail would look like a frozen
stream); a slow one loses keyframes (a bounded queue), never the relay's memory. A stream
without video starts nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import ErrorName, ServerError
from ..ffmpeg.process import FfmpegProcess
from ..media.flv import FlvReader, FlvTag, TagType
from ..media.stream_cache import StreamCache
from ..status import FfmpegStats, OutputState
from .backoff import Backoff
from .sink import Command, FfmpegSink

log = logging.getLogger(__name__)

WIDTH = 320
HEIGHT = 180
FRAME_BYTES = WIDTH * HEIGHT * 3
# Keyframes closer than this (stream time) are skipped: an all-intra stream must not make the
# tap decode every frame.
MIN_INTERVAL_MS = 1000
# A few large keyframes; past this the tap's ffmpeg is not keeping up and keyframes are dropped.
MAX_QUEUE_BYTES = 2 * 1024 * 1024
# A tap whose ffmpeg lives but makes no pictures (stopped, or stuck) is restarted: the tap
# takes at most a keyframe a second and each makes a picture at once, so this many keyframes
# gone unanswered over this long is no slow decoder. Checked every STALL_CHECK_S.
STALL_KEYFRAMES = 3
STALL_S = 8.0
STALL_CHECK_S = 1.0
# Codec headers and metadata still pass a full queue (a keyframe after a size change needs its
# new SPS), up to this much more.
_HEADER_SLACK = 64 * 1024


@dataclass(frozen=True)
class Thumbnail:
    """One decoded picture of a session: `width` x `height` pixels, packed RGB (3 bytes a
    pixel, rows top to bottom, no padding), letterboxed to 16:9; `captured_at` is the
    `time.monotonic()` of its arrival."""

    width: int
    height: int
    rgb: bytes = field(repr=False)  # 170 KB: not in a log line
    captured_at: float


class ThumbnailEvents(Protocol):
    """Who hears a tap's pictures (called on the event loop)."""

    def thumbnail(self, thumbnail: Thumbnail) -> None:
        """A new picture of the stream."""


def build_thumbnail_args(binary: str) -> list[str]:
    """The tap's ffmpeg: FLV on stdin, keyframes decoded, 320x180 rgb24 frames on stdout.

    `-progress` is added by FfmpegProcess (stdout is the pictures). Nothing here runs anything.
    """
    scale = (
        f"scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
        f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2,format=rgb24"
    )
    return [
        binary,
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostats",
        # Its counters are not used: wake it up rarely.
        "-stats_period",
        "5",
        # One decoding thread: frame threads would hold each picture back until the next
        # keyframe (seconds). low_delay: no reordering delay either.
        "-threads",
        "1",
        "-flags",
        "low_delay",
        "-skip_frame",
        "nokey",
        # No probing: the FLV starts with its metadata and codec headers. A larger probe
        # holds the first picture until the second keyframe (the probe wants 0.1 s of
        # packets, and the tap gets one a second).
        "-analyzeduration",
        "1",
        "-fpsprobesize",
        "0",
        "-probesize",
        "32",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        scale,
        "-fps_mode",
        "passthrough",
        # The output side's threads too: rawvideo's frame threading delays each picture by one.
        "-threads",
        "1",
        "-f",
        "rawvideo",
        "pipe:1",
    ]


def _wanted(tag: FlvTag) -> bool:
    """What a picture needs: metadata, video codec headers, keyframes (not audio, not the
    frames between keyframes, which the decoder would skip anyway)."""
    if tag.type == TagType.SCRIPT:
        return True
    return tag.type == TagType.VIDEO and (tag.is_sequence_header or tag.starts_gop)


class ThumbnailTap(FfmpegSink):
    """Keyframes of one session's stream, decoded to `Thumbnail`s; see module doc.

    `start()` once (in the event loop), then the hub calls `feed_batch()` with every read's
    tags after the cache took them and `restart()` when a new stream begins; `await stop()`.
    Each picture goes to `events.thumbnail`.
    """

    # Nobody watches a tap's states; its restarts are logged.
    state_log_level = logging.DEBUG

    def __init__(
        self,
        cache: StreamCache,
        *,
        ffmpeg_binary: str,
        events: ThumbnailEvents,
        name: str = "thumbnails",
        backoff: Backoff | None = None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        super().__init__(
            name,
            cache,
            backoff=backoff,
            max_queue_bytes=max_queue_bytes,
            stop_timeouts=(0.5, 1.0),
        )
        self._args = build_thumbnail_args(ffmpeg_binary)
        self._events = events
        self._last_key_ms: int | None = None
        self._pending = bytearray()
        # Keyframes taken since the last picture, and when the first of them came.
        self._unanswered = 0
        self._unanswered_since: float | None = None
        self.thumbnails = 0
        self.stalls = 0

    @property
    def restarts(self) -> int:
        """How many times its ffmpeg ended or stalled and was started again."""
        return self.failures

    def stalled(self, now: float | None = None) -> bool:
        """Whether the current ffmpeg left STALL_KEYFRAMES keyframes, the first over STALL_S
        ago, without a picture."""
        since = self._unanswered_since
        if since is None or self._unanswered < STALL_KEYFRAMES:
            return False
        return (time.monotonic() if now is None else now) - since > STALL_S

    # ---- the sink's hooks -----------------------------------------------------------------

    def _command(self) -> Command:
        self._pending = bytearray()
        return Command(self._args, on_data=self._on_data)

    def _can_run(self) -> bool:
        if not self._cache.has_video:
            log.debug("%s: the stream has no video: no thumbnails", self.name)
            return False
        return True

    def _take(self, tag: FlvTag) -> None:
        if not _wanted(tag):
            return
        if tag.starts_gop:
            last = self._last_key_ms
            # (A timestamp going back is a new timeline: take it.)
            if last is not None and 0 <= tag.timestamp - last < MIN_INTERVAL_MS:
                return
            # Counted before the queue's bound: an ffmpeg that stopped reading fills it.
            self._unanswered += 1
            if self._unanswered_since is None:
                self._unanswered_since = time.monotonic()
        size = len(tag.raw)
        limit = self.max_queue_bytes + (0 if tag.starts_gop else _HEADER_SLACK)
        if self._queued_bytes + size > limit:
            # The decoder starts afresh at any keyframe: dropping one leaves nothing broken.
            self.dropped_tags += 1
            return
        if tag.starts_gop:
            self._last_key_ms = tag.timestamp
        self._enqueue(tag.raw)

    def _start_chunks(self) -> list[bytes]:
        """The stream's start as a picture needs it: the FLV header, the metadata, the codec
        headers and the latest keyframe (queued through `_take`)."""
        self._queue.clear()
        self._queued_bytes = 0
        self._last_key_ms = None
        self._answered()
        reader = FlvReader()
        tags, _ = reader.feed_batch(self._cache.start_bytes())
        if reader.header is not None:
            self._enqueue(reader.header.raw)
        for tag in tags:
            self._take(tag)
        return []

    def _watch_interval(self) -> float:
        return STALL_CHECK_S

    def _stall(self, proc: FfmpegProcess) -> ServerError | None:
        if not self.stalled():
            return None
        self.stalls += 1
        log.warning(
            "%s: ffmpeg %s made no picture for %d keyframes: starting it again",
            self.name,
            proc.pid,
            self._unanswered,
        )
        return ServerError(ErrorName.OUTPUT_STALLED, "no picture for the keyframes given")

    def _stats(self, stats: FfmpegStats) -> None:
        return None  # its counters are not used; a picture is what makes it live

    # ---- pictures ---------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        """ffmpeg's stdout: whole frames of FRAME_BYTES; only the newest of a read is shown."""
        pending = self._pending
        pending += data
        count = len(pending) // FRAME_BYTES
        if not count:
            return
        end = count * FRAME_BYTES
        rgb = bytes(pending[end - FRAME_BYTES : end])
        del pending[:end]
        self._answered()
        self.thumbnails += 1
        if self.state == OutputState.CONNECTING:
            self._set_state(OutputState.LIVE)
        try:
            self._events.thumbnail(Thumbnail(WIDTH, HEIGHT, rgb, time.monotonic()))
        except Exception:
            log.exception("%s: thumbnail observer failed", self.name)

    def _answered(self) -> None:
        self._unanswered = 0
        self._unanswered_since = None
