"""A phone whose uplink is slower than its video, in real Chromium through the test-owned TCP
proxy: the page says the link is slow, and nothing drops (no disconnect, no resume storm),
because any packet reaching the relay counts as life (issue 23 item 1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from desktop_relay.relay import RelayConfig, RelayServer, SessionState

from ..netfaults import TcpProxy
from .helpers import Browser
from .test_page import ffmpeg_status, go_live, stop

pytestmark = pytest.mark.media


async def test_a_throttled_uplink_is_said_and_drops_nothing(
    running_relay: Any, browser: Browser
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    states: list[SessionState] = []
    relay.add_listener("session_changed", lambda status: states.append(status.state))
    proxy = TcpProxy(relay.port)
    try:
        page = await browser.open(f"http://127.0.0.1:{proxy.port}/")
        await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
        await expect(page.locator("#connection")).to_have_text("Connected")
        await go_live(page)
        session = (await ffmpeg_status(relay)).uuid
        await asyncio.sleep(2)
        # A tenth of the fake camera's stream gets through, for 10 s.
        proxy.throttle_uplink(20_000)
        await expect(page.locator("#message")).to_contain_text(
            "slower than the video", timeout=10_000)
        await asyncio.sleep(4)
        proxy.throttle_uplink(None)
        await expect(page.locator("#stream-state")).to_have_text("Live")
        assert [s.uuid for s in relay.sessions()] == [session]
        assert SessionState.WAITING not in states, states
        connection = await page.locator("#connection").text_content()
        assert connection == "Connected", connection
        await stop(page)
    finally:
        proxy.close()
