"""The join page keeps its stream through a network drop: real Chromium reaches the relay
through a test-owned TCP proxy that resets every connection and refuses new ones for a while;
the page keeps recording, resumes its session with its token and resends what the relay missed,
and the one RTMP receiver (which takes a single publisher) gets the whole stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from desktop_relay.relay import RelayConfig, RelayServer, SessionStatus
from desktop_relay.relay.observer import BaseObserver

from ..media import probe
from ..netfaults import TcpProxy
from .helpers import Browser, until
from .test_page import (
    FAKE_CAMERA_FPS,
    ffmpeg_status,
    frames_flowing,
    go_live,
    stop,
    wait_receiver,
)

pytestmark = pytest.mark.media


class ResumeLog(BaseObserver):
    """Which sessions the relay saw waiting and resumed."""

    def __init__(self) -> None:
        self.waiting: list[str] = []
        self.resumed: list[str] = []

    def session_waiting(self, status: SessionStatus) -> None:
        self.waiting.append(status.uuid)

    def session_resumed(self, status: SessionStatus) -> None:
        self.resumed.append(status.uuid)


@pytest.fixture
def proxy_factory() -> Iterator[Any]:
    proxies: list[TcpProxy] = []

    def make(port: int) -> TcpProxy:
        proxies.append(TcpProxy(port))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


async def open_via(browser: Browser, proxy: TcpProxy) -> Page:
    """The join page served through the proxy, so its socket goes through it too."""
    page = await browser.open(f"http://127.0.0.1:{proxy.port}/")
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    return page


async def test_drop_resumes_the_same_session_without_losing_video(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy_factory: Any
) -> None:
    receiver = rtmp_receiver()
    # Catch-up off: this test is about nothing being lost through a drop. With it on (the
    # default) the live output skips the backlog on purpose (test_catch_up_stream.py).
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=receiver.url, catch_up_lag_s=None)
    )
    log = ResumeLog()
    relay.add_observer(log)
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(4)

    # The network drops (every connection reset) and stays away for 5 s.
    proxy.reset_all()
    proxy.refuse_for(5)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    message = page.locator("#message")
    await expect(message).to_contain_text("Reconnecting… (holding", timeout=5_000)
    # The recorder goes on: the held video grows while the link is down.
    held = await page.evaluate("window.relayClient.heldSeconds")
    await asyncio.sleep(1.5)
    assert await page.evaluate("window.relayClient.heldSeconds") > held

    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    await expect(message).to_contain_text("Back live")
    # The same session, taken over by the new socket: no second one.
    assert [s.uuid for s in relay.sessions()] == [session]
    assert log.waiting == [session] and log.resumed == [session]
    await asyncio.sleep(3)

    recorded_s = await page.evaluate("(Date.now() - window.relayClient.liveSince) / 1000")
    await stop(page)
    assert await page.evaluate("window.relayClient.bytesSent") > 0
    # One publisher from start to end: `ffmpeg -listen 1` takes a single one, then exits.
    await wait_receiver(receiver)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    # Every frame the page recorded, the drop included, reached the receiver.
    assert got.video_frames >= 0.95 * recorded_s * FAKE_CAMERA_FPS, (got, recorded_s)
    assert got.duration >= 0.95 * recorded_s, (got, recorded_s)
    assert not browser.errors()


async def test_refused_resume_starts_a_new_session_and_says_so(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy_factory: Any
) -> None:
    first = rtmp_receiver()
    # No grace period: the relay ends the session at the drop, so the resume is refused.
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=first.url, resume_grace_s=0)
    )
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    await go_live(page)
    old = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(2)

    second = rtmp_receiver()
    relay.set_default_target(second.url)
    proxy.reset_all()
    proxy.refuse_for(2)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    await expect(page.locator("#message")).to_contain_text(
        "The relay ended this stream: starting a new one", timeout=15_000
    )
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    new = await until(
        lambda: [s.uuid for s in relay.sessions() if s.uuid != old and s.ffmpeg],
        what="a new session",
    )
    assert len(new) == 1
    # Never two sessions for one page.
    assert len([s for s in relay.sessions() if s.ffmpeg]) == 1
    await frames_flowing(relay, new[0])
    await asyncio.sleep(3.5)
    await stop(page)
    await wait_receiver(first)
    await wait_receiver(second)
    # The new session begins with its own header: ffmpeg reads it from the start.
    got = probe(second.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= 2.5, got


async def test_drop_longer_than_the_buffer_ends_the_old_session_and_starts_anew(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy_factory: Any
) -> None:
    first = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=first.url))
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    # A buffer of one second: a 3 s drop overflows it.
    await page.evaluate("window.relayClient.setOptions({resumeBufferSeconds: 1})")
    await go_live(page)
    old = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(2)

    second = rtmp_receiver()
    relay.set_default_target(second.url)
    proxy.reset_all()
    proxy.refuse_for(3)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    await expect(page.locator("#message")).to_contain_text(
        "too long to keep all the video", timeout=15_000
    )
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    # The old stream was resumed only to be stopped, then a new one started on the same
    # socket (the relay's session for a socket keeps its id): never two for the page.
    await until(
        lambda: [(s.uuid, s.ffmpeg is not None) for s in relay.sessions()] == [(old, True)],
        what="one session streaming again",
    )
    await asyncio.sleep(3.5)
    await stop(page)
    await wait_receiver(first)
    await wait_receiver(second)
    got = probe(second.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= 2.5, got
