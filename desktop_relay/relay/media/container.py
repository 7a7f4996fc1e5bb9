"""Recognising what a browser's MediaRecorder sends, from the bytes themselves.

The original client never says which type it records, and a browser may not record what it was
asked to, so the first bytes decide: Matroska/WebM or fragmented MP4, and which video codec.
The stream header is kept so that a restarted ffmpeg (new target) can be fed a decodable stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import ErrorName, RelayError, ServerError

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_CLUSTER_ID = b"\x1f\x43\xb6\x75"
# Give up recognising a stream whose header has not ended after this many bytes.
MAX_HEADER_BYTES = 4 * 1024 * 1024

_MKV_VIDEO = {
    b"V_MPEG4/ISO/AVC": "h264",
    b"V_VP8": "vp8",
    b"V_VP9": "vp9",
    b"V_AV1": "av1",
    b"V_MPEGH/ISO/HEVC": "hevc",
}
_MKV_AUDIO = {b"A_OPUS": "opus", b"A_AAC": "aac", b"A_VORBIS": "vorbis", b"A_PCM": "pcm"}
_MP4_VIDEO = {
    b"avc1": "h264",
    b"avc3": "h264",
    b"vp08": "vp8",
    b"vp09": "vp9",
    b"av01": "av1",
    b"hvc1": "hevc",
    b"hev1": "hevc",
}
_MP4_AUDIO = {b"mp4a": "aac", b"Opus": "opus"}


@dataclass(frozen=True)
class InputFormat:
    """What the browser sends: container, codecs, and the header that starts the stream."""

    container: str  # "matroska" or "mp4": the ffmpeg demuxer name
    video_codec: str | None
    audio_codec: str | None
    header: bytes

    @property
    def description(self) -> str:
        """A short human label such as `matroska h264+opus`."""
        codecs = "+".join(c for c in (self.video_codec, self.audio_codec) if c) or "no codecs"
        return f"{self.container} {codecs}"


def _unsupported(message: str) -> RelayError:
    return RelayError(ServerError(ErrorName.UNSUPPORTED_MEDIA, message, fatal=True))


def _first_codec(data: bytes, table: dict[bytes, str]) -> str | None:
    found = [(data.find(tag), name) for tag, name in table.items() if tag in data]
    return min(found)[1] if found else None


def _mp4_header_end(data: bytes) -> int | None:
    """Offset of the first `moof` (end of ftyp+moov), or None if not yet in `data`."""
    pos = 0
    seen_moov = False
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        if kind == b"moov":
            seen_moov = True
        if kind in (b"moof", b"mdat"):
            return pos if seen_moov else None
        if size < 8:
            return None
        pos += size
    return None


class InputProbe:
    """Accumulates the first chunks until the format is known."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.format: InputFormat | None = None

    def feed(self, data: bytes) -> InputFormat | None:
        """Add bytes; return the format once known. Raises UNSUPPORTED_MEDIA on foreign data."""
        if self.format is not None:
            return self.format
        self._buf += data
        buf = bytes(self._buf)
        if len(buf) >= 4 and buf[:4] == _EBML_MAGIC:
            end = buf.find(_CLUSTER_ID)
            if end < 0:
                self._check_size()
                return None
            header = buf[:end]
            self.format = InputFormat(
                "matroska",
                _first_codec(header, _MKV_VIDEO),
                _first_codec(header, _MKV_AUDIO),
                header,
            )
        elif len(buf) >= 8 and buf[4:8] == b"ftyp":
            end_mp4 = _mp4_header_end(buf)
            if end_mp4 is None:
                self._check_size()
                return None
            header = buf[:end_mp4]
            self.format = InputFormat(
                "mp4", _first_codec(header, _MP4_VIDEO), _first_codec(header, _MP4_AUDIO), header
            )
        elif len(buf) >= 8:
            raise _unsupported(
                "The stream is neither WebM/Matroska nor MP4: send MediaRecorder output."
            )
        return self.format

    def _check_size(self) -> None:
        if len(self._buf) > MAX_HEADER_BYTES:
            raise _unsupported("The stream header never ended: is this MediaRecorder output?")

    def take_buffered(self) -> bytes:
        """Everything fed so far (to write to ffmpeg once it runs), emptying the buffer."""
        data = bytes(self._buf)
        self._buf.clear()
        return data
