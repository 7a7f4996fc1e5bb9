"""A healthy client on an uplink slower than its stream is not dropped: its pongs wait behind
the video in the same TCP stream, but every packet that arrives counts as life, and the relay
keeps pinging on schedule so the client does not give up either. A dead link is still
noticed within about 5 s (test_dead_link.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from desktop_relay.relay import RelayConfig, SessionState

from ..media import H264_FIXTURE
from ..netfaults import TcpProxy
from ..polling import wait_for
from ..replay import ResumingStreamer

pytestmark = pytest.mark.media


async def test_a_throttled_uplink_for_10_s_drops_no_one(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig())
    states: list[SessionState] = []
    relay.add_listener("session_changed", lambda status: states.append(status.state))
    resumed: list[str] = []
    relay.add_listener("session_resumed", lambda status: resumed.append(status.uuid))
    proxy = TcpProxy(relay.port)
    client = await ResumingStreamer(f"http://127.0.0.1:{proxy.port}").connect()
    try:
        ticket = await client.start_ticket({"framerate": 30})
        data = H264_FIXTURE.read_bytes()
        step = len(data) // 80  # 0.25 s of the 20 s capture: about 14 KB, 56 KB/s
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        loop = asyncio.get_running_loop()
        acks: list[object] = []

        async def send_like_a_page() -> None:
            # As our page does: each chunk goes out when recorded, without waiting for the
            # last one's ack, so a slow uplink queues them (and the pongs) in the client.
            t0 = loop.time()
            for seq, chunk in enumerate(chunks[:64]):
                await asyncio.sleep(max(0.0, t0 + (seq + 1) * 0.25 - loop.time()))
                await client.client.emit("binarystream", (chunk, seq), callback=lambda *a: acks.append(a))

        sender = asyncio.create_task(send_like_a_page())
        # 2 s at full speed, then 10 s with an uplink of a third of the stream's rate, then
        # full speed to catch up.
        await asyncio.sleep(2)
        proxy.throttle_uplink(18_000)
        throttled_at = time.monotonic()
        await asyncio.sleep(10)
        proxy.throttle_uplink(None)
        slow_for = time.monotonic() - throttled_at
        await asyncio.wait_for(sender, 30)
        await wait_for(lambda: len(acks) == 64, timeout=30)
        assert all(a == () or a == (None,) for a in acks), acks[:5]  # none refused
        assert slow_for >= 10
        assert not client.disconnected.is_set()
        assert client.client.connected
        status = relay.get(ticket["sessionId"])
        assert status is not None and status.state == SessionState.LIVE
        assert SessionState.WAITING not in states and not resumed, states
        assert client.errors == []
        await client.stop()
    finally:
        await client.close()
        proxy.close()


async def test_a_throttled_link_that_then_goes_silent_is_still_noticed(running_relay) -> None:  # type: ignore[no-untyped-def]
    """Slow does not mean immortal: once nothing arrives at all, 5 s (with a margin)."""
    relay = await running_relay(RelayConfig())
    proxy = TcpProxy(relay.port)
    client = await ResumingStreamer(f"http://127.0.0.1:{proxy.port}").connect()
    try:
        ticket = await client.start_ticket({"framerate": 30})
        chunk = H264_FIXTURE.read_bytes()[:40_000]
        assert await client.send_seq(chunk, 0) is None
        proxy.throttle_uplink(10_000)
        await asyncio.sleep(3)
        proxy.stall()
        stalled_at = time.monotonic()
        await wait_for(
            lambda: relay.get(ticket["sessionId"]).state == SessionState.WAITING,  # type: ignore[union-attr]
            timeout=15,
        )
        assert time.monotonic() - stalled_at <= 7.5
    finally:
        await client.close()
        proxy.close()
