"""No silent failure, and no start held up by slow audio (issue 24), in real headless Chromium
with fake devices. Init scripts stand in for the engines that misbehave: a capture whose video
frames stop after the start trial, a MediaRecorder that yields no data (WebKitGTK on Debian 12),
and an AudioContext whose resume() takes 3 s (Firefox without a sound server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Page, expect

from desktop_relay.relay import RelayConfig, RelayServer

from ..media import probe
from .helpers import Browser, until
from .test_page import frames_flowing, open_page, stop, wait_receiver
from .test_webcodecs import NO_TRACK_PROCESSOR, audio_seconds, recorded_seconds

pytestmark = pytest.mark.media

# The recorder's MediaStreamTrackProcessor for video (the start trial's has no maxBufferSize)
# yields nothing: the trial passes, then no frame reaches the encoder.
VIDEO_STOPS_AFTER_TRIAL = """
const Processor = window.MediaStreamTrackProcessor;
window.MediaStreamTrackProcessor = function (init) {
  if (init.maxBufferSize && init.track.kind === "video") return { readable: new ReadableStream({}) };
  return new Processor(init);
};
"""
# MediaRecorder records but never hands out data, as WebKitGTK's on Debian 12 gives no video.
RECORDER_YIELDS_NOTHING = """
const add = MediaRecorder.prototype.addEventListener;
MediaRecorder.prototype.addEventListener = function (type, listener, options) {
  if (type === "dataavailable") return;
  return add.call(this, type, listener, options);
};
"""
# Every AudioContext starts suspended and its resume() takes 3 s, as Firefox's does with no
# sound server (there it then renders nothing at all).
SLOW_AUDIO_RESUME = """
window.slowResumeMs ??= 3000;
window.AudioContext = class extends AudioContext {
  constructor(...args) {
    super(...args);
    this.slowResumed = false;
    void super.suspend();
  }
  get state() { return this.slowResumed ? super.state : (super.state === "closed" ? "closed" : "suspended"); }
  resume() {
    return new Promise((done) => setTimeout(() => {
      this.slowResumed = true;
      super.resume().then(done, done);
    }, window.slowResumeMs));
  }
};
"""
# The client's `noMedia` events, kept in `noMediaEvents`, and every message the page showed,
# in `messages`.
KEEP_NO_MEDIA_EVENTS = """() => {
  window.noMediaEvents = [];
  window.relayClient.on("noMedia", (info) => window.noMediaEvents.push(info));
  window.messages = [];
  const message = document.querySelector("#message");
  new MutationObserver(() => {
    if (message.textContent && message.textContent !== window.messages.at(-1)) {
      window.messages.push(message.textContent);
    }
  }).observe(message, { childList: true, characterData: true, subtree: true });
}"""
# Start, and the milliseconds until the client is live (performance.now() on the page).
START_TO_LIVE = """() => new Promise((resolve) => {
  const begun = performance.now();
  window.relayClient.on("state", (state) => {
    if (state === "live") resolve(performance.now() - begun);
  });
  document.querySelector("#start").click();
})"""


async def start_timed(page: Page) -> float:
    """Press Start; seconds until the client was live."""
    ms: float = await page.evaluate(START_TO_LIVE)
    await expect(page.locator("#stream-state")).to_have_text("Live")
    return ms / 1000


async def test_video_that_stops_after_the_trial_is_said_and_mediarecorder_takes_over(
    running_relay: Any, browser: Browser
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    await browser.context.add_init_script(VIDEO_STOPS_AFTER_TRIAL)
    page = await open_page(browser, relay)
    await page.evaluate(KEEP_NO_MEDIA_EVENTS)
    await start_timed(page)
    assert await page.evaluate("window.relayClient.captureMethod") == "webcodecs"

    message = page.locator("#message")
    await expect(message).to_contain_text(
        "Live again, now recorded by the browser's recorder (MediaRecorder): with the browser's"
        " encoder (WebCodecs) no picture came from the camera.",
        timeout=12_000,
    )
    assert await page.evaluate("window.messages") == [
        "Nothing is being recorded: no picture came from the camera in the first 5 seconds with the"
        " browser's encoder (WebCodecs). Trying the browser's recorder (MediaRecorder) instead;"
        " the stream starts again by itself.",
        "Live again, now recorded by the browser's recorder (MediaRecorder): with the browser's"
        " encoder (WebCodecs) no picture came from the camera.",
    ]
    events = await page.evaluate("window.noMediaEvents")
    assert [(e["cause"], e["method"], e["switchingTo"]) for e in events] == [
        ("video", "webcodecs", "mediarecorder")
    ], events
    await expect(page.locator("#format")).to_contain_text("MediaRecorder · H.264", timeout=10_000)
    await expect(page.locator("#stream-state")).to_have_text("Live")
    await until(lambda: relay.sessions() and relay.sessions()[0].ffmpeg, what="the new stream")
    await frames_flowing(relay, relay.sessions()[0].uuid)
    assert await page.evaluate("window.relayClient.noMedia") is None
    await stop(page)
    assert browser.errors() == []


async def test_a_forced_recorder_that_yields_nothing_is_never_shown_live(
    running_relay: Any, browser: Browser
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    await browser.context.add_init_script(RECORDER_YIELDS_NOTHING)
    page = await open_page(browser, relay, "?capture=mediarecorder")
    await start_timed(page)

    message = page.locator("#message")
    await expect(message).to_contain_text(
        "Nothing is being recorded: the browser's recorder made no video", timeout=8_000
    )
    await expect(message).to_contain_text("Reload the page, or use another browser.")
    await expect(message).to_contain_text("This link forces “capture=mediarecorder”")
    await expect(page.locator("#stream-state")).to_have_text("Live, but nothing is recorded")
    await expect(page.locator("#live-badge")).to_be_hidden()
    info = await page.evaluate("window.relayClient.noMedia")
    assert info["cause"] == "recorder" and info["method"] == "mediarecorder", info
    assert info.get("switchingTo") is None, info  # forced: no other way is tried
    await stop(page)
    assert browser.errors() == []


async def test_a_slow_audio_start_does_not_hold_the_start(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    """Without the track processor the WebCodecs path needs an AudioContext; one that takes
    3 s to resume must not keep the page from going live: it is live within 2 s, recorded by
    MediaRecorder, with sound."""
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    await browser.context.add_init_script(NO_TRACK_PROCESSOR + SLOW_AUDIO_RESUME)
    page = await open_page(browser, relay)
    seconds_to_live = await start_timed(page)
    print(f"slow audio: live {seconds_to_live:.2f} s after Start")
    assert seconds_to_live < 2.0, seconds_to_live
    assert await page.evaluate("window.relayClient.captureMethod") == "mediarecorder"
    fallback = await page.evaluate("window.relayClient.captureFallback")
    assert fallback["cause"] == "audio-start", fallback
    await until(lambda: relay.sessions() and relay.sessions()[0].ffmpeg, what="the stream")
    await frames_flowing(relay, relay.sessions()[0].uuid)
    await asyncio.sleep(3)
    seconds = await recorded_seconds(page)
    await stop(page)
    await wait_receiver(receiver)
    got = probe(receiver.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert audio_seconds(receiver.path) >= 0.8 * seconds, seconds
    await page.close()

    # WebCodecs forced, and the sound does not start while it waits (3 s): Start fails, and
    # says why (not "the video encoder").
    await browser.context.add_init_script("window.slowResumeMs = 6000;")
    forced = await open_page(browser, relay, "?capture=webcodecs")
    await forced.click("#start")
    await expect(forced.locator("#message")).to_contain_text(
        "This browser could not start recording: the browser's sound did not start.", timeout=6_000
    )
    await expect(forced.locator("#message")).to_contain_text("This link forces “capture=webcodecs”")
    await expect(forced.locator("#stream-state")).to_have_text("Not streaming")
    assert browser.errors() == []


async def test_a_normal_start_is_live_within_2_s(running_relay: Any, browser: Browser) -> None:
    """The trial (frames and audio must arrive) costs little on a working browser: with the
    track processor, and through the video element and the AudioWorklet."""
    relay: RelayServer = await running_relay(RelayConfig())
    page = await open_page(browser, relay)
    processor = await start_timed(page)
    assert await page.evaluate("window.relayClient.captureSource") == "track-processor"
    await stop(page)
    await page.close()

    await browser.context.add_init_script(NO_TRACK_PROCESSOR)
    page = await open_page(browser, relay)
    element = await start_timed(page)
    assert await page.evaluate("window.relayClient.captureSource") == "video-element"
    print(f"live after Start: track processor {processor:.2f} s, video element {element:.2f} s")
    assert processor < 2.0 and element < 2.0, (processor, element)
    await asyncio.sleep(1)
    await stop(page)
    # The trial's capture was handed over unread: no drops blamed on the encoder.
    assert not [line for line in browser.logs[page].console if "encoder was behind" in line]
    assert browser.errors() == []
