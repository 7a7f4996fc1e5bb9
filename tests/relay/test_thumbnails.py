"""Live thumbnails on real streams: ffmpeg-made captures (colour bars, a navy picture, sound
only) replayed in real time through a real relay to real RTMP receivers, while the relay
decodes their keyframes into small pictures."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from desktop_relay.relay import (
    BaseObserver,
    ErrorName,
    FfmpegStatus,
    OutputState,
    OutputStatus,
    RelayConfig,
    RelayServer,
    SessionState,
    Thumbnail,
)
from desktop_relay.relay.media.flv import FlvTag, TagType
from desktop_relay.relay.media.stream_cache import StreamCache
from desktop_relay.relay.outputs import thumbnails
from desktop_relay.relay.outputs.thumbnails import FRAME_BYTES, HEIGHT, WIDTH, build_thumbnail_args

from ..media import FIXTURE_SECONDS, RtmpReceiver
from ..polling import wait_for
from ..procs import ffmpeg_descendants, pid_alive
from ..replay import ResumingStreamer, relay_url

pytestmark = pytest.mark.media

CLIENT_TARGETS = r"rtmp://127\.0\.0\.1:\d+/.*"
MakeRelay = Callable[[RelayConfig], Awaitable[RelayServer]]
MakeReceiver = Callable[..., RtmpReceiver]


def make_capture(ffmpeg: str, path: Path, source: str | None, *, size: str = "640x360",
                 audio: bool = True) -> Path:
    """A browser-like capture made by ffmpeg: Matroska, H.264 with a keyframe a second, AAC;
    as long as the suite's captures (FIXTURE_SECONDS), which `Streamer.replay` paces by."""
    args = [ffmpeg, "-hide_banner", "-loglevel", "error"]
    if source is not None:
        options = f"size={size}:rate=30"
        args += ["-f", "lavfi", "-i", f"{source}:{options}" if "=" in source else f"{source}={options}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += ["-t", str(FIXTURE_SECONDS)]
    if source is not None:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
                 "-sc_threshold", "0", "-b:v", "800k", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*args, "-f", "matroska", "-y", str(path)], check=True, timeout=60)
    return path


class Pictures(BaseObserver):
    """Every thumbnail the relay hands its observers, by session."""

    def __init__(self) -> None:
        self.by_session: dict[str, list[Thumbnail]] = defaultdict(list)

    def thumbnail(self, session_id: str, thumbnail: Thumbnail) -> None:
        self.by_session[session_id].append(thumbnail)


def tap_pids() -> set[int]:
    """The relay's thumbnail ffmpegs (the only ones writing raw video)."""
    return {pid for pid, cmd in ffmpeg_descendants().items() if "rawvideo" in cmd}


def channel_means(picture: Thumbnail) -> tuple[float, float, float]:
    rgb = picture.rgb
    return (statistics.fmean(rgb[0::3]), statistics.fmean(rgb[1::3]), statistics.fmean(rgb[2::3]))


async def start_session(relay: RelayServer, receiver_url: str) -> tuple[ResumingStreamer, str]:
    """A connected, started client sending to its own receiver; returns it and its session id."""
    streamer = await ResumingStreamer(relay_url(relay)).connect()
    ticket = await streamer.start_ticket({"framerate": 30, "rtmp": receiver_url})
    return streamer, ticket["sessionId"]


async def relay_with_pictures(running_relay: MakeRelay) -> tuple[RelayServer, Pictures]:
    """A relay taking the tests' client targets, with thumbnails on and every picture kept."""
    relay = await running_relay(RelayConfig(allowed_target_pattern=CLIENT_TARGETS))
    relay.set_thumbnails(True)
    pictures = Pictures()
    relay.add_observer(pictures)
    return relay, pictures


def output_of(relay: RelayServer, session_id: str) -> OutputStatus:
    status = relay.get(session_id)
    assert status is not None and len(status.outputs) == 1
    return status.outputs[0]


def state_of(relay: RelayServer, session_id: str) -> SessionState | None:
    status = relay.get(session_id)
    return status.state if status is not None else None


def encoder_of(relay: RelayServer, session_id: str) -> FfmpegStatus:
    status = relay.get(session_id)
    assert status is not None and status.ffmpeg is not None
    return status.ffmpeg


def output_live(relay: RelayServer, session_id: str) -> bool:
    status = relay.get(session_id)
    return status is not None and [o.state for o in status.outputs] == [OutputState.LIVE]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory, ffmpeg_exe: str) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("thumbnails")
    return {
        "bars": make_capture(ffmpeg_exe, folder / "bars.mkv", "smptebars"),
        # 4:3, so its thumbnail is navy between black side bars.
        "navy": make_capture(ffmpeg_exe, folder / "navy.mkv", "color=c=navy", size="640x480"),
        "sound": make_capture(ffmpeg_exe, folder / "sound.mkv", None),
    }


def test_the_tap_decodes_keyframes_only_without_probing(ffmpeg_exe: str) -> None:
    args = build_thumbnail_args(ffmpeg_exe)
    joined = " ".join(args)
    assert "-skip_frame nokey" in joined and "-an" in args
    assert "-analyzeduration 1" in joined and "-fpsprobesize 0" in joined
    assert args[-2:] == ["rawvideo", "pipe:1"]
    assert FRAME_BYTES == WIDTH * HEIGHT * 3 == 320 * 180 * 3


async def test_thumbnails_show_each_streams_own_picture(
    running_relay: MakeRelay, rtmp_receiver: MakeReceiver, captures: dict[str, Path]
) -> None:
    relay = await running_relay(RelayConfig(allowed_target_pattern=CLIENT_TARGETS))
    pictures = Pictures()
    relay.add_observer(pictures)
    bars, bars_id = await start_session(relay, rtmp_receiver("key-bars-0123456789").url)
    navy, navy_id = await start_session(relay, rtmp_receiver("key-navy-0123456789").url)
    try:
        replays = [asyncio.create_task(bars.replay(captures["bars"], seconds=8)),
                   asyncio.create_task(navy.replay(captures["navy"], seconds=8))]
        await wait_for(lambda: all(state_of(relay, i) == SessionState.LIVE
                                   for i in (bars_id, navy_id)), timeout=10)
        # Off by default: a live session decodes nothing.
        await asyncio.sleep(1.0)
        assert tap_pids() == set() and not pictures.by_session
        relay.set_thumbnails(True)
        assert relay.thumbnails
        await wait_for(lambda: len(pictures.by_session[bars_id]) >= 2
                       and len(pictures.by_session[navy_id]) >= 2, timeout=5)
        assert len(tap_pids()) == 2
        await asyncio.gather(*replays)
        await bars.stop()
        await navy.stop()
    finally:
        await bars.close()
        await navy.close()

    for session_id in (bars_id, navy_id):
        for picture in pictures.by_session[session_id]:
            assert (picture.width, picture.height) == (320, 180)
            assert len(picture.rgb) == 320 * 180 * 3
    bar = pictures.by_session[bars_id][-1]
    blue = pictures.by_session[navy_id][-1]
    assert bar.captured_at > 0
    # Not blank: bars are many colours; navy has black side bars (its picture is 4:3).
    assert statistics.pstdev(bar.rgb[::5]) > 40
    assert statistics.pstdev(blue.rgb[::5]) > 20
    r, g, b = channel_means(blue)
    assert b > 60 and r < 10 and g < 10, (r, g, b)  # navy (0, 0, 128), black bars around
    assert min(channel_means(bar)) > 80  # bars: bright in every channel
    assert statistics.fmean(bar.rgb) - statistics.fmean(blue.rgb) > 60
    # The side bars are black and the middle navy: the picture was letterboxed, not stretched.
    row = 90 * 320 * 3
    assert blue.rgb[row + 5 * 3 + 2] < 10 and blue.rgb[row + 160 * 3 + 2] > 100
    assert tap_pids() == set()  # the sessions' stops stopped their taps


async def test_turning_thumbnails_off_stops_the_taps_and_the_session_goes_on(
    running_relay: MakeRelay, rtmp_receiver: MakeReceiver, captures: dict[str, Path]
) -> None:
    relay = await running_relay(RelayConfig(allowed_target_pattern=CLIENT_TARGETS))
    relay.set_thumbnails(True)  # before the session: it gets a tap when it starts
    pictures = Pictures()
    relay.add_observer(pictures)
    streamer, session_id = await start_session(relay, rtmp_receiver().url)
    try:
        replay = asyncio.create_task(streamer.replay(captures["bars"], seconds=9))
        await wait_for(lambda: pictures.by_session[session_id], timeout=5)
        taps = await wait_for(tap_pids, timeout=5)
        assert len(taps) == 1
        relay.set_thumbnails(False)
        await wait_for(lambda: not any(pid_alive(pid) for pid in taps), timeout=5)
        assert tap_pids() == set()
        seen = len(pictures.by_session[session_id])
        frames = encoder_of(relay, session_id).frames_sent
        await asyncio.sleep(2.5)
        status = relay.get(session_id)
        assert status is not None and status.state == SessionState.LIVE
        assert status.ffmpeg is not None and status.ffmpeg.frames_sent > frames + 30
        assert output_of(relay, session_id).state == OutputState.LIVE
        assert len(pictures.by_session[session_id]) == seen
        # And on again: the live session gets a new tap.
        relay.set_thumbnails(True)
        await wait_for(lambda: len(pictures.by_session[session_id]) > seen, timeout=5)
        assert len(tap_pids()) == 1
        await replay
        await streamer.stop()
    finally:
        await streamer.close()
    assert streamer.errors == [] and streamer.ack_errors == []


@pytest.mark.parametrize(
    "sig",
    [
        signal.SIGKILL,
        # Alive but making no picture, as stuck as it gets: the watchdog kills it.
        signal.SIGSTOP,
    ],
    ids=["killed", "stalled"],
)
async def test_a_killed_or_stalled_tap_comes_back_and_disturbs_nothing(
    running_relay: MakeRelay,
    rtmp_receiver: MakeReceiver,
    captures: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
) -> None:
    """A tap ffmpeg that dies, or lives on without pictures (a frozen thumbnail of a live
    stream would mislead the operator), is started again; nothing else is touched."""
    monkeypatch.setattr(thumbnails, "STALL_S", 2.5)  # a keyframe a second: 3 of them, 2.5 s
    relay, pictures = await relay_with_pictures(running_relay)
    errors: list[Any] = []
    relay.add_listener("error", lambda session_id, error: errors.append(error))
    streamer, session_id = await start_session(relay, rtmp_receiver().url)
    tap: int | None = None
    try:
        replay = asyncio.create_task(streamer.replay(captures["bars"], seconds=14))
        await wait_for(lambda: pictures.by_session[session_id], timeout=5)
        await wait_for(lambda: output_live(relay, session_id), timeout=5)
        (tap,) = await wait_for(tap_pids, timeout=5)
        encoder = encoder_of(relay, session_id).pid
        output_pid = output_of(relay, session_id).pid
        os.kill(tap, sig)
        seen = len(pictures.by_session[session_id])
        # Stalled: 3 keyframes unanswered, 2.5 s after the first, checked each second.
        await wait_for(lambda: not pid_alive(tap), timeout=5 if sig == signal.SIGKILL else 8)
        # Back after its backoff (about a second), with pictures again.
        new = await wait_for(lambda: tap_pids() - {tap}, timeout=5)
        assert len(new) == 1
        await wait_for(lambda: len(pictures.by_session[session_id]) > seen, timeout=5)
        status = relay.get(session_id)
        assert status is not None and status.state == SessionState.LIVE
        assert status.ffmpeg is not None and status.ffmpeg.pid == encoder
        output = output_of(relay, session_id)
        assert (output.state, output.pid, output.reconnects, output.attempts) == (
            OutputState.LIVE, output_pid, 0, 0)
        assert not [e for e in errors if e.name == ErrorName.OUTPUT_RECONNECTING]
        await replay
        await streamer.stop()
    finally:
        if tap is not None and pid_alive(tap):
            os.kill(tap, signal.SIGKILL)
        await streamer.close()
    assert streamer.errors == [] and streamer.ack_errors == []


def test_a_slow_tap_is_not_taken_for_a_stalled_one() -> None:
    """Unit check of the rule: fewer than STALL_KEYFRAMES unanswered, or not for STALL_S, or a
    picture in between, is no stall."""
    tap = thumbnails.ThumbnailTap(
        StreamCache(), ffmpeg_binary="ffmpeg", events=SimpleNamespace(thumbnail=lambda picture: None)
    )
    body = b"\x17\x01"  # an AVC keyframe's NALU packet
    key = [  # 1 s apart in stream time
        FlvTag(TagType.VIDEO, 1000 * i, True, False, b"\0" * 11 + body + b"\0" * 4)
        for i in range(4)
    ]
    assert all(tag.starts_gop for tag in key)
    tap._accepting = True
    tap.feed_batch(key[:2], b"")
    assert not tap.stalled(now=1e12)  # 2 keyframes: not enough, however long
    tap.feed_batch(key[2:3], b"")
    start = tap._unanswered_since
    assert start is not None
    assert not tap.stalled(now=start + thumbnails.STALL_S - 0.1)
    assert tap.stalled(now=start + thumbnails.STALL_S + 0.1)
    tap._on_data(b"\0" * FRAME_BYTES)  # a picture: all answered
    assert not tap.stalled(now=1e12)


async def test_a_stream_without_video_starts_no_tap(
    running_relay: MakeRelay, rtmp_receiver: MakeReceiver, captures: dict[str, Path]
) -> None:
    relay, pictures = await relay_with_pictures(running_relay)
    streamer, session_id = await start_session(relay, rtmp_receiver().url)
    try:
        replay = asyncio.create_task(streamer.replay(captures["sound"], seconds=5))
        await wait_for(lambda: output_live(relay, session_id), timeout=10)
        for _ in range(20):  # 2 s of a live session with thumbnails on
            assert tap_pids() == set()
            await asyncio.sleep(0.1)
        assert not pictures.by_session
        await replay
        await streamer.stop()
    finally:
        await streamer.close()


async def test_the_tap_follows_the_new_stream_of_a_restarted_encoder(
    running_relay: MakeRelay, rtmp_receiver: MakeReceiver, captures: dict[str, Path]
) -> None:
    relay, pictures = await relay_with_pictures(running_relay)
    streamer, session_id = await start_session(relay, rtmp_receiver().url)
    try:
        replay = asyncio.create_task(streamer.replay(captures["bars"], seconds=10))
        await wait_for(lambda: state_of(relay, session_id) == SessionState.LIVE, timeout=10)
        await wait_for(lambda: pictures.by_session[session_id], timeout=5)
        (tap,) = await wait_for(tap_pids, timeout=5)
        encoder = encoder_of(relay, session_id).pid
        assert encoder is not None
        os.kill(encoder, signal.SIGKILL)
        # The encoder's new FLV stream gets a new tap ffmpeg at once (no backoff: nothing
        # failed), and pictures go on.
        await wait_for(lambda: encoder_of(relay, session_id).pid not in (None, encoder),
                       timeout=5)
        seen = len(pictures.by_session[session_id])
        new = await wait_for(lambda: tap_pids() - {tap}, timeout=3)
        assert len(new) == 1 and not pid_alive(tap)
        await wait_for(lambda: len(pictures.by_session[session_id]) > seen, timeout=5)
        # (Its output cannot publish again: an `ffmpeg -listen 1` receiver takes one stream.)
        status = relay.get(session_id)
        assert status is not None and status.error is None
        assert status.state == SessionState.LIVE
        await replay
        await streamer.stop()
    finally:
        await streamer.close()
