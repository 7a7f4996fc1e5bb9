"""The second red-team round's low findings (issue 23, item 9), over real sockets with real
ffmpeg: duplicates count against the limits, a first chunk number near 2**53 is refused,
and cycling resume and drop does not dodge the idle timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState, SessionStatus

from ..polling import wait_for
from .test_resume import client, fixture_chunks, is_refusal, streaming

pytestmark = pytest.mark.media


def _name(ack: Any) -> str | None:
    return ack.get("name") if isinstance(ack, dict) else None


async def test_duplicates_count_against_the_chunk_rate(running_relay) -> None:
    # 5 chunks a second, a burst of 1 s: 5 chunks at once, then one per 0.2 s.
    relay = await running_relay(RelayConfig(max_chunks_per_second=5, limit_burst_s=1.0))
    c, ticket = await streaming(relay, chunks=2)
    acks = [await c.send_seq(fixture_chunks()[0], 0) for _ in range(6)]
    # Dropped as duplicates while the rate allows, then refused: the session ends.
    assert tuple(acks[0]) == (None, {"duplicate": True}), acks
    names = [_name(ack) for ack in acks]
    assert ErrorName.RATE_LIMITED in names, acks
    await wait_for(lambda: relay.get(ticket["sessionId"]).state == SessionState.FAILED)
    await c.close()


async def test_duplicates_count_against_the_chunk_size(running_relay) -> None:
    relay = await running_relay(RelayConfig(max_chunk_bytes=400_000))
    c, _ = await streaming(relay, chunks=2)
    ack = await c.send_seq(b"\0" * 500_000, 1)  # number 1 was taken: a duplicate
    assert _name(ack) == ErrorName.CHUNK_TOO_LARGE, ack
    await c.close()


async def test_a_first_number_near_the_top_is_refused_and_the_stream_goes_on(
    running_relay,
) -> None:
    relay = await running_relay()
    c = await client(relay)
    ticket = await c.start_ticket()
    chunks = fixture_chunks(2.0)
    for too_high in (2**53 - 1, 2**32):
        ack = await c.send_seq(chunks[0], too_high)
        assert _name(ack) == ErrorName.INVALID_PARAMETERS and ack["fatal"] is False, ack
    # Refused, not taken: numbering from 0 works (it was "duplicate" for every chunk after
    # a first 2**53 - 1).
    for seq, chunk in enumerate(chunks):
        assert await c.send_seq(chunk, seq) is None, seq
    assert relay.get(ticket["sessionId"]).state in (SessionState.STARTING, SessionState.LIVE)
    await c.close()


async def test_cycling_resume_and_drop_does_not_dodge_the_idle_timeout(running_relay) -> None:
    relay = await running_relay(RelayConfig(idle_timeout=2.0, resume_grace_s=3.0))
    first, ticket = await streaming(relay)
    sid, token = ticket["sessionId"], ticket["resumeToken"]
    # A session failed while no client holds it ends at once: then only its last status
    # (session_ended) tells how it ended.
    gone: list[SessionStatus] = []
    relay.add_listener("session_ended", lambda st: gone.append(st) if st.uuid == sid else None)

    def status_now() -> SessionStatus:
        status = relay.get(sid) or (gone[0] if gone else None)
        assert status is not None
        return status

    last_data = time.monotonic()
    current = first
    ended_at = None
    # From now on no media: only resumes, each dropped again at once, for up to 12 s.
    while time.monotonic() - last_data < 12.0:
        current.cut()
        await wait_for(lambda: status_now().state not in (SessionState.LIVE, SessionState.STARTING),
                       timeout=5)
        if status_now().state == SessionState.FAILED:
            ended_at = time.monotonic()
            break
        await asyncio.sleep(0.3)
        current = await client(relay)
        ack = await current.resume(sid, token)
        if is_refusal(ack):
            ended_at = time.monotonic()
            break
    await current.close()
    assert ended_at is not None, "the silent session was kept alive by resuming"
    status = status_now()
    assert status.error is not None
    assert status.error.name == ErrorName.IDLE_TIMEOUT
    # Idle 2 s, plus its grace (3 s) if caught waiting, or the one respite a resume gets
    # for its resend (3 s), plus a sweep and a cycle. Without the fix: never.
    assert ended_at - last_data < 7.5
