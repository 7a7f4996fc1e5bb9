"""The options table: one validation for the command line and the window, every option a flag."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from desktop_relay.cli import build_parser, config_from_args, given_fields, main
from desktop_relay.relay import OPTIONS, OptionKind, RelayConfig, option

# A value other than the default for each option, as typed on the command line.
NON_DEFAULT = {
    "host": "127.0.0.1",
    "port": "9123",
    "max_streams": "3",
    "allowed_target_pattern": r"rtmp://127\.0\.0\.1/live/.*",
    "ffmpeg_path": "/opt/ffmpeg/bin/ffmpeg",
    "recordings_dir": "/srv/recordings",
    "tls_cert": "/etc/relay/cert.pem",
    "tls_key": "/etc/relay/key.pem",
    "allowed_origins": "https://studio.example.com",
    "max_chunk_bytes": "2097152",
    "max_chunks_per_second": "25.5",
    "max_ingest_bitrate": "8000000",
    "video_encoder": "libx264",
    "idle_timeout": "120",
    "resume_grace": "5",
    "safety_copy": "true",
    "log_level": "DEBUG",
    "max_connections_per_address": "500",
    "max_cpu": "85",
    "ping_interval": "5",
    "ping_timeout": "20",
    "program_size": "1920x1080",
    "program_fps": "25",
    "program_bitrate": "6000000",
    "program_name": "Sunday Show",
    "slate_image": "/srv/slate.png",
}

# Values the command line refuses, and what it says.
BAD = [
    ("port", "70000", "must be between 0 and 65535"),
    ("port", "http", "must be a whole number"),
    ("max_streams", "0", "must be at least 1"),
    ("allowed_target_pattern", "(", "not a valid regular expression"),
    ("allowed_origins", "https://example.com/page", "is not a web origin"),
    ("max_chunk_bytes", "10", "must be between 1024 and"),
    ("max_chunks_per_second", "0", "must be between 1 and"),
    ("max_ingest_bitrate", "1e6", "must be a whole number"),
    ("idle_timeout", "soon", "must be a number"),
    ("resume_grace", "nan", "must be a finite number"),
    ("video_encoder", "h265", "invalid choice: 'h265'"),
    ("log_level", "LOUD", "invalid choice: 'LOUD'"),
    ("ping_timeout", "0.1", "must be between 0.5 and"),
    ("program_size", "800x600", "invalid choice: '800x600'"),
    ("program_fps", "120", "must be between 1 and 60"),
    ("program_bitrate", "50", "must be between 100000 and"),
    ("program_name", "two\nlines", "one line"),
]


def test_the_table_covers_the_operators_options() -> None:
    names = {opt.name for opt in OPTIONS}
    assert names == set(NON_DEFAULT)
    config_fields = {f.name for f in fields(RelayConfig)}
    assert {opt.field for opt in OPTIONS} <= config_fields
    assert len({opt.flag for opt in OPTIONS}) == len(OPTIONS)
    assert len({opt.key for opt in OPTIONS}) == len(OPTIONS)


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: o.name)
def test_each_value_round_trips_through_its_text(opt: Any) -> None:
    for value in (opt.default, opt.parse(NON_DEFAULT[opt.name])):
        assert opt.read(opt.format(value)) == value
    if opt.field != "tls":
        default = getattr(RelayConfig(), opt.field)
        assert opt.to_config(opt.default) == default
        assert opt.from_config(default) == opt.default


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda o: o.name)
def test_every_option_is_a_flag_that_reaches_the_config(opt: Any) -> None:
    text = NON_DEFAULT[opt.name]
    argv = [opt.flag] if opt.kind is OptionKind.BOOL else [opt.flag, text]
    assert given_fields(argv) == {opt.field}
    assert opt.flag in build_parser().format_help()
    args = build_parser().parse_args(argv)
    if opt.field == "tls":
        assert getattr(args, opt.name) == text
        return
    config = config_from_args(args)
    assert getattr(config, opt.field) == opt.to_config(opt.parse(text))
    assert getattr(config, opt.field) != getattr(RelayConfig(), opt.field)


@pytest.mark.parametrize(("name", "text", "message"), BAD)
def test_a_bad_value_is_refused_with_the_same_message_by_the_table_and_the_cli(
    name: str, text: str, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    opt = option(name)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        opt.parse(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--headless", opt.flag, text])
    assert exit_info.value.code == 2
    assert f"argument {opt.flag}: {info.value}" in capfd.readouterr().err


def test_zero_means_never_where_the_option_says_so() -> None:
    config = config_from_args(build_parser().parse_args(["--idle-timeout", "0"]))
    assert config.idle_timeout is None  # as before the table
    config = config_from_args(build_parser().parse_args(["--resume-grace", "0"]))
    assert config.resume_grace_s is None
    # A settings file writes "no limit" as 0, which the command line refuses.
    assert option("max_streams").read("0") is None
    assert option("max_streams").format(None) == "0"


def test_lists_take_commas_and_repeated_flags() -> None:
    opt = option("allowed_origins")
    assert opt.parse("https://a.example, http://127.0.0.1:8080") == (
        "https://a.example",
        "http://127.0.0.1:8080",
    )
    assert opt.to_config(("*",)) == "*"  # socket.io's "any origin"
    args = build_parser().parse_args(
        ["--allowed-origin", "https://a.example", "--allowed-origin", "https://b.example"]
    )
    assert config_from_args(args).cors_allowed_origins == ["https://a.example", "https://b.example"]


def test_paths_become_paths_where_the_config_wants_them() -> None:
    args = build_parser().parse_args(["--recordings-dir", "rec", "--ffmpeg", "/x/ffmpeg"])
    config = config_from_args(args)
    assert config.recordings_dir == Path("rec") and config.ffmpeg_path == "/x/ffmpeg"
