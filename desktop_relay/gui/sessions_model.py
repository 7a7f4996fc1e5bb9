"""The sessions table's model: rows of `SessionStatus` snapshots, refreshed on a timer.

The relay forgets a session when its socket goes; this model keeps it (as ended or failed, with
its final snapshot) until the operator dismisses it, so a failure's reason stays visible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor

from ..relay import ErrorName, HealthCheck, OutputState, OutputStatus, SessionState, SessionStatus
from .formatting import format_duration, format_fps, format_kbps, format_level, format_speed
from .user_agent import describe_user_agent

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
UUID_ROLE = Qt.ItemDataRole.UserRole + 2

_ACTIVE = (SessionState.STARTING, SessionState.LIVE, SessionState.ENDING)
# Semi-transparent so that they read on light and dark palettes alike.
_FAILED_BACKGROUND = QColor(220, 50, 47, 45)
_FAILED_TEXT = QColor(200, 30, 30)
_LIVE_TEXT = QColor(30, 140, 60)
_STARTING_TEXT = QColor(190, 120, 0)
_ENDED_TEXT = QColor(128, 128, 128)
_WARN_TEXT = QColor(200, 110, 0)

Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_BACKGROUND = Qt.ItemDataRole.BackgroundRole
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_ROOT = QModelIndex()


class Column(IntEnum):
    """The table's columns, in display order."""

    SESSION = 0
    CLIENT = 1
    STATE = 2
    TARGET = 3
    FRAMES = 4
    FPS = 5
    BITRATE = 6
    SPEED = 7
    DROPPED = 8
    LIVE = 9
    AUDIO = 10


HEADERS = {
    Column.SESSION: "Session",
    Column.CLIENT: "Client",
    Column.STATE: "State",
    Column.TARGET: "Target",
    Column.FRAMES: "Frames",
    Column.FPS: "FPS",
    Column.BITRATE: "Bitrate",
    Column.SPEED: "Speed",
    Column.DROPPED: "Dropped",
    Column.LIVE: "Live",
    Column.AUDIO: "Audio",
}

_COLUMNS = len(Column)  # Enum.__len__ is slow enough to show in a paint profile
_NUMERIC = frozenset(
    {Column.FRAMES, Column.FPS, Column.BITRATE, Column.SPEED, Column.DROPPED, Column.LIVE}
)
_ROLES = frozenset({_DISPLAY, _FOREGROUND, _BACKGROUND, _ALIGNMENT, _TOOLTIP, SORT_ROLE, UUID_ROLE})


@dataclass
class SessionRow:
    """One row: the latest snapshot plus what the window derives or must remember."""

    status: SessionStatus
    ended: bool = False
    live_s: float = 0.0  # the longest uptime seen: the final snapshot no longer has one
    ingest_kbps: float = 0.0  # from bytes received between refreshes
    outgoing_kbps: float = 0.0  # from bytes every output sent between refreshes
    sampled_out_bytes: int = 0
    sampled_bytes: int = 0
    sampled_at: float = 0.0
    # What the view asks for on every paint, computed once per snapshot: a repaint then
    # costs list look-ups, not Python formatting (16 rows x 10 columns x several roles).
    texts: list[str] = field(default_factory=list)
    colours: list[QColor | None] = field(default_factory=list)
    background: QColor | None = None
    client: str = ""  # "Chrome 126 on Android": the user agent never changes

    @property
    def failed(self) -> bool:
        """Ended (or stopped) on an error other than the operator's own kill."""
        error = self.status.error
        return (
            self.status.state == SessionState.FAILED
            and error is not None
            and error.name != ErrorName.KILLED_BY_OPERATOR
        )

    @property
    def active(self) -> bool:
        """Streaming or about to: counts as live for the status bar and the close question."""
        return not self.ended and self.status.state in _ACTIVE


def state_label(row: SessionRow) -> str:
    """What the State column says, with the reason of a failure."""
    status = row.status
    error = status.error
    if status.state == SessionState.FAILED and error is not None:
        if error.name == ErrorName.KILLED_BY_OPERATOR:
            return "killed"
        return f"failed: {error.message}"
    if row.ended:
        return "ended"
    if status.state == SessionState.CONNECTED:
        return "connected" if status.started_at is None else "stopped"
    if status.state == SessionState.WAITING:
        return "waiting for browser"
    label = str(status.state)
    down = [o for o in status.outputs if o.state in (OutputState.RECONNECTING, OutputState.FAILED)]
    if down and status.state in _ACTIVE:
        label += " · " + outputs_down_label(status.outputs, down)
    return label + resume_label(status) + health_label(status)


def health_label(status: SessionStatus) -> str:
    """` · ⚠ no audio`, ` · ⚠ 2 warnings`: what the stream's health checks found (the
    tooltip has their sentences)."""
    found = status.health
    if not found:
        return ""
    if len(found) == 1:
        return f" · \u26a0 {str(found[0].check).replace('_', ' ')}"
    return f" · \u26a0 {len(found)} warnings"


def audio_label(status: SessionStatus) -> str:
    """The Audio column: a level bar and the RMS level, `silent 12 s`, or `no audio`."""
    if any(w.check == HealthCheck.NO_AUDIO for w in status.health):
        return "no audio"
    level = status.audio
    if level is None:
        return ""
    if level.silent_s >= 1.0:
        return f"{format_level(level.rms_db)} silent {level.silent_s:.0f} s"
    return format_level(level.rms_db)


def resume_label(status: SessionStatus) -> str:
    """` · 2 reconnects · 4 s skipped`: the browser's reconnections, and what the audience
    missed while the live outputs caught up (empty for a session never resumed)."""
    if not status.resumes:
        return ""
    plural = "s" if status.resumes > 1 else ""
    text = f" · {status.resumes} reconnect{plural}"
    skipped = status.skipped_s
    if skipped >= 0.5:
        text += f" · {skipped:.0f} s skipped"
    return text


def outputs_down_label(outputs: tuple[OutputStatus, ...], down: list[OutputStatus]) -> str:
    """Short, such as `1/2 outputs retrying in 4 s`: the State column is narrow (the Target
    column's tooltip has each output's state and reason)."""
    which = "output" if len(outputs) == 1 else f"{len(down)}/{len(outputs)} outputs"
    failed = [o for o in down if o.state == OutputState.FAILED]
    if failed and len(failed) == len(down):
        return f"{which} failed"
    waits = [o.next_attempt_in_s for o in down if o.next_attempt_in_s is not None]
    when = f" in {min(waits):.0f} s" if waits else ""
    return f"{which} retrying{when}"


def session_label(status: SessionStatus) -> str:
    """The session's name from the browser, else the start of its id."""
    return status.name or status.uuid[:8]


class SessionsModel(QAbstractTableModel):
    """Snapshots in, rows out; `dataChanged` only for rows whose snapshot changed."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[SessionRow] = []
        self._index: dict[str, int] = {}

    # ---- Qt model API ----------------------------------------------------------------

    # Qt's camelCase names: these override QAbstractTableModel's virtual methods.
    def rowCount(self, parent: Index = _ROOT) -> int:
        """Number of sessions shown."""
        # Qt asks this (and columnCount) thousands of times per paint, through the proxy.
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = _ROOT) -> int:
        """Number of columns."""
        return 0 if parent.isValid() else _COLUMNS

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        """A cell's text, sort key, colour, tooltip or the row's session id."""
        # Called for every role of every visible cell on each paint: cheapest checks first.
        if role not in _ROLES:
            return None
        position, column = index.row(), index.column()
        if not 0 <= position < len(self._rows) or not 0 <= column < _COLUMNS:
            return None
        row = self._rows[position]
        if role == _DISPLAY:
            return row.texts[column]
        if role == _FOREGROUND:
            return row.colours[column]
        if role == _BACKGROUND:
            return row.background
        if role == _ALIGNMENT:
            return _RIGHT if column in _NUMERIC else None
        if role == UUID_ROLE:
            return row.status.uuid
        if role == SORT_ROLE:
            return self._sort_key(row, Column(column))
        return self._tooltip(row, Column(column))

    # ---- updates ---------------------------------------------------------------------

    def refresh(self, statuses: Sequence[SessionStatus], now: float | None = None) -> None:
        """Take the relay's current snapshots; sessions it no longer has are ended."""
        now = time.monotonic() if now is None else now
        seen = set()
        for status in statuses:
            seen.add(status.uuid)
            self.upsert(status, now)
        for row in list(self._rows):
            if not row.ended and row.status.uuid not in seen:
                # Gone without a "destroyed" event (a relay restart): keep what we know.
                self.end_session(row.status.uuid, row.status)

    def upsert(self, status: SessionStatus, now: float | None = None) -> None:
        """Add a new session or update an existing one's row."""
        now = time.monotonic() if now is None else now
        position = self._index.get(status.uuid)
        if position is None:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first)
            row = SessionRow(
                status,
                live_s=status.uptime_s,
                sampled_bytes=status.bytes_received,
                sampled_at=now,
                client=describe_user_agent(status.user_agent),
            )
            self._render(row)
            self._rows.append(row)
            self._index[status.uuid] = first
            self.endInsertRows()
            return
        row = self._rows[position]
        if row.ended:
            return
        changed = self._sample(row, status, now)
        if status != row.status:
            row.status = status
            row.live_s = max(row.live_s, status.uptime_s)
            changed = True
        if changed:
            self._row_changed(position)

    def end_session(self, session_id: str, final: SessionStatus) -> None:
        """The relay forgot a session: keep its final snapshot until dismissed.

        A socket that never streamed and did not fail leaves nothing worth keeping.
        """
        position = self._index.get(session_id)
        if final.started_at is None and final.error is None:
            if position is not None:
                self.dismiss(session_id)
            return
        if position is None:
            self.upsert(final)
            position = self._index[session_id]
        row = self._rows[position]
        row.status = final
        row.ended = True
        row.ingest_kbps = 0.0
        self._row_changed(position)

    def dismiss(self, session_id: str) -> bool:
        """Remove a session's row (any state)."""
        position = self._index.get(session_id)
        if position is None:
            return False
        self.beginRemoveRows(QModelIndex(), position, position)
        del self._rows[position]
        self._reindex()
        self.endRemoveRows()
        return True

    def dismiss_ended(self) -> int:
        """Remove every ended row; returns how many."""
        ended = [row.status.uuid for row in self._rows if row.ended]
        for session_id in ended:
            self.dismiss(session_id)
        return len(ended)

    # ---- queries ---------------------------------------------------------------------

    def row(self, session_id: str) -> SessionRow | None:
        """A session's row."""
        position = self._index.get(session_id)
        return None if position is None else self._rows[position]

    def row_of(self, session_id: str) -> int | None:
        """A session's row number in this (unsorted) model."""
        return self._index.get(session_id)

    def rows(self) -> Iterable[SessionRow]:
        """Every row, in insertion order."""
        return iter(self._rows)

    def live_count(self) -> int:
        """Sessions streaming or starting."""
        return sum(1 for row in self._rows if row.active)

    def total_ingest_kbps(self) -> float:
        """What browsers send us, all sessions together."""
        return sum(row.ingest_kbps for row in self._rows if not row.ended)

    def total_outgoing_kbps(self) -> float:
        """What the outputs send to their servers and files, all sessions together."""
        return sum(row.outgoing_kbps for row in self._rows if not row.ended)

    def ffmpeg_pids(self) -> list[int]:
        """The running encoders' and outputs' process ids (for the CPU figure)."""
        pids = []
        for row in self._rows:
            if row.ended:
                continue
            ff = row.status.ffmpeg
            if ff is not None and ff.pid is not None:
                pids.append(ff.pid)
            pids += [o.pid for o in row.status.outputs if o.pid is not None]
        return pids

    # ---- internals -------------------------------------------------------------------

    def _reindex(self) -> None:
        self._index = {row.status.uuid: i for i, row in enumerate(self._rows)}

    def _row_changed(self, position: int) -> None:
        self._render(self._rows[position])
        self.dataChanged.emit(self.index(position, 0), self.index(position, len(Column) - 1))

    @classmethod
    def _render(cls, row: SessionRow) -> None:
        row.texts = [cls._display(row, column) for column in Column]
        row.colours = [cls._foreground(row, column) for column in Column]
        row.background = _FAILED_BACKGROUND if row.failed else None

    @staticmethod
    def _sample(row: SessionRow, status: SessionStatus, now: float) -> bool:
        elapsed = now - row.sampled_at
        if elapsed < 0.2:
            return False
        delta = max(0, status.bytes_received - row.sampled_bytes)
        rate = delta * 8 / 1000 / elapsed
        # Chunks arrive in bursts (one per timeslice): smooth over a couple of seconds.
        previous = row.ingest_kbps
        row.ingest_kbps = rate if previous == 0 else 0.7 * previous + 0.3 * rate
        row.sampled_bytes, row.sampled_at = status.bytes_received, now
        # What the outputs sent (ffmpeg's counters: they come every half second).
        sent = sum(o.bytes_sent for o in status.outputs)
        out_rate = max(0, sent - row.sampled_out_bytes) * 8 / 1000 / elapsed
        row.outgoing_kbps = (
            out_rate if row.outgoing_kbps == 0 else (0.7 * row.outgoing_kbps + 0.3 * out_rate)
        )
        row.sampled_out_bytes = sent
        return abs(row.ingest_kbps - previous) > 0.5

    @staticmethod
    def _display(row: SessionRow, column: Column) -> str:
        status = row.status
        ff = status.ffmpeg
        live = not row.ended and status.state == SessionState.LIVE
        if column == Column.SESSION:
            return session_label(status)
        if column == Column.CLIENT:
            return f"{status.remote_address} · {row.client}"
        if column == Column.STATE:
            return state_label(row)
        if column == Column.TARGET:
            if status.target:
                return status.target
            if status.recording_path:
                return f"file: {os.path.basename(status.recording_path)}"
            return ""
        if column == Column.AUDIO:
            return audio_label(status) if live else ""
        if ff is None:
            return format_duration(row.live_s) if column == Column.LIVE else ""
        stats = ff.stats
        if column == Column.FRAMES:
            return f"{ff.frames_sent:,}"
        if column == Column.FPS:
            return format_fps(stats.fps) if live else ""
        if column == Column.BITRATE:
            return format_kbps(stats.bitrate_kbps) if live else ""
        if column == Column.SPEED:
            return format_speed(stats.speed) if live else ""
        if column == Column.DROPPED:
            return f"{stats.dropped_frames:,}"
        return format_duration(row.live_s)

    @staticmethod
    def _sort_key(row: SessionRow, column: Column) -> Any:
        status = row.status
        ff = status.ffmpeg
        if column in (Column.SESSION, Column.CLIENT, Column.STATE, Column.TARGET):
            return SessionsModel._display(row, column).lower()
        if column == Column.LIVE:
            return row.live_s
        if ff is None:
            return -1.0
        stats = ff.stats
        values = {
            Column.FRAMES: float(ff.frames_sent),
            Column.FPS: stats.fps,
            Column.BITRATE: stats.bitrate_kbps,
            Column.SPEED: stats.speed,
            Column.DROPPED: float(stats.dropped_frames),
        }
        value = values.get(column)
        return -1.0 if value is None else float(value)

    @staticmethod
    def _foreground(row: SessionRow, column: Column) -> QColor | None:
        if row.failed:
            return _FAILED_TEXT if column == Column.STATE else None
        if row.ended or row.status.state == SessionState.FAILED:
            return _ENDED_TEXT
        if column == Column.STATE:
            outputs_down = any(
                o.state in (OutputState.RECONNECTING, OutputState.FAILED)
                for o in row.status.outputs
            )
            if row.status.state == SessionState.LIVE and not outputs_down:
                return _WARN_TEXT if row.status.health else _LIVE_TEXT
            if row.status.state in (
                SessionState.STARTING,
                SessionState.ENDING,
                SessionState.WAITING,
            ):
                return _STARTING_TEXT
            if outputs_down:
                return _WARN_TEXT
        ff = row.status.ffmpeg
        if column == Column.DROPPED and ff is not None and ff.stats.dropped_frames > 0:
            return _WARN_TEXT
        return None

    @staticmethod
    def _tooltip(row: SessionRow, column: Column) -> str | None:
        status = row.status
        if column == Column.SESSION:
            return f"Session {status.uuid}"
        if column == Column.CLIENT:
            return status.user_agent or None
        if column == Column.STATE and status.error is not None:
            error = status.error
            text = f"{error.name}: {error.message}"
            return f"{text}\n\n{error.details}" if error.details else text
        if column == Column.STATE and status.health:
            return "\n".join(f"\u26a0 {w.message}" for w in status.health)
        if column == Column.TARGET:
            if status.outputs:
                # Every destination with its state: the column shows only the first.
                return "\n".join(_output_line(o) for o in status.outputs)
            return status.recording_path or status.target
        if column == Column.BITRATE and not row.ended:
            return f"Received from the browser: {format_kbps(row.ingest_kbps)}"
        return None


def _output_line(output: OutputStatus) -> str:
    where = (
        f"file: {os.path.basename(output.recording_path)}"
        if output.recording_path
        else (output.target)
    )
    line = f"{where}: {output.state}"
    if output.state == OutputState.RECONNECTING and output.next_attempt_in_s is not None:
        line += f", next try in {output.next_attempt_in_s:.0f} s"
    if output.reconnects:
        line += f", {output.reconnects} reconnect(s)"
    if output.last_error and output.state != OutputState.LIVE:
        line += f" ({output.last_error})"
    return line
