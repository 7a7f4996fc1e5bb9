"""Benchmark: what a network cut costs the audience and the recording; prints one table.

Usage: .venv/bin/python scripts/bench_drop.py [--drops 5 20] [--lag 3]

For each cut length, a client streams a 45 s H.264 + Opus Matroska capture (made by ffmpeg
once, 2 s keyframes, in 0.25 s chunks like MediaRecorder) in the pace of time to a relay (in
this process) that sends it to an RTMP receiver (`ffmpeg -listen 1`, one publisher) and to a
recording. After 8 s the client's connection is cut; the client records on, as our page does,
and after the cut resumes its session and resends its backlog at once, then goes on live.
Reported per cut: seconds streamed, seconds the RTMP receiver got (video frames / fps) and its
timeline (first to last timestamp), seconds the live output skipped to be back to live, and
seconds the recording kept. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_relay.relay import RelayConfig, RelayServer  # noqa: E402
from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg  # noqa: E402
from desktop_relay.relay.outputs.stream_output import StreamOutput  # noqa: E402
from tests.media import probe, start_receiver  # noqa: E402
from tests.replay import ResumingStreamer, relay_url  # noqa: E402

CAPTURE_S = 45.0
CHUNK_S = 0.25
FPS = 25
CUT_AT_S = 8.0
# When the live (RTMP) outputs were handed tags, relay clock: the only hook into the relay,
# to time "frames flowing again" from the relay's side (the receiver's file grows in 32 KiB
# steps, too coarse to time).
LIVE_FEEDS: list[float] = []
_feed_batch = StreamOutput.feed_batch


def _timed_feed_batch(self: StreamOutput, tags: Any, raw: bytes) -> None:
    if not self.destination.is_recording and tags:
        LIVE_FEEDS.append(time.monotonic())
    _feed_batch(self, tags, raw)


StreamOutput.feed_batch = _timed_feed_batch  # type: ignore[method-assign]


def make_capture(ffmpeg: str, path: Path) -> None:
    """A synthetic camera: H.264 (2 s keyframes) and Opus in Matroska, like MediaRecorder."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x480:rate={FPS}",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(CAPTURE_S), "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * FPS),
         "-b:v", "1500k", "-c:a", "libopus", "-b:a", "96k", "-cluster_time_limit", "250",
         "-f", "matroska", str(path)],
        check=True, timeout=300,
    )  # fmt: skip


async def one_cut(
    capture: Path, ffmpeg: str, drop_s: float, lag: float | None, tmp: Path
) -> dict[str, float]:

    data = capture.read_bytes()
    step = int(len(data) * CHUNK_S / CAPTURE_S)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    receiver = start_receiver(ffmpeg, tmp)
    try:
        return await _run(chunks, receiver, drop_s, lag, tmp)
    finally:
        receiver.close()  # reaped even when the run failed


async def _run(
    chunks: list[bytes], receiver: Any, drop_s: float, lag: float | None, tmp: Path
) -> dict[str, float]:
    relay = RelayServer(
        RelayConfig(
            host="127.0.0.1",
            port=0,
            default_target=receiver.url,
            recordings_dir=tmp,
            catch_up_lag_s=lag,
            log_level="WARNING",
        )
    )
    await relay.start()
    loop = asyncio.get_running_loop()
    try:
        first = await ResumingStreamer(relay_url(relay)).connect()
        ticket = await first.start_ticket({"framerate": FPS})
        sid = ticket["sessionId"]
        t0 = loop.time()
        await first.send_in_time(chunks, 0, 8, t0, CHUNK_S)
        await relay.add_output(sid, None)
        await first.send_in_time(chunks, 8, int(CUT_AT_S / CHUNK_S), t0, CHUNK_S)
        first.cut()
        await asyncio.sleep(drop_s)
        second = await ResumingStreamer(relay_url(relay)).connect()
        ack = await second.resume(sid, ticket["resumeToken"])
        resumed_at = time.monotonic()
        # The backlog is due already: it goes at link speed, then the rest live.
        await second.send_in_time(chunks, ack["lastSeq"] + 1, len(chunks), t0, CHUNK_S)
        await second.stop()
        status = relay.get(sid)
        await second.close()
    finally:
        await relay.stop()
    await asyncio.to_thread(receiver.wait, 30)
    assert status is not None
    rtmp, recording = status.outputs[0], status.outputs[1]
    got = probe(receiver.path)
    assert recording.recording_path is not None
    kept = probe(Path(recording.recording_path))
    flowing = next((t for t in LIVE_FEEDS if t > resumed_at), None)
    return {
        "to_frames": -1.0 if flowing is None else flowing - resumed_at,
        "streamed": len(chunks) * CHUNK_S,
        "rtmp_seconds": got.video_frames / FPS,
        "rtmp_timeline": got.duration,
        "skipped": rtmp.skipped_s,
        "recorded": kept.video_frames / FPS,
        "recording_started": 2.0,  # added at 2 s: it starts from the keyframe before
    }


async def main_async(args: argparse.Namespace) -> None:
    ffmpeg = resolve_ffmpeg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        capture = tmp / "capture.mkv"
        make_capture(ffmpeg, capture)
        rows = []
        for drop in args.drops:
            folder = tmp / f"cut-{drop:g}"
            folder.mkdir()
            r = await one_cut(capture, ffmpeg, drop, args.lag, folder)
            rows.append((drop, r))
    lag = "off" if args.lag is None else f"{args.lag:g} s"
    print(f"catch-up lag {lag}; {CAPTURE_S:g} s streamed per run, cut at {CUT_AT_S:g} s")
    print(
        "cut | RTMP got (video s) | RTMP timeline | skipped to catch up | "
        "resume to frames flowing to RTMP | recording kept"
    )
    for drop, r in rows:
        print(
            f"{drop:g} s | {r['rtmp_seconds']:.1f} s of {r['streamed']:.0f} | "
            f"{r['rtmp_timeline']:.1f} s | {r['skipped']:.1f} s | "
            f"{1000 * r['to_frames']:.0f} ms | "
            f"{r['recorded']:.1f} s (from {r['recording_started']:g} s on)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--drops", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument(
        "--lag", type=float, default=3.0, help="catch-up lag in seconds; 0 turns catch-up off"
    )
    args = parser.parse_args()
    if args.lag <= 0:
        args.lag = None
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
