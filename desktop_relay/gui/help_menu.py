"""The Help menu: the app's log file and folder, and About (version, ffmpeg, licences)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMenu

from .. import paths
from ..relay import RelayConfig
from .about_dialog import AboutDialog
from .relay_controller import RelayController


def log_file() -> Path:
    """The log file of this run (where paths.setup_logging writes)."""
    return paths.log_file()


def _open(path: Path) -> bool:
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def relay_config_of(window: QMainWindow) -> RelayConfig:
    """The config of the relay `window` runs (its controller's), else the defaults."""
    controller = getattr(window, "controller", None)
    return controller.config if isinstance(controller, RelayController) else RelayConfig()


def settings_file_of(window: QMainWindow) -> Path | None:
    """Where the window's settings store writes, if it says."""
    store = getattr(window, "store", None)
    path = getattr(store, "path", None)
    if isinstance(path, str | Path):
        return Path(path)
    qsettings = getattr(store, "qsettings", None)
    return Path(qsettings.fileName()) if isinstance(qsettings, QSettings) else None


def show_about(window: QMainWindow) -> AboutDialog:
    """Open the About dialog (non-modal), or raise the one already open."""
    dialog = window.findChild(AboutDialog)
    if dialog is None or not dialog.isVisible():  # a closed one is being deleted
        dialog = AboutDialog(relay_config_of(window), settings_file_of(window), window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


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
    about.setObjectName("aboutAction")
    about.setMenuRole(QAction.MenuRole.AboutRole)  # macOS: in the application menu
    about.triggered.connect(lambda: show_about(window))
    menu.addActions([open_file, open_folder])
    menu.addSeparator()
    menu.addAction(about)
    return menu
