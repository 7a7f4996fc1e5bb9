"""The relay recognises what MediaRecorder sends from the bytes."""

from __future__ import annotations

import pytest

from desktop_relay.relay.errors import ErrorName, RelayError
from desktop_relay.relay.media.container import InputProbe

from ..media import H264_FIXTURE, VP8_FIXTURE


def feed_in_chunks(data: bytes, size: int) -> InputProbe:
    probe = InputProbe()
    for i in range(0, len(data), size):
        if probe.feed(data[i:i + size]) is not None:
            break
    return probe


@pytest.mark.parametrize(
    ("path", "video", "audio"),
    [(H264_FIXTURE, "h264", "opus"), (VP8_FIXTURE, "vp8", "opus")],
)
def test_recognises_the_fixtures_even_in_tiny_chunks(path, video, audio) -> None:  # type: ignore[no-untyped-def]
    data = path.read_bytes()
    for size in (100, 4096, len(data)):
        fmt = feed_in_chunks(data, size).format
        assert fmt is not None
        assert (fmt.container, fmt.video_codec, fmt.audio_codec) == ("matroska", video, audio)
        # The header stops right before the first cluster.
        assert data.startswith(fmt.header)
        assert data[len(fmt.header):len(fmt.header) + 4] == b"\x1f\x43\xb6\x75"


def test_buffered_bytes_are_returned_whole() -> None:
    data = H264_FIXTURE.read_bytes()[:50_000]
    probe = feed_in_chunks(data, 1000)
    assert probe.format is not None
    assert data.startswith(probe.take_buffered())


def test_mp4_header_ends_at_first_fragment() -> None:
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    header = box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", box(b"trak", b"avc1....mp4a"))
    data = header + box(b"moof", b"x" * 20) + box(b"mdat", b"y" * 100)
    fmt = feed_in_chunks(data, 7).format
    assert fmt is not None
    assert (fmt.container, fmt.video_codec, fmt.audio_codec) == ("mp4", "h264", "aac")
    assert fmt.header == header


def test_foreign_bytes_are_refused() -> None:
    with pytest.raises(RelayError) as info:
        InputProbe().feed(b"GIF89a" + b"\0" * 100)
    assert info.value.error.name == ErrorName.UNSUPPORTED_MEDIA
