"""Figures of the program (issue 22): its worker's CPU, and take-to-air, frames per second and
A/V offset at an RTMP receiver, in the relay as a user runs it.

1. CPU (`--cpu-seconds` per run): the program's worker (decode + compose + encode) in-process,
   with 1, 2 and 4 sources of 640x480 and 1280x720. Each source is a synthetic capture
   (testsrc2 + a tone, H.264 + AAC in FLV, made once with the bundled ffmpeg) fed at real-time
   pace; the program is 1280x720 at 30 fps with the default settings (libx264, the preset named
   in the output). The first source is on air and, with two or more, the second is a
   picture-in-picture, so the figures include the compositing.

2. The relay as a user runs it: `python -m desktop_relay --headless --program-url URL` in a
   child process (plain http on 127.0.0.1, its data folders in a temporary one), the program
   sent to an `ffmpeg -listen 1` RTMP receiver whose stream (copied to FLV on a pipe) this
   script decodes live with PyAV in a thread, noting the wall-clock time each frame is decoded.
   Three browser-like sources (H.264 + Opus in Matroska, sent over socket.io in chunks cut at
   the capture's own timestamps, each when its time has come: every 30 ms as the page's
   WebCodecs path sends, `--chunk-ms 250` for its MediaRecorder path): solid red (640x480,
   440 Hz), solid blue (1280x720, 660 Hz), and black with a white flash and a 1 kHz beep
   starting together on every whole second (640x480). Commands go through the control API
   (POST /api/program, bearer control token).
   - take-to-air: `--takes` cuts alternating red and blue; each is the POST's answer (its
     body read) to the decoding, at the receiver, of the first frame whose centre shows the new
     colour. It includes the worker's command and its next tick, compose + libx264 encode, the
     worker-to-relay pipe, the relay's fan-out to its RTMP output ffmpeg, RTMP over loopback,
     the receiver ffmpeg's copy to the pipe, and PyAV's demux and decode here (one thread).
   - frames per second: the receiver's frames counted in every whole second of `--seconds`
     (default 60; the takes and the flashes happen inside that window), by the stream's
     timestamps (what a player shows) and by arrival here (the wall clock).
   - A/V offset: once the takes are done the flash source is on air; for every flash, the
     timestamp of the first white program frame against the onset of the beep in the decoded
     program sound (its timestamp + sample index); positive: the sound is late.
   Targets are printed beside the figures, with the load average before and after.

3. With `--worker-av`, the worker's own A/V offset without the relay: the flash source as the
   relay's encoder writes it (H.264 + AAC in FLV), whole tags fed at their timestamps to an
   engine in this process, its program decoded afterwards.

Usage: .venv/bin/python scripts/bench_program.py [--seconds 60] [--takes 20] [--chunk-ms 30]
                                                 [--cpu-seconds 10] [--preset veryfast]
                                                 [--skip-cpu] [--skip-relay] [--worker-av]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import av  # noqa: E402
import numpy as np  # noqa: E402
from imageio_ffmpeg import get_ffmpeg_exe  # noqa: E402

from desktop_relay.procstat import children_by_parent, read_stat  # noqa: E402
from desktop_relay.relay.program import ProgramConfig, ProgramEngine  # noqa: E402
from desktop_relay.relay.program.flv_tags import HEADER_SIZE, Tag, TagSplitter  # noqa: E402
from tests.media import free_port  # noqa: E402
from tests.replay import Streamer  # noqa: E402

SIZES = ((640, 480, 1_500_000), (1280, 720, 3_000_000))
COUNTS = (1, 2, 4)
TICKS = os.sysconf("SC_CLK_TCK")


def make_source(directory: Path, width: int, height: int, bitrate: int, seconds: int) -> Path:
    """A capture like the relay's encoder makes: H.264 (2 s GOP) + AAC 48 kHz in FLV."""
    path = directory / f"src-{width}x{height}.flv"
    if not path.exists():
        subprocess.run(
            [get_ffmpeg_exe(), "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r=30",
             "-f", "lavfi", "-i", "sine=f=440:r=48000",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
             "-b:v", str(bitrate), "-g", "60", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             "-f", "flv", "-flvflags", "no_duration_filesize", str(path)],
            check=True,
        )  # fmt: skip
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/<pid>/stat, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def feed_paced(engine: ProgramEngine, source_id: str, data: bytes, stop: float) -> None:
    """Feed a source's FLV at real-time pace, from the start again (a new stream) at its end."""
    tags = [t for t in TagSplitter().feed(data) if isinstance(t, Tag)]
    while time.monotonic() < stop:
        engine.feed(source_id, data[:HEADER_SIZE])
        t0 = time.monotonic()
        for tag in tags:
            if not tag.is_config:
                delay = t0 + tag.timestamp_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if time.monotonic() >= stop:
                    return
            engine.feed(source_id, tag.raw)


async def measure(source: Path, count: int, seconds: float, preset: str) -> tuple[float, int, int]:
    """Worker CPU (% of one core), frames encoded and frames late over `seconds`."""
    data = source.read_bytes()
    engine = ProgramEngine(ProgramConfig(x264_preset=preset))
    await engine.start()
    try:
        stop = time.monotonic() + seconds + 3.0
        feeders = [
            asyncio.create_task(feed_paced(engine, f"s{i}", data, stop)) for i in range(count)
        ]
        await asyncio.sleep(0.5)
        await engine.take("s0")
        if count >= 2:
            await engine.pip("s1", "br", "1/4")
        await asyncio.sleep(2.0)  # decoders up, caches warm
        pid = engine.pid
        assert pid is not None
        state0, cpu0, t0 = engine.state, cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1, state1 = cpu_seconds(pid), time.monotonic(), engine.state
        await asyncio.gather(*feeders)
        return (
            100 * (cpu1 - cpu0) / (t1 - t0),
            state1.frames - state0.frames,
            state1.late_frames,
        )
    finally:
        await engine.stop()


# ---- the relay as a user runs it ------------------------------------------------------------

CONTROL = "bench-control-token-0123456789abcdef"
CHUNK_MS = 30  # our page's WebCodecs path: a chunk per frame or so, at most one per 30 ms
TAKE_GAP_S = 1.5  # between two takes: the new colour is on air well before the next
AV_MIN_S = 8.0  # at least this long with the flash source on air
TARGET_CPU = 70.0
TARGET_TAKE_MS = 200.0
TARGET_FPS = 29
TARGET_AV_MS = 40.0

# name -> (lavfi video, size, lavfi audio): solid colours with a tone, and a flash + beep
# starting together on every whole second (3 frames, 100 ms).
FLASH_V = (
    "color=c=black:s=640x480:r=30,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:"
    "enable='lt(mod(t,1),0.1)'"
)
FLASH_A = "aevalsrc=exprs='if(lt(mod(t,1),0.1),0.8*sin(2*PI*1000*t),0)':s=48000"
CAPTURES = {
    "red": ("color=c=red:s=640x480:r=30", "sine=f=440:r=48000"),
    "blue": ("color=c=blue:s=1280x720:r=30", "sine=f=660:r=48000"),
    "flash": (FLASH_V, FLASH_A),
}


def make_capture(path: Path, video: str, audio: str, seconds: float) -> subprocess.Popen[bytes]:
    """A browser-like capture (H.264 with a keyframe a second + Opus in Matroska), started."""
    return subprocess.Popen(
        [get_ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", f"{seconds:.0f}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30",
         "-sc_threshold", "0", "-b:v", "600k", "-pix_fmt", "yuv420p", "-profile:v", "baseline",
         "-c:a", "libopus", "-b:a", "64k", "-f", "matroska", str(path)],
    )  # fmt: skip


def chunk_cuts(path: Path, chunk_s: float) -> list[int]:
    """Byte offsets where the capture's chunks end: chunk i holds what was recorded before
    (i + 1) * chunk_s, as the page's recorder hands it over."""
    starts: list[tuple[float, int]] = []
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None and packet.pos is not None and packet.pos >= 0:
                starts.append((float(packet.pts * packet.time_base), int(packet.pos)))
    size = path.stat().st_size
    cuts: list[int] = []
    i, k = 0, 0
    while k < len(starts):
        edge = (i + 1) * chunk_s
        while k < len(starts) and starts[k][0] < edge:
            k += 1
        cuts.append(starts[k][1] if k < len(starts) else size)
        i += 1
    return cuts


async def stream_capture(
    url: str,
    name: str,
    data: bytes,
    cuts: list[int],
    chunk_s: float,
    t0: float,
    stop: asyncio.Event,
) -> None:
    """One browser: `start` with a name, then each chunk when its time has come."""
    streamer = await Streamer(url).connect()
    try:
        if not await streamer.start({"framerate": 30, "name": name}):
            raise RuntimeError(f"{name}: start refused: {streamer.errors}")
        prev = 0
        for i, cut in enumerate(cuts):
            await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_s - time.monotonic()))
            if stop.is_set():
                break
            if cut == prev:
                continue  # nothing recorded in that interval
            await streamer.send(data[prev:cut])
            prev = cut
    finally:
        await streamer.close()


class _PipeReader:
    """A pipe as PyAV's file: a read returns what is there (a buffered read would wait)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)


def colour_of(frame: av.VideoFrame) -> str:
    """red, blue, white, black or other (the slate, a blend) at the picture's centre."""
    small = frame.reformat(width=32, height=18, format="rgb24").to_ndarray()
    r, g, b = (float(v) for v in small[7:11, 14:18].reshape(-1, 3).mean(axis=0))
    if r > 170 and g < 70 and b < 70:
        return "red"
    if b > 170 and r < 70 and g < 70:
        return "blue"
    if min(r, g, b) > 200:
        return "white"
    if max(r, g, b) < 40:
        return "black"
    return "other"


@dataclass
class Received:
    """What the receiver's stream decoded to: pictures as (pts s, wall s, colour), sound as
    (pts s, mono samples)."""

    video: list[tuple[float, float, str]] = field(default_factory=list)
    audio: list[tuple[float, np.ndarray]] = field(default_factory=list)
    rate: int = 48000
    error: str | None = None


def receive(fd: int, out: Received) -> None:
    """Decode the receiver's FLV live (the thread's body), noting when each frame is out."""
    try:
        with av.open(_PipeReader(fd), mode="r", format="flv") as container:
            for stream in container.streams:
                stream.codec_context.thread_count = 1  # no frame threading: no added delay
            for packet in container.demux():
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        wall = time.time()
                        out.video.append((float(frame.time or 0.0), wall, colour_of(frame)))
                    elif isinstance(frame, av.AudioFrame):
                        out.rate = frame.sample_rate
                        out.audio.append(
                            (float(frame.time or 0.0), frame.to_ndarray().mean(axis=0))
                        )
    except Exception as e:  # the figures say what went wrong
        out.error = f"{type(e).__name__}: {e}"


def tree_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds of a process and its descendants, by pid, with a kind for each."""
    tree = children_by_parent()
    found: dict[int, tuple[str, float]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        stat = read_stat(p)
        if stat is not None:
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                cmd = ""
            kind = "relay" if p == pid else "ffmpeg" if "ffmpeg" in cmd else "program worker"
            found[p] = (kind, stat.cpu_s)
        todo.extend(tree.get(p, []))
    return found


async def worker_av(seconds: float) -> list[float]:
    """The worker's own A/V offset, without the relay: the flash source made as the relay's
    encoder writes it (H.264 + AAC in FLV), fed whole tags at their timestamps to an engine
    in this process, its program FLV decoded afterwards; offsets in ms (+: sound late)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flash.flv"
        await asyncio.to_thread(
            subprocess.run,
            [get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", FLASH_V,
             "-f", "lavfi", "-i", FLASH_A, "-t", f"{seconds + 5:.0f}",
             "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
             "-f", "flv", "-flvflags", "no_duration_filesize", str(path)],
            check=True,
        )  # fmt: skip
        data = path.read_bytes()
    output = bytearray()
    engine = ProgramEngine(ProgramConfig(), on_output=output.extend)
    await engine.start()
    try:
        feeder = asyncio.create_task(feed_paced(engine, "flash", data, time.monotonic() + seconds))
        await asyncio.sleep(0.5)
        await engine.take("flash")
        await feeder
    finally:
        await engine.stop()
    received = Received()
    with av.open(io.BytesIO(bytes(output)), mode="r", format="flv") as container:
        for packet in container.demux():
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    received.video.append((float(frame.time or 0.0), 0.0, colour_of(frame)))
                elif isinstance(frame, av.AudioFrame):
                    received.rate = frame.sample_rate
                    received.audio.append(
                        (float(frame.time or 0.0), frame.to_ndarray().mean(axis=0))
                    )
    after = [(pts, c) for pts, _, c in received.video if pts >= 2.0]  # the take settled
    flashes = onsets([p for p, _ in after], [c == "white" for _, c in after])
    beeps = beep_onsets(received, 1.5)
    offsets = []
    for f in flashes:
        near = min(beeps, key=lambda b: abs(b - f), default=None)
        if near is not None and abs(near - f) < 0.5:
            offsets.append(1000 * (near - f))
    return offsets


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def onsets(times: list[float], on: list[bool], quiet_s: float = 0.5) -> list[float]:
    """Times where `on` becomes true after at least `quiet_s` of false."""
    found: list[float] = []
    last_on = -1e9
    for t, o in zip(times, on, strict=True):
        if o:
            if t - last_on >= quiet_s:
                found.append(t)
            last_on = t
    return found


def beep_onsets(received: Received, start: float, threshold: float = 0.3) -> list[float]:
    """Stream times where the beep starts in the decoded program sound (after `start`)."""
    found: list[float] = []
    last_loud = -1e9
    for pts, samples in sorted(received.audio, key=lambda a: a[0]):
        if pts + len(samples) / received.rate < start:
            continue
        loud = np.flatnonzero(np.abs(samples) > threshold)
        for j in loud:
            t = pts + j / received.rate
            if t - last_loud >= 0.5 and t >= start:
                found.append(t)
            last_loud = t
    return found


async def api(http: aiohttp.ClientSession, url: str, body: Any = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {CONTROL}"}
    method = "GET" if body is None else "POST"
    async with http.request(method, f"{url}/api/program", json=body, headers=headers) as r:
        answer: dict[str, Any] = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} /api/program {body}: {r.status} {answer}")
        return answer


async def bench_relay(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Run the relay with a program, three sources and a receiver; return (what, figure,
    target) rows."""
    run_s = max(args.seconds, args.takes * TAKE_GAP_S + AV_MIN_S)
    capture_s = run_s + 25  # start-up, warm-up and the tail
    loadavg_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        makers = {
            name: make_capture(tmp / f"{name}.mkv", v, a, capture_s)
            for name, (v, a) in CAPTURES.items()
        }
        for name, maker in makers.items():
            if maker.wait() != 0:
                raise RuntimeError(f"making the {name} capture failed")
        datas = {name: (tmp / f"{name}.mkv").read_bytes() for name in CAPTURES}
        chunk_s = args.chunk_ms / 1000
        cuts = {name: chunk_cuts(tmp / f"{name}.mkv", chunk_s) for name in CAPTURES}

        port = free_port()
        rtmp = f"rtmp://127.0.0.1:{port}/live/bench-program-0123456789"
        receiver_log = (tmp / "receiver.log").open("wb")
        # A plain Popen: PyAV's thread reads its stdout (fd), the loop never waits on it.
        receiver = subprocess.Popen(  # noqa: ASYNC220
            [get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-listen", "1",
             "-i", rtmp, "-c", "copy", "-f", "flv", "-flush_packets", "1", "pipe:1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=receiver_log,
        )  # fmt: skip
        assert receiver.stdout is not None
        relay_log: list[tuple[float, str]] = []
        window_end = time.time() + 1e9
        received = Received()
        reader = threading.Thread(
            target=receive, args=(receiver.stdout.fileno(), received), daemon=True
        )
        reader.start()
        for sub in ("data", "state", "config", "cache", "recordings"):
            (tmp / sub).mkdir()
        env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"),
                   XDG_STATE_HOME=str(tmp / "state"), XDG_CONFIG_HOME=str(tmp / "config"),
                   XDG_CACHE_HOME=str(tmp / "cache"))  # fmt: skip
        relay = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "desktop_relay", "--headless", "--host", "127.0.0.1",
            "--port", "0", "--no-tls", "--no-auth", "--recordings-dir", str(tmp / "recordings"),
            "--log-level", "WARNING", "--program-url", rtmp, "--control-token", CONTROL,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert relay.stdout is not None
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        takes: list[tuple[str, float, float]] = []
        try:
            while True:
                line = (await asyncio.wait_for(relay.stdout.readline(), 30)).decode()
                if not line:
                    raise RuntimeError("the relay did not start")
                if m := re.search(r"listening on \S+:(\d+)", line):
                    url = f"http://127.0.0.1:{m.group(1)}"
                    break

            async def drain(
                pipe: asyncio.StreamReader | None, lines: list[tuple[float, str]] | None
            ) -> None:
                assert pipe is not None
                while line := await pipe.readline():
                    if lines is not None:
                        lines.append((time.time(), line.decode(errors="replace").rstrip()))

            tasks.append(asyncio.create_task(drain(relay.stdout, None)))
            tasks.append(asyncio.create_task(drain(relay.stderr, relay_log)))
            t0 = time.monotonic()
            tasks += [
                asyncio.create_task(
                    stream_capture(url, name, datas[name], cuts[name], chunk_s, t0, stop)
                )
                for name in CAPTURES
            ]
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 30
                while True:
                    state = await api(http, url)
                    live = {s["name"]: s["id"] for s in state["sources"] if s["state"] == "live"}
                    if len(live) == len(CAPTURES) and received.video:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"sources or receiver not up: {state}, "
                            f"{len(received.video)} frames, {received.error}"
                        )
                    await asyncio.sleep(0.2)
                await api(http, url, {"take": live["red"]})
                await asyncio.sleep(3.0)  # every decoder past a keyframe, the encoder warm
                window_start = time.time()
                cpu0 = tree_cpu(relay.pid)
                for i in range(args.takes):
                    colour = "blue" if i % 2 == 0 else "red"
                    sent = time.time()
                    await api(http, url, {"take": live[colour]})
                    answered = time.time()
                    takes.append((colour, sent, answered))
                    await asyncio.sleep(max(0.0, sent + TAKE_GAP_S - time.time()))
                await api(http, url, {"take": live["flash"]})
                flash_taken = time.time()
                await asyncio.sleep(max(AV_MIN_S, window_start + args.seconds + 1.0 - time.time()))
                cpu1 = tree_cpu(relay.pid)
                window_end = time.time()
        finally:
            stop.set()
            await asyncio.gather(*tasks[2:], return_exceptions=True)
            if relay.returncode is None:
                relay.terminate()
            try:
                await asyncio.wait_for(relay.wait(), 30)
            except TimeoutError:
                relay.kill()
                await relay.wait()
            await asyncio.gather(*tasks[:2], return_exceptions=True)
            try:
                receiver.wait(15)
            except subprocess.TimeoutExpired:
                receiver.kill()
                receiver.wait()
            reader.join(15)
            receiver_log.close()
            if not received.video or received.video[-1][1] < window_end - 1:
                print("receiver's log:", (tmp / "receiver.log").read_text()[-2000:])
    loadavg_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return figures(
        args,
        received,
        takes,
        window_start,
        window_end,
        flash_taken,
        cpu0,
        cpu1,
        loadavg_before,
        loadavg_after,
        [line for t, line in relay_log if t < window_end],
    )


def figures(
    args: argparse.Namespace,
    received: Received,
    takes: list[tuple[str, float, float]],
    window_start: float,
    window_end: float,
    flash_taken: float,
    cpu0: dict[int, tuple[str, float]],
    cpu1: dict[int, tuple[str, float]],
    load_before: str,
    load_after: str,
    relay_log: list[str],
) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = [
        ("load average before / after", f"{load_before} / {load_after}", ""),
        (
            "relay's log (stderr) until the end of the window",
            f"{len(relay_log)} line{'' if len(relay_log) == 1 else 's'}"
            + (f", the first: {relay_log[0]}" if relay_log else ""),
            "",
        ),
    ]
    video = received.video
    if received.error:
        rows.append(("receiver decode", f"stopped: {received.error}", ""))
    # Take-to-air: the first frame of the new colour decoded here, from the POST's answer.
    delays: list[float] = []
    missed = 0
    for colour, sent, answered in takes:
        first = next((wall for _, wall, c in video if wall >= sent and c == colour), None)
        if first is None or first - answered > 5.0:
            missed += 1
        else:
            delays.append(1000 * (first - answered))
    if delays:
        p50, p95 = statistics.median(delays), pct(delays, 0.95)
        rows.append((
            f"take-to-air over {len(takes)} takes",
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms (min {min(delays):.0f}, max "
            f"{max(delays):.0f})" + (f", {missed} never seen" if missed else ""),
            f"p50 <= {TARGET_TAKE_MS:.0f} ms: {'met' if p50 <= TARGET_TAKE_MS else 'MISSED'}",
        ))  # fmt: skip
    else:
        rows.append(("take-to-air", f"no take seen at the receiver ({missed} missed)", "MISSED"))
    # Frames in every whole second of the window: by the stream's clock and by arrival.
    inside = [(pts, wall) for pts, wall, _ in video if window_start <= wall < window_end]
    seconds = int(args.seconds)
    if inside and seconds >= 1:
        pts0 = inside[0][0]
        by_pts = [
            sum(1 for p, _, _ in video if pts0 + k <= p < pts0 + k + 1) for k in range(seconds)
        ]
        by_wall = [sum(1 for _, w, _ in video if window_start + k <= w < window_start + k + 1)
                   for k in range(seconds)]  # fmt: skip
        worst = min(by_pts)
        rows.append((
            f"frames per second at the receiver, {seconds} whole seconds",
            f"min {worst} by the stream's timestamps (mean {statistics.mean(by_pts):.2f}); "
            f"by arrival here min {min(by_wall)}, max {max(by_wall)}",
            f"every second >= {TARGET_FPS}: {'met' if worst >= TARGET_FPS else 'MISSED'}",
        ))  # fmt: skip
    # A/V: the flash's first white frame against the beep's onset, by the stream's timestamps.
    after = [(pts, c) for pts, wall, c in video if wall >= flash_taken + 1.5]
    if after:
        start = after[0][0]
        flashes = onsets([p for p, _ in after], [c == "white" for _, c in after])
        beeps = beep_onsets(received, start - 0.5)
        offsets = []
        for f in flashes:
            near = min(beeps, key=lambda b: abs(b - f), default=None)
            if near is not None and abs(near - f) < 0.5:
                offsets.append(1000 * (near - f))
        if offsets:
            med = statistics.median(offsets)
            worst_av = max(abs(o) for o in offsets)
            rows.append((
                f"A/V offset over {len(offsets)} flashes (+: sound late)",
                f"median {med:+.0f} ms, max |offset| {worst_av:.0f} ms "
                f"(range {min(offsets):+.0f} .. {max(offsets):+.0f})",
                f"<= {TARGET_AV_MS:.0f} ms: "
                f"{'met' if worst_av <= TARGET_AV_MS else 'MISSED'}",
            ))  # fmt: skip
        else:
            rows.append(
                (
                    "A/V offset",
                    f"not measured: {len(flashes)} flashes (3 white frames a second) seen in "
                    f"the program, {len(beeps)} beeps, none paired",
                    "not measured",
                )
            )
    # CPU over the window, by kind of process (3 sources: 640x480, 1280x720, 640x480).
    wall = window_end - window_start
    kinds: dict[str, float] = {}
    for pid, (kind, used) in cpu1.items():
        if pid in cpu0:
            kinds[kind] = kinds.get(kind, 0.0) + used - cpu0[pid][1]
    rows.append((
        "CPU in the window (% of one core)",
        ", ".join(f"{kind} {100 * used / wall:.0f} %" for kind, used in sorted(kinds.items())),
        "",
    ))  # fmt: skip
    return rows


# ---- the command ---------------------------------------------------------------------------


async def bench_cpu(args: argparse.Namespace) -> None:
    print(
        f"program worker CPU: 1280x720 @ 30 fps, 4500 kbit/s, libx264 {args.preset} "
        f"(zerolatency); {os.cpu_count()} cores; {args.cpu_seconds:.0f} s per run; "
        f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
    )
    print(f"{'sources':>8} {'size':>9} {'worker CPU':>11} {'fps':>6} {'late':>5}  target")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height, bitrate in SIZES:
            source = make_source(Path(tmp), width, height, bitrate, int(args.cpu_seconds) + 10)
            for count in COUNTS:
                cpu, frames, late = await measure(source, count, args.cpu_seconds, args.preset)
                target = ""
                if count == 4:
                    verdict = "met" if cpu <= TARGET_CPU else "MISSED"
                    target = f"<= {TARGET_CPU:.0f} % with libx264 {args.preset}: {verdict}"
                print(
                    f"{count:>8} {width:>4}x{height:<4} {cpu:>10.1f}% "
                    f"{frames / args.cpu_seconds:>6.1f} {late:>5}  {target}",
                    flush=True,
                )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=" ".join((__doc__ or "").splitlines()[:2]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[3:]),
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="the window whose every whole second is counted at the receiver "
        "(the takes and the flashes happen inside it; default 60)",
    )
    parser.add_argument("--takes", type=int, default=20, help="takes timed (default 20)")
    parser.add_argument(
        "--chunk-ms",
        type=int,
        default=CHUNK_MS,
        help=f"how often a source sends its bytes (default {CHUNK_MS}: our page's WebCodecs "
        "path; 250: its MediaRecorder path's timeslice)",
    )
    parser.add_argument(
        "--cpu-seconds", type=float, default=10.0, help="length of each CPU run (default 10)"
    )
    parser.add_argument(
        "--preset",
        default=ProgramConfig().x264_preset,
        help="libx264 preset of the CPU runs (the relay runs its default)",
    )
    parser.add_argument("--skip-cpu", action="store_true", help="no CPU table")
    parser.add_argument(
        "--worker-av",
        action="store_true",
        help="also the worker's own A/V offset, without the relay (its share of the figure)",
    )
    parser.add_argument(
        "--skip-relay", action="store_true", help="no take-to-air, frames per second and A/V offset"
    )
    args = parser.parse_args()
    if args.seconds < 1 or args.takes < 1 or args.cpu_seconds <= 0 or args.chunk_ms < 10:
        parser.error("--seconds >= 1, --takes >= 1, --cpu-seconds > 0 and --chunk-ms >= 10")
    if not args.skip_cpu:
        await bench_cpu(args)
    if args.worker_av:
        offsets = await worker_av(15.0)
        if offsets:
            print(
                f"\nworker alone (whole FLV tags at their timestamps, no relay): A/V offset "
                f"median {statistics.median(offsets):+.0f} ms, range {min(offsets):+.0f} .. "
                f"{max(offsets):+.0f} ms over {len(offsets)} flashes (+: sound late)",
                flush=True,
            )
        else:
            print("\nworker alone: no flash paired with a beep", flush=True)
    if not args.skip_relay:
        print(
            f"\nthe relay as a user runs it (python -m desktop_relay --headless --program-url "
            f"to an ffmpeg -listen 1 receiver; program 1280x720 @ 30 fps, libx264 "
            f"{ProgramConfig().x264_preset}); 3 browser-like sources (red 640x480, blue "
            f"1280x720, flash 640x480), a chunk every {args.chunk_ms} ms each; {args.takes} takes, "
            f"{args.seconds:.0f} s counted",
            flush=True,
        )
        rows = await bench_relay(args)
        width = max(len(what) for what, _, _ in rows)
        for what, figure, target in rows:
            print(f"{what.ljust(width)} | {figure}" + (f" | target {target}" if target else ""))


if __name__ == "__main__":
    if sys.platform != "linux":
        sys.exit("reads /proc: Linux only")
    asyncio.run(main())
