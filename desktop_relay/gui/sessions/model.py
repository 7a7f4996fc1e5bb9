"""The sessions table's model: rows of `SessionStatus` snapshots, refreshed on a timer.

The relay forgets a session when its socket goes; this model keeps it (as ended or failed, with
its final snapshot) until the operator dismisses it, so a failure's reason stays visible.
What each column shows is defined in `session_columns`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from ...relay import SessionStatus, Thumbnail
from ..user_agent import describe_user_agent
from .columns import (
    COLUMNS,
    FAILED_BACKGROUND,
    THUMBNAIL_HEIGHT,
    THUMBNAIL_WIDTH,
    Column,
    foreground,
)
from .pictures import thumbnail_image
from .row import SessionRow, session_label

__all__ = ["SORT_ROLE", "UUID_ROLE", "Column", "SessionRow", "SessionsModel", "session_label"]

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
UUID_ROLE = Qt.ItemDataRole.UserRole + 2

Index = QModelIndex | QPersistentModelIndex
_DISPLAY = Qt.ItemDataRole.DisplayRole
_DECORATION = Qt.ItemDataRole.DecorationRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_BACKGROUND = Qt.ItemDataRole.BackgroundRole
_ALIGNMENT = Qt.ItemDataRole.TextAlignmentRole
_TOOLTIP = Qt.ItemDataRole.ToolTipRole
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
_LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
_ROOT = QModelIndex()

_COLUMNS = len(Column)  # Enum.__len__ is slow enough to show in a paint profile
_SPECS = [COLUMNS[column] for column in Column]
_ALIGNMENTS = [_RIGHT if spec.numeric else _LEFT for spec in _SPECS]
_HEADERS = [spec.header for spec in _SPECS]
_ROLES = frozenset(
    {_DISPLAY, _DECORATION, _FOREGROUND, _BACKGROUND, _ALIGNMENT, _TOOLTIP, SORT_ROLE, UUID_ROLE}
)


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
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < _COLUMNS:
            return None
        if role == _DISPLAY:
            return _HEADERS[section]
        if role == _TOOLTIP:
            return _SPECS[section].header_tooltip or None
        return None

    def data(self, index: Index, role: int = _DISPLAY) -> Any:
        """A cell's text, picture, sort key, colour, tooltip or the row's session id."""
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
        if role == _DECORATION:
            return row.thumbnail if column == Column.PICTURE else None
        if role == _ALIGNMENT:
            return _ALIGNMENTS[column]
        if role == UUID_ROLE:
            return row.status.uuid
        if role == SORT_ROLE:
            return _SPECS[column].sort(row)
        return _SPECS[column].tooltip(row)

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

    def set_program_marks(self, marks: Mapping[str, str]) -> None:
        """Where the program shows each session ("on program", "on preview"; sessions not in
        `marks` are on neither): only rows whose mark changed are redrawn."""
        for position, row in enumerate(self._rows):
            mark = "" if row.ended else marks.get(row.status.uuid, "")
            if mark != row.program_mark:
                row.program_mark = mark
                self._row_changed(position)

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

    def set_thumbnail(self, session_id: str, thumbnail: Thumbnail) -> bool:
        """A new picture of a session: kept for the preview, scaled once for its cell, and
        only that cell repainted. False for a session without a live row."""
        position = self._index.get(session_id)
        if position is None or self._rows[position].ended:
            return False
        row = self._rows[position]
        row.picture = thumbnail
        row.thumbnail = thumbnail_image(thumbnail).scaled(
            THUMBNAIL_WIDTH,
            THUMBNAIL_HEIGHT,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        cell = self.index(position, Column.PICTURE)
        self.dataChanged.emit(cell, cell, [_DECORATION])
        return True

    def _row_changed(self, position: int) -> None:
        self._render(self._rows[position])
        self.dataChanged.emit(self.index(position, 0), self.index(position, len(Column) - 1))

    @staticmethod
    def _render(row: SessionRow) -> None:
        row.texts = [spec.text(row) for spec in _SPECS]
        row.colours = [foreground(row, column) for column in Column]
        row.background = FAILED_BACKGROUND if row.failed else None

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
