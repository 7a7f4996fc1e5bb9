"""Benchmark: what encoding a browser's VP8/VP9 video to H.264 costs, and at what quality,
for the relay's encoder settings next to the original `browser-to-rtmp-server` 0.2.4's.

Usage: .venv/bin/python scripts/bench_transcode.py [--fixture vp8] [--runs 3]

Each candidate encodes the whole fixture (20 s of Chromium MediaRecorder VP8 + Opus, 640x480)
with the bundled ffmpeg, as fast as it can, to an FLV file; the ffmpeg's CPU time (user +
system, from wait4) is divided by the seconds of media, giving "% of one core per live
stream" (the relay's encoder runs in real time, so this is what one stream costs). Quality is
ffmpeg's PSNR and SSIM of the output against the decoded input. Only the video encode
differs between candidates; audio is encoded to AAC in all. The encoder's arguments come
from the relay's own `build_encoder_args`, so the "relay" row is what the relay runs.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop_relay.relay.config import StartConfig  # noqa: E402
from desktop_relay.relay.ffmpeg.encoder_args import build_encoder_args  # noqa: E402
from desktop_relay.relay.media.container import InputFormat  # noqa: E402
from tests.media import FIXTURE_SECONDS, VP8_FIXTURE, probe  # noqa: E402

FRAMERATE = 30
VIDEO_BPS = 2_500_000  # the client's default videoBitsPerSecond


@dataclass(frozen=True)
class Candidate:
    name: str
    video: list[str]  # everything between the input and the audio codec


def _relay_video_args(ffmpeg: str) -> list[str]:
    fmt = InputFormat("matroska", "vp8", "opus", b"")
    args = build_encoder_args(ffmpeg, fmt, StartConfig(framerate=FRAMERATE,
                                                       video_bits_per_second=VIDEO_BPS))
    return args[args.index("-c:v") : args.index("-c:a")]


def candidates(ffmpeg: str) -> list[Candidate]:
    original = [  # server/src/ffmpeg.ts of @api.video/browser-to-rtmp-server 0.2.4
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
        "-r", str(FRAMERATE), "-g", str(FRAMERATE * 2), "-keyint_min", "25", "-crf", "25",
        "-pix_fmt", "yuv420p", "-sc_threshold", "0", "-profile:v", "main", "-level", "3.1",
    ]
    relay = _relay_video_args(ffmpeg)
    out = [Candidate("original 0.2.4 (ultrafast, crf 25)", original),
           Candidate("relay (as built now)", relay)]
    for preset in ("veryfast", "superfast", "ultrafast"):
        if preset in relay:
            continue
        swapped = list(relay)
        swapped[swapped.index("-preset") + 1] = preset
        out.append(Candidate(f"relay args, preset {preset}", swapped))
    return out


def cpu_of(command: list[str]) -> float:
    """Run `command`; its CPU seconds (user + system)."""
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"ffmpeg failed: {' '.join(command)}\n{stderr[-2000:]}")
    return usage.ru_utime + usage.ru_stime


def _reference(ffmpeg: str, source: Path, path: Path) -> Path:
    """The source's frames as every candidate's `-r` picks them, losslessly (FFV1): PSNR and
    SSIM then compare the same pictures, not neighbours."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), "-map", "0:v:0",
         "-r", str(FRAMERATE), "-pix_fmt", "yuv420p", "-c:v", "ffv1", "-y", str(path)],
        check=True,
    )
    return path


def _quality(ffmpeg: str, encoded: Path, reference: Path) -> tuple[float, float]:
    """PSNR (dB, average) and SSIM (All) of `encoded` against `reference`, frame by frame."""
    result = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(encoded), "-i", str(reference), "-lavfi",
         "[0:v]setpts=PTS-STARTPTS,split[a][c];[1:v]setpts=PTS-STARTPTS,split[b][d];"
         "[a][b]psnr;[c][d]ssim",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )
    psnr = re.search(r"PSNR .* average:([\d.]+|inf)", result.stderr)
    ssim = re.search(r"SSIM .* All:([\d.]+)", result.stderr)
    if not psnr or not ssim:
        raise SystemExit(f"no PSNR/SSIM in ffmpeg's output:\n{result.stderr[-2000:]}")
    return float(psnr.group(1)), float(ssim.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="encodes per candidate (CPU median)")
    args = parser.parse_args()
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    source = VP8_FIXTURE
    seconds = FIXTURE_SECONDS
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        reference = _reference(ffmpeg, source, Path(tmp) / "reference.mkv")
        for cand in candidates(ffmpeg):
            out = Path(tmp) / "out.flv"
            command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats",
                       "-f", "matroska", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0",
                       *cand.video, "-c:a", "aac", "-b:a", "128000", "-ar", "48000",
                       "-f", "flv", "-y", str(out)]
            cpu = statistics.median(cpu_of(command) for _ in range(args.runs))
            psnr, ssim = _quality(ffmpeg, out, reference)
            got = probe(out)
            kbps = out.stat().st_size * 8 / got.duration / 1000
            rows.append((cand.name, 100 * cpu / seconds, psnr, ssim, kbps, got.video_frames))
    print(f"{source.name}: {seconds:g} s, {args.runs} encode(s) each, CPU median; "
          f"load before {os.getloadavg()[0]:.2f}")
    print(f"{'candidate':38} | {'CPU per stream':>14} | {'PSNR':>8} | {'SSIM':>6} | "
          f"{'kbit/s':>7} | frames")
    base = rows[0][1]
    for name, cpu, psnr, ssim, kbps, frames in rows:
        print(f"{name:38} | {cpu:5.1f} % ({cpu / base:4.2f}x) | {psnr:5.2f} dB | {ssim:.4f} | "
              f"{kbps:7.0f} | {frames}")


if __name__ == "__main__":
    main()
