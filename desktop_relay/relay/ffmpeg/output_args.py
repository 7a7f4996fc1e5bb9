"""The command line of one output's ffmpeg: the relay's FLV on stdin, copied to a target (whose
kind adds its muxer: outputs/destinations.py) or to a recording file. Pure functions: nothing
here runs anything."""

from __future__ import annotations

from .progress import STATS_PERIOD


def copy_from_flv(binary: str) -> list[str]:
    """Everything before the output: FLV on stdin, counters on stdout, streams copied."""
    return [
        binary,
        "-hide_banner",
        "-loglevel",
        "info",
        # Counters come from -progress on stdout; the human status line on stderr is noise.
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        STATS_PERIOD,
        # The relay writes the stream's metadata and both codec headers first (the cache's
        # snapshot): nothing to guess from seconds of media before the first frame goes out.
        # 1 us, not 0: 0 means "the default" (5 s).
        "-analyzeduration",
        "1",
        "-fpsprobesize",
        "0",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-map",
        "0",
        "-c",
        "copy",
    ]


def build_recording_args(binary: str, fd: int) -> list[str]:
    """`-c copy` from FLV on stdin into Matroska through an inherited fd (the relay created the
    file exclusively; see recordings.create_recording)."""
    return [
        *copy_from_flv(binary),
        # Still seekable through the fd: the recording gets its cues and duration at the end.
        "-f",
        "matroska",
        "-fd",
        str(fd),
        "fd:",
    ]
