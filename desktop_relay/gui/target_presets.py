"""Where a destination points: the streaming services' presets, and joining or splitting a
server and a stream key. Data only: the widgets that choose them import this, never the
other way round."""

from __future__ import annotations

from dataclasses import dataclass

from ..relay import split_key


@dataclass(frozen=True)
class Preset:
    """A streaming service: its id (persisted), label and usual ingest server."""

    id: str
    label: str
    server: str


RECORDING = Preset("recording", "Local recording (no target)", "")
CUSTOM = Preset("custom", "Custom RTMP server", "")
# SRT: the operator's own server (`srt://host:port`); the "key" is its query, where the
# stream id and the passphrase go (`streamid=...&passphrase=...`), both masked like keys.
SRT_SERVER = Preset("srt", "SRT server", "")
# Presets whose server the operator types (no fixed ingest address).
TYPED_SERVERS = (CUSTOM, SRT_SERVER)
PRESETS: tuple[Preset, ...] = (
    RECORDING,
    Preset("twitch", "Twitch", "rtmp://live.twitch.tv/app"),
    Preset("youtube", "YouTube", "rtmp://a.rtmp.youtube.com/live2"),
    # Kick and Facebook take RTMPS only; their documented ingest servers.
    Preset("kick", "Kick", "rtmps://fa723fc1b171.global-contribute.live-video.net/app"),
    Preset("facebook", "Facebook", "rtmps://live-api-s.facebook.com:443/rtmp/"),
    Preset("apivideo", "api.video", "rtmp://broadcast.api.video/s"),
    SRT_SERVER,
    CUSTOM,
)


def preset_by_id(preset_id: str) -> Preset:
    """The preset with this id, else Custom."""
    return next((p for p in PRESETS if p.id == preset_id), CUSTOM)


def join_target(server: str, key: str) -> str:
    """`server/key`, or the server alone when it already is the whole URL."""
    server, key = server.strip(), key.strip()
    if not key:
        return server
    if server.lower().startswith("srt://"):
        # SRT has no application path: what follows the server is its query.
        return f"{server.rstrip('/')}?{key.lstrip('?')}"
    if key.startswith("?"):
        # A query straight after the application (`rtmp://host/app?token=...`).
        return f"{server.rstrip('/')}{key}"
    return f"{server.rstrip('/')}/{key.lstrip('/')}"


def guess_preset(url: str) -> tuple[Preset, str, str]:
    """The preset, server and key that give `url` back."""
    server, key = split_key(url)
    if url.lower().startswith("srt://"):
        return SRT_SERVER, server, key.lstrip("?")
    for preset in PRESETS:
        # (Facebook documents its server with a trailing slash.)
        if preset.server and server.rstrip("/") == preset.server.rstrip("/"):
            return preset, server, key
    return CUSTOM, server, key
