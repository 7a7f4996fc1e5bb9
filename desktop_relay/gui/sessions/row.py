"""One session as the window remembers it, and the words its cells are made of."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtGui import QColor, QImage

from ...relay import (
    ErrorName,
    HealthCheck,
    OutputState,
    OutputStatus,
    SessionState,
    SessionStatus,
    Thumbnail,
)
from ..formatting import format_level

ACTIVE_STATES = (SessionState.STARTING, SessionState.LIVE, SessionState.ENDING)


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
    picture: Thumbnail | None = None  # the latest picture from the relay (for the preview)
    thumbnail: QImage | None = None  # the same, already at the cell's size
    # Where the program shows this session: "on program", "on preview" (program_mark), or "".
    program_mark: str = ""

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
        return not self.ended and self.status.state in ACTIVE_STATES

    @property
    def outputs_down(self) -> bool:
        """Some destination of this session is retrying or gave up."""
        return any(
            o.state in (OutputState.RECONNECTING, OutputState.FAILED) for o in self.status.outputs
        )


def session_label(status: SessionStatus) -> str:
    """The session's name from the browser, else the start of its id."""
    return status.name or status.uuid[:8]


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
    # Two lines (the column is narrow): how the session is, then what is wrong with it.
    first = str(status.state) + resume_label(status)
    if row.program_mark:
        first += f" · {row.program_mark}"
    down = [o for o in status.outputs if o.state in (OutputState.RECONNECTING, OutputState.FAILED)]
    problems = []
    if down and status.state in ACTIVE_STATES:
        problems.append(outputs_down_label(status.outputs, down))
    if status.health:
        problems.append(health_label(status))
    return "\n".join([first, " · ".join(problems)]) if problems else first


def health_label(status: SessionStatus) -> str:
    """`⚠ no audio`, `⚠ 2 warnings`: what the stream's health checks found (the tooltip has
    their sentences); empty when all is well."""
    found = status.health
    if not found:
        return ""
    if len(found) == 1:
        return f"\u26a0 {str(found[0].check).replace('_', ' ')}"
    return f"\u26a0 {len(found)} warnings"


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
    """Short, such as `1/2 outputs retrying in 4 s`: the State column is narrow (the Outputs
    column has each output's state, its tooltip the reasons)."""
    which = "output" if len(outputs) == 1 else f"{len(down)}/{len(outputs)} outputs"
    failed = [o for o in down if o.state == OutputState.FAILED]
    if failed and len(failed) == len(down):
        return f"{which} failed"
    waits = [o.next_attempt_in_s for o in down if o.next_attempt_in_s is not None]
    when = f" in {min(waits):.0f} s" if waits else ""
    return f"{which} retrying{when}"


def output_place(output: OutputStatus) -> str:
    """Where an output goes: its masked URL, or `file: name` for a recording."""
    if output.recording_path:
        return f"file: {os.path.basename(output.recording_path)}"
    return output.target


def output_state_word(output: OutputStatus) -> str:
    """`live`, `retrying in 4 s`, `failed`: one output's state in a word or three."""
    if output.state == OutputState.RECONNECTING:
        wait = output.next_attempt_in_s
        return "retrying" if wait is None else f"retrying in {wait:.0f} s"
    return str(output.state)


def output_line(output: OutputStatus) -> str:
    """One output in full (the Outputs column's tooltip): place, state, retries, reason."""
    line = f"{output_place(output)}: {output.state}"
    if output.state == OutputState.RECONNECTING and output.next_attempt_in_s is not None:
        line += f", next try in {output.next_attempt_in_s:.0f} s"
    if output.reconnects:
        line += f", {output.reconnects} reconnect(s)"
    if output.last_error and output.state != OutputState.LIVE:
        line += f" ({output.last_error})"
    return line
