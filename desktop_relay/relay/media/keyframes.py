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


def _vint(data: bytes | bytearray, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-size integer at `pos`, or None if incomplete."""
    if pos >= len(data):
        return None
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise ValueError("invalid EBML integer")
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & (mask - 1)
    all_ones = (first & (mask - 1)) == mask - 1
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    if not keep_marker and all_ones:
        return _UNKNOWN, length
    return value, length


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
        self._gop = bytearray()  # stream bytes from offset _gop_at on
        self._gop_at = 0
        self._has_keyframe = False

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream (everything after the header)."""
        if not self.enabled:
            return
        self._gop += data
        if len(self._gop) > MAX_GOP_BYTES:
            # Too long without a keyframe: forget it and wait for the next one.
            self._gop_at += len(self._gop)
            self._gop = bytearray()
            self._has_keyframe = False
        try:
            self._parse(data)
        except ValueError as exc:
            log.info("keyframe tracking stopped: %s", exc)
            self.enabled = False
            self._gop = bytearray()

    def _parse(self, data: bytes) -> None:
        buf = self._pending + data
        at = self._pending_at
        pos = 0
        while True:
            if self._skip:
                step = min(self._skip, len(buf) - pos)
                self._skip -= step
                pos += step
                if self._skip:
                    break
            header = _element_header(buf, pos)
            if header is None:
                break
            ident, size, head = header
            if ident == _CLUSTER:
                # Its children follow inline, whatever size the cluster declares.
                self._cluster_at = at + pos
                self._cluster_checked = False
                pos += head
                continue
            if ident == _SIMPLE_BLOCK and not self._cluster_checked:
                track = _vint(buf, pos + head, keep_marker=False)
                if track is None or pos + head + track[1] + 3 > len(buf):
                    break  # wait for the track number and flags
                if track[0] == self._track:
                    self._cluster_checked = True
                    if buf[pos + head + track[1] + 2] & 0x80:
                        self._keyframe_cluster()
            if size == _UNKNOWN:
                raise ValueError(f"element {ident:#x} of unknown size")
            pos += head
            self._skip = size
        self._pending = bytearray(buf[pos:])
        self._pending_at = at + pos

    def _keyframe_cluster(self) -> None:
        if self._cluster_at is None or self._cluster_at < self._gop_at:
            return  # the cluster began in bytes already forgotten
        del self._gop[: self._cluster_at - self._gop_at]
        self._gop_at = self._cluster_at
        self._has_keyframe = True

    @property
    def ready(self) -> bytes:
        """The bytes to replay to a new ffmpeg after the header (empty: none usable)."""
        return bytes(self._gop) if self._has_keyframe else b""
