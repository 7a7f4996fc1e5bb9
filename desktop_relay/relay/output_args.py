"""The command line of one output's ffmpeg: the relay's FLV on stdin, copied to an RTMP target
or to a recording file."""

from __future__ import annotations


def build_output_args(binary: str, url: str, send_buffer_size: int) -> list[str]:
    """`-c copy` from FLV on stdin to one RTMP(S) target; nothing here runs anything."""
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
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-map",
        "0",
        "-c",
        "copy",
        "-f",
        "flv",
        "-flvflags",
        "no_duration_filesize",
        # A small fixed socket buffer (see ffmpeg_args.send_buffer_size): a stalled server then
        # blocks ffmpeg within a second, where the stall watchdog sees it.
        "-send_buffer_size",
        str(send_buffer_size),
        url,
    ]


def build_recording_args(binary: str, fd: int) -> list[str]:
    """`-c copy` from FLV on stdin into Matroska through an inherited fd (the relay created the
    file exclusively; see recordings.create_recording); nothing here runs anything."""
    return [
        binary,
        "-hide_banner",
        "-loglevel",
        "info",
        "-nostats",
        "-progress",
        "pipe:1",
        "-stats_period",
        "0.5",
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-map",
        "0",
        "-c",
        "copy",
        # Still seekable through the fd: the recording gets its cues and duration at the end.
        "-f",
        "matroska",
        "-fd",
        str(fd),
        "fd:",
    ]
