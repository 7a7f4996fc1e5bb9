"""GUI fixtures: tests under tests/gui run on qasync's loop (Qt's), with a window and a relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.relay_controller import RelayController
from desktop_relay.gui.settings import SettingsStore
from desktop_relay.relay import RelayConfig
from desktop_relay.relay.security.keystore import KeyStore

from ..procs import ffmpeg_descendants
from .helpers import until


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Coroutine tests here run on qasync's loop, so Qt timers and asyncio share one loop.

    pytest-asyncio asks `item.ihook`, which only sees this conftest for items below
    tests/gui: every other test keeps the plain asyncio loop.
    """

    def make_loop() -> asyncio.AbstractEventLoop:
        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication([])
        # As in the app: closing the last window must not quit Qt's loop, which is also
        # asyncio's here (the test would end with "Event loop stopped before Future...").
        app.setQuitOnLastWindowClosed(False)
        loop: asyncio.AbstractEventLoop = qasync.QEventLoop(app)
        return loop

    return {"qasync": make_loop}


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    """The test's own settings file (never the user's)."""
    return tmp_path / "settings" / "desktop-relay.ini"


@pytest.fixture
def settings_store(settings_path: Path) -> SettingsStore:
    """A SettingsStore over a temporary INI file."""
    return make_store(settings_path)


def make_store(path: Path) -> SettingsStore:
    """A SettingsStore over `path` (a new one reads what an earlier one saved); stream keys
    go to a file beside it, never to the user's keyring."""
    keys = KeyStore(path.with_name("stream-keys.json"), use_keyring=False)
    return SettingsStore(QSettings(str(path), QSettings.Format.IniFormat), keys)


@pytest.fixture
def relay_config(tmp_path: Path) -> RelayConfig:
    """Loopback, any free port, recordings in the test's folder."""
    return RelayConfig(host="127.0.0.1", port=0, recordings_dir=tmp_path / "recordings")


@pytest.fixture
def open_window(
    qapp: QApplication, settings_store: SettingsStore, relay_config: RelayConfig
) -> Iterator[Callable[..., AbstractAsyncContextManager[MainWindow]]]:
    """`async with open_window() as window:` shows a MainWindow whose relay is listening,
    and quits it (sessions stopped gracefully) when the block ends.

    The window must close inside the test's coroutine: pytest-qt processes Qt events between
    the test and its fixtures' teardown, outside asyncio's running loop, and asyncio work
    still pending then (a disconnect handler, a timer) would fail with "no running event
    loop". At teardown, no ffmpeg of the window's relays may be left running.
    """
    before = set(ffmpeg_descendants())

    @contextlib.asynccontextmanager
    async def make(
        config: RelayConfig | None = None, store: SettingsStore | None = None
    ) -> AsyncIterator[MainWindow]:
        controller = RelayController(config or relay_config)
        window = MainWindow(controller, store or settings_store)
        window.show()
        try:
            assert await controller.start(), "the relay did not start"
            yield window
        finally:
            await close_window(window)

    yield make
    left = {
        pid: cmd
        for pid, cmd in ffmpeg_descendants().items()
        if pid not in before and "-listen" not in cmd
    }
    assert not left, f"the window left ffmpeg running: {left}"


async def close_window(window: MainWindow, timeout: float = 30.0) -> None:
    """Quit a window without questions and wait until its relay has stopped."""
    window.quit()
    await until(lambda: not window.isVisible(), timeout, "the window to close")
    # Let the relay's last callbacks (socket closes) run while asyncio's loop still runs.
    await asyncio.sleep(0.1)
    window.deleteLater()
