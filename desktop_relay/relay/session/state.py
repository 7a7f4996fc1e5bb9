"""A session's state machine: which state may follow which, and which states stream."""

from __future__ import annotations

from ..status import SessionState

# The states in which the session streams: its queue is served and chunks are taken.
ACTIVE_STATES: frozenset[SessionState] = frozenset({SessionState.STARTING, SessionState.LIVE})

# Which state may follow which: every change goes through Session.set_state.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.CONNECTED: frozenset(
        {SessionState.STARTING, SessionState.FAILED, SessionState.ENDED}
    ),
    SessionState.STARTING: frozenset(
        {
            SessionState.LIVE,
            SessionState.WAITING,
            SessionState.ENDING,
            SessionState.FAILED,
            SessionState.ENDED,
        }
    ),
    SessionState.LIVE: frozenset(
        {SessionState.WAITING, SessionState.ENDING, SessionState.FAILED, SessionState.ENDED}
    ),
    SessionState.WAITING: frozenset(
        {
            SessionState.STARTING,
            SessionState.LIVE,
            SessionState.CONNECTED,
            SessionState.FAILED,
            SessionState.ENDED,
        }
    ),
    SessionState.ENDING: frozenset(
        {SessionState.CONNECTED, SessionState.FAILED, SessionState.ENDED}
    ),
    # A failed session may start again from the same socket (the original allows it).
    SessionState.FAILED: frozenset({SessionState.STARTING, SessionState.ENDED}),
    SessionState.ENDED: frozenset(),
}


def check_transition(old: SessionState, new: SessionState, *, who: str = "session") -> None:
    """Raise RuntimeError if a session may not go from `old` to `new` (a bug, never a
    client's doing); `who` names the session in the message. Staying put is allowed."""
    if new != old and new not in TRANSITIONS[old]:
        raise RuntimeError(f"{who}: no transition from {old} to {new}")
