"""A small synchronous event emitter: the relay's way to tell observers (the window, a
headless log, tests) what happens, without knowing who they are."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Event names and their callback arguments:
#   "connection"    (status: SessionStatus)             a socket connected
#   "ffmpegOutput"  (session_id: str, line: str)        one line of a session's ffmpeg log
#   "log"           (session_id: str, message: str)     a relay event about one session
#   "error"         (session_id: str, error: ServerError)
#   "destroyed"     (session_id: str, status: SessionStatus)  final snapshot
#   "stats"         (statuses: list[SessionStatus])     every `stats_interval` seconds
#   "refused"       (remote_address: str, error: ServerError)  a socket refused at connect
#   "waiting"       (session_id: str, status: SessionStatus)  its socket was lost: the session
#                                                       waits for a resume (grace period)
#   "resumed"       (session_id: str, status: SessionStatus)  a new socket took it over
EVENTS = frozenset(
    {
        "connection",
        "ffmpegOutput",
        "log",
        "error",
        "destroyed",
        "stats",
        "refused",
        "waiting",
        "resumed",
    }
)


class EventEmitter:
    """Callbacks run synchronously in the relay's loop; one that raises is logged, not fatal."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def add_listener(self, event: str, callback: Callable[..., Any]) -> None:
        """Call `callback` on every `event` (see EVENTS for the arguments)."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; known: {sorted(EVENTS)}")
        self._listeners[event].append(callback)

    on = add_listener

    def remove_listener(self, event: str, callback: Callable[..., Any]) -> None:
        """Stop calling `callback` for `event`."""
        if callback in self._listeners.get(event, []):
            self._listeners[event].remove(callback)

    def has_listeners(self, event: str) -> bool:
        """Whether anything listens to `event` (to skip building unused payloads)."""
        return bool(self._listeners.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Call every listener of `event` with `args`."""
        for callback in list(self._listeners.get(event, [])):
            try:
                callback(*args)
            except Exception:
                log.exception("listener for %s failed", event)
