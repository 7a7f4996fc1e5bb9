"""How observers (the window, the headless printer, tests) hear what the relay does: one typed
protocol, a method per event, checked by mypy. Each method's name is the event's one name,
also as a string for `Relay.add_listener`; the original server's string names stay available
as aliases for library users (events.py)."""

from __future__ import annotations

import logging
from typing import Protocol

from .errors import ServerError
from .events import EventEmitter
from .outputs.thumbnails import Thumbnail
from .program.show import ProgramStatus
from .status import OutputStatus, SessionStatus

log = logging.getLogger(__name__)


class RelayObserver(Protocol):
    """Everything the relay reports, each with a frozen snapshot (never a live object).

    Called synchronously on the relay's event loop: keep them short (the window queues a
    repaint; it does no I/O here). Each method does nothing by default, so BaseObserver
    (an explicit subclass) ignores every event.
    """

    def session_opened(self, status: SessionStatus) -> None:
        """A client connected: its session exists (not started yet)."""
        return None

    def session_changed(self, status: SessionStatus) -> None:
        """A session's state changed (starting, live, waiting, ending, failed, ended...)."""
        return None

    def session_waiting(self, status: SessionStatus) -> None:
        """A streaming session lost its client and waits for it to resume."""
        return None

    def session_resumed(self, status: SessionStatus) -> None:
        """A new connection took a session over with its resume token."""
        return None

    def session_ended(self, status: SessionStatus) -> None:
        """The relay forgot a session; `status` is its final snapshot."""
        return None

    def output_changed(self, session_id: str, status: OutputStatus) -> None:
        """One destination of a session changed state (live, reconnecting in N s, failed)."""
        return None

    def session_log(self, session_id: str, message: str) -> None:
        """A relay event about one session, for the operator's log."""
        return None

    def ffmpeg_output(self, session_id: str, line: str) -> None:
        """One (masked) line of a session's ffmpeg logs."""
        return None

    def session_error(self, session_id: str, error: ServerError) -> None:
        """An error of one session (fatal or not) as its client hears it."""
        return None

    def connection_refused(self, remote_address: str, error: ServerError) -> None:
        """A client refused before it had a session (token, limits, protocol)."""
        return None

    def stats(self, statuses: list[SessionStatus]) -> None:
        """Every `stats_interval` seconds: every session's snapshot."""
        return None

    def thumbnail(self, session_id: str, thumbnail: Thumbnail) -> None:
        """A new picture of a live session (only while `Relay.set_thumbnails(True)`; about
        one per keyframe, at most one a second)."""
        return None

    def program_changed(self, status: ProgramStatus) -> None:
        """What the program shows changed (a take, the slate, a source or an output)."""
        return None

    def program_picture(self, which: str, thumbnail: Thumbnail) -> None:
        """A small picture of the program (`which` "program") or of the source on preview
        ("preview"), a few a second while thumbnails are on (`Relay.set_thumbnails`)."""
        return None


class BaseObserver(RelayObserver):
    """A RelayObserver that ignores everything: subclass it and override what you need."""


class Observable(EventEmitter):
    """Typed observers plus the original's named events, fed from one place.

    The relay calls `_notify(event, ...)`, which tells every observer (one that raises is
    logged, never fatal) and every listener of the event (and of its original alias).
    """

    def __init__(self) -> None:
        super().__init__()
        self._observers: list[RelayObserver] = []

    def add_observer(self, observer: RelayObserver) -> None:
        """Tell `observer` about everything from now on."""
        self._observers.append(observer)

    def remove_observer(self, observer: RelayObserver) -> None:
        """Stop telling `observer`."""
        if observer in self._observers:
            self._observers.remove(observer)

    def _each(self, method: str, *args: object) -> None:
        for observer in list(self._observers):
            try:
                getattr(observer, method)(*args)
            except Exception:
                log.exception("observer %r failed in %s", observer, method)

    def _notify(self, event: str, *args: object) -> None:
        """Tell every observer (its method named `event`) and every listener of `event`."""
        self._each(event, *args)
        self.emit(event, *args)

    def _wants_stats(self) -> bool:
        return bool(self._observers) or self.has_listeners("stats")
