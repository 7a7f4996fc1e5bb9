"""The encoder's ffmpeg command line, a pure function of the input format and start config."""

from __future__ import annotations

from ..config import StartConfig
from ..media.audio_meter import METER_FILTER
from ..media.container import InputFormat
from .progress import STATS_PERIOD
from .video_encoders import SOFTWARE, device_args, video_args


def video_mode(fmt: InputFormat) -> str:
    """`copy` when the browser already sends H.264 (FLV carries it as is), else `transcode`."""
    return "copy" if fmt.video_codec == "h264" else "transcode"


def send_buffer_size(config: StartConfig) -> int:
    """Bytes of TCP send buffer for an RTMP output: a quarter second of the declared bitrate,
    within 64 KiB..512 KiB (doubled by Linux, that still fills a 100 ms path many times over)."""
    per_second = (config.video_bits_per_second + config.audio_bits_per_second) // 8
    return max(64 * 1024, min(512 * 1024, per_second // 4))


def build_encoder_args(
    binary: str,
    fmt: InputFormat,
    config: StartConfig,
    video_encoder: str = SOFTWARE,
    meter: bool = True,
) -> list[str]:
    """The session's encoder: the browser's stream in, one normalized FLV on stdout (H.264
    copied or encoded once by `video_encoder`, see video_encoders.py; audio AAC), flushed per
    packet so the relay can fan it out at once.

    `-progress` is not here: FfmpegProcess gives it a pipe of its own (stdout is the stream).
    Nothing here runs anything.
    """
    metered = meter and fmt.audio_codec is not None
    args = _input_and_codecs(binary, fmt, config, video_encoder)
    if metered:
        # The sound meter (audio_meter.py): a side branch of the decoded audio, its levels
        # printed to the log, its samples to a null output; the stream itself is untouched.
        at = args.index("-map")
        args[at:at] = ["-filter_complex", METER_FILTER]
    args += ["-f", "flv", "-flvflags", "no_duration_filesize", "-flush_packets", "1", "pipe:1"]
    if metered:
        args += ["-map", "[meter]", "-c:a", "pcm_s16le", "-f", "null", "-"]
    return args


def _input_and_codecs(
    binary: str, fmt: InputFormat, config: StartConfig, video_encoder: str
) -> list[str]:
    """Everything before the output: the input on stdin, the maps and the codecs."""
    transcode = video_mode(fmt) != "copy"
    args = [
        binary,
        "-hide_banner",
        "-loglevel",
        "info",
        # Counters come from -progress; the human status line on stderr is noise.
        "-nostats",
        "-stats_period",
        STATS_PERIOD,
        *(device_args(video_encoder) if transcode else []),
        # The relay has read the stream's header: codecs, sizes and rates are known, so
        # ffmpeg need not read seconds of media to guess them (it did, 1.5-2 s, before writing
        # its first frame). The frame rate it would estimate is not needed either: H.264 is
        # copied with its timestamps and libx264 gets `-r`. 1 us, not 0: 0 means "default".
        "-analyzeduration",
        "1",
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
    args += video_args(video_encoder, config) if transcode else ["-c:v", "copy"]
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
