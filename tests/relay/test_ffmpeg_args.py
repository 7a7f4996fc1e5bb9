"""The ffmpeg commands are pure functions: the encoder's of input and config, an output's of
its target."""

from __future__ import annotations

import pytest

from desktop_relay.relay.config import StartConfig
from desktop_relay.relay.ffmpeg.encoder_args import build_encoder_args, send_buffer_size, video_mode
from desktop_relay.relay.ffmpeg.output_args import build_recording_args
from desktop_relay.relay.media.container import InputFormat
from desktop_relay.relay.outputs.destinations import build_output_args

H264 = InputFormat("matroska", "h264", "opus", b"")
VP8 = InputFormat("matroska", "vp8", "opus", b"")
SAFARI = InputFormat("mp4", "h264", "aac", b"")
TARGET = "rtmp://127.0.0.1:1935/live/key"


def value_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_h264_is_copied_and_opus_becomes_aac() -> None:
    args = build_encoder_args("ffmpeg", H264, StartConfig(audio_sample_rate=48000))
    assert video_mode(H264) == "copy"
    assert value_after(args, "-c:v") == "copy"
    assert value_after(args, "-c:a") == "aac"
    assert value_after(args, "-ar") == "48000"
    assert "libx264" not in args
    assert value_after(args, "-f") == "matroska"  # the input demuxer comes first
    # The encoder writes one FLV to the relay, flushed per packet (then, since the audio
    # meter, a null output of the meter's branch: test_audio_meter.py).
    end = args.index("pipe:1") + 1
    assert args[end - 7:end] == ["-f", "flv", "-flvflags", "no_duration_filesize",
                                 "-flush_packets", "1", "pipe:1"]
    out = build_output_args("ffmpeg", TARGET, send_buffer_size(StartConfig()))
    assert value_after(out, "-flvflags") == "no_duration_filesize"
    assert out[-1] == TARGET


def test_other_video_is_encoded_honouring_the_client() -> None:
    config = StartConfig(framerate=30, video_bits_per_second=1_500_000,
                         audio_bits_per_second=96_000)
    args = build_encoder_args("ffmpeg", VP8, config)
    assert video_mode(VP8) == "transcode"
    assert value_after(args, "-c:v") == "libx264"
    assert value_after(args, "-tune") == "zerolatency"
    assert value_after(args, "-r") == "30"
    assert value_after(args, "-g") == "60"
    assert value_after(args, "-b:v") == "1500000"
    assert value_after(args, "-b:a") == "96000"


def test_aac_from_safari_is_copied() -> None:
    args = build_encoder_args("ffmpeg", SAFARI, StartConfig())
    assert value_after(args, "-c:a") == "copy"
    assert value_after(args, "-f") == "mp4"


def test_recordings_go_to_an_inherited_fd_never_a_path_read_as_a_protocol() -> None:
    # The relay creates the file itself (exclusively); ffmpeg is given only its fd.
    args = build_recording_args("ffmpeg", 7)
    assert args[-5:] == ["-f", "matroska", "-fd", "7", "fd:"]
    assert not any(arg.startswith(("file:", "/")) for arg in args[1:])


def test_progress_comes_on_stdout_and_input_on_stdin() -> None:
    for args in (build_output_args("ffmpeg", TARGET, 65536), build_recording_args("ffmpeg", 7)):
        assert value_after(args, "-progress") == "pipe:1"
        assert value_after(args, "-i") == "pipe:0"
    # The encoder's stdout is its stream: FfmpegProcess adds a progress pipe of its own.
    encoder = build_encoder_args("ffmpeg", H264, StartConfig())
    assert "-progress" not in encoder and value_after(encoder, "-i") == "pipe:0"


def test_the_send_buffer_is_a_quarter_second_of_the_stream_within_bounds() -> None:
    assert send_buffer_size(StartConfig()) == (2_500_000 + 128_000) // 8 // 4
    assert send_buffer_size(StartConfig(video_bits_per_second=100_000)) == 64 * 1024
    assert send_buffer_size(StartConfig(video_bits_per_second=50_000_000)) == 512 * 1024
    out = build_output_args("ffmpeg", TARGET, 82125)
    assert value_after(out, "-send_buffer_size") == "82125"


@pytest.mark.xfail(
    strict=True,
    reason="ffmpeg takes protocol options (-rtmp_playpath, -rtmp_app) only on its command "
    "line: its `-/option FILE` form is for ffmpeg's own options, not AVOptions, and the output "
    "URL is positional; any local user sees the target in `ps` while a stream runs",
)
def test_the_stream_key_is_not_on_the_command_line() -> None:
    key = "cmdline-key-0123456789"
    args = build_output_args("ffmpeg", f"rtmp://127.0.0.1:1935/live/{key}", 65536)
    assert not any(key in arg for arg in args)


@pytest.mark.parametrize("fmt", [H264, VP8, SAFARI], ids=["h264", "vp8", "mp4"])
def test_no_ffmpeg_spends_seconds_guessing_what_the_relay_knows(fmt: InputFormat) -> None:
    """The encoder's input header was read by the relay, and an output's FLV starts with the
    cache's metadata and codec headers: neither ffmpeg probes media before its first frame
    (that took 1.5-2 s each, most of a session's start)."""
    commands = [
        build_encoder_args("ffmpeg", fmt, StartConfig()),
        build_output_args("ffmpeg", TARGET, 65536),
        build_recording_args("ffmpeg", 5),
    ]
    for args in commands:
        before_input = args[: args.index("-i")]
        # 1 us: 0 would mean ffmpeg's default of 5 s.
        assert value_after(before_input, "-analyzeduration") == "1", args
        assert value_after(before_input, "-fpsprobesize") == "0", args
