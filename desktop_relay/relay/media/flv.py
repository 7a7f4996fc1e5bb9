"""Incremental FLV tag framing: where each tag of a live FLV byte stream starts and ends.

The relay reads the encoder ffmpeg's normalized FLV to fan it out and to find keyframes and
codec headers. It only reads framing and the first byte or two of each tag's body, it never
decodes, so a plain Python parser keeps up with many streams.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

# A tag's DataSize is 24 bits, so the format itself caps a tag near 16 MiB.
MAX_TAG_SIZE = 16 * 1024 * 1024
HEADER_SIZE = 9
TAG_HEADER_SIZE = 11
PREVIOUS_TAG_SIZE = 4
# Extra header bytes a (future) FLV version may declare; anything bigger is not FLV.
_MAX_HEADER_SIZE = 1024
_SIGNATURE = b"FLV"
_FLAG_AUDIO = 0x04
_FLAG_VIDEO = 0x01
_CODEC_AVC = 7
_SOUND_AAC = 10
# Enhanced RTMP/E-FLV audio: SoundFormat 9 says the packet type is in the low four bits.
_SOUND_EX_HEADER = 9
_FRAME_KEY = 1
_PACKET_SEQUENCE = 0  # AVCPacketType, AACPacketType and E-FLV PacketType SequenceStart
_PACKET_NALU = 1
# E-FLV PacketTypes that carry coded pictures: CodedFrames, CodedFramesX, Multitrack.
_EX_PICTURE_PACKETS = frozenset({1, 3, 6})
_ON_METADATA = b"\x02\x00\x0aonMetaData"
# Type and DataSize; Timestamp and TimestampExtended; StreamID (2 + 1 bytes).
_TAG_HEAD = struct.Struct(">IIHB")
_U32 = struct.Struct(">I")


class TagType(IntEnum):
    """The FLV tag types (the low five bits of a tag's first byte)."""

    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


class FlvError(ValueError):
    """The bytes are not a valid FLV stream (or break this reader's limits)."""


@dataclass(frozen=True)
class FlvHeader:
    """The stream's file header, with PreviousTagSize0: what every FLV reader starts with."""

    has_audio: bool
    has_video: bool
    raw: bytes


class FlvTag(NamedTuple):
    """One whole tag: `raw` holds its 11-byte header, body and 4-byte PreviousTagSize.

    A named tuple, not a frozen dataclass: one is made per tag of every stream (about 80 a
    second per session), and a tuple costs a fraction of the dataclass's construction.
    """

    type: TagType
    timestamp: int  # milliseconds, with the extended byte (32 bits)
    is_keyframe: bool  # video FrameType 1 (also for E-FLV video); False for audio and script
    is_sequence_header: bool  # AVC/AAC packet type 0, or E-FLV SequenceStart
    raw: bytes

    @property
    def data(self) -> bytes:
        """The tag's body, without its header and trailing PreviousTagSize."""
        return self.raw[TAG_HEADER_SIZE:-PREVIOUS_TAG_SIZE]

    @property
    def starts_gop(self) -> bool:
        """A video keyframe carrying a picture: a decoder can start here (codec headers and
        end-of-sequence markers are flagged as keyframes too, but hold no picture)."""
        if self.type != TagType.VIDEO or not self.is_keyframe or self.is_sequence_header:
            return False
        if len(self.raw) < TAG_HEADER_SIZE + PREVIOUS_TAG_SIZE + 2:
            return False
        first, second = self.raw[TAG_HEADER_SIZE], self.raw[TAG_HEADER_SIZE + 1]
        if first & 0x80:
            return first & 0x0F in _EX_PICTURE_PACKETS
        return first & 0x0F != _CODEC_AVC or second == _PACKET_NALU

    @property
    def is_metadata(self) -> bool:
        """Whether this is the `onMetaData` script tag (stream properties for the demuxer)."""
        return self.type == TagType.SCRIPT and self.raw.startswith(_ON_METADATA, TAG_HEADER_SIZE)


class FlvReader:
    """Feed it the stream's bytes in chunks of any size; it returns each tag once complete.

    It holds at most one incomplete tag, so its memory is bounded by `max_tag_size`. After an
    FlvError the stream cannot be resynchronized: every later `feed` raises again.
    """

    def __init__(self, max_tag_size: int = MAX_TAG_SIZE) -> None:
        self.max_tag_size = max_tag_size
        self.header: FlvHeader | None = None
        self.offset = 0  # stream position of the first byte not yet consumed
        self._buf = bytearray()
        self._error: FlvError | None = None

    def feed(self, data: bytes) -> list[FlvTag]:
        """Take the next bytes of the stream; return the tags they complete, in order."""
        return self.feed_batch(data)[0]

    def feed_batch(self, data: bytes) -> tuple[list[FlvTag], bytes]:
        """Like `feed`, and also the completed tags' bytes as one string (all their `raw`
        joined: the stream minus its file header), for consumers that pass tags on in bulk."""
        if self._error is not None:
            raise self._error
        self._buf += data
        try:
            return self._parse()
        except FlvError as exc:
            self._error = exc
            self._buf.clear()
            raise

    def _fail(self, pos: int, message: str) -> FlvError:
        return FlvError(f"not a valid FLV stream at byte {self.offset + pos}: {message}")

    def _parse(self) -> tuple[list[FlvTag], bytes]:
        buf = self._buf
        pos = 0
        if self.header is None:
            pos = self._parse_header()
            if self.header is None:
                return [], b""
        first = pos
        tags: list[FlvTag] = []
        end = len(buf)
        if end - pos >= TAG_HEADER_SIZE:
            pos = self._parse_tags(bytes(buf), pos, end, tags)
        raw = bytes(buf[first:pos]) if tags else b""
        if pos:
            del buf[:pos]
            self.offset += pos
        return tags, raw

    def _parse_tags(self, data: bytes, pos: int, end: int, tags: list[FlvTag]) -> int:
        """The whole tags in data[pos:end] appended to `tags`; where the first incomplete
        one starts. The relay's hottest parsing (every tag of every session, about 70 a
        second each): one struct read per tag header, the body's flag bytes read in place,
        each tag's bytes one slice of `data`, each tag made by tuple.__new__ (the named
        tuple's own __new__ is a Python function: a frame per tag)."""
        limit = self.max_tag_size
        head_of = _TAG_HEAD.unpack_from
        u32 = _U32.unpack_from
        append = tags.append
        new = tuple.__new__
        tag_class = FlvTag
        audio, video, script = TagType.AUDIO, TagType.VIDEO, TagType.SCRIPT
        while end - pos >= TAG_HEADER_SIZE:
            kind_size, stamp, stream_high, stream_low = head_of(data, pos)
            kind = kind_size >> 24
            size = kind_size & 0xFFFFFF
            if kind == 8:
                tag_type = audio
            elif kind == 9:
                tag_type = video
            elif kind == 18:
                tag_type = script
            else:
                # Also refuses the filter bit (encrypted tags): their bodies are opaque.
                raise self._fail(pos, f"unknown tag type byte 0x{kind:02x}")
            if stream_high or stream_low:
                raise self._fail(pos, "tag StreamID is not 0")
            if size > limit:
                raise self._fail(pos, f"tag of {size} bytes is larger than {limit}")
            total = TAG_HEADER_SIZE + size + PREVIOUS_TAG_SIZE
            if end - pos < total:
                break
            body_at = pos + TAG_HEADER_SIZE
            previous = u32(data, body_at + size)[0]
            if previous != TAG_HEADER_SIZE + size:
                raise self._fail(
                    pos, f"PreviousTagSize {previous} does not match the tag ({11 + size})"
                )
            keyframe = sequence = False
            if size and kind != 18:
                # The body's first byte or two, read in place (a call and a slice per tag
                # cost more than the rest of the tag's parsing).
                lead = data[body_at]
                if kind == 9:
                    if lead & 0x80:
                        # E-FLV: IsExHeader, 3-bit FrameType, 4-bit PacketType; the FourCC
                        # follows.
                        keyframe = (lead >> 4) & 0x07 == _FRAME_KEY
                        sequence = lead & 0x0F == _PACKET_SEQUENCE
                    else:
                        keyframe = lead >> 4 == _FRAME_KEY
                        sequence = (
                            lead & 0x0F == _CODEC_AVC
                            and size > 1
                            and data[body_at + 1] == _PACKET_SEQUENCE
                        )
                elif lead >> 4 == _SOUND_EX_HEADER:  # audio: E-FLV, the packet type inside
                    sequence = lead & 0x0F == _PACKET_SEQUENCE
                else:
                    sequence = (
                        lead >> 4 == _SOUND_AAC
                        and size > 1
                        and data[body_at + 1] == _PACKET_SEQUENCE
                    )
            append(
                new(
                    tag_class,
                    (
                        tag_type,
                        (stamp >> 8) | ((stamp & 0xFF) << 24),
                        keyframe,
                        sequence,
                        data[pos : pos + total],
                    ),
                )
            )
            pos += total
        return pos

    def _parse_header(self) -> int:
        buf = self._buf
        # Check what has arrived so far: garbage is refused at its first bytes.
        if not _SIGNATURE.startswith(bytes(buf[:3])):
            raise self._fail(0, "no FLV signature")
        if len(buf) >= 4 and buf[3] != 1:
            raise self._fail(3, f"unsupported FLV version {buf[3]}")
        if len(buf) < HEADER_SIZE:
            return 0
        flags = buf[4]
        if flags & ~(_FLAG_AUDIO | _FLAG_VIDEO):
            raise self._fail(4, f"reserved header flags set (0x{flags:02x})")
        data_offset = int.from_bytes(buf[5:9], "big")
        if not HEADER_SIZE <= data_offset <= _MAX_HEADER_SIZE:
            raise self._fail(5, f"header size {data_offset} is not plausible")
        needed = data_offset + PREVIOUS_TAG_SIZE
        if len(buf) < needed:
            return 0
        if buf[data_offset:needed] != b"\0\0\0\0":
            raise self._fail(data_offset, "PreviousTagSize0 is not 0")
        self.header = FlvHeader(
            has_audio=bool(flags & _FLAG_AUDIO),
            has_video=bool(flags & _FLAG_VIDEO),
            raw=bytes(buf[:needed]),
        )
        return needed
