"""CPU of the program's worker (decode + compose + encode) with 1, 2 and 4 sources.

Each source is a synthetic capture (testsrc2 + a tone, H.264 + AAC in FLV, made once with the
bundled ffmpeg) fed at real-time pace; the program is 1280x720 at 30 fps with the default
settings (libx264, the preset named in the output). The first source is on air and, with two
or more, the second is a picture-in-picture, so the figures include the compositing.

Usage: .venv/bin/python scripts/bench_program.py [--seconds 10] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imageio_ffmpeg import get_ffmpeg_exe

from desktop_relay.relay.program import ProgramConfig, ProgramEngine
from desktop_relay.relay.program.flv_tags import HEADER_SIZE, Tag, TagSplitter

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--preset", default=ProgramConfig().x264_preset)
    args = parser.parse_args()
    print(
        f"program 1280x720 @ 30 fps, 4500 kbit/s, libx264 {args.preset} (zerolatency); "
        f"{os.cpu_count()} cores; {args.seconds:.0f} s per run"
    )
    print(f"{'sources':>8} {'size':>9} {'worker CPU':>11} {'fps':>6} {'late':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height, bitrate in SIZES:
            source = make_source(Path(tmp), width, height, bitrate, 20)
            for count in COUNTS:
                cpu, frames, late = await measure(source, count, args.seconds, args.preset)
                print(
                    f"{count:>8} {width:>4}x{height:<4} {cpu:>10.1f}% "
                    f"{frames / args.seconds:>6.1f} {late:>5}",
                    flush=True,
                )


if __name__ == "__main__":
    if sys.platform != "linux":
        sys.exit("reads /proc: Linux only")
    asyncio.run(main())
