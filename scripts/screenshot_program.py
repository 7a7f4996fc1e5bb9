"""The README's picture of the Program panel: the real window offscreen at 1280x800, its relay
on 127.0.0.1 with the program on (to a local `ffmpeg -listen` RTMP receiver), two live
sources sent as browsers send them (tests/program/captures.py: red and blue), red taken and
blue on preview.

    .venv/bin/python scripts/screenshot_program.py docs/screenshot-program.png
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import qasync  # type: ignore[import-untyped]  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_relay.gui.main_window import MainWindow  # noqa: E402
from desktop_relay.gui.relay_controller import RelayController  # noqa: E402
from desktop_relay.gui.settings import SettingsStore  # noqa: E402
from desktop_relay.relay import RelayConfig  # noqa: E402
from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg  # noqa: E402
from desktop_relay.relay.security.keystore import KeyStore  # noqa: E402
from tests.media import start_receiver  # noqa: E402
from tests.program.captures import make_all  # noqa: E402
from tests.replay import Streamer  # noqa: E402

NAMES = {"red": "Stage (red)", "blue": "Guest (blue)"}


async def until(predicate: object, timeout: float, what: str) -> None:
    """Wait until `predicate()` holds (Qt's events flow: the loop is Qt's)."""
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s")
        await asyncio.sleep(0.1)


async def shoot(folder: Path, path: Path) -> None:
    ffmpeg = resolve_ffmpeg()
    captures = make_all(ffmpeg, folder)
    receiver = start_receiver(ffmpeg, folder, "program-screenshot-key")
    config = RelayConfig(
        host="127.0.0.1",
        port=0,
        recordings_dir=folder / "recordings",
        log_level="WARNING",
        program_targets=(receiver.url,),
        control_token="screenshotcontroltoken0123456789",
    )
    store = SettingsStore(
        QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
        KeyStore(folder / "keys.json", use_keyring=False),
    )
    controller = RelayController(config)
    controller.action_failed.connect(lambda message: print(f"failed: {message}"))
    window = MainWindow(controller, store)
    window.resize(1280, 800)
    window.show()
    streamers: list[Streamer] = []
    replays: list[asyncio.Task[int]] = []
    try:
        assert await controller.start(), "the relay did not start"
        port = controller.listen_address[1] if controller.listen_address else 0
        ids = {}
        for colour in ("red", "blue"):
            streamer = await Streamer(f"http://127.0.0.1:{port}").connect()
            assert await streamer.start({"framerate": 30, "name": NAMES[colour]})
            streamers.append(streamer)
            replays.append(asyncio.create_task(streamer.replay(captures[colour])))

        def program_live() -> bool:
            status = controller.program_status()
            live = [s for s in status.sources if s.state == "live"] if status else []
            return bool(status and status.live and len(live) == 2)

        await until(program_live, 30, "program with two live sources")
        status = controller.program_status()
        assert status is not None
        ids = {s.name: s.id for s in status.sources}
        controller.program_take(ids[NAMES["red"]])
        await until(lambda: (s := controller.program_status()) and s.source, 10, "take")
        controller.program_preview(ids[NAMES["blue"]])
        panel = window.program_panel
        await until(
            lambda: (
                panel.program_monitor.image is not None
                and panel.preview_monitor.image is not None
                and "live" in panel.destinations_label.text()
                and all(r.thumbnail is not None for r in window.model.rows())
            ),
            20,
            "both monitors, the rows' pictures and the destination live",
        )
        window.view.select_session(ids[NAMES["red"]])
        await asyncio.sleep(1.5)  # a refresh or two: counters, sound levels
        path.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(path))
        print(f"screenshot: {path} ({window.width()}x{window.height()})")
    finally:
        for task in replays:
            task.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
        for streamer in streamers:
            await streamer.close()
        window.quit()
        await until(lambda: not window.isVisible(), 30, "the window closed")
        receiver.close()


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-program.png")
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    with tempfile.TemporaryDirectory(prefix="screenshot-program-") as tmp:
        qasync.run(shoot(Path(tmp), path.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
