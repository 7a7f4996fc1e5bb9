"""A small synchronous event emitter: the relay's way to tell observers (the window, a
headless log, tests) what happens, without knowing who they are.

Each event has one name, the same everywhere: the `RelayObserver` method (observer.py), the
window's Qt signal, the session's and the pipeline's callbacks, and the string given to
`Relay.add_listener`. The original server's names stay as documented aliases for library
users (`ALIASES`), with the arguments the original passed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Event names and their callback arguments (those of the RelayObserver method):
#   "session_opened"     (status: SessionStatus)              a client connected
#   "session_changed"    (status: SessionStatus)              its state changed
#   "session_waiting"    (status: SessionStatus)              its socket was lost: the session
#                                                             waits for a resume (grace period)
#   "session_resumed"    (status: SessionStatus)              a new socket took it over
#   "session_ended"      (status: SessionStatus)              final snapshot; the relay forgot it
#   "output_changed"     (session_id: str, status: OutputStatus)
#   "session_log"        (session_id: str, message: str)      a relay event about one session
#   "ffmpeg_output"      (session_id: str, line: str)         one line of its ffmpeg logs
#   "session_error"      (session_id: str, error: ServerError)
#   "connection_refused" (remote_address: str, error: ServerError)  refused at connect
#   "stats"              (statuses: list[SessionStatus])      every `stats_interval` seconds
#   "thumbnail"          (session_id: str, thumbnail: Thumbnail)
#   "program_changed"    (status: ProgramStatus)              a take, the slate, a source...
#   "program_picture"    (which: str, thumbnail: Thumbnail)   "program" or "preview", 4 a second
EVENTS = frozenset(
    {
        "session_opened",
        "session_changed",
        "session_waiting",
        "session_resumed",
        "session_ended",
        "output_changed",
        "session_log",
        "ffmpeg_output",
        "session_error",
        "connection_refused",
        "stats",
        "thumbnail",
        "program_changed",
        "program_picture",
    }
)


def _same(*args: Any) -> tuple[Any, ...]:
    return args


def _id_and_status(status: Any) -> tuple[Any, ...]:
    return (status.uuid, status)


# The original server's names (@api.video/browser-to-rtmp-server): the event each stands for,
# and how that event's arguments become the ones the original passed.
ALIASES: dict[str, tuple[str, Callable[..., tuple[Any, ...]]]] = {
    "connection": ("session_opened", _same),
    "ffmpegOutput": ("ffmpeg_output", _same),
    "log": ("session_log", _same),
    "error": ("session_error", _same),
    "destroyed": ("session_ended", _id_and_status),
    "refused": ("connection_refused", _same),
    "waiting": ("session_waiting", _id_and_status),
    "resumed": ("session_resumed", _id_and_status),
}


class EventEmitter:
    """Callbacks run synchronously in the relay's loop; one that raises is logged, not fatal."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = defaultdict(list)
        # (alias, callback) -> the wrapper registered for it, so that it can be removed.
        self._wrappers: dict[tuple[str, Callable[..., Any]], Callable[..., Any]] = {}

    def add_listener(self, event: str, callback: Callable[..., Any]) -> None:
        """Call `callback` on every `event` (see EVENTS and ALIASES for the arguments)."""
        if event in ALIASES:
            name, adapt = ALIASES[event]

            def wrapper(*args: Any) -> Any:
                return callback(*adapt(*args))

            self._wrappers[(event, callback)] = wrapper
            self._listeners[name].append(wrapper)
            return
        if event not in EVENTS:
            known = sorted(EVENTS | ALIASES.keys())
            raise ValueError(f"unknown event {event!r}; known: {known}")
        self._listeners[event].append(callback)

    on = add_listener

    def remove_listener(self, event: str, callback: Callable[..., Any]) -> None:
        """Stop calling `callback` for `event`."""
        if event in ALIASES:
            wrapper = self._wrappers.pop((event, callback), None)
            event, callback = ALIASES[event][0], wrapper  # type: ignore[assignment]
        if callback in self._listeners.get(event, []):
            self._listeners[event].remove(callback)

    def has_listeners(self, event: str) -> bool:
        """Whether anything listens to `event` (to skip building unused payloads)."""
        return bool(self._listeners.get(ALIASES[event][0] if event in ALIASES else event))

    def emit(self, event: str, *args: Any) -> None:
        """Call every listener of `event` with `args` (aliases' listeners with theirs)."""
        for callback in list(self._listeners.get(event, [])):
            try:
                callback(*args)
            except Exception:
                log.exception("listener for %s failed", event)
