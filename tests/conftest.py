"""Fixtures shared by every test: real RTMP receivers, running relays, the ffmpeg-leak check."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg

from .media import SECRETS, RtmpReceiver, find_leaks, require_tool, start_receiver
from .procs import ffmpeg_descendants
from .replay import CLIENT_MESSAGES
from .rtmp_server import nginx_rtmp  # noqa: F401  (a session-wide fixture)


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    """The ffmpeg the relay uses (imageio-ffmpeg's bundled one, else PATH)."""
    return resolve_ffmpeg()


@pytest.fixture(scope="session", autouse=True)
def no_ffmpeg_left() -> Iterator[None]:
    """The suite must end with no ffmpeg process of ours still running."""
    yield
    left = ffmpeg_descendants()
    assert not left, f"ffmpeg processes left running: {left}"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def no_stream_key_leaks() -> Iterator[_Collect]:
    """No stream key handed to any test appears whole in the relay's logs (every level) or
    in anything a relay sent a test client, over the whole run."""
    handler = _Collect()
    logger = logging.getLogger("desktop_relay")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)
    leaks = find_leaks(handler.messages + CLIENT_MESSAGES, SECRETS)
    assert not leaks, f"stream keys leaked: {leaks[:5]}"


@pytest.fixture
def rtmp_receiver(ffmpeg_exe: str, tmp_path: Path) -> Iterator[Callable[..., RtmpReceiver]]:
    """Factory: `rtmp_receiver()` starts a real RTMP server (ffmpeg -listen 1) on 127.0.0.1."""
    require_tool("ffprobe")
    receivers: list[RtmpReceiver] = []

    def make(key: str = "streamkey-0123456789") -> RtmpReceiver:
        receiver = start_receiver(ffmpeg_exe, tmp_path, key)
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:
        receiver.close()


@pytest.fixture
async def running_relay(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Async factory: `await running_relay(RelayConfig(...))` serves on 127.0.0.1, port 0.

    Recordings go to the test's temporary folder. Every relay is stopped at teardown, and
    then none of its ffmpeg processes may still run.
    """
    relays: list[RelayServer] = []

    async def make(config: RelayConfig | None = None) -> RelayServer:
        config = replace(
            config or RelayConfig(),
            # Every line reaches the run-wide stream-key leak check.
            log_level="DEBUG",
            host="127.0.0.1",
            port=0,
            recordings_dir=(config.recordings_dir if config and config.recordings_dir
                            else tmp_path / "recordings"),
        )
        relay = RelayServer(config)
        await relay.start()
        relays.append(relay)
        return relay

    before = set(ffmpeg_descendants())
    yield make
    for relay in relays:
        await relay.stop()
    left = {pid: cmd for pid, cmd in ffmpeg_descendants().items()
            if pid not in before and "-listen" not in cmd}
    assert not left, f"relay left ffmpeg running after stop(): {left}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow real-time media tests first, so xdist spreads them over both workers early."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("media") else 1)


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
