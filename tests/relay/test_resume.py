"""Sessions outlive their sockets: resume tokens, numbered chunks, the waiting grace period.

Real sockets (python-socketio clients), real ffmpeg, a real `-listen 1` RTMP receiver where
the media matters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from desktop_relay.relay import ErrorName, RelayConfig, SessionState

from ..media import FIXTURE_SECONDS, H264_FIXTURE, probe
from ..polling import wait_for
from ..procs import pid_alive
from ..replay import ResumingStreamer, relay_url


def fixture_chunks(seconds: float | None = None, chunk_s: float = 0.25) -> list[bytes]:
    """The H.264 capture cut in chunks of about `chunk_s` seconds (as MediaRecorder does)."""
    data = H264_FIXTURE.read_bytes()
    total = len(data) if seconds is None else int(len(data) * seconds / FIXTURE_SECONDS)
    step = max(1, int(len(data) * chunk_s / FIXTURE_SECONDS))
    return [data[i : min(i + step, total)] for i in range(0, total, step)]


# The client of these tests (also used by test_catch_up_stream and test_dead_link).
Client = ResumingStreamer


async def client(relay: Any) -> Client:
    return await Client(relay_url(relay)).connect()


async def streaming(relay: Any, chunks: int = 4) -> tuple[Client, dict[str, Any]]:
    """A client that started and sent its first numbered chunks (ffmpeg runs)."""
    c = await client(relay)
    ticket = await c.start_ticket()
    for seq, chunk in enumerate(fixture_chunks()[:chunks]):
        assert await c.send_seq(chunk, seq) is None
    return c, ticket


def is_refusal(ack: Any) -> bool:
    return isinstance(ack, dict) and ack.get("name") == ErrorName.RESUME_REFUSED


# ---- the rules, without sockets -----------------------------------------------------------


def test_chunk_sequence_rules() -> None:
    from desktop_relay.relay.session.resume import ChunkSequence, SeqVerdict, parse_seq

    seq = ChunkSequence()
    assert seq.check(7) is SeqVerdict.NEW  # any first number
    seq.accept(7)
    assert seq.check(8) is SeqVerdict.NEW
    assert seq.check(7) is SeqVerdict.DUPLICATE and seq.check(0) is SeqVerdict.DUPLICATE
    assert seq.check(9) is SeqVerdict.GAP
    assert parse_seq(None) is None and parse_seq(0) == 0 and parse_seq(2**53 - 1) == 2**53 - 1
    for bad in (True, False, -1, 2**53, 1.0, "3", [1]):
        with pytest.raises(ValueError):
            parse_seq(bad)


def test_resume_ticket_is_secret_and_exact() -> None:
    from desktop_relay.relay.session.resume import ResumeTicket

    a, b = ResumeTicket(), ResumeTicket()
    assert a.token != b.token and len(a.token) >= 32
    assert a.matches(a.token) and not a.matches(b.token)
    assert not a.matches(a.token[:-1]) and not a.matches(None) and not a.matches("")
    assert a.token not in repr(a)


# ---- over real sockets --------------------------------------------------------------------


@pytest.mark.media
async def test_a_cut_socket_is_resumed_and_the_receiver_gets_the_whole_stream(
    running_relay, rtmp_receiver
) -> None:
    receiver = rtmp_receiver()  # `-listen 1`: a second publisher (a second ffmpeg) would fail
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    waiting: list[str] = []
    resumed: list[str] = []
    relay.add_listener("waiting", lambda sid, status: waiting.append(sid))
    relay.add_listener("resumed", lambda sid, status: resumed.append(sid))
    chunks = fixture_chunks()
    loop = asyncio.get_running_loop()

    first = await client(relay)
    ticket = await first.start_ticket()
    assert set(ticket) == {"sessionId", "resumeToken", "lastSeq"} and ticket["lastSeq"] is None
    t0 = loop.time()
    cut_at = int(len(chunks) * 0.4)
    for seq in range(cut_at):
        assert await first.send_seq(chunks[seq], seq) is None
        await asyncio.sleep(max(0.0, t0 + (seq + 1) * 0.25 - loop.time()))
    pid = relay.get(ticket["sessionId"]).ffmpeg.pid
    # Two chunks sent without waiting for their acks, then the connection is gone: the
    # client cannot know whether the relay got them.
    await first.client.emit("binarystream", (chunks[cut_at], cut_at))
    await first.client.emit("binarystream", (chunks[cut_at + 1], cut_at + 1))
    first.cut()

    await wait_for(lambda: waiting == [ticket["sessionId"]], timeout=10)
    status = relay.get(ticket["sessionId"])
    assert status.state == SessionState.WAITING and status.to_dict()["state"] == "waiting"
    await asyncio.sleep(3.0)
    assert pid_alive(pid), "ffmpeg must keep running while the session waits"

    second = await client(relay)
    ack = await second.resume(ticket["sessionId"], ticket["resumeToken"])
    assert set(ack) == {"sessionId", "lastSeq"} and ack["sessionId"] == ticket["sessionId"]
    assert cut_at - 1 <= ack["lastSeq"] <= cut_at + 1
    assert resumed == [ticket["sessionId"]]
    assert [s.uuid for s in relay.sessions()] == [ticket["sessionId"]]  # the fresh one is gone
    assert relay.get(ticket["sessionId"]).state in (SessionState.LIVE, SessionState.STARTING)
    assert relay.get(ticket["sessionId"]).ffmpeg.pid == pid  # the same ffmpeg, not a new one

    t0 = loop.time()
    for i, seq in enumerate(range(ack["lastSeq"] + 1, len(chunks))):
        assert await second.send_seq(chunks[seq], seq) is None
        await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.25 - loop.time()))
    await second.stop()
    await second.close()
    assert second.errors == [] and first.ack_errors == []
    await asyncio.to_thread(receiver.wait, 30)

    source, got = probe(H264_FIXTURE), probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac")
    assert got.video_frames >= 0.95 * source.video_frames, (got, source)


async def test_resume_refusals_give_no_hint(running_relay) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=30.0))
    victim, ticket = await streaming(relay)
    other, other_ticket = await streaming(relay)
    victim.cut()
    await wait_for(lambda: relay.get(ticket["sessionId"]).state == SessionState.WAITING)

    knocker = await client(relay)
    acks = [
        await knocker.resume(ticket["sessionId"], "not-the-token"),
        await knocker.resume(ticket["sessionId"], other_ticket["resumeToken"]),  # another's
        await knocker.resume("00000000-0000-4000-8000-000000000000", ticket["resumeToken"]),
        await knocker.resume(ticket["sessionId"], 12345),
    ]
    assert all(is_refusal(a) and a["fatal"] is False for a in acks), acks
    assert len({a["message"] for a in acks}) == 1  # one message whatever the cause
    await wait_for(lambda: len(knocker.errors) == len(acks))
    assert {e["name"] for e in knocker.errors} == {ErrorName.RESUME_REFUSED}
    # Nothing was taken over; the refused socket may still stream on its own.
    assert relay.get(ticket["sessionId"]).state == SessionState.WAITING
    assert relay.get(other_ticket["sessionId"]).state in (SessionState.STARTING, SessionState.LIVE)
    assert (await knocker.start_ticket())["sessionId"] not in (
        ticket["sessionId"],
        other_ticket["sessionId"],
    )
    for c in (other, knocker):
        await c.stop()
        await c.close()


async def test_an_expired_session_cannot_be_resumed_and_its_ffmpeg_is_gone(
    running_relay,
) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=1.0))
    destroyed: list[str] = []
    relay.add_listener("destroyed", lambda sid, status: destroyed.append(sid))
    c, ticket = await streaming(relay)
    pid = await wait_for(lambda: (relay.get(ticket["sessionId"]).ffmpeg or None) and
                         relay.get(ticket["sessionId"]).ffmpeg.pid)
    c.cut()
    await wait_for(lambda: relay.get(ticket["sessionId"]).state == SessionState.WAITING)
    await wait_for(lambda: ticket["sessionId"] in destroyed, timeout=15)
    await wait_for(lambda: not pid_alive(pid), timeout=10)
    late = await client(relay)
    assert is_refusal(await late.resume(ticket["sessionId"], ticket["resumeToken"]))
    await late.close()


async def test_a_duplicate_chunk_is_dropped_with_a_success_ack(running_relay) -> None:
    relay = await running_relay()
    c = await client(relay)
    ticket = await c.start_ticket()
    chunks = fixture_chunks(4.0)
    for seq, chunk in enumerate(chunks):
        assert await c.send_seq(chunk, seq) is None
        if seq in (3, 7, 11):  # a resend of chunks already taken: never written twice
            for again in (seq, seq - 2):
                ack = await c.send_seq(chunks[again], again)
                assert not ack[0] and ack[1] == {"duplicate": True}, ack
    status = relay.get(ticket["sessionId"])
    assert status.bytes_received == sum(map(len, chunks))
    assert status.chunks_received == len(chunks)
    assert c.errors == []
    await c.stop()
    recording = Path(relay.get(ticket["sessionId"]).recording_path)
    await c.close()
    got = probe(recording)
    assert got.video_codec == "h264" and got.video_frames > 0


async def test_a_gap_ends_the_session_with_chunk_gap(running_relay) -> None:
    relay = await running_relay()
    c = await client(relay)
    ticket = await c.start_ticket()
    chunks = fixture_chunks(2.0)
    for seq in range(3):
        assert await c.send_seq(chunks[seq], 10 + seq) is None  # any first number
    ack = await c.send_seq(chunks[4], 14)  # 13 is missing
    assert ack["name"] == ErrorName.CHUNK_GAP and ack["fatal"] is True
    await wait_for(lambda: any(e["name"] == ErrorName.CHUNK_GAP for e in c.errors))
    assert "13" in ack["message"]
    await wait_for(lambda: relay.get(ticket["sessionId"]).state == SessionState.FAILED)
    await c.close()


@pytest.mark.parametrize("seq", [True, -1, 2**53, 1.5, "3", [0]])
async def test_invalid_sequence_numbers_are_refused(running_relay, seq: Any) -> None:
    relay = await running_relay()
    c = await client(relay)
    ticket = await c.start_ticket()
    ack = await c.send_seq(fixture_chunks(0.5)[0], seq)
    assert ack["name"] == ErrorName.INVALID_PARAMETERS and ack["fatal"] is False
    assert relay.get(ticket["sessionId"]).bytes_received == 0
    await c.close()


async def test_stop_then_disconnect_ends_at_once(running_relay) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=30.0))
    events: list[tuple[str, str]] = []
    relay.add_listener("waiting", lambda sid, status: events.append(("waiting", sid)))
    relay.add_listener("destroyed", lambda sid, status: events.append(("destroyed", sid)))

    stopper, stopped = await streaming(relay)
    await stopper.stop()
    await stopper.close()
    idle = await client(relay)  # connected, never started: nothing to wait for
    await idle.close()
    await wait_for(lambda: len(events) == 2, timeout=5)
    assert events[0] == ("destroyed", stopped["sessionId"]) and events[1][0] == "destroyed"

    # Without `stop`, a disconnect cannot be told from a lost network: the session waits.
    leaver, left = await streaming(relay)
    await leaver.close()
    await wait_for(lambda: ("waiting", left["sessionId"]) in events, timeout=5)


async def test_without_a_grace_period_a_lost_socket_ends_its_session(running_relay) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=0))
    destroyed: list[str] = []
    relay.add_listener("destroyed", lambda sid, status: destroyed.append(sid))
    c, ticket = await streaming(relay)
    c.cut()
    await wait_for(lambda: destroyed == [ticket["sessionId"]], timeout=15)


async def test_a_client_that_does_not_number_chunks_is_not_kept_waiting(running_relay) -> None:
    # The original 0.2.x client and today's page start a new session after a drop: an old
    # one left waiting would hold a slot and keep publishing a frozen stream to the target.
    relay = await running_relay()
    destroyed: list[str] = []
    relay.add_listener("destroyed", lambda sid, status: destroyed.append(sid))
    c = await client(relay)
    ticket = await c.start_ticket()
    for chunk in fixture_chunks()[:4]:
        assert await c.client.call("binarystream", chunk, timeout=30) is None
    c.cut()
    await wait_for(lambda: destroyed == [ticket["sessionId"]], timeout=15)
    assert relay.sessions() == []


async def test_the_idle_sweep_spares_a_waiting_session(running_relay) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=5.0, idle_timeout=0.5))
    c, ticket = await streaming(relay)
    c.cut()
    await wait_for(lambda: relay.get(ticket["sessionId"]).state == SessionState.WAITING)
    await asyncio.sleep(2.0)  # four idle timeouts
    assert relay.get(ticket["sessionId"]).state == SessionState.WAITING
    again = await client(relay)
    ack = await again.resume(ticket["sessionId"], ticket["resumeToken"])
    assert ack["lastSeq"] == 3
    assert await again.send_seq(fixture_chunks()[4], 4) is None
    assert relay.get(ticket["sessionId"]).state in (SessionState.STARTING, SessionState.LIVE)
    await again.stop()
    await again.close()


async def test_kill_and_relay_stop_end_waiting_sessions(running_relay) -> None:
    relay = await running_relay(RelayConfig(resume_grace_s=30.0))
    destroyed: list[str] = []
    relay.add_listener("destroyed", lambda sid, status: destroyed.append(sid))
    killed, killed_ticket = await streaming(relay)
    kept, kept_ticket = await streaming(relay)
    pids = [
        await wait_for(lambda t=t: relay.get(t["sessionId"]).ffmpeg.pid)
        for t in (killed_ticket, kept_ticket)
    ]
    killed.cut()
    kept.cut()
    await wait_for(
        lambda: all(
            relay.get(t["sessionId"]).state == SessionState.WAITING
            for t in (killed_ticket, kept_ticket)
        )
    )
    assert await relay.kill(killed_ticket["sessionId"])
    assert destroyed == [killed_ticket["sessionId"]]
    await wait_for(lambda: not pid_alive(pids[0]), timeout=10)
    await relay.stop()
    assert destroyed == [killed_ticket["sessionId"], kept_ticket["sessionId"]]
    assert not pid_alive(pids[1])


async def test_a_live_session_is_taken_over_from_a_new_socket(running_relay) -> None:
    relay = await running_relay()
    old, ticket = await streaming(relay)
    new = await client(relay)
    ack = await new.resume(ticket["sessionId"], ticket["resumeToken"])
    assert ack == {"sessionId": ticket["sessionId"], "lastSeq": 3}
    await wait_for(lambda: old.disconnected.is_set(), timeout=5)
    assert [s.uuid for s in relay.sessions()] == [ticket["sessionId"]]
    assert await new.send_seq(fixture_chunks()[4], 4) is None
    assert relay.get(ticket["sessionId"]).chunks_received == 5
    await new.stop()
    await new.close()


async def test_a_streaming_socket_cannot_resume_another_session(running_relay) -> None:
    relay = await running_relay()
    a, a_ticket = await streaming(relay)
    b, b_ticket = await streaming(relay)
    assert is_refusal(await b.resume(a_ticket["sessionId"], a_ticket["resumeToken"]))
    assert {s.uuid for s in relay.sessions()} == {a_ticket["sessionId"], b_ticket["sessionId"]}
    for c in (a, b):
        await c.stop()
        await c.close()
