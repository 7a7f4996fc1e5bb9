"""WebCodecs audio without AudioData.copyTo (issue 24): WebKitGTK's web process crashes on it,
and nobody here can tell whether Safari's is safe in that use. Every sample is made with its
final timestamp (the video element's PCM blocks), or encoded as captured and its packets
placed (MediaStreamTrackProcessor's AudioData): the page never calls copyTo, and the audio
stays as long as the video, also across a pause."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from desktop_relay.relay import RelayConfig, RelayServer

from ..media import probe
from .helpers import Browser
from .test_page import FAKE_CAMERA_FPS, ffmpeg_status, go_live, open_page, stop, wait_receiver
from .test_webcodecs import NO_TRACK_PROCESSOR, audio_seconds

pytestmark = pytest.mark.media

# Counts the page's AudioData.copyTo calls.
COUNT_COPIES = """
window.audioDataCopies = 0;
if (typeof AudioData === "function") {
  const copyTo = AudioData.prototype.copyTo;
  AudioData.prototype.copyTo = function (...args) {
    window.audioDataCopies += 1;
    return copyTo.apply(this, args);
  };
}
"""


@pytest.mark.parametrize("source", ["track-processor", "video-element"])
async def test_webcodecs_audio_makes_no_copy_and_keeps_its_length_across_a_pause(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, source: str
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    script = COUNT_COPIES + (NO_TRACK_PROCESSOR if source == "video-element" else "")
    await browser.context.add_init_script(script)
    page = await open_page(browser, relay)
    await go_live(page)
    await ffmpeg_status(relay)
    assert await page.evaluate("window.relayClient.captureSource") == source
    await asyncio.sleep(2)
    await page.click("#pause")
    await expect(page.locator("#stream-state")).to_have_text("Paused")
    await asyncio.sleep(1.5)
    await page.click("#pause")
    await expect(page.locator("#stream-state")).to_have_text("Live")
    await asyncio.sleep(2)
    assert await page.evaluate("window.audioDataCopies") == 0
    await stop(page)
    await wait_receiver(receiver)

    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    video = got.video_frames / FAKE_CAMERA_FPS
    audio = audio_seconds(receiver.path)
    # The pause is left out of both.
    assert 3.0 <= video <= 4.8, got
    assert abs(audio - video) <= 0.5, (audio, video)
    assert browser.errors() == []
