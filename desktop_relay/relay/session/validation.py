"""Validation of everything a browser sends in `start`."""

from __future__ import annotations

import math
import re
from typing import Any

from ..config import StartConfig
from ..errors import invalid
from ..outputs.destinations import TargetError, validate_target

AUDIO_SAMPLE_RATES = frozenset(
    {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
)
# A media type as RFC 6838 names it, with RFC 9110 parameters, printable ASCII only (the value
# reaches logs, the window and ffmpeg's status). Spaces only, never tabs or other whitespace,
# around `;`. Browsers write `codecs=vp8,opus` unquoted although `,` is no token character, and
# Firefox writes `codecs="vp8, opus"`: both pass. Used with fullmatch: `$` would also match
# before a trailing newline.
_MIME_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MIME_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_MIME_VALUE = rf"(?:{_MIME_TOKEN}(?:, *{_MIME_TOKEN})*|{_MIME_QUOTED})"
_MIME_RE = re.compile(rf"{_MIME_NAME}/{_MIME_NAME}(?: *; *{_MIME_TOKEN}={_MIME_VALUE})*", re.ASCII)
_UNSET = object()


def _number(config: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = config.get(key, _UNSET)
    if value is _UNSET or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(key, "must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise invalid(key, f"must be between {low:g} and {high:g}")
    return float(value)


def validate_start(raw: Any) -> StartConfig:
    """Turn the `start` payload into a StartConfig or raise INVALID_PARAMETERS naming the field.

    Unknown keys (the original client also sends host, port and socket.io options) are ignored.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid("config", "must be an object")
    defaults = StartConfig()

    framerate = _number(raw, "framerate", 1, 120)
    sample_rate = _number(raw, "audioSampleRate", 8000, 96000)
    if sample_rate is not None and int(sample_rate) not in AUDIO_SAMPLE_RATES:
        # The original client defaults this to audioBitsPerSecond / 4, which is rarely a real
        # rate; round to the nearest rate AAC supports instead of refusing the stream.
        asked = sample_rate
        sample_rate = float(min(AUDIO_SAMPLE_RATES, key=lambda r: abs(r - asked)))
    audio_bps = _number(raw, "audioBitsPerSecond", 8_000, 512_000)
    video_bps = _number(raw, "videoBitsPerSecond", 100_000, 50_000_000)

    rtmp = raw.get("rtmp")
    if rtmp is not None:
        try:
            rtmp = validate_target(rtmp)
        except TargetError as exc:
            raise invalid("rtmp", str(exc)) from None

    mime = raw.get("mimeType")
    if mime is not None and (
        not isinstance(mime, str) or len(mime) > 200 or not _MIME_RE.fullmatch(mime)
    ):
        raise invalid("mimeType", "must be a media type such as video/webm;codecs=vp8,opus")

    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > 64:
            raise invalid("name", "must be a string of at most 64 characters")
        name = "".join(ch for ch in name if ch.isprintable()).strip() or None

    return StartConfig(
        framerate=framerate if framerate is not None else defaults.framerate,
        audio_sample_rate=int(sample_rate)
        if sample_rate is not None
        else defaults.audio_sample_rate,
        audio_bits_per_second=int(audio_bps)
        if audio_bps is not None
        else defaults.audio_bits_per_second,
        video_bits_per_second=int(video_bps)
        if video_bps is not None
        else defaults.video_bits_per_second,
        rtmp=rtmp,
        mime_type=mime,
        name=name,
    )
