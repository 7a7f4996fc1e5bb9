"""A link that goes silent (no reset, no FIN: a phone walking out of Wi-Fi) is noticed within
about 5 s on both sides, from engine.io's pings, not after the library's 45 s."""

from __future__ import annotations

import asyncio
import time

import pytest

from desktop_relay.relay import RelayConfig, SessionState

from ..media import H264_FIXTURE
from ..netfaults import TcpProxy
from ..polling import wait_for
from ..replay import ResumingStreamer, Streamer

pytestmark = pytest.mark.media


async def test_a_silent_link_is_noticed_within_5_s_on_both_sides(
    running_relay, rtmp_receiver
) -> None:
    receiver = rtmp_receiver()
    relay = await running_relay(RelayConfig(default_target=receiver.url))
    assert (relay.config.ping_interval_s, relay.config.ping_timeout_s) == (2.0, 3.0)
    proxy = TcpProxy(relay.port)
    try:
        c = await ResumingStreamer(f"http://127.0.0.1:{proxy.port}").connect()
        ticket = await c.start_ticket()
        chunks = H264_FIXTURE.read_bytes()
        for seq in range(4):
            assert await c.send_seq(chunks[seq * 40_000 : (seq + 1) * 40_000], seq) is None
        # The client learnt the relay's ping values in the handshake.
        assert c.client.eio.ping_interval == 2.0 and c.client.eio.ping_timeout == 3.0
        proxy.stall()  # nothing passes any more; both TCP connections stay open
        stalled_at = time.monotonic()
        await wait_for(
            lambda: relay.get(ticket["sessionId"]).state == SessionState.WAITING, timeout=15
        )
        relay_noticed = time.monotonic() - stalled_at
        await asyncio.wait_for(c.disconnected.wait(), 15)
        client_noticed = time.monotonic() - stalled_at
        # 2 s + 3 s, and a margin for a loaded machine.
        assert relay_noticed <= 7.5, relay_noticed
        assert client_noticed <= 7.5, client_noticed
    finally:
        proxy.close()


async def test_socketio_options_still_override_the_ping_values(running_relay) -> None:
    relay = await running_relay(
        RelayConfig(socketio_options={"ping_interval": 10, "ping_timeout": 7})
    )
    s = await Streamer(f"http://127.0.0.1:{relay.port}").connect()
    try:
        assert (s.client.eio.ping_interval, s.client.eio.ping_timeout) == (10, 7)
    finally:
        await s.close()
