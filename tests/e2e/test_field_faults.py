"""Network faults as a phone meets them, through a test-owned TCP proxy between real Chromium
and the relay: a link that goes silent for 8 s (no reset, nothing passes), an outage longer
than the relay's grace period, and the original 0.2.x client through a drop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from PySide6.QtWidgets import QApplication

from desktop_relay.gui.sessions.model import SessionsModel
from desktop_relay.relay import RelayConfig, RelayServer, SessionStatus
from desktop_relay.relay.observer import BaseObserver

from ..media import probe
from ..netfaults import TcpProxy
from ..procs import pid_alive
from .helpers import Browser, until
from .test_original_client import original_page_routes
from .test_page import (
    FAKE_CAMERA_FPS,
    ffmpeg_status,
    frames_flowing,
    go_live,
    stop,
    wait_receiver,
)
from .test_resume_page import ResumeLog, open_via, proxy_factory  # noqa: F401 (a fixture)

pytestmark = pytest.mark.media


class WindowRows(BaseObserver):
    """Feeds the window's sessions model the way the window does (session_events.py): every
    snapshot by id, and the end of a session (a socket that never streamed leaves no row)."""

    def __init__(self, model: SessionsModel) -> None:
        self.model = model

    def session_opened(self, status: SessionStatus) -> None:
        self.model.upsert(status)

    def session_ended(self, status: SessionStatus) -> None:
        self.model.end_session(status.uuid, status)

    def session_changed(self, status: SessionStatus) -> None:
        self.model.upsert(status)

    def session_waiting(self, status: SessionStatus) -> None:
        self.model.upsert(status)

    def session_resumed(self, status: SessionStatus) -> None:
        self.model.upsert(status)

    def stats(self, statuses: list[SessionStatus]) -> None:
        for status in statuses:
            self.model.upsert(status)


async def test_a_link_silent_for_8_s_resumes_and_the_window_keeps_one_row(
    running_relay: Any,
    rtmp_receiver: Any,
    browser: Browser,
    proxy_factory: Any,  # noqa: F811
    qapp: QApplication,
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    log = ResumeLog()
    model = SessionsModel()
    relay.add_observer(log)
    relay.add_observer(WindowRows(model))
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(4)

    # Nothing passes for 8 s, and nothing says so: no reset, no FIN. Pings notice it.
    proxy.stall()
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=8_000)
    await until(lambda: log.waiting == [session], what="the relay noticing", timeout=8)
    await asyncio.sleep(3)
    proxy.resume()
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=25_000)
    await expect(page.locator("#message")).to_contain_text("Back live")
    assert [s.uuid for s in relay.sessions()] == [session]
    assert log.resumed == [session]
    await asyncio.sleep(3)
    # While live, the row counts the reconnect (and what catching up skipped, if anything).
    assert "live · 1 reconnect" in str(model.index(0, 2).data())

    recorded_s = await page.evaluate("(Date.now() - window.relayClient.liveSince) / 1000")
    await stop(page)
    await wait_receiver(receiver)
    status = relay.get(session)
    assert status is not None and status.resumes == 1
    # One row, the same session throughout.
    assert model.rowCount() == 1
    # One RTMP publisher from start to end (`-listen 1` takes only one). It got the seconds
    # that were streamed, less what catching up skipped on purpose (at most the stall).
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= 0.9 * recorded_s, (got, recorded_s)
    skipped = status.skipped_s
    assert skipped <= 8 + 5, status.outputs
    assert got.video_frames / FAKE_CAMERA_FPS + skipped >= 0.9 * recorded_s, (got, skipped)
    assert not browser.errors()


async def test_an_outage_past_the_grace_period_starts_a_new_session_and_leaks_nothing(
    running_relay: Any,
    rtmp_receiver: Any,
    browser: Browser,
    proxy_factory: Any,  # noqa: F811
) -> None:
    # The default grace is 30 s: a 3 s grace and a 7 s outage make the same case in less time.
    first = rtmp_receiver()
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=first.url, resume_grace_s=3.0)
    )
    proxy: TcpProxy = proxy_factory(relay.port)
    page = await open_via(browser, proxy)
    await go_live(page)
    old = await ffmpeg_status(relay)
    assert old.ffmpeg is not None and old.ffmpeg.pid is not None
    await asyncio.sleep(2)

    second = rtmp_receiver()
    relay.set_default_target(second.url)
    proxy.reset_all()
    proxy.refuse_for(7)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    # The grace period ends during the outage: the old session and its ffmpeg are gone.
    await until(lambda: relay.get(old.uuid) is None, what="the old session ending", timeout=15)
    assert not pid_alive(old.ffmpeg.pid)
    await expect(page.locator("#message")).to_contain_text(
        "The relay ended this stream: starting a new one", timeout=20_000
    )
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    new = await until(
        lambda: [s.uuid for s in relay.sessions() if s.ffmpeg and s.uuid != old.uuid],
        what="a new session",
    )
    assert len(new) == 1 and len(relay.sessions()) == 1
    await frames_flowing(relay, new[0])
    await asyncio.sleep(2)
    await stop(page)
    await wait_receiver(first)
    await wait_receiver(second)
    assert probe(second.path).duration >= 2.0
    assert not browser.errors()


async def test_the_original_client_through_a_drop_gets_a_new_session_and_nothing_leaks(
    relay_app: Any,
    original_client_js: Path,
    rtmp_receiver: Any,
    browser: Browser,
    proxy_factory: Any,  # noqa: F811
) -> None:
    receiver = rtmp_receiver()
    relay, url = await relay_app(
        RelayConfig(default_target=receiver.url), original_page_routes(original_client_js)
    )
    proxy: TcpProxy = proxy_factory(int(url.rsplit(":", 1)[1]))
    page = await browser.open(f"http://127.0.0.1:{proxy.port}/original/")
    await page.wait_for_function("window.result.state !== 'loading'")
    assert await page.evaluate("window.result.state") == "started"
    old = await ffmpeg_status(relay)
    assert old.ffmpeg is not None and old.ffmpeg.pid is not None
    await asyncio.sleep(2)

    proxy.reset_all()
    proxy.refuse_for(2)
    # It numbers no chunks, so it cannot resume: its session ends with its socket, as with
    # the original server, and its ffmpeg with it; its new socket is a new session.
    await until(lambda: relay.get(old.uuid) is None, what="the old session ending", timeout=10)
    await until(lambda: not pid_alive(old.ffmpeg.pid), what="its ffmpeg gone", timeout=10)
    await until(
        lambda: [s.uuid for s in relay.sessions() if s.uuid != old.uuid],
        what="its new socket's session",
        timeout=20,
    )
    assert all(s.ffmpeg is None or s.uuid != old.uuid for s in relay.sessions())
    await wait_receiver(receiver)
    assert probe(receiver.path).duration >= 1.5
    # The relay still serves: the page's script runs on, and nothing crashed in the browser.
    assert browser.errors() == []
