"""Real Chromium pages as two cameras of one program, end to end: each page streams as a phone
does, the program (PyAV worker) takes one then fades to the other through the control API,
and an `ffmpeg -listen 1` receiver gets one continuous 1280x720 stream with sound."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from desktop_relay.relay import RelayConfig

from ..media import probe
from .helpers import Browser, until
from .test_page import go_live, open_page, stop

pytestmark = pytest.mark.media

CONTROL = "control-token-pages-0123456789"


async def test_two_chromium_pages_make_one_program(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver("program-pages-0123456789")
    relay = await running_relay(RelayConfig(program_targets=(receiver.url,), control_token=CONTROL))
    pages = [await open_page(browser, relay), await open_page(browser, relay)]
    for page in pages:
        await go_live(page)

    def two_live() -> bool:
        status = relay.program_status()
        return status.live and sum(1 for s in status.sources if s.state == "live") == 2

    await until(two_live, timeout=20, what="two live sources on a live program")
    first, second = (s.id for s in relay.program_status().sources)
    url = f"http://127.0.0.1:{relay.port}/api/program"
    headers = {"Authorization": f"Bearer {CONTROL}"}
    async with aiohttp.ClientSession() as http:
        for body, wait in (({"take": first}, 2.0), ({"take": second, "fade_ms": 400}, 2.0),
                           ({"slate": True}, 1.0)):
            async with http.post(url, json=body, headers=headers) as response:
                state = await response.json()
                assert response.status == 200, state
            await asyncio.sleep(wait)
    assert state["slate"] and state["source"] == second
    for page in pages:
        await stop(page)
    await relay.stop()
    await asyncio.to_thread(receiver.wait, 15)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec, got.width) == ("h264", "aac", 1280), got
    assert got.duration >= 5 and got.video_frames >= 29 * (got.duration - 1), got
    assert browser.errors() == []
