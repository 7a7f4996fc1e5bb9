"""Every field of `start` is checked; refusals name the field."""

from __future__ import annotations

from typing import Any

import pytest

from desktop_relay.relay.errors import ErrorName, RelayError
from desktop_relay.relay.session.validation import validate_start


def refusal(config: Any) -> str:
    with pytest.raises(RelayError) as info:
        validate_start(config)
    assert info.value.error.name == ErrorName.INVALID_PARAMETERS
    assert info.value.error.fatal
    return info.value.error.message


def test_original_client_defaults_are_accepted_and_extra_keys_ignored() -> None:
    # What @api.video/browser-to-rtmp-client 0.2.x sends with its defaults.
    config = validate_start({
        "host": "ws://127.0.0.1", "port": 8086, "socketio": {"transports": ["websocket"]},
        "audioBitsPerSecond": 128000, "videoBitsPerSecond": 2500000, "framerate": 25,
        "audioSampleRate": 32000,
    })
    assert config.framerate == 25
    assert config.audio_sample_rate == 32000
    assert config.video_bits_per_second == 2_500_000
    assert config.rtmp is None


def test_missing_fields_take_defaults() -> None:
    config = validate_start({})
    assert config.framerate == 25 and config.audio_sample_rate == 44100
    assert validate_start(None) == config


def test_odd_sample_rate_is_rounded_to_a_real_one() -> None:
    assert validate_start({"audioSampleRate": 32001}).audio_sample_rate == 32000


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("not an object", "config"),
        ([1, 2], "config"),
        ({"framerate": 0}, "framerate"),
        ({"framerate": 1000}, "framerate"),
        ({"framerate": "25"}, "framerate"),
        ({"framerate": True}, "framerate"),
        ({"framerate": float("nan")}, "framerate"),
        ({"audioSampleRate": 100}, "audioSampleRate"),
        ({"audioSampleRate": 10**9}, "audioSampleRate"),
        ({"audioBitsPerSecond": -1}, "audioBitsPerSecond"),
        ({"audioBitsPerSecond": 10**9}, "audioBitsPerSecond"),
        ({"videoBitsPerSecond": 10}, "videoBitsPerSecond"),
        ({"videoBitsPerSecond": float("inf")}, "videoBitsPerSecond"),
        ({"rtmp": "file:/tmp/x"}, "rtmp"),
        ({"rtmp": "-f null"}, "rtmp"),
        ({"rtmp": 5}, "rtmp"),
        ({"mimeType": "video/webm\n-i x"}, "mimeType"),
        ({"mimeType": 3}, "mimeType"),
        ({"name": "x" * 65}, "name"),
        ({"name": 7}, "name"),
    ],
)
def test_bad_fields_are_refused_by_name(config: Any, field: str) -> None:
    assert f"'{field}'" in refusal(config)


def test_name_loses_control_characters() -> None:
    assert validate_start({"name": "Cam\n1\x00"}).name == "Cam1"


# What browsers report as `MediaRecorder.mimeType` (and what resources/web/src/client/mime.ts
# asks for): every one must pass, or a real browser could not stream.
BROWSER_MIME_TYPES = [
    "video/webm;codecs=h264,opus",  # Chromium, as asked
    "video/x-matroska;codecs=avc1,opus",  # Chromium, as reported
    "video/webm;codecs=vp8,opus",
    "video/webm;codecs=vp9,opus",
    "video/webm",
    "video/mp4;codecs=avc1.42E01E,mp4a.40.2",  # Safari
    "video/mp4;codecs=avc1.42E01F,mp4a.40.2",
    "video/mp4",
    'video/webm;codecs="vp8, opus"',  # Firefox quotes the list
    'video/webm; codecs="vp8, opus"',
    "video/webm;codecs=h264",
    "video/x-matroska;codecs=avc1",
    "video/mp4;codecs=avc1.42E01F",
    "audio/webm;codecs=opus",
    "audio/webm",
    "audio/mp4;codecs=mp4a.40.2",
    "audio/mp4",
]


@pytest.mark.parametrize("mime", BROWSER_MIME_TYPES)
def test_browser_mime_types_are_accepted(mime: str) -> None:
    assert validate_start({"mimeType": mime}).mime_type == mime


@pytest.mark.parametrize(
    "mime",
    [
        "video/webm\n",  # `$` used to match before a trailing newline
        "video/webm\r\n",
        "video/webm;codecs=vp8\x1f",  # `\s` used to match the separators \x1c-\x1f
        "video/webm\x1c;codecs=vp8",
        "video/webm;\tcodecs=vp8",
        "video/webm\t;codecs=vp8",
        "video/webm;codecs=vp8\x00",
        "video/webm;codecs=vp8\x7f",
        "video/webm;codecs=vp8é",
        'video/webm;codecs="vp8\nopus"',
        "video/webm;codecs",  # a parameter needs a value
        "video/webm;",
        "video/webm;codecs=vp8;",
        "video/webm;=vp8",
        'video/webm;codecs="vp8',  # unterminated quote
        "video",
        "video/",
        "/webm",
        "video/webm/x",
        " video/webm",
        "video /webm",
        "video/webm;codecs=vp8 opus",
        "",
    ],
)
def test_mime_types_with_control_characters_or_bad_syntax_are_refused(mime: str) -> None:
    assert "'mimeType'" in refusal({"mimeType": mime})
