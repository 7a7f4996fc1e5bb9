"""FlvReader on real FLV made by ffmpeg: any chunking, codec headers, keyframes, garbage."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest

from desktop_relay.relay.media.flv import FlvError, FlvReader, FlvTag, TagType

from ..media import H264_FIXTURE, require_tool


def make_flv(ffmpeg: str, out: Path, *args: str) -> bytes:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args, "-f", "flv", str(out)],
        check=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def fixture_flv(ffmpeg_exe: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The H.264 capture as the encoder will send it: video copied, Opus made AAC."""
    out = tmp_path_factory.mktemp("flv") / "fixture.flv"
    data = make_flv(ffmpeg_exe, out, "-i", str(H264_FIXTURE), "-c:v", "copy", "-c:a", "aac")
    return out, data


def parse(data: bytes, chunk: int) -> tuple[FlvReader, list[FlvTag]]:
    reader = FlvReader()
    tags: list[FlvTag] = []
    for i in range(0, len(data), chunk):
        tags += reader.feed(data[i : i + chunk])
    return reader, tags


def ffprobe_video_keyframes(path: Path) -> int:
    out = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-select_streams", "v",
         "-show_entries", "packet=flags", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return sum("K" in line for line in out.splitlines())


def test_whole_real_stream_tags_headers_and_keyframes(fixture_flv: tuple[Path, bytes]) -> None:
    path, data = fixture_flv
    reader, tags = parse(data, len(data))
    assert reader.header is not None
    assert (reader.header.has_audio, reader.header.has_video) == (True, True)
    # Every byte after the header belongs to exactly one tag, in order.
    assert reader.header.raw + b"".join(t.raw for t in tags) == data
    assert tags[0].type == TagType.SCRIPT and tags[0].is_metadata
    headers = [t for t in tags if t.is_sequence_header]
    assert [(t.type, t.timestamp) for t in headers] == [(TagType.VIDEO, 0), (TagType.AUDIO, 0)]
    pictures = [t for t in tags if t.starts_gop]
    assert len(pictures) == ffprobe_video_keyframes(path) >= 3
    assert all(t.type == TagType.VIDEO and t.is_keyframe for t in pictures)
    video = [t for t in tags if t.type == TagType.VIDEO and not t.is_sequence_header]
    assert max(t.timestamp for t in video) > 19_000
    assert all(not t.is_keyframe for t in tags if t.type == TagType.AUDIO)


def test_every_split_position_gives_the_same_tags(fixture_flv: tuple[Path, bytes]) -> None:
    _, data = fixture_flv
    _, expected = parse(data, len(data))
    # One byte at a time: every position of the stream is a chunk boundary once.
    _, tags = parse(data, 1)
    assert tags == expected
    # Two feeds split at every offset of the header, the script tag, both sequence headers
    # and the first frames.
    head = data[:4096]
    _, head_tags = parse(head, len(head))
    for cut in range(len(head) + 1):
        reader = FlvReader()
        assert reader.feed(head[:cut]) + reader.feed(head[cut:]) == head_tags
    for chunk in (2, 7, 11, 15, 188, 4093, 65536):
        assert parse(data, chunk)[1] == expected


def test_feed_batch_bytes_are_the_tags_joined_at_any_chunking(
    fixture_flv: tuple[Path, bytes],
) -> None:
    # The fan-out writes a read's bytes as one piece: they must be exactly its tags, in
    # order, with the file header left out and no byte of an unfinished tag.
    _, data = fixture_flv
    for chunk in (1, 9, 13, 4093, 65536, len(data)):
        reader = FlvReader()
        stream = b""
        for i in range(0, len(data), chunk):
            tags, raw = reader.feed_batch(data[i : i + chunk])
            assert raw == b"".join(t.raw for t in tags)
            stream += raw
        assert reader.header is not None
        assert reader.header.raw + stream == data


def test_real_enhanced_flv_hevc_and_opus(ffmpeg_exe: str, tmp_path: Path) -> None:
    """ffmpeg writes HEVC and Opus as enhanced RTMP (E-FLV, IsExHeader): read as video/audio."""
    data = make_flv(
        ffmpeg_exe, tmp_path / "eflv.flv",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "3", "-c:v", "libx265", "-x265-params", "log-level=none:keyint=10:min-keyint=10",
        "-c:a", "libopus",
    )
    _, tags = parse(data, 1000)
    video = [t for t in tags if t.type == TagType.VIDEO]
    audio = [t for t in tags if t.type == TagType.AUDIO]
    assert video and audio
    assert all(t.data[0] & 0x80 for t in video), "ffmpeg no longer writes E-FLV for HEVC"
    assert [t.starts_gop for t in video].count(True) == 3
    assert video[0].is_sequence_header and not video[0].starts_gop
    assert audio[0].is_sequence_header and not any(t.is_sequence_header for t in audio[1:])


def tag(kind: int, body: bytes, timestamp: int = 0) -> bytes:
    head = struct.pack(">B", kind) + len(body).to_bytes(3, "big")
    head += (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24]) + b"\0\0\0"
    return head + body + (11 + len(body)).to_bytes(4, "big")


HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"


def test_synthetic_tags_flags_and_extended_timestamp() -> None:
    reader = FlvReader()
    data = HEADER + b"".join([
        tag(9, b"\x17\x00\x00\x00\x00avcC"),  # AVC sequence header
        tag(9, b"\x17\x01\x00\x00\x00nalu", 0x01020304),  # keyframe, extended timestamp
        tag(9, b"\x27\x01\x00\x00\x00nalu", 40),  # inter frame
        tag(8, b"\xaf\x00\x12\x10"),  # AAC sequence header
        tag(8, b"\xaf\x01aac", 21),
        tag(9, b"\x90hvc1conf"),  # E-FLV SequenceStart, key
        tag(9, b"\x93hvc1pic"),  # E-FLV CodedFramesX, key
        tag(9, b"\xa3hvc1pic"),  # E-FLV inter frame
        tag(9, b""),  # empty video tag: no flags, no crash
        tag(18, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00"),
    ])
    tags = reader.feed(data)
    flags = [(t.type, t.is_keyframe, t.is_sequence_header, t.starts_gop) for t in tags]
    v, a, s = TagType.VIDEO, TagType.AUDIO, TagType.SCRIPT
    assert flags == [
        (v, True, True, False), (v, True, False, True), (v, False, False, False),
        (a, False, True, False), (a, False, False, False),
        (v, True, True, False), (v, True, False, True), (v, False, False, False),
        (v, False, False, False), (s, False, False, False),
    ]
    assert tags[1].timestamp == 0x01020304 and tags[1].data == b"\x17\x01\x00\x00\x00nalu"
    assert tags[-1].is_metadata


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1a\x45\xdf\xa3", "no FLV signature"),  # Matroska's EBML magic
        (b"GET / HTTP/1.1\r\n", "no FLV signature"),
        (b"FLV\x02", "version"),
        (b"FLV\x01\x05\x00\x00\x00\x05", "header size"),
        (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x01", "PreviousTagSize0"),
        (HEADER + b"\x07" + b"\0" * 14, "tag type"),
        (HEADER + b"\x28" + b"\0" * 14, "tag type"),  # filter bit: encrypted
        (HEADER + tag(9, b"\x17\x01")[:-1] + b"\x99", "PreviousTagSize"),
        (HEADER + b"\x09\x00\x00\x02\x00\x00\x00\x00\x00\x00\x01", "StreamID"),
    ],
)
def test_garbage_is_refused_with_a_clear_error(data: bytes, message: str) -> None:
    reader = FlvReader()
    with pytest.raises(FlvError, match=message):
        reader.feed(data)
    # The stream cannot resynchronize: the reader stays refused.
    with pytest.raises(FlvError):
        reader.feed(HEADER)


def test_random_bytes_and_the_raw_capture_are_refused() -> None:
    rng = random.Random(7)
    with pytest.raises(FlvError):
        FlvReader().feed(bytes(rng.randrange(256) for _ in range(4096)))
    with pytest.raises(FlvError, match="no FLV signature"):
        FlvReader().feed(H264_FIXTURE.read_bytes()[:65536])


def test_oversized_tag_refused_at_its_header_without_buffering() -> None:
    reader = FlvReader(max_tag_size=1024)
    reader.feed(HEADER + tag(9, b"\x17\x01" + b"x" * 1000))
    big = b"\x09" + (2048).to_bytes(3, "big") + b"\0" * 7
    with pytest.raises(FlvError, match="larger than 1024") as info:
        reader.feed(big)
    assert f"byte {len(HEADER) + 11 + 1002 + 4}" in str(info.value)
    # The format's own bound: a 24-bit size can never pass the default limit.
    assert FlvReader().max_tag_size == 16 * 1024 * 1024
