"""The join page in real headless Chromium: fake camera, microphone and screen, through the real
relay and ffmpeg to a real RTMP receiver, checked with ffprobe."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.async_api import Page, expect

from desktop_relay.relay import FfmpegState, RelayConfig, RelayServer, SessionStatus

from ..media import free_port, probe
from .helpers import Browser, until

pytestmark = pytest.mark.media

# Seconds of media per test: ffmpeg probes ~2.6 s before writing, so this leaves a few seconds
# of real output while keeping the suite short.
STREAM_SECONDS = 4.5
FAKE_CAMERA_FPS = 20  # Chromium's fake camera
IDLE_TIMEOUT = 3.0  # the relay's, in the pause test: above the client's 2 s heartbeat


def page_url(relay: RelayServer, query: str = "") -> str:
    return f"http://127.0.0.1:{relay.port}/{query}"


async def open_page(browser: Browser, relay: RelayServer, query: str = "") -> Page:
    """The join page with its camera preview playing."""
    page = await browser.open(page_url(relay, query))
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    return page


async def go_live(page: Page) -> None:
    await page.click("#start")
    await expect(page.locator("body")).to_have_attribute("data-state", "live")
    await expect(page.locator("#stream-state")).to_have_text("Live")


async def stop(page: Page) -> None:
    await page.click("#stop")
    await expect(page.locator("body")).to_have_attribute("data-state", "idle", timeout=20_000)
    await expect(page.locator("#message")).to_contain_text("Stream stopped after")


async def ffmpeg_status(relay: RelayServer) -> SessionStatus:
    """The one session, once its ffmpeg runs (it starts on the first media bytes)."""

    def running() -> SessionStatus | None:
        sessions = [s for s in relay.sessions() if s.ffmpeg and s.ffmpeg.mode]
        return sessions[0] if sessions else None

    status: SessionStatus = await until(running, what="the session's ffmpeg")
    return status


async def frames_flowing(relay: RelayServer, session_id: str, frames: int = 20) -> None:
    """Wait until a session's encoder has put out `frames` frames: "Live" on the page only
    means the relay took the start, and a test that times the stream from there measures the
    encoder's start-up too."""

    def sent() -> int:
        status = relay.get(session_id)
        return status.ffmpeg.frames_sent if status and status.ffmpeg else 0

    await until(lambda: sent() > frames, what=f"{frames} frames from session {session_id[:8]}")


async def settled_bytes(relay: RelayServer, quiet: float = 0.5, timeout: float = 5.0) -> int:
    """The first session's received bytes once they stopped growing for `quiet` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = relay.sessions()[0].bytes_received
    while loop.time() < deadline:
        await asyncio.sleep(quiet)
        now = relay.sessions()[0].bytes_received
        if now == last:
            return now
        last = now
    raise AssertionError("media kept arriving")


def running_ffmpeg(relay: RelayServer) -> bool:
    """Whether the relay's first session has a running ffmpeg."""
    ffmpeg = relay.sessions()[0].ffmpeg
    return ffmpeg is not None and ffmpeg.status == FfmpegState.RUNNING


async def wait_receiver(receiver: Any) -> None:
    await asyncio.to_thread(receiver.wait, 30)


def assert_recording(path: Path, seconds: float, width: int | None = None) -> None:
    """`path` holds about `seconds` of H.264 video (and AAC audio) that ffprobe reads."""
    got = probe(path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= seconds - 1.0, got
    assert got.video_frames >= (seconds - 1.0) * FAKE_CAMERA_FPS * 0.8, got
    if width is not None:
        assert got.width == width, got


async def test_camera_h264_is_copied_to_rtmp(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, tmp_path: Path
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    page = await open_page(browser, relay)
    # The operator allows no targets from browsers: the page offers no field for one.
    await expect(page.locator("#target-field")).to_be_hidden()
    await page.fill("#name", "Stage camera")
    await go_live(page)

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert status.ffmpeg.mode == "copy", status.ffmpeg
    assert status.ffmpeg.input_format == "matroska h264+opus"
    assert status.name == "Stage camera"
    assert status.ffmpeg.options["mimeType"] == "video/webm;codecs=h264,opus"
    await expect(page.locator("#format")).to_contain_text("H.264")

    await asyncio.sleep(STREAM_SECONDS - 1.5)
    await expect(page.locator("#time-live")).to_have_text(re.compile(r"^0:0[2-5]$"))
    await expect(page.locator("#bytes-sent")).to_have_text(re.compile(r"^\d+ kB · \d+ kbit/s$"))
    shot = tmp_path / "screenshot-page.png"
    # Cropped to the content, for the README.
    stage = await page.locator(".stage").bounding_box()
    assert stage is not None
    bottom = stage["y"] + stage["height"] + 24
    await page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": bottom})
    if target := os.environ.get("DESKTOP_RELAY_SCREENSHOT"):
        shutil.copyfile(shot, target)
    await asyncio.sleep(1.5)
    await stop(page)

    await wait_receiver(receiver)
    assert_recording(receiver.path, STREAM_SECONDS)
    assert browser.errors() == []


async def test_camera_vp8_is_transcoded_to_a_target_the_page_chose(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    # No operator target: the page names one, which the operator's pattern allows.
    relay: RelayServer = await running_relay(
        RelayConfig(allowed_target_pattern=r"rtmp://127\.0\.0\.1:\d+/live/[\w-]+")
    )
    page = await open_page(browser, relay, "?mimeType=" + quote("video/webm;codecs=vp8,opus"))
    await expect(page.locator("#target-field")).to_be_visible()
    await page.fill("#target", receiver.url)
    await go_live(page)

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert status.ffmpeg.mode == "transcode"
    assert status.ffmpeg.input_format == "matroska vp8+opus"
    assert status.target is not None and status.recording_path is None
    await expect(page.locator("#format")).to_contain_text("VP8")

    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(receiver)
    assert_recording(receiver.path, STREAM_SECONDS)


async def test_screen_share(running_relay: Any, rtmp_receiver: Any, browser: Browser) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    page = await open_page(browser, relay)
    await page.click("label:has(#source-screen)")
    await expect(page.locator("#share-screen")).to_be_visible()
    await expect(page.locator("#camera-field")).to_be_hidden()
    await page.click("#share-screen")
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    width = await page.evaluate("document.querySelector('#preview').videoWidth")
    await go_live(page)

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None and status.ffmpeg.mode == "copy"
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(receiver)
    got = probe(receiver.path)
    assert got.video_codec == "h264" and got.width == width, got
    # The microphone goes with the screen (MediaRecorder records one audio track).
    assert got.audio_codec == "aac", got
    assert got.duration >= STREAM_SECONDS - 1.0, got


async def test_pause_then_resume_keeps_one_stream(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    # Paused longer than the relay's idle timeout: the page's heartbeats keep the session.
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=receiver.url, idle_timeout=IDLE_TIMEOUT)
    )
    page = await open_page(browser, relay)
    await go_live(page)
    await ffmpeg_status(relay)
    await asyncio.sleep(2.5)

    await page.click("#pause")
    await expect(page.locator("#stream-state")).to_have_text("Paused")
    await expect(page.locator("#pause")).to_have_text("Resume")
    during_pause = await settled_bytes(relay)  # once the chunks under way have arrived
    await asyncio.sleep(IDLE_TIMEOUT + 0.5)
    assert relay.sessions()[0].bytes_received == during_pause, "the paused page sent media"
    assert relay.sessions()[0].error is None
    await expect(page.locator("#message")).to_be_hidden()

    await page.click("#pause")
    await expect(page.locator("#stream-state")).to_have_text("Live")
    await until(lambda: relay.sessions()[0].bytes_received > during_pause, what="media again")
    await asyncio.sleep(2.5)
    await stop(page)

    # One publisher from start to end: the receiver accepts a single one, then exits.
    await wait_receiver(receiver)
    assert_recording(receiver.path, 5.0)


async def test_stop_then_start_again_records_two_sessions(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    first, second = rtmp_receiver(), rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=first.url))
    page = await open_page(browser, relay)

    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(first)

    relay.set_default_target(second.url)
    await go_live(page)
    await until(lambda: running_ffmpeg(relay), what="the second ffmpeg")
    # Same socket, same relay session: start after stop works on one connection.
    assert [s.uuid for s in relay.sessions()] == [session]
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(second)

    assert_recording(first.path, STREAM_SECONDS)
    assert_recording(second.path, STREAM_SECONDS)


async def test_refusal_is_shown_in_plain_words(
    running_relay: Any, browser: Browser, tmp_path: Path
) -> None:
    # No target: the first stream is recorded to a file, holding the only slot.
    relay: RelayServer = await running_relay(
        RelayConfig(max_ffmpeg_instances=1, recordings_dir=tmp_path / "recordings")
    )
    first = await open_page(browser, relay)
    await go_live(first)
    second = await open_page(browser, relay)

    await second.click("#start")
    message = second.locator("#message")
    await expect(message).to_be_visible()
    await expect(message).to_contain_text("as many streams as it allows")
    await expect(message).to_have_attribute("data-kind", "error")
    assert "MAX_STREAMS" not in await message.inner_text()
    await expect(second.locator("#stream-state")).to_have_text("Not streaming")
    await expect(second.locator("#start")).to_be_enabled()
    await expect(first.locator("#stream-state")).to_have_text("Live")

    # Once the slot is free, the refused page can stream.
    await stop(first)
    await go_live(second)
    await expect(message).to_be_hidden()
    await stop(second)
    assert browser.errors() == []


async def test_connection_drop_resumes_the_same_session(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    # Until issue 12 a drop started a new session (and a second publisher); now the page
    # records on, resumes its session with its token and resends what the relay missed.
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    page = await open_page(browser, relay)
    await go_live(page)
    old = (await ffmpeg_status(relay)).uuid
    await asyncio.sleep(3.5)

    # The network goes away under the page (its websocket breaks), then comes back.
    await browser.context.set_offline(True)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…")
    await expect(page.locator("#message")).to_contain_text("dropped. Reconnecting… (holding")
    await asyncio.sleep(1)
    await browser.context.set_offline(False)
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    await expect(page.locator("#message")).to_contain_text("Back live")
    assert [s.uuid for s in relay.sessions()] == [old]
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)

    # One publisher from start to end: the receiver accepts a single one, then exits.
    await wait_receiver(receiver)
    assert_recording(receiver.path, 3.5 + 1 + STREAM_SECONDS)


async def test_page_fits_a_phone_screen(running_relay: Any, browser: Browser) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    page = await browser.context.new_page()
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(page_url(relay))
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    # Nothing wider than the screen, and Start within reach without scrolling sideways.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = await page.locator("#start").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    # Stacked: the controls come under the preview.
    preview = await page.locator(".preview").bounding_box()
    assert preview is not None and box["y"] > preview["y"] + preview["height"]


async def test_operator_kill_is_explained_and_start_works_again(
    running_relay: Any, browser: Browser, tmp_path: Path
) -> None:
    relay: RelayServer = await running_relay(RelayConfig(recordings_dir=tmp_path / "recordings"))
    page = await open_page(browser, relay)
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid

    assert await relay.kill(session)
    await expect(page.locator("#message")).to_have_text("The operator ended your stream.")
    await expect(page.locator("#stream-state")).to_have_text("Not streaming")
    # The relay closed the socket on purpose: socket.io leaves it closed until Start.
    await expect(page.locator("#connection")).to_have_text("Disconnected")

    await go_live(page)
    await expect(page.locator("#connection")).to_have_text("Connected")
    await until(lambda: [s for s in relay.sessions() if s.uuid != session], what="a new session")
    await stop(page)


async def test_unreachable_target_is_explained(running_relay: Any, browser: Browser) -> None:
    # Nothing listens there: the relay's output keeps retrying (issue 11) while the page
    # goes on streaming to the relay, and the person is told so, as a warning.
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=f"rtmp://127.0.0.1:{free_port()}/live/streamkey-0123456789")
    )
    page = await open_page(browser, relay)
    await go_live(page)
    message = page.locator("#message")
    await expect(message).to_contain_text("keeps trying to reconnect", timeout=20_000)
    await expect(message).to_have_attribute("data-kind", "warning")
    await expect(page.locator("#stream-state")).not_to_have_text("Not streaming")
    assert "streamkey" not in await message.inner_text()


async def test_pairing_token_comes_from_the_join_link(running_relay: Any, browser: Browser) -> None:
    relay: RelayServer = await running_relay(RelayConfig(auth_token="pairing-token-0123"))

    stranger = await browser.open(page_url(relay))
    message = stranger.locator("#message")
    await expect(message).to_contain_text("only accepts devices that opened its join link")
    await expect(stranger.locator("#connection")).to_have_text("Disconnected")
    # Still refused, and said the same way, when the person presses Start.
    await stranger.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await stranger.click("#start")
    await expect(message).to_contain_text("join link")
    await expect(stranger.locator("#stream-state")).to_have_text("Not streaming")
    assert relay.sessions() == []

    for link in ("?token=pairing-token-0123", "#token=pairing-token-0123"):
        paired = await open_page(browser, relay, link)
        await expect(paired.locator("#message")).to_be_hidden()
    assert len(relay.sessions()) == 2


async def test_the_relays_health_warnings_are_shown_in_plain_words(
    running_relay: Any, browser: Browser
) -> None:
    """No microphone: after the health checks' first seconds the page says the stream has no
    sound, in the relay's words, and says nothing more once the stream has ended."""
    relay: RelayServer = await running_relay(RelayConfig(stats_interval=0.25))
    page = await open_page(browser, relay)
    await page.select_option("#microphone", "none")
    await page.wait_for_function(
        "() => { const s = document.querySelector('#preview').srcObject;"
        " return s && s.getVideoTracks().length === 1 && s.getAudioTracks().length === 0; }"
    )
    await expect(page.locator("#health")).to_be_hidden()
    await go_live(page)
    health = page.locator("#health li[data-check='no_audio']")
    await expect(health).to_have_text(re.compile(r"no sound"), timeout=15_000)
    assert relay.sessions()[0].health[0].check == "no_audio"
    await stop(page)
    await expect(page.locator("#health")).to_be_hidden()
    assert browser.errors() == []
