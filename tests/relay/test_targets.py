"""Targets: only rtmp:// or rtmps:// with a host; keys never shown whole."""

from __future__ import annotations

import pytest

from desktop_relay.relay.targets import (
    TargetError,
    mask_in_text,
    mask_target,
    secrets_of,
    validate_target,
)

GOOD = [
    "rtmp://live.twitch.tv/app/live_123456789_abcdefghijklmnop",
    "rtmps://a.rtmp.youtube.com:443/live2/abcd-efgh-ijkl-mnop",
    "rtmp://127.0.0.1:1935/live/key",
    "rtmp://[::1]:1935/live/key",
    "RTMP://broadcast.api.video/s/30087931-229e-42cf-b5f9-e91bcc1f7332",
    "rtmp://host/app/key?token=abc",
]

BAD = [
    ("", "empty"),
    ("/tmp/out.flv", "rtmp"),
    ("file:/etc/passwd", "rtmp"),
    ("file:///tmp/x.flv", "rtmp"),
    ("pipe:1", "rtmp"),
    ("concat:rtmp://a/b|rtmp://c/d", "rtmp"),
    ("tcp://127.0.0.1:1935", "rtmp"),
    ("http://example.com/live", "rtmp"),
    ("-f", "rtmp"),
    ("-y rtmp://host/app/key", "spaces"),
    ("-rtmp://host/app/key", "rtmp"),
    ("rtmp://host/app/key -f null", "spaces"),
    ("rtmp://host/app/key\n-i /etc/passwd", "spaces"),
    ("rtmp://host/app/key\t", "spaces"),
    ("rtmp:///app/key", "host"),
    ("rtmp://", "host"),
    ("rtmp://user:pass@host/app/key", "credentials"),
    ("rtmp://hоst.example/app/key", "ASCII"),  # a Cyrillic o
    ("rtmp://host\u200b/app/key", "ASCII"),  # zero-width space
    ("rtmp://host/app/key\u202e", "ASCII"),  # right-to-left override
    ("rtmp://-host/app", "host name"),
    ("rtmp://host:99999/app", "URL"),
    ("rtmp://host/app/key#frag", "path"),
    ("rtmp://host/a|b", "path"),
    ("rtmp://" + "a" * 3000, "longer"),
]


@pytest.mark.parametrize("url", GOOD)
def test_accepts_real_targets(url: str) -> None:
    assert validate_target(url) == url


@pytest.mark.parametrize(("url", "why"), BAD)
def test_refuses_everything_else_saying_why(url: str, why: str) -> None:
    with pytest.raises(TargetError, match=why):
        validate_target(url)


@pytest.mark.parametrize("value", [None, 12, b"rtmp://h/a/k", ["rtmp://h/a/k"]])
def test_refuses_non_strings(value: object) -> None:
    with pytest.raises(TargetError, match="string"):
        validate_target(value)


def test_masks_the_stream_key_but_keeps_the_server() -> None:
    url = "rtmp://live.twitch.tv/app/live_123456789_abcdefghijklmnop"
    masked = mask_target(url)
    assert masked == "rtmp://live.twitch.tv/app/****mnop"
    assert "live_123456789_abcdefghijklmnop" not in (masked or "")


def test_short_keys_are_masked_entirely() -> None:
    assert mask_target("rtmp://h/app/short") == "rtmp://h/app/****"


def test_query_secrets_are_masked() -> None:
    url = "rtmp://h/app/key?token=supersecretvalue"
    assert "supersecretvalue" not in (mask_target(url) or "")
    text = f"Output #0, flv, to '{url}':"
    masked = mask_in_text(text, secrets_of(url))
    assert "supersecretvalue" not in masked and "rtmp://h/app/" in masked
