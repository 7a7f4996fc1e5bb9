"""Per-session log lines (ffmpeg output and relay events), bounded, kept after the session ends.

Qt-free: the relay's callbacks append here cheaply, and the log pane polls for what is new,
so a chatty ffmpeg costs a deque append per line rather than a widget update.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

MAX_LINES = 5000


class LineKind(StrEnum):
    """Where a line came from; the pane can filter on it."""

    FFMPEG = "ffmpeg"
    RELAY = "relay"
    ERROR = "error"


@dataclass(frozen=True)
class LogLine:
    """One line of a session's log."""

    at: float  # epoch seconds
    kind: LineKind
    text: str

    def format(self) -> str:
        """`12:03:04.120 [ffmpeg] frame=...`"""
        stamp = time.strftime("%H:%M:%S", time.localtime(self.at))
        millis = int((self.at % 1) * 1000)
        return f"{stamp}.{millis:03d} [{self.kind}] {self.text}"


class _SessionLog:
    def __init__(self, max_lines: int) -> None:
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.total = 0  # lines ever appended: lets a reader ask for "what is new"


class LogStore:
    """The last `max_lines` lines of every session the window still shows."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.max_lines = max_lines
        self._logs: dict[str, _SessionLog] = {}

    def append(self, session_id: str, kind: LineKind, text: str, at: float | None = None) -> None:
        """Add one line (multi-line text is split so that filters work per line)."""
        log = self._logs.get(session_id)
        if log is None:
            log = self._logs[session_id] = _SessionLog(self.max_lines)
        stamp = time.time() if at is None else at
        for part in text.splitlines() or [""]:
            log.lines.append(LogLine(stamp, kind, part))
            log.total += 1

    def lines(self, session_id: str) -> list[LogLine]:
        """Every kept line of a session, oldest first."""
        log = self._logs.get(session_id)
        return list(log.lines) if log else []

    def total(self, session_id: str) -> int:
        """How many lines were ever appended for a session."""
        log = self._logs.get(session_id)
        return log.total if log else 0

    def since(self, session_id: str, seen_total: int) -> list[LogLine] | None:
        """Lines appended after a reader had seen `seen_total`; None if some were dropped
        in between (the reader must then start again from `lines()`)."""
        log = self._logs.get(session_id)
        if log is None:
            return [] if seen_total == 0 else None
        new = log.total - seen_total
        if new < 0 or new > len(log.lines):
            return None
        if new == 0:
            return []
        return list(log.lines)[-new:]

    def forget(self, session_id: str) -> None:
        """Drop a dismissed session's lines."""
        self._logs.pop(session_id, None)
