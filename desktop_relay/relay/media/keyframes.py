"""Finding where the latest video keyframe's cluster starts in a live Matroska stream.

A restarted encoder (its ffmpeg died or stalled) can only decode from a keyframe. Browsers
send one every 2 to 5 s; rather than make the outputs wait for the next one and then probe
again, the relay keeps the bytes since the last cluster that opens with a video keyframe and
replays them after the stream header (pipeline.py).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_NUMBER = 0xD7
_TRACK_TYPE = 0x83
_SIMPLE_BLOCK = 0xA3
_UNKNOWN = -1
# Keep at most this much of the current group of pictures; past it, wait for the next one.
MAX_GOP_BYTES = 16 * 1024 * 1024


# The length of an EBML variable-size integer, by its first byte: 1 for 1xxxxxxx, 2 for
# 01xxxxxx, ... 8 for 00000001; 0 for a zero byte, which starts no valid integer.
_VINT_LENGTH = bytes([0] + [9 - b.bit_length() for b in range(1, 256)])


def _vint(data: bytes | bytearray, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-size integer at `pos`, or None if incomplete."""
    if pos >= len(data):
        return None
    length = _VINT_LENGTH[data[pos]]
    if not length:
        raise ValueError("invalid EBML integer")
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    # All value bits set means "unknown" (only a size may say so).
    return (_UNKNOWN if value == (1 << (7 * length)) - 1 else value), length


def _element_header(data: bytes | bytearray, pos: int) -> tuple[int, int, int] | None:
    """(id, size or _UNKNOWN, header length) of the element at `pos`, or None if incomplete."""
    ident = _vint(data, pos, keep_marker=True)
    if ident is None:
        return None
    size = _vint(data, pos + ident[1], keep_marker=False)
    if size is None:
        return None
    return ident[0], size[0], ident[1] + size[1]


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, data start, data end) of the sized elements in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        header = _element_header(data, pos)
        if header is None:
            break
        ident, size, head = header
        body = pos + head
        stop = end if size == _UNKNOWN else min(end, body + size)
        out.append((ident, body, stop))
        pos = stop
    return out


def video_track_number(header: bytes) -> int | None:
    """The Matroska track number of the (first) video track in a stream header."""
    for ident, body, end in _elements(header, 0, len(header)):
        if ident != _SEGMENT:
            continue
        for sub, sbody, send in _elements(header, body, end):
            if sub != _TRACKS:
                continue
            for entry, ebody, eend in _elements(header, sbody, send):
                if entry != _TRACK_ENTRY:
                    continue
                fields = {f: header[fb:fe] for f, fb, fe in _elements(header, ebody, eend)}
                if fields.get(_TRACK_TYPE) == b"\x01" and _TRACK_NUMBER in fields:
                    return int.from_bytes(fields[_TRACK_NUMBER], "big")
    return None


class KeyframeTracker:
    """Follows the clusters after the header; `ready` is the stream from the cluster of the
    latest video keyframe on (empty until one is seen, or when tracking had to stop)."""

    def __init__(self, video_track: int | None) -> None:
        self._track = video_track
        self.enabled = video_track is not None
        self._pending = bytearray()  # unparsed bytes, starting at stream offset _pending_at
        self._pending_at = 0
        self._skip = 0  # bytes of the current element's body still to pass over
        self._cluster_at: int | None = None  # stream offset of the current cluster
        self._cluster_checked = False
        # Stream bytes from offset _gop_at on, as the chunks came (appending to one bytearray
        # copied the whole GOP whenever it grew); _gop_bytes is their length in all.
        self._gop: list[bytes] = []
        self._gop_at = 0
        self._gop_bytes = 0
        self._has_keyframe = False

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream (everything after the header)."""
        if not self.enabled:
            return
        self._gop.append(data)
        self._gop_bytes += len(data)
        if self._gop_bytes > MAX_GOP_BYTES:
            # Too long without a keyframe: forget it and wait for the next one.
            self._gop_at += self._gop_bytes
            self._gop = []
            self._gop_bytes = 0
            self._has_keyframe = False
        try:
            self._parse(data)
        except ValueError as exc:
            log.info("keyframe tracking stopped: %s", exc)
            self.enabled = False
            self._gop = []
            self._gop_bytes = 0

    def _parse(self, data: bytes) -> None:
        # The relay parses every chunk of every session here, so element headers are read
        # inline (a table lookup, and sizes of up to 3 bytes from their bytes without a
        # slice) with the parser's state in locals; the bodies are skipped unread, except a
        # cluster's first video block's flags.
        buf: bytes | bytearray = self._pending + data if self._pending else data
        at = self._pending_at
        end = len(buf)
        lengths = _VINT_LENGTH
        track = self._track
        checked = self._cluster_checked
        pos = self._skip
        while pos < end:
            id_len = lengths[buf[pos]]
            size_at = pos + id_len
            if not id_len:
                raise ValueError("invalid EBML integer")
            if size_at >= end:
                break
            first = buf[size_at]
            size_len = lengths[first]
            if size_len == 1:
                size = first & 0x7F
                unknown = size == 0x7F
            elif size_len == 2:
                size = (first & 0x3F) << 8 | buf[size_at + 1] if size_at + 1 < end else -1
                unknown = size == 0x3FFF
            elif not size_len:
                raise ValueError("invalid EBML integer")
            else:
                mask = (1 << 7 * size_len) - 1
                size = int.from_bytes(buf[size_at : size_at + size_len], "big") & mask
                unknown = size == mask
            head = id_len + size_len
            if pos + head > end:
                break
            ident = buf[pos] if id_len == 1 else int.from_bytes(buf[pos:size_at], "big")
            if ident == _CLUSTER:
                # Its children follow inline, whatever size the cluster declares.
                self._cluster_at = at + pos
                checked = False
                pos += head
                continue
            if ident == _SIMPLE_BLOCK and not checked:
                block = _vint(buf, pos + head, keep_marker=False)
                if block is None or pos + head + block[1] + 3 > end:
                    break  # wait for the track number and flags
                if block[0] == track:
                    checked = True
                    if buf[pos + head + block[1] + 2] & 0x80:
                        self._keyframe_cluster()
            if unknown:
                raise ValueError(f"element {ident:#x} of unknown size")
            pos += head + size
        self._cluster_checked = checked
        if pos > end:
            # Inside a body that goes on in the next chunk.
            self._skip = pos - end
            pos = end
        else:
            self._skip = 0
        self._pending = bytearray(buf[pos:]) if pos < end else bytearray()
        self._pending_at = at + pos

    def _keyframe_cluster(self) -> None:
        if self._cluster_at is None or self._cluster_at < self._gop_at:
            return  # the cluster began in bytes already forgotten
        drop = self._cluster_at - self._gop_at
        gop = self._gop
        # Whole chunks before the cluster go; the one it starts in is cut.
        while gop and len(gop[0]) <= drop:
            drop -= len(gop[0])
            self._gop_bytes -= len(gop[0])
            del gop[0]
        if drop:
            gop[0] = gop[0][drop:]
            self._gop_bytes -= drop
        self._gop_at = self._cluster_at
        self._has_keyframe = True

    @property
    def ready(self) -> bytes:
        """The bytes to replay to a new ffmpeg after the header (empty: none usable)."""
        return b"".join(self._gop) if self._has_keyframe else b""
