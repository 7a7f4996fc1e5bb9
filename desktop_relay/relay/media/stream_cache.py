"""What a new or restarted output needs to start at once: the stream's headers and current GOP.

An output that joins a live FLV stream mid-way cannot decode until the next keyframe (2 to 5 s
away) and needs the codec headers that went by at the very start. The cache keeps them, so an
output (re)started at any moment gets a valid FLV stream that begins at a keyframe.
"""

from __future__ import annotations

import logging

from .flv import FlvHeader, FlvTag, TagType

log = logging.getLogger(__name__)

# Past this the group of pictures is dropped and only headers are kept until the next
# keyframe: a stream without keyframes must not grow the relay's memory without end.
MAX_GOP_BYTES = 32 * 1024 * 1024


class StreamCache:
    """Keeps the FLV header, onMetaData, the latest AVC/AAC sequence headers and the current GOP.

    Feed it every tag of the stream in order (`add`), after `set_header`. Callers that also feed
    outputs must add a tag to the cache before giving it to the outputs, with no `await` in
    between: an output snapshots `start_bytes()` and then takes live tags, and that order makes
    the snapshot and the live tags meet without a gap or a repeat.
    """

    def __init__(self, max_gop_bytes: int = MAX_GOP_BYTES) -> None:
        self.max_gop_bytes = max_gop_bytes
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new stream begins (the encoder restarted)."""
        self.header: FlvHeader | None = None
        self.metadata: FlvTag | None = None
        self.video_header: FlvTag | None = None
        self.audio_header: FlvTag | None = None
        self.saw_video = False
        # The current GOP: from the latest video keyframe on, audio and video, in stream order;
        # None while there is none (no keyframe yet, audio only, or it outgrew its bound).
        self._gop: list[FlvTag] | None = None
        # The sequence headers that were current when the GOP began (a header that changes
        # inside the GOP is in the GOP itself, after the pictures that use the old one).
        self._gop_headers: list[FlvTag] = []
        self._gop_bytes = 0

    @property
    def ready(self) -> bool:
        """Whether an output can start: the FLV header has been seen."""
        return self.header is not None

    @property
    def has_video(self) -> bool:
        """Whether the stream carries video (declared in its header, or seen)."""
        return self.saw_video or (self.header is not None and self.header.has_video)

    @property
    def has_gop(self) -> bool:
        """Whether `start_bytes` holds a keyframe and what follows it."""
        return self._gop is not None

    @property
    def gop_bytes(self) -> int:
        """Bytes held in the current GOP."""
        return self._gop_bytes

    @property
    def gop_start_ms(self) -> int | None:
        """Timestamp of the keyframe that opens the current GOP."""
        return self._gop[0].timestamp if self._gop else None

    def set_header(self, header: FlvHeader) -> None:
        """The stream's FLV file header (FlvReader.header)."""
        self.header = header

    def add(self, tag: FlvTag) -> None:
        """Take the stream's next tag."""
        if tag.type == TagType.SCRIPT and tag.is_metadata:
            self.metadata = tag
            return
        if tag.type == TagType.VIDEO:
            self.saw_video = True
            if tag.is_sequence_header:
                self.video_header = tag
            elif tag.starts_gop:
                self._gop = []
                self._gop_bytes = 0
                self._gop_headers = self._headers()
        elif tag.type == TagType.AUDIO and tag.is_sequence_header:
            self.audio_header = tag
        if self._gop is None:
            return
        if self._gop_bytes + len(tag.raw) > self.max_gop_bytes:
            log.warning(
                "group of pictures over %d bytes: keeping headers only until the next keyframe",
                self.max_gop_bytes,
            )
            self._gop = None
            self._gop_bytes = 0
            self._gop_headers = []
            return
        self._gop.append(tag)
        self._gop_bytes += len(tag.raw)

    def add_batch(self, tags: list[FlvTag]) -> None:
        """`add` each tag, in order. Plain audio tags (two in three of a stream's) are
        appended here without a call each: every tag of every session passes this way."""
        audio = TagType.AUDIO
        limit = self.max_gop_bytes
        for tag in tags:
            gop = self._gop
            if tag.type is audio and not tag.is_sequence_header:
                if gop is None:
                    continue
                size = len(tag.raw)
                if self._gop_bytes + size <= limit:
                    gop.append(tag)
                    self._gop_bytes += size
                    continue
            self.add(tag)

    def _headers(self) -> list[FlvTag]:
        return [tag for tag in (self.video_header, self.audio_header) if tag is not None]

    def start_bytes(self) -> bytes:
        """Headers and the current GOP as one FLV byte stream, timestamps unchanged.

        Empty until the FLV header is known. Without a GOP (audio only, or no keyframe yet)
        it is the headers alone: an output then starts with the live tags that follow.
        """
        if self.header is None:
            return b""
        parts = [self.header.raw]
        if self.metadata is not None:
            parts.append(self.metadata.raw)
        if self._gop is None:
            parts.extend(tag.raw for tag in self._headers())
        else:
            parts.extend(tag.raw for tag in self._gop_headers)
            parts.extend(tag.raw for tag in self._gop)
        return b"".join(parts)
