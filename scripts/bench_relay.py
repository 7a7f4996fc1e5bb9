"""Benchmark: N browser sessions through a headless relay; prints CPU, memory and ack latency.

Usage: .venv/bin/python scripts/bench_relay.py [--sessions 8] [--seconds 10] [--transcode]

The relay runs as its own process (`desktop-relay --headless`, recording to a temporary folder)
so its CPU and memory are measured apart from the clients, which replay the suite's MediaRecorder
captures (tests/fixtures/) in real time over socket.io, as browsers would. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media import H264_FIXTURE, VP8_FIXTURE  # noqa: E402
from tests.replay import Streamer  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[float, int] | None:
    """(cpu seconds, rss bytes) of a process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK, int(fields[21]) * PAGE


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            if int(text[text.rfind(")") + 2 :].split()[1]) == pid:
                out.append(int(entry.name))
    return out


async def session(url: str, fixture: Path, seconds: float, latencies: list[float]) -> None:
    streamer = await Streamer(url).connect()
    assert await streamer.start({"framerate": 20})
    data = fixture.read_bytes()
    step = len(data) // 80
    total = int(len(data) * seconds / 20)
    t0 = time.monotonic()
    for i, pos in enumerate(range(0, total, step)):
        sent = time.monotonic()
        await streamer.send(data[pos : min(pos + step, total)])
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.25 - time.monotonic()))
    await streamer.stop()
    await streamer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--transcode", action="store_true", help="VP8 input (libx264 encode)")
    args = parser.parse_args()
    fixture = VP8_FIXTURE if args.transcode else H264_FIXTURE

    with tempfile.TemporaryDirectory() as tmp:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "desktop_relay", "--headless", "--host", "127.0.0.1",
            "--port", "0", "--no-tls", "--no-auth", "--recordings-dir", tmp,
            "--log-level", "WARNING", stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        while True:
            line = (await proc.stdout.readline()).decode()
            if m := re.search(r"listening on \S+:(\d+)", line):
                port = int(m.group(1))
                break
        base = _stat(proc.pid)
        assert base is not None
        latencies: list[float] = []
        peak_relay = peak_ffmpeg = 0
        ffmpeg_cpu: dict[int, float] = {}
        tasks = [
            asyncio.create_task(session(f"http://127.0.0.1:{port}", fixture, args.seconds,
                                        latencies))
            for _ in range(args.sessions)
        ]
        started = time.monotonic()
        while not all(t.done() for t in tasks):
            relay = _stat(proc.pid)
            if relay:
                peak_relay = max(peak_relay, relay[1])
            rss = 0
            for child in _children(proc.pid):
                st = _stat(child)
                if st:
                    rss += st[1]
                    ffmpeg_cpu[child] = st[0]
            peak_ffmpeg = max(peak_ffmpeg, rss)
            await asyncio.sleep(0.25)
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        end = _stat(proc.pid)
        assert end is not None
        proc.terminate()
        await proc.wait()

    lat = sorted(latencies)
    print(f"sessions: {args.sessions} x {args.seconds:g} s of {fixture.name} "
          f"({'transcode' if args.transcode else 'H.264 copy'})")
    print(f"relay process CPU: {100 * (end[0] - base[0]) / wall:.1f} % of one core "
          f"over {wall:.1f} s")
    print(f"relay process peak RSS: {peak_relay / 2**20:.1f} MiB")
    print(f"ffmpeg processes: peak RSS {peak_ffmpeg / 2**20:.1f} MiB in all, "
          f"CPU {100 * sum(ffmpeg_cpu.values()) / wall:.1f} % of one core in all")
    print(f"chunk ack latency: p50 {1000 * statistics.median(lat):.1f} ms, "
          f"p95 {1000 * lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {1000 * lat[-1]:.1f} ms "
          f"({len(lat)} chunks)")


if __name__ == "__main__":
    asyncio.run(main())
