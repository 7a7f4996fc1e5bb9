"""Benchmark: how long after its first chunk a session's first frame reaches the RTMP server,
for N sessions starting together; prints one table.

Usage: .venv/bin/python scripts/bench_start.py [--sessions 1] [--fixture h264|vp8|mp4]
                                               [--rounds 3]

The relay runs as its own process (this script with `--serve`), as in bench_relay.py. Each
session has its own RTMP receiver, an `ffmpeg -listen 1` on 127.0.0.1 that copies what it
gets to a pipe read here; the receivers start before the sessions and do not probe
(`-analyzeduration 1 -fpsprobesize 0`), so what they add is about a packet's read.
All clients connect and say `start` first; then every session sends its capture's first
chunk at the same moment and goes on in real time (0.25 s chunks, as MediaRecorder's
timeslice), so the relay starts N encoders and N outputs at once. Reported per round: the
median and the slowest session's time from its first chunk sent to its first video frame
(not a codec header) out of its receiver. This is the relay's share of "start to first
frame"; the browser's (capture, encoder, first chunk) is in scripts/bench_latency.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_relay.relay.media.flv import FlvReader  # noqa: E402
from tests.media import (  # noqa: E402
    FIXTURE_SECONDS,
    H264_FIXTURE,
    MP4_FIXTURE,
    VP8_FIXTURE,
    free_port,
)
from tests.replay import Streamer  # noqa: E402

FIXTURES = {"h264": H264_FIXTURE, "vp8": VP8_FIXTURE, "mp4": MP4_FIXTURE}
CHUNK_S = 0.25
STREAM_S = 3.0  # seconds each session sends: the first frame comes well within


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


# ---- the relay's side (--serve) ----------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    """Run the relay until SIGTERM; session named `s<i>` goes to the i-th receiver URL."""
    from bench_child import BenchRelay, serve_until_sigterm

    from desktop_relay.relay import RelayConfig
    from desktop_relay.relay.config import StartConfig
    from desktop_relay.relay.outputs.destinations import Destination
    from desktop_relay.relay.session.session import Session

    level = os.environ.get("BENCH_LOG", "WARNING")  # INFO to see what the relay does
    logging.basicConfig(level=level, format="relay: %(levelname)s %(name)s %(message)s")
    urls: list[str] = json.loads(args.targets)

    def targets(session: Session, config: StartConfig) -> list[Destination]:
        return [Destination(urls[int((config.name or "s0")[1:])])]

    relay = BenchRelay(
        RelayConfig(
            host="127.0.0.1",
            port=0,
            log_level=level,
            recordings_dir=Path(args.serve),
            max_connections_per_address=None,  # every client is on 127.0.0.1
        ),
        targets,
    )
    await serve_until_sigterm(relay)


# ---- receivers and clients ---------------------------------------------------------------


class Receiver:
    """An `ffmpeg -listen 1` RTMP server on 127.0.0.1; notes when its first frame comes out."""

    def __init__(self, port: int) -> None:
        self.url = f"rtmp://127.0.0.1:{port}/live/start-{port}"
        self.first_frame: float | None = None
        self.got_frame = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            _ffmpeg(), "-hide_banner", "-loglevel", "error", "-listen", "1",
            # Its own probing would add ~1.2 s. Not `-fflags nobuffer`: that drops the packets
            # read while probing, the first keyframe among them, and a copy then waits for
            # the next keyframe.
            "-analyzeduration", "1", "-fpsprobesize", "0",
            "-i", self.url, "-c", "copy", "-flush_packets", "1", "-f", "flv", "pipe:1",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        )
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        reader = FlvReader()
        while chunk := await self.proc.stdout.read(65536):
            if self.first_frame is None:
                for tag in reader.feed(chunk):
                    if tag.type == 9 and not tag.is_sequence_header:
                        self.first_frame = time.monotonic()
                        self.got_frame.set()
                        break

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


async def bench(args: argparse.Namespace) -> None:
    data = FIXTURES[args.fixture].read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        results: list[list[float]] = []
        for _ in range(args.rounds):
            receivers_ports = [free_port() for _ in range(args.sessions)]
            urls = [f"rtmp://127.0.0.1:{p}/live/start-{p}" for p in receivers_ports]
            relay = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", tmp, "--targets", json.dumps(urls),
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert relay.stdout is not None
                line = (await asyncio.wait_for(relay.stdout.readline(), 30)).decode()
                port = int(line.rsplit(":", 1)[1])
                receivers = [Receiver(p) for p in receivers_ports]
                for receiver in receivers:
                    await receiver.start()
                results.append(await _run_sessions(receivers, f"http://127.0.0.1:{port}", data))
            finally:
                if relay.returncode is None:
                    relay.send_signal(signal.SIGTERM)
                    await relay.wait()
    flat = [t for r in results for t in r]
    p90 = statistics.quantiles(flat, n=10, method="inclusive")[-1] if len(flat) > 1 else flat[0]
    print(f"run              | {args.sessions} session(s) starting together, "
          f"{FIXTURES[args.fixture].name}, {args.rounds} round(s); load before "
          f"{os.getloadavg()[0]:.2f}")
    for i, times in enumerate(results, 1):
        print(f"round {i}          | first chunk -> first frame at the RTMP server: median "
              f"{statistics.median(times):.2f} s, slowest {max(times):.2f} s")
    print(f"all rounds       | median {statistics.median(flat):.2f} s, "
          f"p90 {p90:.2f} s, "
          f"slowest {max(flat):.2f} s")


async def _run_sessions(receivers: list[Receiver], relay_url: str, data: bytes) -> list[float]:
    """Start one session per receiver together; each one's first chunk -> first frame (s)."""
    await asyncio.sleep(0.5 + 0.02 * len(receivers))  # every receiver listening
    streamers = [await Streamer(relay_url).connect() for _ in receivers]
    try:
        for i, streamer in enumerate(streamers):
            assert await streamer.start({"framerate": 30, "name": f"s{i}"}), streamer.errors
        step = int(len(data) * CHUNK_S / FIXTURE_SECONDS)
        total = int(len(data) * STREAM_S / FIXTURE_SECONDS)
        t0 = time.monotonic()

        async def send(streamer: Streamer) -> None:
            for i, pos in enumerate(range(0, total, step)):
                await streamer.client.emit("binarystream", data[pos : min(pos + step, total)])
                await asyncio.sleep(max(0.0, t0 + (i + 1) * CHUNK_S - time.monotonic()))

        await asyncio.gather(*(send(s) for s in streamers))
        waits = asyncio.gather(*(r.got_frame.wait() for r in receivers))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waits, 10)
        missing = sum(r.first_frame is None for r in receivers)
        if missing:
            raise SystemExit(f"{missing} of {len(receivers)} receivers got no frame in time")
        return [r.first_frame - t0 for r in receivers if r.first_frame is not None]
    finally:
        for streamer in streamers:
            await streamer.close()
        for receiver in receivers:
            await receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--fixture", choices=sorted(FIXTURES), default="h264")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve(args) if args.serve else bench(args))


if __name__ == "__main__":
    main()
