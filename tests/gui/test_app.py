"""`desktop-relay` without flags opens the window with the relay inside, and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..media import free_port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the app exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def test_window_serves_the_relay_and_quits_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        # Qt keeps user settings under XDG_CONFIG_HOME, the relay its certificate and token
        # under XDG_DATA_HOME: the user's own are never touched.
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "DESKTOP_RELAY_REPORT_SHOWN": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    args = [sys.executable, "-m", "desktop_relay", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--recordings-dir", str(tmp_path / "recordings")]
    log = (tmp_path / "app.log").open("wb")
    with log, subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT) as proc:
        try:
            wait_listening(port, proc)
            # By default the relay serves https with its own certificate.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            url = f"https://127.0.0.1:{port}/"
            with urllib.request.urlopen(url, timeout=5, context=context) as response:
                assert response.status == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, (tmp_path / "app.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "desktop-relay: window shown" in (tmp_path / "app.log").read_text()
    # The app logs to the platform's log folder (reachable from Help > Open log file).
    (log_file,) = (tmp_path / "state").rglob("*.log")
    assert "relay listening" in log_file.read_text()
    # Quitting saved the window's state in the (temporary) user settings.
    assert list((tmp_path / "config").rglob("*.ini")), (tmp_path / "app.log").read_text()
    token = (tmp_path / "data" / "desktop-relay" / "token").read_text().strip()
    assert not re.search(re.escape(token), (tmp_path / "app.log").read_text())


async def test_help_menu_reaches_the_log_file(open_window) -> None:  # type: ignore[no-untyped-def]
    from desktop_relay import paths

    async with open_window() as window:
        actions = {a.objectName(): a for a in window.help_menu.actions()}
        assert actions["openLogFileAction"].toolTip() == str(paths.log_file())
        assert actions["openLogFolderAction"].toolTip() == str(paths.log_file().parent)
