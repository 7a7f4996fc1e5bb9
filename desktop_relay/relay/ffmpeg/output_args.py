"""The command line of one output's ffmpeg: the relay's FLV on stdin, copied to an RTMP target
or to a recording file. Pure functions: nothing here runs anything."""

from __future__ import annotations


def _copy_from_flv(binary: str) -> list[str]:
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
        "0.5",
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


def build_output_args(binary: str, url: str, send_buffer_size: int) -> list[str]:
    """`-c copy` from FLV on stdin to one RTMP(S) target."""
    return [
        *_copy_from_flv(binary),
        "-f",
        "flv",
        "-flvflags",
        "no_duration_filesize",
        # A fixed socket buffer of about a quarter second of the stream (ffmpeg_args.
        # send_buffer_size; Linux doubles it): with the kernel's autotuned 4 MiB, a stalled
        # server swallows minutes of a low bitrate before ffmpeg blocks where the stall
        # watchdog sees it.
        "-send_buffer_size",
        str(send_buffer_size),
        url,
    ]


def build_recording_args(binary: str, fd: int) -> list[str]:
    """`-c copy` from FLV on stdin into Matroska through an inherited fd (the relay created the
    file exclusively; see recordings.create_recording)."""
    return [
        *_copy_from_flv(binary),
        # Still seekable through the fd: the recording gets its cues and duration at the end.
        "-f",
        "matroska",
        "-fd",
        str(fd),
        "fd:",
    ]
