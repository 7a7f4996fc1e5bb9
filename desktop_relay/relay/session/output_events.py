"""What a session does when one of its outputs changes state, decided without side effects.

The client always hears the output's new state (`outputState`) and the operator always
gets `output_changed`; on top of that, `on_output_change` says who must hear what else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ErrorName, ServerError
from ..outputs.destinations import kind_named
from ..status import OutputState, OutputStatus


@dataclass(frozen=True)
class OutputEvent:
    """What to tell whom about one output's change (None: nothing)."""

    # For the client and the operator (session_error): OUTPUT_RECONNECTING, not fatal.
    notice: ServerError | None = None
    # For the operator's log.
    log: str | None = None
    # Every destination failed: the session must fail with this.
    session_failure: ServerError | None = None


def on_output_change(
    status: OutputStatus, every_output: Callable[[], Iterable[OutputStatus]] | None
) -> OutputEvent:
    """Decide for `status`, the output's new snapshot. `every_output` gives the snapshots
    of all the session's outputs (None when it has no pipeline); it is called only when an
    output failed, and after the caller told the client and the operator of the change."""
    if status.state == OutputState.RECONNECTING:
        when = (
            f"; next attempt in {status.next_attempt_in_s:.0f} s"
            if status.next_attempt_in_s is not None
            else ""
        )
        return OutputEvent(
            notice=ServerError(
                ErrorName.OUTPUT_RECONNECTING,
                f"{status.target}: {status.last_error or 'connection lost'}{when}",
                fatal=False,
            )
        )
    if status.state == OutputState.LIVE and status.reconnects:
        return OutputEvent(log=f"{status.target} is live again")
    if status.state == OutputState.FAILED:
        log = f"{status.target} failed: {status.last_error}"
        if every_output is None or not all(o.state == OutputState.FAILED for o in every_output()):
            return OutputEvent(log=log)
        # Nothing left to send to: the stream cannot go anywhere.
        return OutputEvent(
            log=log,
            session_failure=ServerError(
                kind_named("file" if status.is_recording else status.kind).connection_error,
                f"Every destination failed; the last: {status.last_error}",
            ),
        )
    return OutputEvent()
