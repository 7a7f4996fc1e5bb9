"""Live thumbnails of a session: its normalized stream's keyframes, decoded small by ffmpeg.

A `ThumbnailTap` reads the session's StreamHub as an output does (it starts from the cache's
headers and latest keyframe, then takes live tags), but passes on only what a picture needs:
the metadata, the video sequence headers and at most one keyframe a second. Its ffmpeg
decodes keyframes only (`-skip_frame nokey`), scales them to 320x180 RGB and writes raw
frames to stdout, so it sleeps between keyframes and costs almost nothing.

It is not an output: no OutputStatus, no state the client hears, never a session failure. A
dead ffmpeg is restarted quietly with a backoff, and so is a stalled one (alive, but no
picture for keyframes it was given: a frozen thumbnail would look like a frozen stream); a
slow one loses keyframes (a bounded queue), never the relay's memory. A stream without video
starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RelayError
from ..ffmpeg.process import FfmpegProcess
from ..media.flv import FlvReader, FlvTag, TagType
from ..media.stream_cache import StreamCache
from ..outputs.backoff import Backoff
from ..status import FfmpegStats
from ..tasks import until_either

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


class ThumbnailTap:
    """Keyframes of one session's stream, decoded to `Thumbnail`s; see module doc.

    `start()` once (in the event loop), then the hub calls `feed_batch()` with every read's
    tags after the cache took them and `restart()` when a new stream begins; `await stop()`.
    Each picture goes to `on_thumbnail`.
    """

    def __init__(
        self,
        cache: StreamCache,
        *,
        ffmpeg_binary: str,
        on_thumbnail: Callable[[Thumbnail], None],
        name: str = "thumbnails",
        backoff: Backoff | None = None,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        self.name = name
        self._cache = cache
        self._args = build_thumbnail_args(ffmpeg_binary)
        self._on_thumbnail = on_thumbnail
        self._backoff = backoff or Backoff()
        self.max_queue_bytes = max_queue_bytes
        self._proc: FfmpegProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._restart = asyncio.Event()
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._accepting = False
        self._last_key_ms: int | None = None
        self._pending = bytearray()
        self._stop_timeouts = (0.5, 1.0)
        # Keyframes taken since the last picture, and when the first of them came.
        self._unanswered = 0
        self._unanswered_since: float | None = None
        self.thumbnails = 0
        self.dropped_tags = 0
        self.restarts = 0
        self.stalls = 0

    # ---- public API ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The pid of the current ffmpeg, if one runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the tap's task: its ffmpeg starts once the stream's header shows video."""
        if self._cache.ready:
            self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"tap-{self.name}")

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None:
        """A read of the stream (tags the cache already took); never blocks, never raises."""
        try:
            if not self._ready.is_set() and self._cache.ready:
                self._ready.set()
            if not self._accepting:
                return
            for tag in tags:
                if _wanted(tag):
                    self._take(tag)
        except Exception:  # the tap's bug must not break the hub feeding every output
            log.exception("%s: feed failed", self.name)

    def restart(self) -> None:
        """A new stream begins (the encoder restarted): start again from its header."""
        if not self._cache.ready:
            self._ready.clear()
        self._restart.set()
        self._wake.set()

    async def stop(self, timeout: float = 0.5, terminate_grace: float = 1.0) -> None:
        """End the tap: its ffmpeg is stopped (stdin closed, then terminate, then kill) and
        always reaped."""
        self._stop_timeouts = (timeout, terminate_grace)
        self._stopping.set()
        self._wake.set()
        task = self._task
        if task is None:
            return
        # asyncio.wait, not gather: a caller cancelled mid-stop must not cancel the task,
        # which alone reaps its ffmpeg.
        done, _ = await asyncio.wait({task}, timeout=timeout + terminate_grace + 1.0)
        if not done and self._proc is not None:
            self._proc.kill()
        await asyncio.wait({task})

    # ---- data path --------------------------------------------------------------------

    def _take(self, tag: FlvTag) -> None:
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
        self._queue.append(tag.raw)
        self._queued_bytes += size
        self._wake.set()

    def _open_gate(self) -> None:
        """ffmpeg runs: queue the stream's start (headers, latest keyframe), then accept live
        tags; no await in between, so the two meet without a gap."""
        self._queue.clear()
        self._queued_bytes = 0
        self._last_key_ms = None
        self._answered()
        start = self._cache.start_bytes()
        reader = FlvReader()
        tags, _ = reader.feed_batch(start)
        if reader.header is not None:
            self._queue.append(reader.header.raw)
            self._queued_bytes = len(reader.header.raw)
        for tag in tags:
            if _wanted(tag):
                self._take(tag)
        self._accepting = True
        self._wake.set()

    def _close_gate(self) -> None:
        self._accepting = False
        self._queue.clear()
        self._queued_bytes = 0

    async def _write_loop(self, proc: FfmpegProcess) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            data = b"".join(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            await proc.write(data)

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
        self._backoff.connected()
        try:
            self._on_thumbnail(Thumbnail(WIDTH, HEIGHT, rgb, time.monotonic()))
        except Exception:
            log.exception("%s: thumbnail observer failed", self.name)

    def _answered(self) -> None:
        self._unanswered = 0
        self._unanswered_since = None

    def stalled(self, now: float | None = None) -> bool:
        """Whether the current ffmpeg left STALL_KEYFRAMES keyframes, the first over STALL_S
        ago, without a picture."""
        since = self._unanswered_since
        if since is None or self._unanswered < STALL_KEYFRAMES:
            return False
        return (time.monotonic() if now is None else now) - since > STALL_S

    async def _watch(self, proc: FfmpegProcess) -> None:
        while True:
            await asyncio.sleep(STALL_CHECK_S)
            if self.stalled():
                self.stalls += 1
                log.warning(
                    "%s: ffmpeg %s made no picture for %d keyframes: starting it again",
                    self.name,
                    proc.pid,
                    self._unanswered,
                )
                proc.kill()  # its exit ends _run_ffmpeg, which restarts it
                return

    def _line(self, line: str) -> None:
        log.debug("%s: ffmpeg: %s", self.name, line)

    @staticmethod
    def _stats(stats: FfmpegStats) -> None:
        return None

    # ---- life cycle -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._until_stopped(self._ready.wait())
                if self._stopping.is_set():
                    break
                self._restart.clear()
                if not self._cache.has_video:
                    log.debug("%s: the stream has no video: no thumbnails", self.name)
                    await self._until_stopped(self._restart.wait())
                    continue
                ended_alone = await self._run_ffmpeg()
                if self._stopping.is_set() or not ended_alone:
                    continue
                self.restarts += 1
                delay = self._backoff.next_delay()
                log.info("%s: ffmpeg ended; starting it again in %.1f s", self.name, delay)
                await self._until_stopped(asyncio.sleep(delay))
        except Exception:  # a bug here must show; the session goes on without thumbnails
            log.exception("%s failed", self.name)
        finally:
            self._close_gate()

    async def _until_stopped(self, aw: Awaitable[object]) -> None:
        """Wait for `aw` or for stop(), whichever comes first."""
        await until_either(aw, self._stopping)

    async def _run_ffmpeg(self) -> bool:
        """Run one ffmpeg until it ends, the stream restarts or the tap stops; True when it
        ended (or could not start) by itself."""
        self._pending = bytearray()
        proc = FfmpegProcess(
            self._args, on_line=self._line, on_stats=self._stats, on_data=self._on_data
        )
        try:
            await proc.start()
        except RelayError as exc:
            log.info("%s: ffmpeg could not start: %s", self.name, exc.error.message)
            return True
        self._proc = proc
        log.debug("%s: ffmpeg %s started", self.name, proc.pid)
        self._open_gate()
        writer = asyncio.create_task(self._write_loop(proc), name=f"tap-writer-{self.name}")
        watch = asyncio.create_task(self._watch(proc), name=f"tap-watch-{self.name}")
        exited = asyncio.create_task(proc.wait(), name=f"tap-exit-{self.name}")
        stop = asyncio.create_task(self._stopping.wait())
        restart = asyncio.create_task(self._restart.wait())
        ended_alone = False
        try:
            ends: set[asyncio.Future[Any]] = {writer, exited, stop, restart}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
            ended_alone = not (stop.done() or restart.done())
        finally:
            self._close_gate()
            for task in (writer, watch, stop, restart):
                task.cancel()
            await asyncio.gather(writer, watch, stop, restart, return_exceptions=True)
            timeout, grace = self._stop_timeouts
            rc = await proc.stop(0.0 if ended_alone else timeout, grace)
            await asyncio.gather(exited, return_exceptions=True)
            self._proc = None
            level = logging.INFO if ended_alone else logging.DEBUG
            log.log(level, "%s: ffmpeg %s ended (exit code %s)", self.name, proc.pid, rc)
        return ended_alone
