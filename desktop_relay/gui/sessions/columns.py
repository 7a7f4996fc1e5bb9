"""The sessions table's columns, defined once: header, width, text, sort key and tooltip.

The model and the view both read `COLUMNS`; adding a column is one entry here. The widths
add up to what fits beside the side panel at 1280x800 (a test checks no header is cut).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from PySide6.QtGui import QColor

from ...relay import SessionState
from ..formatting import format_duration, format_fps, format_kbps, format_speed
from .row import (
    SessionRow,
    audio_label,
    output_line,
    output_place,
    output_state_word,
    session_label,
    state_label,
)

# Mid-tones chosen to keep WCAG's 3:1 on light and dark palettes alike (tests/gui/test_theme).
FAILED_BACKGROUND = QColor(220, 50, 47, 45)
FAILED_TEXT = QColor(224, 82, 82)
LIVE_TEXT = QColor(37, 147, 64)
STARTING_TEXT = QColor(178, 119, 0)
ENDED_TEXT = QColor(130, 130, 130)
WARN_TEXT = QColor(199, 106, 0)

THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT = 96, 54  # 16:9, the Picture column's image


class Column(IntEnum):
    """The table's columns, in display order."""

    PICTURE = 0
    SESSION = 1
    STATE = 2
    OUTPUTS = 3
    FRAMES = 4
    FPS = 5
    BITRATE = 6
    SPEED = 7
    LIVE = 8
    AUDIO = 9


@dataclass(frozen=True)
class ColumnSpec:
    """One column: what its header says, how wide it starts, what its cells show."""

    header: str
    width: int
    text: Callable[[SessionRow], str]
    sort: Callable[[SessionRow], Any]
    tooltip: Callable[[SessionRow], str | None] = lambda row: None
    header_tooltip: str = ""
    numeric: bool = False  # right-aligned
    stretch: bool = False  # takes the room the others leave


def _live(row: SessionRow) -> bool:
    return not row.ended and row.status.state == SessionState.LIVE


def _stat(row: SessionRow, name: str) -> float | None:
    ff = row.status.ffmpeg
    if ff is None:
        return None
    value = getattr(ff.stats, name)
    return None if value is None else float(value)


def _when_live(
    format_value: Callable[[float | None], str], name: str
) -> Callable[[SessionRow], str]:
    return lambda row: format_value(_stat(row, name)) if _live(row) else ""


def _sort_stat(name: str) -> Callable[[SessionRow], float]:
    def key(row: SessionRow) -> float:
        value = _stat(row, name)
        return -1.0 if value is None else value

    return key


def _session_text(row: SessionRow) -> str:
    return f"{session_label(row.status)}\n{row.status.remote_address} · {row.client}"


def _session_tooltip(row: SessionRow) -> str:
    agent = f"\n{row.status.user_agent}" if row.status.user_agent else ""
    return f"Session {row.status.uuid}{agent}"


def _state_tooltip(row: SessionRow) -> str | None:
    status = row.status
    if status.error is not None:
        error = status.error
        text = f"{error.name}: {error.message}"
        return f"{text}\n\n{error.details}" if error.details else text
    lines = [f"\u26a0 {w.message}" for w in status.health]
    if row.program_mark and not row.ended:
        lines.insert(0, f"This session is {row.program_mark}")
    return "\n".join(lines) or None


def _outputs_text(row: SessionRow) -> str:
    """The first destination (and how many more), then each one's state in a word."""
    status = row.status
    outputs = status.outputs
    if not outputs:
        if status.target:
            return status.target
        if status.recording_path:
            return f"file: {os.path.basename(status.recording_path)}"
        return ""
    first = output_place(outputs[0])
    more = f" +{len(outputs) - 1}" if len(outputs) > 1 else ""
    if row.ended:
        return first + more
    return f"{first}{more}\n" + " · ".join(output_state_word(o) for o in outputs)


def _outputs_tooltip(row: SessionRow) -> str | None:
    status = row.status
    if status.outputs:
        return "\n".join(output_line(o) for o in status.outputs)
    return status.recording_path or status.target or None


def _frames_text(row: SessionRow) -> str:
    ff = row.status.ffmpeg
    if ff is None:
        return ""
    dropped = ff.stats.dropped_frames
    return f"{ff.frames_sent:,}\n{dropped:,} dropped" if dropped else f"{ff.frames_sent:,}"


def _frames_sort(row: SessionRow) -> float:
    ff = row.status.ffmpeg
    return -1.0 if ff is None else float(ff.frames_sent)


def _bitrate_tooltip(row: SessionRow) -> str | None:
    if row.ended:
        return None
    return f"Received from the browser: {format_kbps(row.ingest_kbps)}"


COLUMNS: dict[Column, ColumnSpec] = {
    Column.PICTURE: ColumnSpec(
        "Picture",
        THUMBNAIL_WIDTH + 8,
        text=lambda row: "",
        sort=lambda row: session_label(row.status).lower(),
        header_tooltip="A picture from the stream every keyframe (select a row for a larger one)",
    ),
    Column.SESSION: ColumnSpec(
        "Session",
        150,
        text=_session_text,
        sort=lambda row: session_label(row.status).lower(),
        tooltip=_session_tooltip,
        header_tooltip="The name the browser gave, its address and browser",
    ),
    Column.STATE: ColumnSpec(
        "State",
        130,
        text=state_label,
        sort=lambda row: state_label(row).lower(),
        tooltip=_state_tooltip,
        stretch=True,
    ),
    Column.OUTPUTS: ColumnSpec(
        "Outputs",
        140,
        text=_outputs_text,
        sort=lambda row: _outputs_text(row).lower(),
        tooltip=_outputs_tooltip,
        header_tooltip="Where the session goes, and each destination's state",
    ),
    Column.FRAMES: ColumnSpec(
        "Frames",
        66,
        text=_frames_text,
        sort=_frames_sort,
        header_tooltip="Video frames sent to the outputs (and dropped, if any)",
        numeric=True,
    ),
    Column.FPS: ColumnSpec(
        "FPS",
        44,
        text=_when_live(format_fps, "fps"),
        sort=_sort_stat("fps"),
        header_tooltip="Frames per second over the last 2 s",
        numeric=True,
    ),
    Column.BITRATE: ColumnSpec(
        "Bitrate",
        78,
        text=_when_live(format_kbps, "bitrate_kbps"),
        sort=_sort_stat("bitrate_kbps"),
        tooltip=_bitrate_tooltip,
        header_tooltip="What the outputs send, over the last 2 s",
        numeric=True,
    ),
    Column.SPEED: ColumnSpec(
        "Speed",
        60,
        text=_when_live(format_speed, "speed"),
        sort=_sort_stat("speed"),
        header_tooltip="ffmpeg's speed as a factor of real time: under 1.00x it falls behind",
        numeric=True,
    ),
    Column.LIVE: ColumnSpec(
        "Live",
        50,
        text=lambda row: format_duration(row.live_s),
        sort=lambda row: row.live_s,
        header_tooltip="How long the session has streamed",
        numeric=True,
    ),
    Column.AUDIO: ColumnSpec(
        "Audio",
        100,
        text=lambda row: audio_label(row.status) if _live(row) else "",
        sort=lambda row: row.status.audio.rms_db if row.status.audio else -1000.0,
        header_tooltip="The sound's RMS level (a bar from -60 to 0 dBFS)",
    ),
}


def foreground(row: SessionRow, column: Column) -> QColor | None:
    """A cell's text colour: the State column says how the session is doing."""
    if row.failed:
        return FAILED_TEXT if column == Column.STATE else None
    if row.ended or row.status.state == SessionState.FAILED:
        return ENDED_TEXT
    if column == Column.STATE:
        state = row.status.state
        if state == SessionState.LIVE and not row.outputs_down:
            return WARN_TEXT if row.status.health else LIVE_TEXT
        if state in (SessionState.STARTING, SessionState.ENDING, SessionState.WAITING):
            return STARTING_TEXT
        if row.outputs_down:
            return WARN_TEXT
    if column == Column.OUTPUTS and row.outputs_down:
        return WARN_TEXT
    ff = row.status.ffmpeg
    if column == Column.FRAMES and ff is not None and ff.stats.dropped_frames > 0:
        return WARN_TEXT
    return None
