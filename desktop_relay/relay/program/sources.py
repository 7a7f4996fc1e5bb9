"""One source in the worker: its FLV tags decoded into a "latest frame" slot (the picture) and
an audio buffer (the sound). The program's clock reads the slot; it never waits for it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import av
import numpy as np

from .audio import CHANNELS, SAMPLE_RATE, AudioBuffer
from .config import SourceState
from .flv_tags import CODEC_AVC, SOUND_AAC, TAG_AUDIO, TAG_VIDEO, Tag
from .picture import Picture, letterboxed, scaled

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Slot:
    """The latest decoded picture of a source (replaced whole: the clock reads it without a
    lock, an attribute assignment being atomic)."""

    frame: av.VideoFrame
    seq: int
    received: float
    """time.monotonic() when it was decoded."""
    wall: float
    """time.time() when it was decoded, for the state report."""


class Source:
    """A source's decoders and its latest picture and sound."""

    def __init__(self, source_id: str) -> None:
        self.id = source_id
        self.slot: Slot | None = None
        self.audio = AudioBuffer()
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
                self._feed_audio(body)
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
        packet = av.Packet(body[5:])
        packet.pts = packet.dts = timestamp_ms
        for frame in self._video.decode(packet):
            self._seq += 1
            self.slot = Slot(frame, self._seq, time.monotonic(), time.time())

    def _feed_audio(self, body: bytes) -> None:
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
        for frame in self._sound.decode(av.Packet(body[2:])):
            for out in self._resampler.resample(frame):
                samples = out.to_ndarray()
                if samples.shape[0] == CHANNELS:
                    self.audio.push(samples.astype(np.float32, copy=False))

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
        """Seconds since the latest picture (None before the first)."""
        slot = self.slot
        return None if slot is None else now - slot.received

    def state(self, now: float, stall_s: float) -> SourceState:
        """The source as the state report shows it."""
        slot = self.slot
        age = self.age(now)
        return SourceState(
            id=self.id,
            width=None if slot is None else slot.frame.width,
            height=None if slot is None else slot.frame.height,
            last_frame_time=None if slot is None else slot.wall,
            stalled=age is None or age > stall_s,
            has_audio=self._sound is not None,
            audio_underruns=self.audio.underruns,
        )
