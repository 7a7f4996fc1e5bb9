"""Encode once, push to many, with real parts: a real encoder ffmpeg at real speed writes FLV,
FlvReader + StreamCache + StreamOutputs fan it out to real RTMP receivers that fail for real."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desktop_relay.relay.media.flv import FlvReader, FlvTag
from desktop_relay.relay.media.stream_cache import StreamCache
from desktop_relay.relay.outputs.backoff import Backoff
from desktop_relay.relay.outputs.destinations import Destination, build_output_args
from desktop_relay.relay.outputs.stream_output import OutputState, OutputStatus, StreamOutput

from ..media import H264_FIXTURE, SECRETS, free_port, probe
from ..polling import wait_for
from ..procs import ffmpeg_descendants, pid_alive
from ..rtmp import packets, port_of, start_receiver_on

pytestmark = pytest.mark.media


@dataclass
class Heard:
    """An output's events (sink.OutputEvents), kept."""

    changes: list[OutputStatus]
    lines: list[str]

    def output_changed(self, status: OutputStatus) -> None:
        self.changes.append(status)

    def ffmpeg_output(self, line: str) -> None:
        self.lines.append(line)


@dataclass
class Fanout:
    """The session's future data path: encoder stdout -> FlvReader -> StreamCache -> outputs."""

    ffmpeg: str
    seconds: float
    reader: FlvReader = field(default_factory=FlvReader)
    cache: StreamCache = field(default_factory=StreamCache)
    outputs: list[StreamOutput] = field(default_factory=list)
    tags: list[FlvTag] = field(default_factory=list)
    changes: dict[str, list[OutputStatus]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    @property
    def stream_ms(self) -> int:
        """Timestamp of the newest tag fanned out."""
        return self.tags[-1].timestamp if self.tags else 0

    def output(self, output_id: str, url: str, **kwargs: object) -> StreamOutput:
        changes = self.changes.setdefault(output_id, [])
        out = StreamOutput(
            output_id, Destination(url), self.cache, ffmpeg_binary=self.ffmpeg,
            events=Heard(changes, self.lines), **kwargs,  # type: ignore[arg-type]
        )
        self.outputs.append(out)
        out.start()
        return out

    async def play(self) -> None:
        """Run the encoder on the fixture's first `seconds`, in real time, to its end."""
        proc = await asyncio.create_subprocess_exec(
            self.ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-t", str(self.seconds),
            "-i", str(H264_FIXTURE), "-map", "0:v:0", "-map", "0:a:0", "-c:v", "copy",
            "-c:a", "aac", "-flush_packets", "1", "-f", "flv", "pipe:1",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            while chunk := await proc.stdout.read(65536):
                tags = self.reader.feed(chunk)
                if self.cache.header is None and self.reader.header is not None:
                    self.cache.set_header(self.reader.header)
                # No await in here: the cache takes each tag before the outputs do.
                for tag in tags:
                    self.cache.add(tag)
                    for out in self.outputs:
                        out.feed(tag)
                self.tags += tags
            assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    @property
    def pictures(self) -> list[FlvTag]:
        """Every video frame the encoder sent (no codec headers, no end-of-sequence marker)."""
        return [t for t in self.tags if t.type == 9 and not t.is_sequence_header
                and (t.data[1:2] != b"\x02")]

    def states(self, output_id: str) -> list[OutputState]:
        return [s.state for s in self.changes[output_id]]


@pytest.fixture
async def fanout(ffmpeg_exe: str) -> AsyncIterator[Callable[[float], Fanout]]:
    made: list[Fanout] = []

    def make(seconds: float) -> Fanout:
        made.append(Fanout(ffmpeg_exe, seconds))
        return made[-1]

    yield make
    for fan in made:
        await asyncio.gather(*(out.stop(timeout=2) for out in fan.outputs))


def frames_of(path: Path) -> int:
    return probe(path).video_frames


def first_video_flags(path: Path) -> str:
    return next(flags for kind, flags in packets(path) if kind == "video")


async def settled_frames(path: Path, timeout: float = 10.0) -> int:
    """Video frames in a file another process finishes writing (nginx closes its record)."""
    last, deadline = -1, time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if path.exists() and (count := await asyncio.to_thread(frames_of, path)) == last:
            return count
        last = count if path.exists() else -1
    raise AssertionError(f"{path} never settled")


def test_output_args_copy_flv_from_stdin_to_the_target() -> None:
    args = build_output_args("ffmpeg", "rtmp://127.0.0.1:1935/live/key", 131072)
    assert args[0] == "ffmpeg" and args[-1] == "rtmp://127.0.0.1:1935/live/key"
    joined = " ".join(args)
    for part in ("-f flv -i pipe:0 -map 0 -c copy -f flv -flvflags no_duration_filesize",
                 "-send_buffer_size 131072", "-progress pipe:1 -stats_period 1",
                 "-nostats", "-hide_banner"):
        assert part in joined


async def test_two_outputs_both_get_the_whole_stream(
    fanout, rtmp_receiver, nginx_rtmp  # type: ignore[no-untyped-def]
) -> None:
    fan = fanout(10)
    receiver = rtmp_receiver("fan-a-0123456789abcdef")
    key = "fan-b-0123456789abcdef"
    one = fan.output("one", receiver.url)
    two = fan.output("two", nginx_rtmp.url(key))
    await fan.play()
    assert fan.states("one")[0] == fan.states("two")[0] == OutputState.LIVE
    await asyncio.gather(one.stop(), two.stop())
    assert [one.state, two.state] == [OutputState.STOPPED, OutputState.STOPPED]
    assert one.status().bytes_sent > 300_000 and one.status().reconnects == 0

    await asyncio.to_thread(receiver.wait, 10)
    sent = len(fan.pictures)
    assert sent >= 190  # 10 s at 20 fps
    got_one = frames_of(receiver.path)
    got_two = await settled_frames(nginx_rtmp.recording(key))
    assert got_one >= 0.95 * sent and got_two >= 0.95 * sent, (got_one, got_two, sent)
    assert first_video_flags(receiver.path).startswith("K")


async def test_a_receiver_killed_and_back_gets_the_rest_from_a_keyframe(
    fanout, rtmp_receiver, ffmpeg_exe: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    fan = fanout(12)
    first, other = rtmp_receiver("back-a-0123456789abcd"), rtmp_receiver("back-b-0123456789abcd")
    out = fan.output("back", first.url)
    fan.output("other", other.url)
    play = asyncio.create_task(fan.play())
    await wait_for(lambda: fan.stream_ms >= 3000 and out.state == OutputState.LIVE)
    first.process.kill()
    first.process.wait()
    await wait_for(lambda: out.state == OutputState.RECONNECTING, timeout=5)
    await asyncio.sleep(2)
    second = start_receiver_on(ffmpeg_exe, tmp_path, port_of(first.url), "back-a-0123456789abcd")
    try:
        await wait_for(lambda: out.state == OutputState.LIVE, timeout=8)
        live_at_ms = fan.stream_ms
        await play
        await asyncio.gather(*(o.stop() for o in fan.outputs))
        await asyncio.to_thread(second.wait, 10)
        await asyncio.to_thread(other.wait, 10)
    finally:
        second.close()

    states = fan.states("back")
    assert states[:3] == [OutputState.LIVE, OutputState.RECONNECTING, OutputState.CONNECTING]
    assert states[-2:] == [OutputState.LIVE, OutputState.STOPPED]
    assert out.status().reconnects == 1
    assert "closed the connection" in (fan.changes["back"][1].last_error or "")
    # The new receiver starts at a keyframe and has everything from the GOP it joined.
    assert first_video_flags(second.path).startswith("K")
    joined_gop = max(t.timestamp for t in fan.pictures if t.starts_gop and t.timestamp <= live_at_ms)
    rest = sum(1 for t in fan.pictures if t.timestamp >= joined_gop)
    got = frames_of(second.path)
    assert got >= 0.95 * rest, (got, rest, joined_gop)
    # The other output lost nothing.
    assert frames_of(other.path) >= len(fan.pictures) - 1
    assert fan.states("other") == [OutputState.LIVE, OutputState.STOPPED]


async def test_kill_9_of_an_outputs_ffmpeg_brings_it_back_then_stop_leaves_none(
    fanout, rtmp_receiver, ffmpeg_exe: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    fan = fanout(8)
    first = rtmp_receiver("kill-a-0123456789abcd")
    out = fan.output("kill", first.url)
    play = asyncio.create_task(fan.play())
    await wait_for(lambda: out.state == OutputState.LIVE and fan.stream_ms >= 2000)
    old_pid = out.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    # ffmpeg -listen 1 takes one publisher: its successor listens on the same port.
    await asyncio.to_thread(first.wait, 10)
    second = start_receiver_on(ffmpeg_exe, tmp_path, port_of(first.url), "kill-a-0123456789abcd")
    try:
        await wait_for(lambda: out.state == OutputState.LIVE and out.reconnects == 1, timeout=8)
        assert out.pid not in (None, old_pid)
        status = fan.changes["kill"][1]
        assert status.state == OutputState.RECONNECTING and status.next_attempt_in_s
        assert "exit code -9" in (status.last_error or "") or "closed" in (status.last_error or "")
        await play
        started = time.monotonic()
        await out.stop()
        assert time.monotonic() - started < 3
        assert out.state == OutputState.STOPPED and out.pid is None
        assert [cmd for cmd in ffmpeg_descendants().values() if "-i pipe:0" in cmd] == []
        await asyncio.to_thread(second.wait, 10)
    finally:
        second.close()
    assert first_video_flags(second.path).startswith("K")


async def test_a_dead_target_retries_with_growing_delays_and_disturbs_no_one(
    fanout, rtmp_receiver  # type: ignore[no-untyped-def]
) -> None:
    fan = fanout(9)
    receiver = rtmp_receiver("good-0123456789abcdef")
    good = fan.output("good", receiver.url)
    SECRETS.add("dead-0123456789abcdef")
    dead = fan.output("dead", f"rtmp://127.0.0.1:{free_port()}/live/dead-0123456789abcdef")
    await fan.play()
    delays = [s.next_attempt_in_s for s in fan.changes["dead"] if s.state == "reconnecting"]
    assert len(delays) >= 3
    assert all(d is not None for d in delays)
    assert delays == sorted(delays) and delays[0] < 1.3 and delays[2] > 3  # type: ignore[operator]
    assert OutputState.LIVE not in fan.states("dead")
    assert dead.status().attempts == len(delays)
    assert "failed" in (dead.status().last_error or "")
    assert dead.status().dropped_tags > 0 and dead.status().bytes_sent == 0
    await asyncio.gather(good.stop(), dead.stop())
    assert dead.state == OutputState.STOPPED
    await asyncio.to_thread(receiver.wait, 10)
    assert frames_of(receiver.path) >= 0.95 * len(fan.pictures)
    assert fan.states("good") == [OutputState.LIVE, OutputState.STOPPED]
    # Logs and observers got masked targets only.
    assert all("dead-0123456789abcdef" not in line for line in fan.lines)


async def test_stalled_server_restarts_and_stop_is_bounded_in_every_state(
    fanout, ffmpeg_exe: str  # type: ignore[no-untyped-def]
) -> None:
    """A server that accepts TCP and never answers: ffmpeg blocks, the watchdog restarts it."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    SECRETS.add("mute-0123456789abcdef")
    fan = fanout(8)
    stalled = fan.output("mute", f"rtmp://127.0.0.1:{port}/live/mute-0123456789abcdef",
                         start_stall_timeout=1.5, backoff=Backoff(initial=0.5))
    play = asyncio.create_task(fan.play())
    try:
        await wait_for(lambda: stalled.reconnects == 0 and stalled.attempts >= 2, timeout=10)
        errors = [s.last_error for s in fan.changes["mute"] if s.state == "reconnecting"]
        assert errors and all("did not take the stream" in (e or "") for e in errors)
        # Stop while ffmpeg is blocked on the silent server, or while backing off.
        await wait_for(lambda: stalled.state == OutputState.CONNECTING and stalled.pid)
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await stalled.stop(timeout=1, terminate_grace=1)
        assert time.monotonic() - started < 3.5
        assert stalled.state == OutputState.STOPPED
        assert [cmd for cmd in ffmpeg_descendants().values() if "-i pipe:0" in cmd] == []
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        silent.close()


@pytest.mark.parametrize("first_stop", ["cancelled", "still waiting"])
async def test_a_hurried_stop_after_a_graceful_one_keeps_its_bounds_and_leaves_no_ffmpeg(
    fanout, first_stop: str  # type: ignore[no-untyped-def]
) -> None:
    """The relay's shutdown path: a graceful stop (10 s to flush) is under way on an ffmpeg
    blocked on a silent server when a stop with short bounds comes; the first one's caller
    may have given up (cancelled). The ffmpeg must be gone within the short bounds."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    fan = fanout(8)
    out = fan.output("hurry", f"rtmp://127.0.0.1:{port}/live/hurry-0123456789abcdef",
                     start_stall_timeout=60)
    play = asyncio.create_task(fan.play())
    try:
        await wait_for(lambda: out.state == OutputState.CONNECTING and out.pid)
        pid = out.pid
        assert pid is not None
        graceful = asyncio.create_task(out.stop(timeout=10, terminate_grace=3))
        await asyncio.sleep(0.5)
        if first_stop == "cancelled":
            graceful.cancel()
            await asyncio.gather(graceful, return_exceptions=True)
        started = time.monotonic()
        await out.stop(timeout=0.3, terminate_grace=0.3)
        assert time.monotonic() - started < 2.5
        await wait_for(lambda: not pid_alive(pid), timeout=1)
        assert out.state == OutputState.STOPPED
        if first_stop == "still waiting":
            await asyncio.wait_for(graceful, 1)
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        silent.close()


async def test_a_full_queue_drops_then_resumes_at_a_keyframe(
    ffmpeg_exe: str, tmp_path: Path
) -> None:
    """feed() never waits for a blocked output: over its bound it drops, and what follows the
    gap starts at a keyframe. The output process is a stand-in `cat` we freeze with SIGSTOP."""
    data = (await asyncio.to_thread(
        make_fixture_flv, ffmpeg_exe, tmp_path / "source.flv")).read_bytes()
    reader = FlvReader()
    tags = reader.feed(data)
    assert reader.header is not None
    received = tmp_path / "received.flv"
    stand_in = tmp_path / "ffmpeg-cat"
    stand_in.write_text(f"#!/bin/sh\nexec cat > '{received}'\n")
    stand_in.chmod(0o755)
    cache = StreamCache()
    cache.set_header(reader.header)
    out = StreamOutput("slow", Destination("rtmp://127.0.0.1:1/live/slow-0123456789ab"), cache,
                       ffmpeg_binary=str(stand_in), max_queue_bytes=100_000,
                       start_stall_timeout=60)
    keys = [i for i, t in enumerate(tags) if t.starts_gop]

    def feed(part: list[FlvTag]) -> None:
        for t in part:
            cache.add(t)
            out.feed(t)

    out.start()
    try:
        feed(tags[:60])
        await wait_for(lambda: out.pid is not None)
        await asyncio.sleep(0.3)
        feed(tags[60:120])
        await asyncio.sleep(0.3)  # drained: nothing dropped so far
        assert out.dropped_tags == 0
        assert out.pid is not None
        os.kill(out.pid, signal.SIGSTOP)
        # Frozen through the second keyframe: pipe and queue fill up, the rest is dropped.
        started = time.monotonic()
        for t in tags[120 : keys[2] - 5]:
            feed([t])
            await asyncio.sleep(0)
        assert time.monotonic() - started < 2  # feeding never waited for the frozen output
        assert out.dropped_tags > 100
        os.kill(out.pid, signal.SIGCONT)
        await asyncio.sleep(0.3)
        for t in tags[keys[2] - 5 :]:
            feed([t])
            await asyncio.sleep(0.001)
        await out.stop(timeout=5)
    finally:
        if out.pid is not None:
            os.kill(out.pid, signal.SIGCONT)
        await out.stop(timeout=1)
    got_reader = FlvReader()
    got = got_reader.feed(received.read_bytes())
    # The cache's snapshot (headers, then the first GOP so far), then every tag up to the gap.
    assert got[0].is_metadata and got[1].is_sequence_header and got[2].is_sequence_header
    assert got[3] == tags[keys[0]]
    body = got[3:]
    start = tags.index(body[0])
    gap = next(i for i, t in enumerate(body) if tags[start + i] != t)
    # After the gap: exactly the tags from the third keyframe on (second one came while full).
    assert body[gap].starts_gop and body[gap:] == tags[keys[2]:]
    assert gap > 120


def make_fixture_flv(ffmpeg: str, out: Path) -> Path:
    import subprocess

    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(H264_FIXTURE),
         "-c:v", "copy", "-c:a", "aac", "-f", "flv", str(out)],
        check=True, timeout=60,
    )
    return out


async def test_give_up_after_attempts_then_failed(ffmpeg_exe: str, tmp_path: Path) -> None:
    data = (await asyncio.to_thread(
        make_fixture_flv, ffmpeg_exe, tmp_path / "source.flv")).read_bytes()
    reader = FlvReader()
    tags = reader.feed(data)
    assert reader.header is not None
    cache = StreamCache()
    cache.set_header(reader.header)
    for t in tags:
        cache.add(t)
    SECRETS.add("gone-0123456789abcdef")
    changes: list[OutputStatus] = []
    out = StreamOutput("gone", Destination(f"rtmp://127.0.0.1:{free_port()}/live/gone-0123456789abcdef"),
                       cache, ffmpeg_binary=ffmpeg_exe, events=Heard(changes, []),
                       give_up_after=2, backoff=Backoff(initial=0.2))
    out.start()  # the cache is ready already: it connects without waiting for a tag
    await wait_for(lambda: out.state == OutputState.FAILED, timeout=15)
    await asyncio.sleep(0.5)  # given up: no third ffmpeg may come (one did, and failed FAILED)
    assert [c.state for c in changes] == [
        OutputState.RECONNECTING, OutputState.CONNECTING, OutputState.FAILED]
    assert out.status().attempts == 2 and "failed" in (out.status().last_error or "")
    await out.stop()
    assert out.state == OutputState.FAILED and out.pid is None
