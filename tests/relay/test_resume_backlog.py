"""A resume survives its own backlog: the page resends everything it recorded during the cut
at once, on top of the live stream, and a cut longer than the rate limits' burst must not
make the relay refuse it (RATE_LIMITED ended the session after a 12 s cut on the WebCodecs
path). The credit is what the time away could hold at the limits' own rates, so a client
that abuses the rate (or cycles resumes) is still stopped."""

from __future__ import annotations

import asyncio

import pytest

from desktop_relay.relay import ErrorName, RelayConfig

from ..polling import wait_for
from .test_resume import client, fixture_chunks

pytestmark = pytest.mark.media

# Small limits so that a short cut's backlog is well past the burst: 15 chunks/s sustained,
# bursts of 2 s (30 chunks); the client sends 10 chunks/s, so an 8 s cut owes 80.
LIMITS = RelayConfig(max_chunks_per_second=15, limit_burst_s=2)


async def test_a_cut_longer_than_the_burst_resumes_with_every_chunk_taken(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(LIMITS)
    chunks = fixture_chunks(chunk_s=0.1)  # 200 chunks of 0.1 s
    old = await client(relay)
    ticket = await old.start_ticket({"framerate": 30})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await old.send_in_time(chunks, 0, 20, t0, 0.1)
    old.cut()
    await asyncio.sleep(8)  # the page records on: chunks 20..99 are owed
    new = await client(relay)
    try:
        ack = await new.resume(ticket["sessionId"], ticket["resumeToken"])
        assert ack["lastSeq"] == 19, ack
        # The backlog at once, as the page resends it (without waiting for each ack)...
        answers = await asyncio.gather(*(new.send_seq(chunks[seq], seq) for seq in range(20, 100)))
        assert all(a is None for a in answers), [a for a in answers if a is not None][:3]
        # ...then live again at the client's pace.
        await new.send_in_time(chunks, 100, 130, loop.time() - 10.0, 0.1)
        assert new.errors == []
        assert relay.get(ticket["sessionId"]).chunks_received == 130  # type: ignore[union-attr]
        await new.stop()
    finally:
        await new.close()
        await old.close()


async def test_the_credit_is_bounded_by_the_time_away(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(LIMITS)
    chunks = fixture_chunks(chunk_s=0.05)  # 400 small chunks
    old = await client(relay)
    ticket = await old.start_ticket({"framerate": 30})
    for seq in range(5):
        assert await old.send_seq(chunks[seq], seq) is None
    old.cut()
    await asyncio.sleep(1)  # away about 1 s: a credit of about 15 chunks, plus the burst's 30
    new = await client(relay)
    try:
        ack = await new.resume(ticket["sessionId"], ticket["resumeToken"])
        assert ack["lastSeq"] == 4
        answers = await asyncio.gather(*(new.send_seq(chunks[seq], seq) for seq in range(5, 200)))
        refused = [a for a in answers if a is not None]
        assert refused and refused[0]["name"] == ErrorName.RATE_LIMITED, refused[:1]
        taken = sum(1 for a in answers if a is None)
        assert 30 <= taken <= 30 + 15 * 3 + 10, taken  # the burst, the credit, a little refill
        await wait_for(lambda: any(e["name"] == ErrorName.RATE_LIMITED for e in new.errors))
    finally:
        await new.close()
        await old.close()
