"""StreamCache: headers + the latest GOP, bounded, audio-only safe; ffmpeg starts at a keyframe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from desktop_relay.relay.media.flv import FlvHeader, FlvReader, FlvTag
from desktop_relay.relay.media.stream_cache import StreamCache

from ..media import H264_FIXTURE, require_tool
from .test_flv import HEADER, make_flv, parse, tag


@pytest.fixture(scope="module")
def fixture_tags(
    ffmpeg_exe: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FlvHeader, list[FlvTag]]:
    out = tmp_path_factory.mktemp("cache") / "fixture.flv"
    data = make_flv(ffmpeg_exe, out, "-i", str(H264_FIXTURE), "-c:v", "copy", "-c:a", "aac")
    reader, tags = parse(data, 65536)
    assert reader.header is not None
    return reader.header, tags


def cache_of(header: FlvHeader, tags: list[FlvTag], **kwargs: int) -> StreamCache:
    cache = StreamCache(**kwargs)
    cache.set_header(header)
    for t in tags:
        cache.add(t)
    return cache


def first_packets(path: Path) -> list[tuple[str, str]]:
    out = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-show_entries",
         "packet=codec_type,flags", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return [tuple(line.split(",")[:2]) for line in out.splitlines()]  # type: ignore[misc]


def test_start_bytes_are_headers_then_the_latest_gop(fixture_tags) -> None:  # type: ignore[no-untyped-def]
    header, tags = fixture_tags
    cache = cache_of(header, tags)
    start = cache.start_bytes()
    again, out = parse(start, len(start))
    assert again.header == header
    assert out[0].is_metadata
    assert [t.is_sequence_header for t in out[1:3]] == [True, True]
    last_key = [t for t in tags if t.starts_gop][-1]
    assert out[3] == last_key and cache.gop_start_ms == last_key.timestamp
    # The GOP is every tag from the keyframe on, audio included, timestamps unchanged.
    assert out[3:] == tags[tags.index(last_key):]


def test_ffmpeg_copy_of_start_bytes_begins_with_a_keyframe(
    fixture_tags, ffmpeg_exe: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """Mid-stream (second GOP, 7 s in), as an output restarted then would get it."""
    header, tags = fixture_tags
    keys = [i for i, t in enumerate(tags) if t.starts_gop]
    cut = keys[1] + 60
    cache = cache_of(header, tags[:cut])
    assert cache.gop_start_ms == tags[keys[1]].timestamp > 3000
    source = tmp_path / "start.flv"
    source.write_bytes(cache.start_bytes() + b"".join(t.raw for t in tags[cut:]))
    out = tmp_path / "copy.flv"
    subprocess.run(
        [ffmpeg_exe, "-hide_banner", "-loglevel", "error", "-f", "flv", "-i", str(source),
         "-map", "0", "-c", "copy", "-f", "flv", str(out)],
        check=True, timeout=60,
    )
    packets = first_packets(out)
    video = [flags for kind, flags in packets if kind == "video"]
    assert video[0].startswith("K")
    expected = sum(1 for t in tags[keys[1]:] if t.type == 9 and not t.is_sequence_header)
    # All pictures from the GOP's keyframe to the end (the end-of-sequence tag is no packet).
    assert len(video) >= expected - 1
    assert any(kind == "audio" for kind, _ in packets[:10])


def test_gop_over_its_bound_keeps_headers_until_the_next_keyframe(fixture_tags) -> None:  # type: ignore[no-untyped-def]
    header, tags = fixture_tags
    keys = [i for i, t in enumerate(tags) if t.starts_gop]
    cache = cache_of(header, tags[: keys[1] - 1], max_gop_bytes=50_000)
    assert not cache.has_gop and cache.gop_bytes == 0
    _, out = parse(cache.start_bytes(), 1 << 20)
    assert [t.is_metadata or t.is_sequence_header for t in out] == [True, True, True]
    for t in tags[keys[1] - 1 : keys[1] + 5]:
        cache.add(t)
    assert cache.has_gop and cache.gop_start_ms == tags[keys[1]].timestamp


def test_audio_only_stream_has_headers_and_no_gop(ffmpeg_exe: str, tmp_path: Path) -> None:
    data = make_flv(ffmpeg_exe, tmp_path / "a.flv", "-i", str(H264_FIXTURE), "-t", "3",
                    "-vn", "-c:a", "aac")
    reader, tags = parse(data, 4096)
    assert reader.header is not None and not reader.header.has_video
    cache = cache_of(reader.header, tags)
    assert not cache.has_video and not cache.has_gop
    _, out = parse(cache.start_bytes(), 1 << 20)
    assert out[0].is_metadata and out[1].is_sequence_header and len(out) == 2


def test_nothing_before_the_header_and_a_mid_gop_header_change_is_kept_in_order() -> None:
    cache = StreamCache()
    assert cache.start_bytes() == b"" and not cache.ready
    reader = FlvReader()
    seq1, key, seq2, inter = (
        tag(9, b"\x17\x00\x00\x00\x00one"), tag(9, b"\x17\x01\x00\x00\x00k", 10),
        tag(9, b"\x17\x00\x00\x00\x00two", 20), tag(9, b"\x27\x01\x00\x00\x00p", 30),
    )
    tags = reader.feed(HEADER + seq1 + key + seq2 + inter)
    assert reader.header is not None
    cache.set_header(reader.header)
    for t in tags:
        cache.add(t)
    # The pictures before the change were made with the first header: it opens the GOP.
    assert cache.start_bytes() == HEADER + seq1 + key + seq2 + inter
    assert cache.video_header is not None and cache.video_header.raw == seq2


@pytest.mark.parametrize("bound", [32 * 1024 * 1024, 50_000, 120_000])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_adding_in_batches_keeps_what_adding_tag_by_tag_keeps(fixture_tags, bound: int, batch: int) -> None:  # type: ignore[no-untyped-def]
    # The hub adds each read's tags at once (add_batch, plain audio without a call each).
    header, tags = fixture_tags
    one_by_one = StreamCache(max_gop_bytes=bound)
    batched = StreamCache(max_gop_bytes=bound)
    for cache in (one_by_one, batched):
        cache.set_header(header)
    for i in range(0, len(tags), batch):
        for t in tags[i : i + batch]:
            one_by_one.add(t)
        batched.add_batch(tags[i : i + batch])
        assert batched.gop_bytes == one_by_one.gop_bytes
        assert batched.has_gop == one_by_one.has_gop
    assert batched.start_bytes() == one_by_one.start_bytes()
    assert batched.audio_header == one_by_one.audio_header is not None
