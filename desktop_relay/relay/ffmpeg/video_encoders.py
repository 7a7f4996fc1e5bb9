"""Which H.264 encoder turns a browser's VP8/VP9/AV1 into H.264: libx264, or a hardware
encoder the bundled ffmpeg has (NVIDIA NVENC, Intel Quick Sync, VA-API) when this machine
really has the device.

The bundled ffmpeg is built with all three, so "compiled in" says nothing: a short trial
encode on the device decides (`find_hardware_encoders`). Hardware encoders also fail at run
time (driver resets, sessions limits on consumer GPUs); the pipeline then falls back to
libx264 for the rest of the session. Pure functions, plus the trial, which runs ffmpeg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from ..config import StartConfig

log = logging.getLogger(__name__)

SOFTWARE = "libx264"
# In order of preference: NVENC and Quick Sync are dedicated blocks; VA-API's quality varies.
HARDWARE = ("h264_nvenc", "h264_qsv", "h264_vaapi")
AUTO = "auto"
CHOICES = (AUTO, SOFTWARE, *HARDWARE)
VAAPI_DEVICE = Path("/dev/dri/renderD128")
_TRIAL_TIMEOUT_S = 15.0


def _num(value: float) -> str:
    return f"{value:g}"


def device_args(encoder: str) -> list[str]:
    """Options before the input: the hardware device the encoder and its upload filter use."""
    if encoder == "h264_vaapi":
        return ["-init_hw_device", f"vaapi=va:{VAAPI_DEVICE}", "-filter_hw_device", "va"]
    if encoder == "h264_qsv":
        return ["-init_hw_device", "qsv=hw", "-filter_hw_device", "hw"]
    return []


def video_args(encoder: str, config: StartConfig) -> list[str]:
    """`-c:v ...` and its options: a keyframe every 2 s at the client's framerate, constant
    bitrate at the client's `video_bits_per_second`, no B-frames (latency), yuv420p."""
    fr = config.framerate
    vbps = config.video_bits_per_second
    gop = ["-r", _num(fr), "-g", _num(round(fr * 2))]
    rate = ["-b:v", str(vbps), "-maxrate", str(vbps), "-bufsize", str(vbps * 2)]
    if encoder == SOFTWARE:
        return [
            "-c:v", "libx264",
            # ultrafast, as the original: `veryfast` cost 1.8x its CPU per stream, and at the
            # client's bitrate ultrafast's pictures are no worse than the original's (PSNR and
            # SSIM in scripts/bench_transcode.py; README figures).
            "-preset", "ultrafast", "-tune", "zerolatency",
            *gop, "-keyint_min", _num(round(fr)), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", "-profile:v", "main", *rate,
        ]  # fmt: skip
    if encoder == "h264_nvenc":
        return [
            "-c:v", "h264_nvenc", "-preset", "p2", "-tune", "ll", "-rc", "cbr", "-bf", "0",
            "-forced-idr", "1", *gop, "-pix_fmt", "yuv420p", "-profile:v", "main", *rate,
        ]  # fmt: skip
    if encoder == "h264_qsv":
        return [
            "-vf", "hwupload=extra_hw_frames=64,format=qsv",
            "-c:v", "h264_qsv", "-preset", "veryfast", "-look_ahead", "0", "-bf", "0",
            *gop, "-profile:v", "main", *rate,
        ]  # fmt: skip
    if encoder == "h264_vaapi":
        return [
            "-vf", "format=nv12,hwupload",
            "-c:v", "h264_vaapi", "-rc_mode", "CBR", "-bf", "0",
            *gop, "-profile:v", "main", *rate,
        ]  # fmt: skip
    raise ValueError(f"unknown video encoder {encoder!r} (one of {', '.join(CHOICES)})")


def trial_args(binary: str, encoder: str) -> list[str]:
    """A tenth of a second of black through `encoder` into nothing: it works on this machine
    if and only if this exits 0."""
    config = StartConfig(framerate=30, video_bits_per_second=500_000)
    return [
        binary, "-hide_banner", "-loglevel", "error", "-nostdin",
        *device_args(encoder),
        "-f", "lavfi", "-i", "color=c=black:s=256x256:r=30",
        "-frames:v", "3", *video_args(encoder, config), "-f", "null", "-",
    ]  # fmt: skip


async def _works(binary: str, encoder: str) -> bool:
    try:
        proc = await asyncio.create_subprocess_exec(
            *trial_args(binary, encoder),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group: a stop ends all it started
        )
    except OSError as exc:
        log.info("hardware encoder %s: cannot run ffmpeg: %s", encoder, exc)
        return False
    try:
        _, err = await asyncio.wait_for(proc.communicate(), _TRIAL_TIMEOUT_S)
    except TimeoutError:
        log.info("hardware encoder %s: no answer in %.0f s", encoder, _TRIAL_TIMEOUT_S)
        return False
    finally:
        # Also when the relay stops mid-trial (cancelled): no ffmpeg outlives its caller.
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    if proc.returncode != 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        log.info("hardware encoder %s not usable here: %s", encoder, last[0])
        return False
    return True


_found: dict[str, list[str]] = {}


async def find_hardware_encoders(binary: str) -> list[str]:
    """The hardware H.264 encoders that really encode on this machine, best first (tried
    once per ffmpeg binary and process: the devices do not come and go)."""
    if binary not in _found:
        found = []
        for encoder in HARDWARE:  # one at a time: drivers do not like being probed at once
            if await _works(binary, encoder):
                found.append(encoder)
        _found[binary] = found
    return list(_found[binary])
