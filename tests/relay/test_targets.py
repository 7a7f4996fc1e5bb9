"""Targets: only rtmp:// or rtmps:// with a host; keys never shown whole."""

from __future__ import annotations

import pytest

from desktop_relay.relay.outputs.destinations import (
    TargetError,
    mask_in_text,
    mask_target,
    secrets_of,
    split_key,
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
    text = f"Destination #0, flv, to '{url}':"
    masked = mask_in_text(text, secrets_of(url))
    assert "supersecretvalue" not in masked and "rtmp://h/app/" in masked


# Issue 10 item 5: mask by what is secret (everything after the RTMP application), not by
# position. Each case: a target, the secrets in it, and the masked form shown to people.
KEY = "live_0123456789_abcdefgh"
LEAKY = [
    # A trailing slash left the last path segment empty, and the key in clear.
    (f"rtmp://host/live/{KEY}/", [KEY], "rtmp://host/live/****efgh"),
    # A key that is not the last path segment (ffmpeg then takes `app/KEY` as application).
    (f"rtmp://host/app/{KEY}/extra", [KEY], "rtmp://host/app/****xtra"),
    # Query parameters after a stream name, or straight after the application.
    ("rtmp://host/app/stream?key=querysecret0123", ["querysecret0123"], "rtmp://host/app/****0123"),
    ("rtmp://host/app?token=tokensecret0123", ["tokensecret0123"], "rtmp://host/app?****0123"),
    # A custom server given without an application, the key typed apart: the key is the only
    # path segment and must not be shown as if it were the application.
    (f"rtmps://host:443/{KEY}", [KEY], "rtmps://host:443/****efgh"),
]


@pytest.mark.parametrize(("url", "keys", "masked"), LEAKY)
def test_every_secret_part_of_a_target_is_masked(url: str, keys: list[str], masked: str) -> None:
    assert mask_target(url) == masked
    # ffmpeg prints the URL whole, and parts of it: `app/KEY` as the application, the play
    # path, the tcUrl with the query, or a value alone.
    text = "\n".join([
        f"Destination #0, flv, to '{url}':",
        f"[rtmp @ 0x1] Server error: unknown app {url.split('/')[3]}/{KEY}",
        *(f"[rtmp @ 0x1] publish {key} refused" for key in keys),
    ])
    out = mask_in_text(text, secrets_of(url))
    for key in keys:
        assert key not in out, out
    assert url.split("/")[2] in out  # the server stays readable


@pytest.mark.parametrize(
    ("url", "server", "key"),
    [
        ("rtmp://live.twitch.tv/app/live_1_abc", "rtmp://live.twitch.tv/app", "live_1_abc"),
        (f"rtmp://host/live/{KEY}/", "rtmp://host/live", f"{KEY}/"),
        (f"rtmp://host/app/{KEY}/extra", "rtmp://host/app", f"{KEY}/extra"),
        ("rtmp://host/app?token=abc", "rtmp://host/app", "?token=abc"),
        (f"rtmp://host/{KEY}", "rtmp://host", KEY),
        ("rtmp://host", "rtmp://host", ""),
    ],
)
def test_split_key_keeps_every_secret_out_of_the_server_part(url: str, server: str, key: str) -> None:
    # The window saves the server part in its settings file and the key in the keyring.
    assert split_key(url) == (server, key)


def test_short_query_values_are_masked_with_their_name() -> None:
    url = "rtmp://host/app/stream?k=abc"
    out = mask_in_text(f"to '{url}'", secrets_of(url))
    assert "k=abc" not in out and "stream?k" not in out
