"""A started session that delivers no media is said so within seconds (health check
`no_media`: the log, the page's `health` event, the snapshot the window and the headless line
show), not at the idle timeout; a paused page (heartbeats) and a streaming one are not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from desktop_relay.relay import HealthCheck, RelayConfig, RelayServer, SessionState

from ..media import H264_FIXTURE
from ..polling import wait_for
from ..replay import Streamer, relay_url


def checks(relay: RelayServer, session_id: str) -> set[str]:
    status = relay.get(session_id)
    return {str(w.check) for w in status.health} if status is not None else set()


async def started(relay: RelayServer) -> tuple[Streamer, str, list[list[dict[str, Any]]]]:
    streamer = await Streamer(relay_url(relay)).connect()
    heard: list[list[dict[str, Any]]] = []
    streamer.client.on("health", heard.append)
    assert await streamer.start({"framerate": 30})
    (session_id,) = [s.uuid for s in relay.sessions()]
    return streamer, session_id, heard


async def test_a_started_session_that_sends_nothing_is_marked_no_media(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig(idle_timeout=60))
    logs: list[str] = []
    relay.add_listener("session_log", lambda session_id, message: logs.append(message))
    streamer, session_id, heard = await started(relay)
    t0 = time.monotonic()
    try:
        # Like WebKit's MediaRecorder on Debian: "Live" on the page, not a byte sent.
        await wait_for(lambda: "no_media" in checks(relay, session_id), timeout=8)
        took = time.monotonic() - t0
        assert 4.5 <= took <= 7.0, took
        status = relay.get(session_id)
        assert status is not None and status.state == SessionState.STARTING
        await wait_for(lambda: heard and heard[-1], timeout=2)
        assert heard[-1][0]["check"] == "no_media"
        assert "capture mode" in heard[-1][0]["message"]
        assert any(m.startswith("Health: No picture or sound") for m in logs)
        # Media at last: the warning goes, the page hears an empty list.
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=4))
        await wait_for(lambda: "no_media" not in checks(relay, session_id), timeout=6)
        await wait_for(lambda: heard[-1] == [] or all(
            w["check"] != "no_media" for w in heard[-1]), timeout=3)
        await replay
        await streamer.stop()
    finally:
        await streamer.close()


async def test_a_paused_page_and_a_streaming_one_are_not_no_media(running_relay) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig(idle_timeout=60))
    streamer, session_id, _ = await started(relay)
    try:
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=7))
        await asyncio.sleep(7)
        assert HealthCheck.NO_MEDIA not in checks(relay, session_id)
        await replay
        # Paused: empty chunks (heartbeats) every 2 s, as our page sends them.
        for _ in range(4):
            await streamer.send(b"")
            await asyncio.sleep(2)
        assert HealthCheck.NO_MEDIA not in checks(relay, session_id)
        await streamer.stop()
    finally:
        await streamer.close()


@pytest.mark.parametrize("pause_s", [7.0])
async def test_media_that_stops_without_a_pause_is_marked(running_relay, pause_s: float) -> None:  # type: ignore[no-untyped-def]
    relay = await running_relay(RelayConfig(idle_timeout=60))
    streamer, session_id, _ = await started(relay)
    try:
        await streamer.replay(H264_FIXTURE, seconds=3)
        await wait_for(lambda: relay.get(session_id).state == SessionState.LIVE, timeout=5)  # type: ignore[union-attr]
        # Like Firefox's muxer holding all the video: the page goes on, nothing comes.
        await wait_for(lambda: "no_media" in checks(relay, session_id), timeout=pause_s + 1)
        await streamer.stop()
    finally:
        await streamer.close()
