"""The join page through the browser's lifecycle and through a Stop while offline, in real
Chromium: a hidden page streams on, a suspended one (frozen, cached, camera muted) pauses and
goes on with the same session, and Stop while the connection is down waits a bounded time for
it, so that the stream keeps its tail, or ends on the page's side and says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from desktop_relay.relay import RelayConfig, RelayServer, SessionState, SessionStatus
from desktop_relay.relay.observer import BaseObserver

from ..media import probe
from ..netfaults import TcpProxy
from ..procs import ffmpeg_descendants
from .helpers import Browser, until
from .test_page import ffmpeg_status, go_live, open_page, settled_bytes, stop, wait_receiver

pytestmark = pytest.mark.media

# Headless Chromium never hides, freezes or caches a page by itself, and its fake camera never
# mutes: the tests set what the page reads (document.visibilityState, track.muted) and fire
# the events a phone's browser fires.
SET_VISIBILITY = """(hidden) => {
    Object.defineProperty(document, "visibilityState", {configurable: true, get: () => hidden ? "hidden" : "visible"});
    Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
    document.dispatchEvent(new Event("visibilitychange"));
}"""
SET_CAMERA_MUTED = """(muted) => {
    const track = window.relayClient.mediaStream.getVideoTracks()[0];
    Object.defineProperty(track, "muted", {configurable: true, get: () => muted});
    track.dispatchEvent(new Event(muted ? "mute" : "unmute"));
}"""
FIRE_ON_DOCUMENT = "(name) => document.dispatchEvent(new Event(name))"
FIRE_PAGE_TRANSITION = (
    "(name) => window.dispatchEvent(new PageTransitionEvent(name, {persisted: true}))"
)
PAUSED_HIDDEN = "Paused while the page is hidden"
BACK_LIVE = "Back live"


class SessionLog(BaseObserver):
    """Every session the relay opened, and every state its sessions went through."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.states: list[tuple[str, SessionState]] = []
        self.resumed: list[str] = []
        self.ended: list[SessionStatus] = []

    def session_opened(self, status: SessionStatus) -> None:
        self.opened.append(status.uuid)

    def session_changed(self, status: SessionStatus) -> None:
        self.states.append((status.uuid, status.state))

    def session_resumed(self, status: SessionStatus) -> None:
        self.resumed.append(status.uuid)

    def session_ended(self, status: SessionStatus) -> None:
        self.ended.append(status)

    def states_of(self, uuid: str) -> list[SessionState]:
        return [state for who, state in self.states if who == uuid]


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


async def assert_paused(page: Page, relay: RelayServer, text: str) -> None:
    """The page says it paused, and no media reaches the relay meanwhile."""
    await expect(page.locator("#stream-state")).to_have_text("Paused")
    await expect(page.locator("#message")).to_contain_text(text)
    during = await settled_bytes(relay)
    await asyncio.sleep(1.0)
    assert relay.sessions()[0].bytes_received == during, "the suspended page sent media"


async def assert_back_live(page: Page, relay: RelayServer) -> None:
    """The page says it is back, and media reaches the relay again."""
    before = relay.sessions()[0].bytes_received
    await expect(page.locator("#stream-state")).to_have_text("Live")
    await expect(page.locator("#message")).to_contain_text(BACK_LIVE)
    await until(lambda: relay.sessions()[0].bytes_received > before, what="media again")


async def test_hidden_and_suspended_page_keeps_one_session(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    log = SessionLog()
    relay.add_observer(log)
    page = await open_page(browser, relay)
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(1.5)

    # Hidden alone (a desktop tab in the background): the stream goes on.
    await page.evaluate(SET_VISIBILITY, True)
    before = relay.sessions()[0].bytes_received
    await asyncio.sleep(1.5)
    await expect(page.locator("#stream-state")).to_have_text("Live")
    assert relay.sessions()[0].bytes_received > before, "the hidden page stopped sending"
    await page.evaluate(SET_VISIBILITY, False)

    # Hidden, then frozen by the browser: paused; resumed and shown again: back live.
    await page.evaluate(SET_VISIBILITY, True)
    await page.evaluate(FIRE_ON_DOCUMENT, "freeze")
    await assert_paused(page, relay, PAUSED_HIDDEN)
    await page.evaluate(FIRE_ON_DOCUMENT, "resume")
    await page.evaluate(SET_VISIBILITY, False)
    await assert_back_live(page, relay)

    # A locked phone: the page is hidden and the camera's track is muted. Visible again, the
    # page waits for the camera before it goes on.
    await page.evaluate(SET_VISIBILITY, True)
    await page.evaluate(SET_CAMERA_MUTED, True)
    await assert_paused(page, relay, PAUSED_HIDDEN)
    await page.evaluate(SET_VISIBILITY, False)
    await asyncio.sleep(0.5)
    await expect(page.locator("#stream-state")).to_have_text("Paused")
    await page.evaluate(SET_CAMERA_MUTED, False)
    await assert_back_live(page, relay)

    # Into the back/forward cache and out of it.
    await page.evaluate(SET_VISIBILITY, True)
    await page.evaluate(FIRE_PAGE_TRANSITION, "pagehide")
    await assert_paused(page, relay, PAUSED_HIDDEN)
    await page.evaluate(SET_VISIBILITY, False)
    await page.evaluate(FIRE_PAGE_TRANSITION, "pageshow")
    await assert_back_live(page, relay)
    await asyncio.sleep(2)

    # One session throughout: never a second one, never a drop.
    assert log.opened == [session]
    assert [s.uuid for s in relay.sessions()] == [session]
    assert SessionState.WAITING not in log.states_of(session)
    await stop(page)

    # One publisher from start to end: `ffmpeg -listen 1` takes a single one, then exits.
    await wait_receiver(receiver)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    # About 6 s were live (1.5 + 1.5 + 2, and a moment after each pause); the pauses, which
    # took longer, are not in the stream.
    assert got.duration >= 5.0, got
    assert not browser.errors()


async def test_stop_while_offline_ends_the_session_once_back(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy_factory: Any
) -> None:
    receiver = rtmp_receiver()
    # The tail comes seconds late, when the connection is back: a live output's catch-up
    # (skipping a backlog to be back to live) is not what this test is about.
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=receiver.url, catch_up_lag_s=None)
    )
    log = SessionLog()
    relay.add_observer(log)
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(3)

    # The network drops and stays away for 3 s; Stop is pressed a second into it.
    proxy.reset_all()
    proxy.refuse_for(3)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    await asyncio.sleep(1)
    recorded_s = await page.evaluate("(Date.now() - window.relayClient.liveSince) / 1000")
    loop = asyncio.get_running_loop()
    pressed = loop.time()
    await page.click("#stop")
    await expect(page.locator("#message")).to_contain_text("waiting for the connection")
    await expect(page.locator("body")).to_have_attribute("data-state", "idle", timeout=15_000)
    # Back within the bound (10 s): resumed, the rest resent, then stopped properly.
    assert loop.time() - pressed < 10 + 3
    await expect(page.locator("#message")).to_contain_text("Stream stopped after")
    assert log.resumed == [session]
    assert [s.uuid for s in relay.sessions()] == [session]
    ended = relay.sessions()[0]
    assert ended.state == SessionState.CONNECTED and ended.error is None, ended
    assert SessionState.ENDING in log.states_of(session)
    assert SessionState.FAILED not in log.states_of(session)
    assert await page.evaluate("window.relayClient.heldSeconds") == 0

    # The receiver got the whole stream, the part recorded while offline included.
    await wait_receiver(receiver)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= 0.95 * recorded_s, (got, recorded_s)
    assert not browser.errors()


async def test_stop_while_the_relay_stays_unreachable_ends_on_the_page(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy_factory: Any
) -> None:
    first = rtmp_receiver()
    grace_s = 6.0
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=first.url, resume_grace_s=grace_s)
    )
    log = SessionLog()
    relay.add_observer(log)
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    bound_s = 4.0
    await page.evaluate(
        f"window.relayClient.setOptions({{stopReconnectTimeoutMs: {bound_s * 1000}}})"
    )
    await go_live(page)
    old = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(3)

    # The network goes for good.
    loop = asyncio.get_running_loop()
    dropped = loop.time()
    proxy.reset_all()
    proxy.refuse_for(600)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    pressed = loop.time()
    await page.click("#stop")
    await expect(page.locator("body")).to_have_attribute("data-state", "idle", timeout=15_000)
    # stop() gave up after its bound, and never hung.
    assert loop.time() - pressed < bound_s + 2
    message = page.locator("#message")
    await expect(message).to_contain_text(
        "Stopped. The relay was unreachable; it ends the stream by itself shortly."
    )
    await expect(message).to_have_attribute("data-kind", "warning")
    assert await page.evaluate("window.relayClient.heldSeconds") == 0

    # The relay ends the session after its grace period, gracefully, and nothing is left.
    await until(lambda: not relay.sessions(), timeout=grace_s + 10, what="the session's end")
    assert loop.time() - dropped >= grace_s - 1
    assert [s.uuid for s in log.ended] == [old]
    assert log.ended[0].state == SessionState.ENDED and log.ended[0].error is None
    await wait_receiver(first)
    await until(
        lambda: not {p: c for p, c in ffmpeg_descendants().items() if "-listen" not in c},
        timeout=5,
        what="no ffmpeg left",
    )

    # Back online, Start begins a fresh session.
    second = rtmp_receiver()
    relay.set_default_target(second.url)
    proxy.refuse_for(0)
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=20_000)
    await go_live(page)
    new = (await ffmpeg_status(relay)).uuid
    assert new != old
    assert [s.uuid for s in relay.sessions()] == [new]
    await asyncio.sleep(3)
    await stop(page)
    await wait_receiver(second)
    got = probe(second.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert not browser.errors()
