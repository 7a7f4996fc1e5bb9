"""The program's parts alone: the FLV splitter, the bounded source queue, the sound's buffer and
crossfade, pictures, the font and the settings."""

from __future__ import annotations

from itertools import pairwise

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
from desktop_relay.relay.program.playout import Playout, margin_for

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


def test_audio_buffer_plays_from_the_position_and_fades_around_an_underrun() -> None:
    buffer = AudioBuffer(tolerance_ms=15)
    buffer.push(tone(440, 960), 10.0)  # 20 ms from media time 10 s
    # Before its time: silence, nothing used.
    assert not buffer.pull(480, 9.98).any() and buffer.buffered == 960
    buffer.push(tone(440, 960, 960), 10.02)
    # 5 ms in: the first 240 samples are skipped, then it plays (faded in) and runs short.
    played = buffer.pull(2400, 10.005)
    assert played.shape == (2, 2400)
    assert buffer.underruns == 1 and buffer.buffered == 0
    np.testing.assert_allclose(played[:, 240:1440], tone(440, 1680, 240)[:, 240:1440], atol=1e-6)
    assert not played[:, 1680:].any()
    buffer.push(tone(440, 1920, 1920), 10.04)
    sound = np.concatenate((played, buffer.pull(1920, 10.04)), axis=1)
    # Faded out into the underrun and in after it: no step to or from zero.
    assert float(np.abs(np.diff(sound[0])).max()) < 0.06


def test_audio_buffer_runs_on_within_tolerance_and_realigns_beyond() -> None:
    buffer = AudioBuffer(tolerance_ms=15)
    buffer.push(tone(440, SAMPLE_RATE), 0.0)
    first = buffer.pull(1600, 0.0)
    # A position 10 ms off (a playout delay that moved a little): it plays on, sample by
    # sample, with no jump in the waveform.
    second = buffer.pull(1600, 1600 / SAMPLE_RATE + 0.010)
    assert buffer.realigned == 0
    np.testing.assert_allclose(second, tone(440, 1600, 1600), atol=1e-6)
    # 30 ms off: it skips to the position.
    third = buffer.pull(1600, 3200 / SAMPLE_RATE + 0.030)
    assert buffer.realigned == 1
    np.testing.assert_allclose(third[:, 480:], tone(440, 1600, 3200 + 1440)[:, 480:], atol=1e-6)
    assert first.shape == (2, 1600)


def test_audio_buffer_realigns_without_a_click() -> None:
    for offset in (0.030, -0.030):  # the position jumps ahead (sound dropped) or back (inserted)
        buffer = AudioBuffer(tolerance_ms=15)
        buffer.push(tone(440, SAMPLE_RATE), 0.0)
        out = [buffer.pull(1600, 0.0)]
        out.append(buffer.pull(1600, 1600 / SAMPLE_RATE + offset))
        out.append(buffer.pull(1600, 3200 / SAMPLE_RATE + offset))
        assert buffer.realigned == 1
        sound = np.concatenate(out, axis=1)[0]
        # 440 Hz steps at most 2*pi*440/48000 ~ 0.058 between samples (a little more inside a
        # 5 ms crossfade of two phases); a jump would be up to 2.
        assert float(np.abs(np.diff(sound[240:])).max()) < 0.1, offset


def test_audio_buffer_fills_gaps_with_silence_and_bounds_itself() -> None:
    buffer = AudioBuffer(tolerance_ms=15, max_ms=2000)
    buffer.push(tone(440, 960), 0.0)
    buffer.push(tone(440, 960), 0.1)  # 80 ms of timestamps missing: silence there
    assert buffer.buffered == 960 + 3840 + 960
    buffer.push(tone(440, 960), 0.121)  # 1 ms of rounding: appended as it is
    assert buffer.buffered == 960 + 3840 + 960 + 960
    buffer.push(tone(440, 960), 0.05)  # back in time: a new timeline
    assert buffer.buffered == 960
    buffer.push(tone(440, 3 * SAMPLE_RATE), 0.07)  # three seconds at once: the newest 2 s kept
    assert buffer.buffered == 2 * SAMPLE_RATE
    out = buffer.pull(480, 0.05 + 3 - 0.01)
    np.testing.assert_allclose(
        out[:, 240:], tone(440, 480, 3 * SAMPLE_RATE - 1440)[:, 240:], atol=1e-6
    )


MARGIN = margin_for(30)


def test_playout_follows_the_quickest_arrival_and_the_spread() -> None:
    assert pytest.approx(1 / 30 + 0.025) == MARGIN
    playout = Playout(MARGIN)
    assert playout.position(5.0) is None
    # Bursts of a quarter second: each tag arrives up to 250 ms after its quickest peers.
    for burst in range(8):
        arrival = 100.0 + (burst + 1) * 0.25
        for i in range(8):
            playout.arrived(burst * 0.25 + i / 32, arrival)
    assert 0.21 + MARGIN < playout.delay < 0.25 + MARGIN
    # base: a burst's last tag, the quickest, 31.25 ms after its time; the position trails
    # real time by base + delay, so a burst's first tag is due only once it has arrived.
    position = playout.position(102.0)
    assert position is not None
    assert 102.0 - position == pytest.approx(100.25 - 7 / 32 + playout.delay, abs=0.01)
    # A tag a whole 3 s late (a resume after a cut): the timeline re-anchors on it.
    playout.arrived(2.0, 106.0)
    assert playout.reanchors == 1 and playout.delay == MARGIN
    assert playout.position(106.0) == pytest.approx(2.0 - MARGIN)


def test_playout_delay_grows_at_once_and_shrinks_in_one_step() -> None:
    playout = Playout(MARGIN)
    for i in range(90):  # 3 s of tags on time
        playout.arrived(i / 30, 10 + i / 30)
    assert playout.delay == pytest.approx(MARGIN)
    playout.arrived(3.0, 13.2)  # one tag 200 ms late: the delay covers it at once
    grown = playout.delay
    assert grown == pytest.approx(0.2 + MARGIN, abs=0.005)
    delays = []
    for i in range(91, 400):  # on time again for 10 s
        playout.arrived(i / 30, 10 + i / 30)
        delays.append(playout.delay)
    # Held while the spread decays (every change of the delay moves the sound), then
    # lowered in one step, to what the spread wants by then (never below the margin).
    steps = [(a, b) for a, b in pairwise(delays) if b != a]
    assert 1 <= len(steps) <= 2, steps
    assert all(b < a for a, b in steps)
    assert delays[30 * 2] == grown
    assert MARGIN <= delays[-1] < grown - 0.1


def test_playout_base_creeps_up_with_a_slow_source_clock() -> None:
    playout = Playout(MARGIN)
    # The source's clock runs 500 ppm slower than ours, tags evenly spaced.
    for i in range(3000):
        now = i / 30
        playout.arrived(now * (1 - 500e-6), now)
    # Its lateness grew to 50 ms over 100 s; the delay did not grow with it.
    assert playout.delay < MARGIN + 0.005
    position = playout.position(100.0)
    assert position is not None and 100.0 - position < 0.05 + MARGIN + 0.005


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
