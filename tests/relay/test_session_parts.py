"""The session's parts without a session: state transitions, chunk admission, the command
queue and output event decisions (no sockets, no ffmpeg)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState
from desktop_relay.relay.errors import FFMPEG_NOT_RUNNING, RelayError, ServerError
from desktop_relay.relay.session.chunk_admission import ChunkAction, ChunkVerdict, admit_chunk
from desktop_relay.relay.session.commands import (
    ChunkCommand,
    Command,
    CommandQueue,
    RetargetCommand,
    StopCommand,
)
from desktop_relay.relay.session.limits import ClientLimits
from desktop_relay.relay.session.output_events import OutputEvent, on_output_change
from desktop_relay.relay.session.resume import ChunkSequence
from desktop_relay.relay.session.state import ACTIVE_STATES, TRANSITIONS, check_transition
from desktop_relay.relay.status import OutputState, OutputStatus

S = SessionState

# ---- transitions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.CONNECTED, S.STARTING),
        (S.STARTING, S.LIVE),
        (S.LIVE, S.WAITING),
        (S.WAITING, S.LIVE),
        (S.WAITING, S.CONNECTED),
        (S.LIVE, S.ENDING),
        (S.ENDING, S.CONNECTED),
        (S.LIVE, S.FAILED),
        (S.FAILED, S.STARTING),
        (S.FAILED, S.ENDED),
        (S.LIVE, S.LIVE),
    ],
)
def test_allowed_transitions_pass(old: SessionState, new: SessionState) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.CONNECTED, S.LIVE),
        (S.CONNECTED, S.WAITING),
        (S.ENDING, S.LIVE),
        (S.FAILED, S.LIVE),
        (S.FAILED, S.CONNECTED),
        (S.ENDED, S.STARTING),
        (S.ENDED, S.FAILED),
    ],
)
def test_impossible_transitions_raise(old: SessionState, new: SessionState) -> None:
    with pytest.raises(RuntimeError, match=f"session ab: no transition from {old} to {new}"):
        check_transition(old, new, who="session ab")


def test_every_state_has_a_row_and_ended_is_final() -> None:
    assert set(TRANSITIONS) == set(SessionState)
    assert TRANSITIONS[S.ENDED] == frozenset()
    assert set(ACTIVE_STATES) == {S.STARTING, S.LIVE}


# ---- chunk admission -------------------------------------------------------------------


def admit(
    size: int = 100,
    seq: int | None = None,
    *,
    closed: bool = False,
    state: SessionState = S.LIVE,
    sequence: ChunkSequence | None = None,
    limits: ClientLimits | None = None,
    buffered: int = 0,
    max_buffered: int = 1000,
) -> ChunkVerdict:
    return admit_chunk(
        size=size,
        seq=seq,
        closed=closed,
        state=state,
        sequence=sequence or ChunkSequence(),
        limits=limits,
        buffered_bytes=buffered,
        max_buffered_bytes=max_buffered,
    )


def numbered(last: int) -> ChunkSequence:
    sequence = ChunkSequence()
    sequence.accept(last)
    return sequence


def test_a_chunk_of_a_live_session_is_written() -> None:
    verdict = admit()
    assert verdict.action is ChunkAction.WRITE
    assert verdict.error is None and verdict.taken and not verdict.fails_session


def test_closed_relay_and_no_stream_refuse_without_failing() -> None:
    closed = admit(closed=True)
    assert closed.action is ChunkAction.SHUTTING_DOWN
    assert closed.error is not None and closed.error.name == ErrorName.RELAY_SHUTTING_DOWN
    for state in (S.CONNECTED, S.WAITING, S.ENDING, S.FAILED, S.ENDED):
        verdict = admit(state=state)
        assert verdict.action is ChunkAction.NOT_RUNNING
        assert verdict.error == FFMPEG_NOT_RUNNING
        assert not verdict.fails_session and not verdict.taken


def test_duplicate_is_dropped_with_a_success_ack() -> None:
    sequence = numbered(7)
    for seq in (7, 3, 0):
        verdict = admit(seq=seq, sequence=sequence)
        assert verdict.action is ChunkAction.DUPLICATE
        assert verdict.error is None and not verdict.taken and not verdict.fails_session
    assert sequence.last == 7  # admission records nothing


def test_next_and_first_numbers_are_written() -> None:
    assert admit(seq=8, sequence=numbered(7)).action is ChunkAction.WRITE
    assert admit(seq=1234).action is ChunkAction.WRITE


def test_gap_fails_the_session_and_names_the_missing_chunks() -> None:
    verdict = admit(seq=10, sequence=numbered(7))
    assert verdict.action is ChunkAction.GAP and verdict.fails_session and not verdict.taken
    assert verdict.error is not None and verdict.error.name == ErrorName.CHUNK_GAP
    assert "Chunk 10 came after chunk 7: chunks from 8 on" in verdict.error.message


def test_over_a_client_limit_fails_the_session() -> None:
    limits = ClientLimits(RelayConfig(max_chunk_bytes=50))
    verdict = admit(size=51, limits=limits)
    assert verdict.action is ChunkAction.OVER_LIMIT and verdict.fails_session
    assert not verdict.taken
    assert verdict.error is not None and verdict.error.name == ErrorName.CHUNK_TOO_LARGE


def test_chunk_rate_is_spent_only_by_chunks_that_reach_the_limits() -> None:
    limits = ClientLimits(RelayConfig(max_chunks_per_second=1, limit_burst_s=1))
    # Refused before the limits: the one chunk of burst is still there afterwards.
    assert admit(closed=True, limits=limits).action is ChunkAction.SHUTTING_DOWN
    assert admit(state=S.CONNECTED, limits=limits).action is ChunkAction.NOT_RUNNING
    assert admit(limits=limits).action is ChunkAction.WRITE
    rated = admit(limits=limits)
    assert rated.action is ChunkAction.OVER_LIMIT
    assert rated.error is not None and rated.error.name == ErrorName.RATE_LIMITED


def test_a_duplicate_spends_the_limits_like_any_chunk() -> None:
    # Issue 23: a duplicate used to be dropped before the limits, so resending old numbers
    # was a way round them. It still is dropped, but it counts.
    limits = ClientLimits(RelayConfig(max_chunks_per_second=1, limit_burst_s=1))
    assert admit(seq=1, sequence=numbered(5), limits=limits).action is ChunkAction.DUPLICATE
    rated = admit(seq=2, sequence=numbered(5), limits=limits)
    assert rated.action is ChunkAction.OVER_LIMIT and rated.fails_session
    assert rated.error is not None and rated.error.name == ErrorName.RATE_LIMITED
    big = ClientLimits(RelayConfig(max_chunk_bytes=1000))
    too_large = admit(size=1001, seq=1, sequence=numbered(5), limits=big)
    assert too_large.error is not None and too_large.error.name == ErrorName.CHUNK_TOO_LARGE


def test_a_first_number_near_the_top_is_invalid_not_taken() -> None:
    verdict = admit(seq=2**53 - 1, sequence=ChunkSequence())
    assert verdict.action is ChunkAction.INVALID and not verdict.taken
    assert verdict.error is not None and verdict.error.name == ErrorName.INVALID_PARAMETERS
    assert not verdict.error.fatal and not verdict.fails_session
    assert admit(seq=2**32 - 1, sequence=ChunkSequence()).action is ChunkAction.WRITE
    # Once numbering began low, it may go on as far as the wire allows.
    assert admit(seq=2**40, sequence=numbered(2**40 - 1)).action is ChunkAction.WRITE


def test_empty_chunk_is_a_heartbeat_even_when_overloaded() -> None:
    verdict = admit(size=0, buffered=5000, max_buffered=1000)
    assert verdict.action is ChunkAction.HEARTBEAT
    assert verdict.error is None and verdict.taken and not verdict.fails_session


def test_overload_fails_the_session_but_the_chunk_counts() -> None:
    assert admit(size=100, buffered=900, max_buffered=1000).action is ChunkAction.WRITE
    verdict = admit(size=101, buffered=900, max_buffered=1000)
    assert verdict.action is ChunkAction.OVERLOADED and verdict.fails_session
    # As before the split: its number is taken and the idle clock restarts.
    assert verdict.taken
    assert verdict.error is not None and verdict.error.name == ErrorName.RELAY_OVERLOADED


def test_failing_verdicts_name_their_tasks_as_before() -> None:
    assert ChunkAction.GAP.value == "gap"
    assert ChunkAction.OVER_LIMIT.value == "limit"
    assert ChunkAction.OVERLOADED.value == "overload"


# ---- the command queue -----------------------------------------------------------------


def future() -> asyncio.Future[ServerError | None]:
    return asyncio.get_running_loop().create_future()


async def test_queue_serves_in_order_until_a_stop_and_refuses_what_follows() -> None:
    queue = CommandQueue()
    chunk1, chunk2 = ChunkCommand(future(), b"abc"), ChunkCommand(future(), b"de")
    retarget, stop = RetargetCommand(future()), StopCommand(future())
    late = ChunkCommand(future(), b"fgh")
    for command in (chunk1, retarget, chunk2, stop, late):
        queue.put(command)
    assert queue.buffered_bytes == 8
    seen: list[Command] = []
    in_hand: list[int] = []

    async def handle(command: Command) -> None:
        seen.append(command)
        in_hand.append(queue.buffered_bytes)

    assert await queue.serve(handle) is None
    assert seen == [chunk1, retarget, chunk2, stop]
    # A command's bytes count until it is answered.
    assert in_hand == [8, 5, 5, 3]
    assert [c.future.result() for c in (chunk1, retarget, chunk2, stop)] == [None] * 4
    assert late.future.result() == FFMPEG_NOT_RUNNING
    assert queue.buffered_bytes == 0


async def test_queue_stops_on_a_relay_error_and_answers_its_command() -> None:
    queue = CommandQueue()
    error = ServerError(ErrorName.FFMPEG_WRITE_ERROR, "broken pipe")
    bad, after = ChunkCommand(future(), b"xx"), ChunkCommand(future(), b"yyy")
    queue.put(bad)
    queue.put(after)

    async def handle(command: Command) -> None:
        raise RelayError(error)

    assert await queue.serve(handle) == error
    assert bad.future.result() == error
    assert not after.future.done()  # left for the session's halt
    assert queue.buffered_bytes == 3
    queue.answer_all(FFMPEG_NOT_RUNNING)
    assert after.future.result() == FFMPEG_NOT_RUNNING
    assert queue.buffered_bytes == 0


async def test_cancelled_mid_command_the_command_in_hand_is_answered() -> None:
    queue = CommandQueue()
    blocked, queued = ChunkCommand(future(), b"12345"), ChunkCommand(future(), b"678")
    queue.put(blocked)
    queue.put(queued)
    started = asyncio.Event()

    async def handle(command: Command) -> None:
        started.set()
        await asyncio.Event().wait()  # a write stuck on a stalled ffmpeg

    task = asyncio.create_task(queue.serve(handle))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert queue.buffered_bytes == 8
    shutting = ServerError(ErrorName.RELAY_SHUTTING_DOWN, "bye")
    queue.answer_all(shutting)
    assert blocked.future.result() == shutting
    assert queued.future.result() == shutting
    assert queue.buffered_bytes == 0


async def test_the_queue_is_idle_only_with_nothing_queued_or_in_hand() -> None:
    # Session.feed writes a chunk past the queue only when it is idle: the arrival order.
    queue = CommandQueue()
    assert queue.idle
    first, second = ChunkCommand(future(), b"ab"), ChunkCommand(future(), b"c")
    queue.put(first)
    assert not queue.idle  # queued
    assert await queue.take() is first
    assert not queue.idle  # in hand, being written
    queue.put(second)
    queue.finish(first, None)
    assert not queue.idle  # the next one waits
    assert await queue.take() is second
    queue.finish(second, None)
    assert queue.idle


async def test_an_answered_future_is_not_answered_twice() -> None:
    queue = CommandQueue()
    command = ChunkCommand(future(), b"ab")
    command.future.cancel()  # its sender went away
    queue.put(command)
    queue.answer_all(FFMPEG_NOT_RUNNING)
    assert command.future.cancelled()
    assert queue.buffered_bytes == 0


# ---- output events ---------------------------------------------------------------------


def output(
    state: OutputState,
    *,
    reconnects: int = 0,
    next_in: float | None = None,
    error: str | None = None,
    recording: str | None = None,
) -> OutputStatus:
    return OutputStatus(
        id="out1",
        target="rtmp://127.0.0.1/live/****",
        state=state,
        bytes_sent=0,
        uptime_s=0.0,
        reconnects=reconnects,
        attempts=0,
        next_attempt_in_s=next_in,
        last_error=error,
        recording_path=recording,
    )


def never() -> Iterable[OutputStatus]:
    raise AssertionError("the other outputs are only looked at when one failed")


def test_reconnecting_warns_client_and_operator_with_the_next_attempt() -> None:
    event = on_output_change(output(OutputState.RECONNECTING, next_in=3.6, error="EOF"), never)
    assert event.log is None and event.session_failure is None
    assert event.notice is not None
    assert event.notice.name == ErrorName.OUTPUT_RECONNECTING and not event.notice.fatal
    assert event.notice.message == "rtmp://127.0.0.1/live/****: EOF; next attempt in 4 s"
    bare = on_output_change(output(OutputState.RECONNECTING), never)
    assert bare.notice is not None
    assert bare.notice.message == "rtmp://127.0.0.1/live/****: connection lost"


def test_live_again_is_logged_only_after_a_reconnect() -> None:
    assert on_output_change(output(OutputState.LIVE), never) == OutputEvent()
    event = on_output_change(output(OutputState.LIVE, reconnects=2), never)
    assert event == OutputEvent(log="rtmp://127.0.0.1/live/**** is live again")


@pytest.mark.parametrize("state", [OutputState.CONNECTING, OutputState.STOPPED])
def test_other_changes_need_nothing_more(state: OutputState) -> None:
    assert on_output_change(output(state), never) == OutputEvent()


def test_one_failed_output_among_live_ones_is_only_logged() -> None:
    failed = output(OutputState.FAILED, error="no ffmpeg")
    event = on_output_change(failed, lambda: [failed, output(OutputState.LIVE)])
    assert event == OutputEvent(log="rtmp://127.0.0.1/live/**** failed: no ffmpeg")
    assert on_output_change(failed, None) == event  # no pipeline: nothing to fail


def test_every_output_failed_fails_the_session() -> None:
    failed = output(OutputState.FAILED, error="refused")
    event = on_output_change(failed, lambda: [failed, output(OutputState.FAILED)])
    assert event.log == "rtmp://127.0.0.1/live/**** failed: refused"
    assert event.session_failure is not None
    assert event.session_failure.name == ErrorName.RTMP_CONNECTION_FAILED
    assert event.session_failure.message == "Every destination failed; the last: refused"
    recording = output(OutputState.FAILED, error="disk full", recording="/tmp/x.mkv")
    event = on_output_change(recording, lambda: [recording])
    assert event.session_failure is not None
    assert event.session_failure.name == ErrorName.RECORDING_FAILED
