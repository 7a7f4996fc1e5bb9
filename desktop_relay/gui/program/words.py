"""What the window says about the program, from a `ProgramStatus` snapshot: the panel's state
line and destinations, the sessions table's marks. Data only (no widget)."""

from __future__ import annotations

from ...relay import ProgramStatus
from ..sessions.row import output_line

ON_PROGRAM = "on program"
ON_PREVIEW = "on preview"
ON_PIP = "on program (PiP)"

# Shown in place of the controls while the relay has no program.
OFF_HINT = (
    "The program is off. It turns on when it has a destination of its own: start "
    "Desktop Relay with --program-url URL (RTMP, RTMPS or SRT; repeatable)."
)

CORNER_NAMES = {"tl": "top left", "tr": "top right", "bl": "bottom left", "br": "bottom right"}

_SLATE_REASONS = {
    "manual": "the operator's",
    "no_source": "nothing taken yet",
    "stalled": "the source stalled",
    "ended": "the source ended",
}


def session_marks(status: ProgramStatus) -> dict[str, str]:
    """Each session the program shows, with its mark for the sessions table."""
    if not status.enabled:
        return {}
    marks: dict[str, str] = {}
    if status.preview is not None:
        marks[status.preview] = ON_PREVIEW
    if status.pip is not None:
        marks[status.pip.source] = ON_PIP
    if status.source is not None:  # last: taken wins over PiP and preview
        marks[status.source] = ON_PROGRAM
    return marks


def source_name(status: ProgramStatus, source_id: str | None) -> str:
    """The name a source's browser gave, else the start of its id."""
    if source_id is None:
        return "none"
    for source in status.sources:
        if source.id == source_id:
            return source.name or source_id[:8]
    return source_id[:8]


def slate_reason(status: ProgramStatus) -> str:
    """Why the slate is on air, in words."""
    reason = status.slate_reason
    return _SLATE_REASONS.get(reason, reason) if reason else "the operator's"


def state_line(status: ProgramStatus) -> str:
    """One or two lines: whether the program is live and at what size, and what is on air."""
    if not status.enabled:
        return "Program off"
    if not status.live:
        return f"Not live: {status.error}" if status.error else "Starting…"
    size = f"{status.width}x{status.height} at {status.fps} fps" if status.width else ""
    first = f"\u25cf Live {size}".rstrip()
    if status.slate:
        air = f"On air: the slate ({slate_reason(status)})"
    else:
        air = f"On air: {source_name(status, status.on_air or status.source)}"
    if status.pip is not None:
        corner = CORNER_NAMES.get(status.pip.corner, status.pip.corner)
        air += f" · PiP {source_name(status, status.pip.source)} ({corner}, {status.pip.size})"
    return f"{first}\n{air}"


def destination_lines(status: ProgramStatus) -> list[str]:
    """Each of the program's destinations and its state (targets masked)."""
    return [output_line(output) for output in status.outputs]


def mask_token(token: str | None) -> str:
    """A token as the panel shows it: its first four characters, the rest hidden."""
    if not token:
        return "none (the control API refuses every request)"
    return f"{token[:4]}{'•' * 12}"
