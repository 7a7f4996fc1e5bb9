"""The Help menu: the app's log file and folder, and what version runs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox

from .. import __version__, paths


def log_file() -> Path:
    """The log file of this run (where paths.setup_logging writes)."""
    return paths.log_file()


def _open(path: Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def add_help_menu(window: QMainWindow) -> QMenu:
    """Add Help → Open log file / Open log folder / About to `window`'s menu bar."""
    menu = window.menuBar().addMenu("&Help")
    open_file = QAction("Open log file", window)
    open_file.setObjectName("openLogFileAction")
    open_file.setToolTip(str(log_file()))
    open_file.triggered.connect(lambda: _open(log_file()))
    open_folder = QAction("Open log folder", window)
    open_folder.setObjectName("openLogFolderAction")
    open_folder.setToolTip(str(log_file().parent))
    open_folder.triggered.connect(lambda: _open(log_file().parent))
    about = QAction("About Desktop Relay", window)
    about.triggered.connect(
        lambda: QMessageBox.about(
            window,
            "About Desktop Relay",
            f"Desktop Relay {__version__}\n\nBrowsers on your network stream to RTMP(S) "
            f"through ffmpeg.\n\nLog file: {log_file()}",
        )
    )
    menu.addActions([open_file, open_folder])
    menu.addSeparator()
    menu.addAction(about)
    return menu
