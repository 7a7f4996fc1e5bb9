"""Where the installed app keeps its logs, data and settings: the platform's own folders."""

from __future__ import annotations

import logging
import sys
import tempfile
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path

import platformdirs

from .relay.security.private_files import private_dir, private_opener, tighten

APP_NAME = "desktop-relay"
LOG_FILE_NAME = "desktop-relay.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# A live session logs a few lines a second at INFO: 2 MB keeps hours, 3 backups keep days.
LOG_MAX_BYTES = 2 * 1024 * 1024
LOG_BACKUPS = 3

# Marks the handlers setup_logging added, so a second call replaces them instead of doubling
# every line (tests and the window may call it again).
_OWNED = "_desktop_relay_handler"


def _dirs() -> platformdirs.PlatformDirs:
    # appauthor=False: no vendor folder level on Windows (%LOCALAPPDATA%\desktop-relay\...).
    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def log_dir() -> Path:
    """The folder of the app's log files (~/.local/state/desktop-relay/log on Linux)."""
    return Path(_dirs().user_log_dir)


def log_file() -> Path:
    """The app's current log file (older ones sit beside it as .1, .2, ...)."""
    return log_dir() / LOG_FILE_NAME


def data_dir() -> Path:
    """The folder of the app's own data (~/.local/share/desktop-relay on Linux)."""
    return Path(_dirs().user_data_dir)


def control_token_file() -> Path:
    """Where the control API's token is kept (0600, beside the pairing token): the command
    line reads it and the window's rotation writes it, so both use one token."""
    return data_dir() / "control-token"


def config_dir() -> Path:
    """The folder of the app's settings (~/.config/desktop-relay on Linux)."""
    return Path(_dirs().user_config_dir)


def resource_dir() -> Path | None:
    """The `resources/` folder (icon, .desktop file): bundled when frozen, the repo's otherwise.

    None when neither exists (an installed wheel ships no resources).
    """
    bundle = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's bootloader
    candidates = [Path(bundle) / "resources"] if bundle else []
    candidates.append(Path(__file__).resolve().parent.parent / "resources")
    return next((c for c in candidates if c.is_dir()), None)


def app_icon_file() -> Path | None:
    """The app's SVG icon, if shipped."""
    folder = resource_dir()
    icon = folder / "desktop-relay.svg" if folder else None
    return icon if icon is not None and icon.is_file() else None


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log whose files only the user may read: logs name the streamers'
    addresses, session names and targets. Each rotation makes the file anew, hence here."""

    def _open(self) -> TextIOWrapper:
        stream = open(  # noqa: SIM115 (the handler owns and closes it)
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=private_opener,
        )
        assert isinstance(stream, TextIOWrapper)  # text mode ("a"): for the type checker
        return stream


def _open_log(path: Path) -> RotatingFileHandler:
    # 0700 folder; raises (so the next candidate is tried) when it cannot be made private,
    # for example a temporary folder of the same name that another user owns.
    private_dir(path.parent)
    # Backups an older version left readable by others.
    for backup in range(1, LOG_BACKUPS + 1):
        tighten(path.with_name(f"{path.name}.{backup}"))
    # Not delayed: the file exists from the start, so the window can open it at once.
    return _PrivateRotatingFileHandler(
        path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )


def setup_logging(level: str | int = "INFO") -> Path:
    """Log to stderr and to a rotating file in the log folder; returns the file's path.

    The log files are 0600 and their folder 0700 (on POSIX), also when an older version
    left them open to others.

    When the log folder cannot be written (read-only home, full disk), the file goes to the
    temporary folder instead, and if that fails too, logging goes to stderr only.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OWNED, False)]:
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    stderr = logging.StreamHandler()
    handlers: list[logging.Handler] = [stderr]
    path = log_file()
    problem: OSError | None = None
    for candidate in (path, Path(tempfile.gettempdir()) / APP_NAME / LOG_FILE_NAME):
        try:
            handlers.append(_open_log(candidate))
        except OSError as exc:
            problem = problem or exc
            continue
        path = candidate
        break
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _OWNED, True)
        root.addHandler(handler)
    root.setLevel(level)
    if problem is not None:
        logging.getLogger(__name__).warning("cannot write the log folder: %s", problem)
    return path
