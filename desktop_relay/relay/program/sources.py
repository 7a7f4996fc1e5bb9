"""One source in the worker: its FLV tags decoded into a queue of pictures and a buffer of
sound, both on the source's own timeline (`playout.Playout`). On every tick the clock moves
the source to the position the playout gives: the picture due by then goes into the slot the
compositor reads, and the sound from that position is pulled. The clock never waits for a
source: a picture not yet decoded leaves the slot as it was."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from .audio import CHANNELS, SAMPLE_RATE, AudioBuffer
from .config import SourceState
from .flv_tags import CODEC_AVC, SOUND_AAC, TAG_AUDIO, TAG_VIDEO, Tag
from .picture import Picture, letterboxed, scaled
from .playout import Playout, margin_for

logger = logging.getLogger(__name__)

MAX_QUEUED = 45
"""Decoded pictures waiting for their time (1.5 s at 30 fps, above the playout's largest
delay): more means the clock is not advancing the source, and the oldest go straight to the
slot rather than filling memory (a 720p picture is 1.4 MB)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """A decoded picture of a source (replaced whole: readers need no lock, an attribute
    assignment being atomic)."""

    frame: av.VideoFrame
    seq: int
    timestamp: float
    """Its media timestamp, seconds."""


class Source:
    """A source's decoders and its latest picture and sound."""

    def __init__(self, source_id: str, fps: int) -> None:
        self.id = source_id
        self.slot: Slot | None = None
        """The picture on show (what the compositor reads)."""
        self.audio = AudioBuffer()
        self.playout = Playout(margin_for(fps))
        # A tick's picture stays up for 1/fps while its sound plays from the position on: the
        # picture that fits it best is the one nearest the middle of that time.
        self._half_tick = 0.5 / fps
        self._queue: deque[Slot] = deque()
        self._queue_lock = threading.Lock()
        self._received: float | None = None  # time.monotonic() of the latest decoded picture
        self._received_wall: float | None = None  # the same, time.time(), for the report
        self._latest: av.VideoFrame | None = None  # the latest decoded picture, for its size
        self._video: av.VideoCodecContext | None = None
        self._sound: av.AudioCodecContext | None = None
        self._resampler: av.AudioResampler | None = None
        self._seq = 0
        self._errors = 0
        self._cache: dict[tuple[int, int, bool], tuple[int, Picture]] = {}

    def restart(self) -> None:
        """A new stream begins (the source's encoder restarted): new decoders, no old sound.
        The last picture stays: it is what a freeze shows until the new stream's first one."""
        self._video = None
        self._sound = None
        self._resampler = None
        self.audio.clear()
        with self._queue_lock:
            self._queue.clear()
            self.playout.reset()

    def feed(self, tag: Tag) -> None:
        """Decode one FLV tag (a broken packet is logged and skipped: the next keyframe
        mends the picture)."""
        body = tag.body
        if len(body) < 2:
            return
        try:
            if tag.type == TAG_VIDEO:
                self._feed_video(body, tag.timestamp_ms)
            elif tag.type == TAG_AUDIO:
                self._feed_audio(body, tag.timestamp_ms)
        except (av.FFmpegError, ValueError) as e:
            self._errors += 1
            # A corrupt stream would log at 30 lines a second; one in a hundred is enough.
            if self._errors % 100 == 1:
                logger.warning(
                    "source %s: cannot decode a packet (%d so far): %s", self.id, self._errors, e
                )

    def _feed_video(self, body: bytes, timestamp_ms: int) -> None:
        if body[0] & 0x0F != CODEC_AVC:
            return
        if body[1] == 0:  # AVCDecoderConfigurationRecord
            codec = av.CodecContext.create("h264", "r")
            assert isinstance(codec, av.VideoCodecContext)
            codec.extradata = body[5:]
            # One thread: frame threads would hold back a picture per thread, and the
            # worker's other sources keep the cores busy anyway.
            codec.thread_count = 1
            self._video = codec
            return
        if body[1] != 1 or self._video is None:
            return
        # The composition time offset (signed 24 bits): pts = dts + offset.
        offset = int.from_bytes(body[2:5], "big", signed=True)
        packet = av.Packet(body[5:])
        packet.dts = timestamp_ms
        packet.pts = timestamp_ms + offset
        for frame in self._video.decode(packet):
            now = time.monotonic()
            pts = frame.pts if frame.pts is not None else timestamp_ms
            self._seq += 1
            slot = Slot(frame, self._seq, pts / 1000)
            with self._queue_lock:
                self.playout.arrived(slot.timestamp, now)
                self._queue.append(slot)
                while len(self._queue) > MAX_QUEUED:
                    self.slot = self._queue.popleft()
            self._received, self._received_wall, self._latest = now, time.time(), frame

    def _feed_audio(self, body: bytes, timestamp_ms: int) -> None:
        if body[0] >> 4 != SOUND_AAC:
            return
        if body[1] == 0:  # AudioSpecificConfig
            codec = av.CodecContext.create("aac", "r")
            assert isinstance(codec, av.AudioCodecContext)
            codec.extradata = body[2:]
            self._sound = codec
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
            return
        if self._sound is None or self._resampler is None:
            return
        timestamp = timestamp_ms / 1000
        for frame in self._sound.decode(av.Packet(body[2:])):
            for out in self._resampler.resample(frame):
                samples = out.to_ndarray()
                if samples.shape[0] == CHANNELS:
                    with self._queue_lock:
                        self.playout.arrived(timestamp, time.monotonic())
                    self.audio.push(samples.astype(np.float32, copy=False), timestamp)
                    timestamp += samples.shape[1] / SAMPLE_RATE

    def advance(self, now: float) -> float | None:
        """Move the picture on show to the latest one due at `now` (the clock calls this once
        per tick); returns the media position that plays now (None before any tag)."""
        with self._queue_lock:
            position = self.playout.position(now)
            if position is None:
                return None
            queue = self._queue
            while queue and queue[0].timestamp <= position + self._half_tick:
                self.slot = queue.popleft()
            return position

    def picture(
        self, width: int, height: int, black: Picture, *, exact: bool = False
    ) -> Picture | None:
        """The latest picture at width x height: letterboxed on `black`, or scaled to exactly
        that size (`exact`, for a picture-in-picture whose size follows the source's aspect).
        Cached until the next decoded picture: the clock asks 30 times a second whatever the
        source's rate."""
        slot = self.slot
        if slot is None:
            return None
        key = (width, height, exact)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == slot.seq:
            return cached[1]
        if exact:
            picture = scaled(slot.frame, width, height)
        else:
            picture = letterboxed(slot.frame, width, height, black)
        self._cache[key] = (slot.seq, picture)
        return picture

    def age(self, now: float) -> float | None:
        """Seconds since the latest picture was decoded (None before the first): a stall is
        the source no longer sending, whatever its playout delay."""
        received = self._received
        return None if received is None else now - received

    def state(self, now: float, stall_s: float) -> SourceState:
        """The source as the state report shows it."""
        latest = self._latest
        age = self.age(now)
        return SourceState(
            id=self.id,
            width=None if latest is None else latest.width,
            height=None if latest is None else latest.height,
            last_frame_time=self._received_wall,
            stalled=age is None or age > stall_s,
            has_audio=self._sound is not None,
            audio_underruns=self.audio.underruns,
        )
