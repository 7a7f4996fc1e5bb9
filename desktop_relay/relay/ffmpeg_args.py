"""The encoder's ffmpeg command line, a pure function of the input format and start config."""

from __future__ import annotations

from dataclasses import dataclass

from .config import StartConfig
from .container import InputFormat


@dataclass(frozen=True)
class Output:
    """Where a session goes: an RTMP(S) target, or a local recording file."""

    url: str
    is_file: bool = False


def video_mode(fmt: InputFormat) -> str:
    """`copy` when the browser already sends H.264 (FLV carries it as is), else `transcode`."""
    return "copy" if fmt.video_codec == "h264" else "transcode"


def _num(value: float) -> str:
    return f"{value:g}"


def send_buffer_size(config: StartConfig) -> int:
    """Bytes of TCP send buffer for an RTMP output: a quarter second of the declared bitrate,
    within 64 KiB..512 KiB (doubled by Linux, that still fills a 100 ms path many times over)."""
    per_second = (config.video_bits_per_second + config.audio_bits_per_second) // 8
    return max(64 * 1024, min(512 * 1024, per_second // 4))


def build_encoder_args(binary: str, fmt: InputFormat, config: StartConfig) -> list[str]:
    """The session's encoder: the browser's stream in, one normalized FLV on stdout (H.264
    copied or encoded once, audio AAC), flushed per packet so the relay can fan it out at once.

    `-progress` is not here: FfmpegProcess gives it a pipe of its own (stdout is the stream).
    Nothing here runs anything.
    """
    return [
        *_input_and_codecs(binary, fmt, config),
        "-f",
        "flv",
        "-flvflags",
        "no_duration_filesize",
        "-flush_packets",
        "1",
        "pipe:1",
    ]


def _input_and_codecs(binary: str, fmt: InputFormat, config: StartConfig) -> list[str]:
    """Everything before the output: the input on stdin, the maps and the codecs."""
    args = [
        binary,
        "-hide_banner",
        "-loglevel",
        "info",
        # Counters come from -progress; the human status line on stderr is noise.
        "-nostats",
        "-stats_period",
        "0.5",
        # The relay has read the stream's header: codecs, sizes and rates are known, so
        # ffmpeg need not read seconds of media to guess them (it did, 1.5-2 s, before writing
        # its first frame). The frame rate it would estimate is not needed either: H.264 is
        # copied with its timestamps and libx264 gets `-r`.
        "-analyzeduration",
        "0",
        "-fpsprobesize",
        "0",
        "-f",
        fmt.container,
        "-i",
        "pipe:0",
        # Optional maps: a recorder may send audio only or video only.
        "-map",
        "0:v:0?",
        "-map",
        "0:a:0?",
    ]
    if video_mode(fmt) == "copy":
        args += ["-c:v", "copy"]
    else:
        fr = config.framerate
        vbps = config.video_bits_per_second
        args += [
            "-c:v",
            "libx264",
            # ultrafast, as the original: `veryfast` cost 1.8x its CPU per stream, and at the
            # client's bitrate ultrafast's pictures are no worse than the original's (PSNR and
            # SSIM in scripts/bench_transcode.py; README figures).
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-r",
            _num(fr),
            "-g",
            _num(round(fr * 2)),
            "-keyint_min",
            _num(round(fr)),
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-profile:v",
            "main",
            "-b:v",
            str(vbps),
            "-maxrate",
            str(vbps),
            "-bufsize",
            str(vbps * 2),
        ]
    if fmt.audio_codec == "aac":
        args += ["-c:a", "copy"]
    else:
        args += [
            "-c:a",
            "aac",
            "-b:a",
            str(config.audio_bits_per_second),
            "-ar",
            str(config.audio_sample_rate),
        ]
    return args
