"""Unexpected errors logged anywhere in the app also reach the window's banner."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal


class _Relay(QObject):
    # A signal, because a record may be logged from another thread (an executor's): Qt queues
    # it to the window's thread instead of touching widgets from there.
    message = Signal(str)


class WindowLogHandler(logging.Handler):
    """Forwards ERROR records (session failures arrive as events, at WARNING) to a callback."""

    def __init__(self, callback: Callable[[str], None]) -> None:
        super().__init__(logging.ERROR)
        self._relay = _Relay()
        self._relay.message.connect(callback)

    def emit(self, record: logging.LogRecord) -> None:
        """Send the record's message (without traceback) to the window."""
        try:
            self._relay.message.emit(record.getMessage())
        except Exception:  # a logging handler must never raise into the caller
            self.handleError(record)


def install(callback: Callable[[str], None]) -> WindowLogHandler:
    """Attach a handler to the app's loggers; `uninstall` removes it."""
    handler = WindowLogHandler(callback)
    logging.getLogger("desktop_relay").addHandler(handler)
    return handler


def uninstall(handler: WindowLogHandler) -> None:
    """Detach a handler installed by `install`."""
    logging.getLogger("desktop_relay").removeHandler(handler)
