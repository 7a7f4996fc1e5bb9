"""A page that reloads (or closes) frees its session at once, in real Chromium: the page says
goodbye (`stop`, then the socket closes), so the relay does not keep the session waiting 30 s
for a resume that will never come. With one stream allowed and one RTMP key, the reloaded
page is live again, to the same key, within 3 s. A lost link still waits (test_page.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.async_api import expect

from desktop_relay.relay import OutputState, RelayConfig, SessionState

from .helpers import Browser, until
from .test_page import ffmpeg_status, go_live, open_page, page_url

pytestmark = pytest.mark.media


async def test_a_reloaded_page_frees_its_session_and_streams_again_to_the_same_key(
    running_relay: Any, nginx_rtmp: Any, browser: Browser
) -> None:
    target = nginx_rtmp.url("reload-key-0123456789")
    relay = await running_relay(RelayConfig(default_target=target, max_ffmpeg_instances=1))
    states: list[tuple[str, SessionState]] = []
    relay.add_listener("session_changed", lambda status: states.append((status.uuid, status.state)))
    page = await open_page(browser, relay)
    await go_live(page)
    first = await ffmpeg_status(relay)
    await until(lambda: relay.get(first.uuid) is not None
                and [o.state for o in relay.get(first.uuid).outputs] == [OutputState.LIVE],
                what="the first session's output live")

    reloaded_at = time.monotonic()
    await page.goto(page_url(relay))
    # The old session ends at once: never waiting for a resume.
    await until(lambda: relay.get(first.uuid) is None, timeout=5, what="the old session ended")
    assert (first.uuid, SessionState.WAITING) not in states, states
    ended_after = time.monotonic() - reloaded_at

    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    await go_live(page)  # no MAX_STREAMS_REACHED: the slot is free
    second = await ffmpeg_status(relay)
    assert second.uuid != first.uuid
    await until(lambda: relay.get(second.uuid) is not None
                and [o.state for o in relay.get(second.uuid).outputs] == [OutputState.LIVE],
                timeout=10, what="the new session live on the same key")
    live_again_after = time.monotonic() - reloaded_at
    assert ended_after <= 2.0, ended_after
    assert live_again_after <= 3.0, live_again_after
    print(f"old session ended {ended_after:.2f} s after the reload; live again at "
          f"{live_again_after:.2f} s")
