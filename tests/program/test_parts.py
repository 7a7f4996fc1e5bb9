"""The program's parts alone: the FLV splitter, the bounded source queue, the sound's buffer and
crossfade, pictures, the font and the settings."""

from __future__ import annotations

import numpy as np
import pytest

from desktop_relay.relay.program import ProgramConfig, ProgramState, SourceState
from desktop_relay.relay.program.audio import (
    SAMPLE_RATE,
    AudioBuffer,
    AudioMixer,
    samples_for_tick,
)
from desktop_relay.relay.program.engine import _SourceQueue
from desktop_relay.relay.program.flv_tags import (
    STREAM_START,
    TAG_AUDIO,
    TAG_SCRIPT,
    TAG_VIDEO,
    FlvFormatError,
    StreamStart,
    Tag,
    TagSplitter,
    split_tags,
)
from desktop_relay.relay.program.font import GLYPH_HEIGHT, text_mask
from desktop_relay.relay.program.picture import blend, fit, pip_rect, planes, solid

from .conftest import SourceFile

FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)


def tag(kind: int, timestamp_ms: int, body: bytes) -> bytes:
    size = len(body)
    header = (
        bytes([kind])
        + size.to_bytes(3, "big")
        + (timestamp_ms & 0xFFFFFF).to_bytes(3, "big")
        + bytes([timestamp_ms >> 24])
        + bytes(3)
    )
    return header + body + (size + 11).to_bytes(4, "big")


def video(timestamp_ms: int, key: bool, size: int = 100) -> bytes:
    return tag(TAG_VIDEO, timestamp_ms, bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + bytes(size))


def audio(timestamp_ms: int) -> bytes:
    return tag(TAG_AUDIO, timestamp_ms, bytes([0xAF, 1]) + bytes(20))


CONFIG = [
    tag(TAG_SCRIPT, 0, b"\x02\x00\x0aonMetaData"),
    tag(TAG_VIDEO, 0, bytes([0x17, 0, 0, 0, 0, 1, 2, 3])),
    tag(TAG_AUDIO, 0, bytes([0xAF, 0, 0x11, 0x90])),
]


def test_splitter_cuts_any_chunking_into_whole_tags() -> None:
    stream = FLV_HEADER + b"".join(CONFIG) + video(0, True) + audio(21) + video(33, False)
    stream += FLV_HEADER + b"".join(CONFIG) + video(0, True)  # the source's encoder restarted
    for step in (1, 7, 64, len(stream)):
        splitter = TagSplitter()
        items: list[Tag | StreamStart] = []
        for i in range(0, len(stream), step):
            items += splitter.feed(stream[i : i + step])
        assert [i for i, t in enumerate(items) if t is STREAM_START] == [0, 7], step
        tags = [t for t in items if isinstance(t, Tag)]
        assert [t.is_config for t in tags[:3]] == [True, True, True]
        assert [t.timestamp_ms for t in tags[3:6]] == [0, 21, 33]
        assert tags[3].is_keyframe and not tags[5].is_keyframe and not tags[4].is_keyframe
        assert [t.is_config for t in tags[6:9]] == [True, True, True] and len(tags) == 10
    assert split_tags(video(1 << 24, True))[0].timestamp_ms == 1 << 24  # extended timestamp


@pytest.mark.parametrize("junk", [b"GIF89a" + bytes(20), FLV_HEADER + b"\x07" + bytes(20)])
def test_splitter_refuses_what_is_not_flv(junk: bytes) -> None:
    splitter = TagSplitter()
    with pytest.raises(FlvFormatError):
        splitter.feed(junk)
    # It waits for a new stream after the error.
    items = splitter.feed(FLV_HEADER + video(0, True))
    assert items[0] is STREAM_START and len(items) == 2


def test_splitter_parses_a_real_source(sources: dict[str, SourceFile]) -> None:
    items = TagSplitter().feed(sources["red"].data)
    assert items[0] is STREAM_START
    tags = [t for t in items if isinstance(t, Tag)]
    assert sum(t.is_config for t in tags) == 3  # onMetaData, AVC and AAC sequence headers
    assert tags[3].is_keyframe or tags[4].is_keyframe


def queue_of(*raw: bytes) -> tuple[_SourceQueue, list[Tag | StreamStart]]:
    queue = _SourceQueue()
    tags = queue.splitter.feed(FLV_HEADER + b"".join(raw))
    return queue, tags


def test_queue_drops_oldest_to_the_next_keyframe_and_keeps_headers() -> None:
    media = []
    for i in range(90):  # 3 s at 30 fps, a keyframe every second
        media.append(video(i * 33, key=i % 30 == 0))
        media.append(audio(i * 33 + 5))
    queue, tags = queue_of(*CONFIG, *media)
    dropped = queue.add(tags, max_bytes=1 << 20, max_ms=1000)
    assert dropped > 0 and queue.dropped_bytes == dropped
    items = [i for i in queue.items if isinstance(i, Tag)]
    assert [t.is_config for t in items[:3]] == [True, True, True]
    assert items[3].is_keyframe and items[3].timestamp_ms == 60 * 33
    assert items[-1].timestamp_ms - items[3].timestamp_ms <= 1000
    # By bytes too.
    queue, tags = queue_of(*CONFIG, *media)
    queue.add(tags, max_bytes=5000, max_ms=60_000)
    assert queue.bytes <= 5000 + 3 * 200 or not any(
        isinstance(i, Tag) and not i.is_config for i in queue.items
    )


def test_queue_with_no_keyframe_left_waits_for_the_next() -> None:
    queue, tags = queue_of(*CONFIG, video(0, True, 3000), video(33, False, 3000), audio(40))
    queue.add(tags, max_bytes=1000, max_ms=10_000)
    assert all(i is STREAM_START or (isinstance(i, Tag) and i.is_config) for i in queue.items)
    assert queue.need_keyframe
    more = queue.splitter.feed(video(66, False) + audio(70) + video(99, True) + video(132, False))
    queue.add(more, max_bytes=1 << 20, max_ms=10_000)
    media = [i for i in queue.items if isinstance(i, Tag) and not i.is_config]
    assert [(t.type, t.timestamp_ms) for t in media] == [
        (TAG_AUDIO, 70),
        (TAG_VIDEO, 99),
        (TAG_VIDEO, 132),
    ]


def tone(hz: float, count: int, start: int = 0) -> np.ndarray:
    t = (np.arange(count) + start) / SAMPLE_RATE
    mono = np.sin(2 * np.pi * hz * t).astype(np.float32)
    return np.stack([mono, mono])


def test_audio_buffer_primes_underruns_to_silence_and_trims() -> None:
    buffer = AudioBuffer(prime_ms=40, max_ms=200, trim_ms=80)
    buffer.push(tone(440, 960))  # 20 ms: not primed yet
    assert not buffer.pull(480).any() and buffer.buffered == 960
    buffer.push(tone(440, 960, 960))
    played = buffer.pull(2400)  # 40 ms (1920): plays, 480 samples short
    assert played.shape == (2, 2400)
    assert buffer.underruns == 1 and buffer.buffered == 0
    buffer.push(tone(440, 1920, 1920))
    sound = np.concatenate((played, buffer.pull(1920)), axis=1)
    # Faded out into the underrun and in after it: no step to or from zero.
    assert float(np.abs(np.diff(sound[0])).max()) < 0.06
    buffer.push(tone(440, SAMPLE_RATE))  # a burst of a second
    assert buffer.buffered == SAMPLE_RATE * 80 // 1000


def test_mixer_crossfades_without_a_step() -> None:
    mixer = AudioMixer()
    count = 1600
    out = []
    for tick in range(6):
        blocks = {"a": tone(440, count, tick * count), "b": tone(660, count, tick * count)}
        target = "a" if tick < 3 else "b"
        out.append(mixer.mix(blocks, target, count, 1440))
    sound = np.concatenate(out, axis=1)[0]
    # A sine's largest step between samples at 660 Hz is 2*pi*660/48000 ~ 0.086: a cut
    # without a crossfade would jump by up to 2.
    assert float(np.abs(np.diff(sound)).max()) < 0.1
    assert mixer.current == "b"
    silent = mixer.mix({"b": tone(660, count, 6 * count)}, None, count, 1440)
    # Faded out to silence over 1440 samples, from where the sound was.
    assert float(np.abs(silent[0, :100]).max()) > 0.5 and not silent[:, 1440:].any()
    assert float(np.abs(np.diff(np.concatenate((sound, silent[0])))).max()) < 0.1


def test_ticks_share_out_the_samples() -> None:
    for fps in (24, 25, 30, 50, 60, 7):
        assert sum(samples_for_tick(t, fps) for t in range(fps * 3)) == SAMPLE_RATE * 3


def test_pictures() -> None:
    assert fit(640, 480, 1280, 720) == (960, 720)
    assert fit(1280, 720, 320, 720) == (320, 180)
    assert fit(640, 480, 426, 720) == (426, 318)
    assert fit(1080, 1920, 1280, 720) == (404, 720)  # a phone held upright
    assert pip_rect(1280, 720, 1280, 720, "tl", "1/4") == (32, 32, 320, 180)
    assert pip_rect(640, 480, 1280, 720, "br", "1/3") == (822, 370, 426, 318)
    assert pip_rect(1080, 1920, 1280, 720, "br", "1/3") == (1248 - 202, 688 - 360, 202, 360)
    assert pip_rect(1920, 1080, 1920, 1080, "tr", "1/4") == (1920 - 48 - 480, 48, 480, 270)
    red, blue = solid(64, 32, (255, 0, 0)), solid(64, 32, (0, 0, 255))
    half = blend(red, blue, 0.5)
    for plane_r, plane_b, plane_h in zip(
        planes(red, 64, 32), planes(blue, 64, 32), planes(half, 64, 32), strict=True
    ):
        mid = (plane_r.astype(int) + plane_b.astype(int)) // 2
        assert np.abs(plane_h.astype(int) - mid).max() <= 1
    assert blend(red, blue, 0.0) is red and blend(red, blue, 1.0) is blue


def test_font() -> None:
    mask = text_mask("Hi!", 3)
    assert mask.shape == (GLYPH_HEIGHT * 3, (5 * 3 + 2) * 3)
    assert text_mask("é", 1).sum() == text_mask("?", 1).sum()


def test_config() -> None:
    assert ProgramConfig().gop == 60
    ProgramConfig(width=1920, height=1080, fps=60, x264_preset="superfast")
    for bad in (
        {"width": 1000},
        {"fps": 0},
        {"video_bitrate": 1},
        {"x264_preset": "placebo"},
        {"audio_crossfade_ms": 100},
    ):
        with pytest.raises(ValueError):
            ProgramConfig(**bad)  # type: ignore[arg-type]
    state = ProgramState(sources=(SourceState("a", 1, 1, 1.0, False, True),))
    assert state.source("a") is not None and state.source("b") is None
