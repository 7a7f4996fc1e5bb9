"""`desktop-relay` with a window: Qt application, qasync loop, the relay inside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Collection
from dataclasses import replace

import qasync
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from .. import paths
from ..relay import RelayConfig
from . import log_bridge
from .destinations import DefaultOutputs, DestinationStore
from .help_menu import show_about
from .main_window import MainWindow
from .relay_controller import RelayController
from .settings import APPLICATION, ORGANIZATION, SettingsStore, apply_log_level
from .settings import command_line_overrides as _overrides
from .theme import ColorSchemeFollower


def startup_config(
    store: SettingsStore,
    command_line: RelayConfig,
    given: Collection[str] | None = None,
    destinations: DestinationStore | None = None,
) -> RelayConfig:
    """Saved settings and the enabled destinations, with what the command line gave on top
    (`given`: the fields it set explicitly; see settings.command_line_overrides). Targets
    given on the command line (`--rtmp-url`) replace the destinations, as a whole."""
    outputs = (destinations or DestinationStore(store)).defaults()
    saved = _with_destinations(store.load().to_config(RelayConfig()), outputs)
    merged = _overrides(saved, command_line, given)
    from_command_line = (
        "default_target" in given if given is not None else command_line.default_target is not None
    )
    if from_command_line:
        # Its targets as a whole: none of the destinations' extra targets or recording.
        return replace(merged, extra_targets=command_line.extra_targets, record=command_line.record)
    # Only `default_target` is a window setting there: the extra targets and `record` would
    # come from the command line (none) even when it named no target.
    return _with_destinations(merged, outputs)


def _with_destinations(config: RelayConfig, outputs: DefaultOutputs) -> RelayConfig:
    return config.with_targets(outputs.urls, record=outputs.record)


async def run_app(
    config: RelayConfig, store: SettingsStore, destinations: DestinationStore | None = None
) -> int:
    """Show the window, run the relay until the window closes or a signal arrives."""
    controller = RelayController(
        config,
        token_file=paths.data_dir() / "token",
        control_token_file=paths.control_token_file(),
    )
    window = MainWindow(controller, store, destinations=destinations)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    loop = asyncio.get_running_loop()
    # Without these, Ctrl-C is ignored under qasync (Qt's loop holds the thread).
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no add_signal_handler
            loop.add_signal_handler(sig, window.quit)
    handler = log_bridge.install(window.banner.report)
    report: asyncio.Future[None] | None = None
    try:
        window.show()
        if os.environ.get("DESKTOP_RELAY_REPORT_SHOWN"):
            # packaging/smoke_test.py times the packaged start-up by this line, and checks
            # that About finds the notices and the ffmpeg the package ships.
            print("desktop-relay: window shown", file=sys.stderr, flush=True)
            report = asyncio.ensure_future(_report_about(window))
        await controller.start()
        await closed.wait()
    finally:
        if report is not None:
            report.cancel()
        log_bridge.uninstall(handler)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
    return 0


async def _report_about(window: MainWindow) -> None:
    """Open Help > About, wait for its facts, print what it shows (for the smoke test)."""
    dialog = show_about(window)
    shown = asyncio.Event()
    dialog.facts_shown.connect(shown.set)
    if dialog.facts is None:
        await asyncio.wait_for(shown.wait(), 60)
    text = dialog.licences_text.toPlainText()
    found = [n for n in ("GNU GENERAL PUBLIC LICENSE", "GNU LESSER", "FFmpeg") if n in text]
    print(
        f"desktop-relay: about shows {len(text)} characters of notices with {found}; "
        f"ffmpeg: {dialog.ffmpeg_version.text()}",
        file=sys.stderr,
        flush=True,
    )
    dialog.close()


def run_window(config: RelayConfig, given: Collection[str] | None = None) -> int:
    """Entry point of the window; `config` comes from the command line, `given` names the
    fields it set explicitly (they win over saved settings)."""
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Desktop Relay")
    # Lets Wayland and the taskbar match the window to desktop-relay.desktop and its icon.
    app.setDesktopFileName(APPLICATION)
    icon = paths.app_icon_file()
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    # The window decides when the app ends: after the relay has stopped, not at close.
    app.setQuitOnLastWindowClosed(False)
    scheme = ColorSchemeFollower(app)  # light or dark as the desktop is, also when it changes
    store = SettingsStore.for_user()
    # Read once (a keyring may be slow): the start-up config and the window share it.
    destinations = DestinationStore(store)
    config = startup_config(store, config, given, destinations)
    apply_log_level(config.log_level)
    result: int = qasync.run(run_app(config, store, destinations))
    del scheme
    return result
