"""A minimal FLV tag splitter for the program (both sides of the worker's pipe).

The relay has its own FLV reader, but the program keeps to the standard library here so that
it does not depend on modules being moved into sub-packages; it only needs tag boundaries, the
tag type, the timestamp and whether a video tag is a keyframe or a sequence header.
"""

from __future__ import annotations

from dataclasses import dataclass

FLV_SIGNATURE = b"FLV"
HEADER_SIZE = 9 + 4  # the file header, then PreviousTagSize0
TAG_HEADER_SIZE = 11
TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18
CODEC_AVC = 7
SOUND_AAC = 10
# No source tag is anywhere near this (a 1080p keyframe is a few hundred kB); a larger size
# means the bytes are not FLV and buffering them would only grow memory.
MAX_TAG_SIZE = 16 * 1024 * 1024


class FlvFormatError(ValueError):
    """The bytes are not an FLV stream."""


@dataclass(frozen=True, slots=True)
class Tag:
    """One whole FLV tag: `raw` holds its header, body and trailing PreviousTagSize."""

    type: int
    timestamp_ms: int
    raw: bytes

    @property
    def body(self) -> bytes:
        """The tag's payload."""
        return self.raw[TAG_HEADER_SIZE:-4]

    @property
    def is_config(self) -> bool:
        """Metadata or a sequence header: what a decoder needs before any frame."""
        if self.type == TAG_SCRIPT:
            return True
        if len(self.raw) < TAG_HEADER_SIZE + 2:
            return False
        first, packet_type = self.raw[TAG_HEADER_SIZE], self.raw[TAG_HEADER_SIZE + 1]
        if self.type == TAG_VIDEO:
            return first & 0x0F == CODEC_AVC and packet_type == 0
        if self.type == TAG_AUDIO:
            return first >> 4 == SOUND_AAC and packet_type == 0
        return False

    @property
    def is_keyframe(self) -> bool:
        """A video tag that starts a GOP (a decoder can start from it)."""
        if self.type != TAG_VIDEO or len(self.raw) < TAG_HEADER_SIZE + 2:
            return False
        first, packet_type = self.raw[TAG_HEADER_SIZE], self.raw[TAG_HEADER_SIZE + 1]
        return first >> 4 == 1 and first & 0x0F == CODEC_AVC and packet_type == 1


class StreamStart:
    """Where an FLV file header begins a stream (the first, or a new one after a source's
    encoder restarted): its decoders must start over."""

    def __repr__(self) -> str:
        return "STREAM_START"


STREAM_START = StreamStart()


class TagSplitter:
    """Cuts a byte stream that arrives in arbitrary chunks into whole tags, with STREAM_START
    where an FLV header begins a stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_header = True

    def reset(self) -> None:
        """Forget any partial tag; the next bytes must begin with an FLV header."""
        self._buffer.clear()
        self._in_header = True

    def feed(self, data: bytes) -> list[Tag | StreamStart]:
        """Add bytes; return the tags now complete, in order, with STREAM_START where a new
        stream began.

        Raises FlvFormatError on bytes that are not FLV (the splitter is then reset and waits
        for an FLV header)."""
        self._buffer += data
        tags: list[Tag | StreamStart] = []
        buf = self._buffer
        pos = 0
        try:
            while True:
                if self._in_header or buf[pos : pos + 3] == FLV_SIGNATURE:
                    # A tag type is 8, 9 or 18, never "F": a signature at a tag boundary is
                    # unambiguously a new stream.
                    if len(buf) - pos < HEADER_SIZE:
                        break
                    if buf[pos : pos + 3] != FLV_SIGNATURE:
                        raise FlvFormatError("the stream does not start with an FLV header")
                    header_size = int.from_bytes(buf[pos + 5 : pos + 9], "big")
                    if not 9 <= header_size <= 64:
                        raise FlvFormatError(f"FLV header size {header_size}")
                    if len(buf) - pos < header_size + 4:
                        break
                    pos += header_size + 4
                    self._in_header = False
                    tags.append(STREAM_START)
                    continue
                if len(buf) - pos < TAG_HEADER_SIZE:
                    break
                tag_type = buf[pos] & 0x1F
                if tag_type not in (TAG_AUDIO, TAG_VIDEO, TAG_SCRIPT):
                    raise FlvFormatError(f"FLV tag type {tag_type}")
                size = int.from_bytes(buf[pos + 1 : pos + 4], "big")
                if size > MAX_TAG_SIZE:
                    raise FlvFormatError(f"FLV tag of {size} bytes")
                end = pos + TAG_HEADER_SIZE + size + 4
                if len(buf) < end:
                    break
                timestamp = int.from_bytes(buf[pos + 4 : pos + 7], "big") | (buf[pos + 7] << 24)
                tags.append(Tag(tag_type, timestamp, bytes(buf[pos:end])))
                pos = end
        except FlvFormatError:
            self.reset()
            raise
        del buf[:pos]
        return tags


def split_tags(data: bytes) -> list[Tag]:
    """Whole tags from bytes that hold only whole tags (no file header)."""
    splitter = TagSplitter()
    splitter._in_header = False
    tags = splitter.feed(data)
    if splitter._buffer:
        raise FlvFormatError("a partial tag")
    return [t for t in tags if isinstance(t, Tag)]
