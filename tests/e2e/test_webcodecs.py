"""WebCodecs capture in real headless Chromium (fake camera and microphone): the page encodes
H.264 and Opus with the browser's encoders, muxes live Matroska with mediabunny and sends it
frame by frame; the relay copies the H.264 to a real RTMP receiver. Without
MediaStreamTrackProcessor (as Safari and Firefox pages) it reads the tracks through a video
element and an AudioWorklet. Without WebCodecs, or once its encoder fails mid-stream, the page
records with MediaRecorder, and says which it uses."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from desktop_relay.relay import RelayConfig, RelayServer

from ..media import probe, require_tool
from ..netfaults import TcpProxy
from .helpers import Browser, until
from .test_page import (
    FAKE_CAMERA_FPS,
    assert_recording,
    ffmpeg_status,
    frames_flowing,
    go_live,
    open_page,
    stop,
    wait_receiver,
)

pytestmark = pytest.mark.media

STREAM_SECONDS = 4.5
# Before any page script: a browser without WebCodecs (as Firefox, or Safari on the page).
NO_WEBCODECS = """
for (const name of ["VideoEncoder", "AudioEncoder", "VideoDecoder", "AudioDecoder",
                    "VideoFrame", "AudioData", "EncodedVideoChunk", "EncodedAudioChunk",
                    "MediaStreamTrackProcessor"]) {
  delete window[name];
}
"""
# Before any page script, on the page only (workers and worklets keep theirs): WebCodecs
# without MediaStreamTrackProcessor, as Safari 26+ and Firefox have it on the page.
NO_TRACK_PROCESSOR = "delete window.MediaStreamTrackProcessor;"
# Every AudioContext the page makes, kept in `audioContexts`.
KEEP_AUDIO_CONTEXTS = """
window.audioContexts = [];
window.AudioContext = class extends AudioContext {
  constructor(...args) { super(...args); window.audioContexts.push(this); }
};
"""
# The capture AudioWorklet does not load (as a blocked or missing module would).
WORKLET_FAILS = """
AudioWorklet.prototype.addModule = () => Promise.reject(new DOMException("blocked", "AbortError"));
"""
# The capture's AudioContext stops for 2 s, as Safari's does for a phone call ("interrupted"):
# the capture's own resume() is held back that long.
INTERRUPT_AUDIO = """() => {
  const context = audioContexts[audioContexts.length - 1];
  const resume = context.resume.bind(context);
  context.resume = () => new Promise((done) => setTimeout(() => {
    context.resume = resume;
    resume().then(done);
  }, 2000));
  return context.suspend();
}"""
# The encoder fails as a hardware one does mid-stream: every encode from now on throws.
BREAK_ENCODER = """() => {
  VideoEncoder.prototype.encode = function () { throw new Error("the GPU went away"); };
}"""
RECORDED_SECONDS = "(Date.now() - window.relayClient.liveSince) / 1000"


async def recorded_seconds(page: Page) -> float:
    seconds: float = await page.evaluate(RECORDED_SECONDS)
    return seconds


def assert_all_frames(path: Path, seconds: float) -> None:
    """H.264 + AAC with at least 95 % of the frames the fake camera made in `seconds`."""
    got = probe(path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.video_frames >= 0.95 * seconds * FAKE_CAMERA_FPS, (got, seconds)
    assert got.duration >= 0.95 * seconds, (got, seconds)


def audio_seconds(path: Path) -> float:
    """How long the audio stream of `path` lasts: its first packet to its last one's end."""
    ffprobe = require_tool("ffprobe")
    entries = ["-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0"]
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", *entries, str(path)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    packets = [[float(x) for x in line.split(",")[:2]] for line in out.stdout.split()]
    assert packets, f"no audio packets in {path}"
    return packets[-1][0] + packets[-1][1] - packets[0][0]


async def chunks_per_second(relay: RelayServer, seconds: float = 2.0) -> float:
    """Chunks the relay received per second from the first session, over `seconds`."""
    before = relay.sessions()[0].chunks_received
    await asyncio.sleep(seconds)
    return (relay.sessions()[0].chunks_received - before) / seconds


async def test_webcodecs_h264_opus_is_copied_frame_by_frame(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    page = await open_page(browser, relay)
    await go_live(page)

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert status.ffmpeg.mode == "copy", status.ffmpeg
    assert status.ffmpeg.input_format == "matroska h264+opus"
    assert status.ffmpeg.options["mimeType"] == "video/webm;codecs=h264,opus"
    assert await page.evaluate("window.relayClient.captureMethod") == "webcodecs"
    await expect(page.locator("#format")).to_contain_text("WebCodecs · H.264 + Opus · ")

    chunks_per_s = await chunks_per_second(relay)
    # Bytes leave per frame (20 fps) and Opus packet (50/s), coalesced to at most ~33 chunks/s:
    # well under the relay's 100 chunks/s, and far more often than MediaRecorder's 4/s.
    assert 15 <= chunks_per_s <= 40, chunks_per_s
    await asyncio.sleep(STREAM_SECONDS - 2)

    seconds = await recorded_seconds(page)
    await stop(page)
    await wait_receiver(receiver)
    assert_all_frames(receiver.path, seconds)
    assert browser.errors() == []


async def test_webcodecs_without_track_processor_reads_a_video_element(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    """Safari 26+ and Firefox have WebCodecs but no MediaStreamTrackProcessor on the page:
    the page reads the camera from a hidden video element (requestVideoFrameCallback) and the
    microphone through its AudioWorklet, loaded from the relay under the page's CSP. Chromium
    without the processor stands in for them here (no Apple device or Firefox in this setup):
    the path is the same, the browser's quirks are not."""
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    await browser.context.add_init_script(NO_TRACK_PROCESSOR)
    page = await open_page(browser, relay)
    assert await page.evaluate("typeof MediaStreamTrackProcessor") == "undefined"
    await go_live(page)

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert status.ffmpeg.mode == "copy", status.ffmpeg
    assert status.ffmpeg.input_format == "matroska h264+opus"
    assert await page.evaluate("window.relayClient.captureMethod") == "webcodecs"
    assert await page.evaluate("window.relayClient.captureSource") == "video-element"
    await expect(page.locator("#format")).to_contain_text(
        "WebCodecs (video element) · H.264 + Opus · "
    )
    # Per frame (20 fps) and per Opus packet, coalesced, as with the processor.
    rate = await chunks_per_second(relay)
    assert 15 <= rate <= 40, rate
    await asyncio.sleep(STREAM_SECONDS - 2)

    seconds = await recorded_seconds(page)
    await stop(page)
    await wait_receiver(receiver)
    assert_all_frames(receiver.path, seconds)
    audio = audio_seconds(receiver.path)
    assert abs(audio - seconds) <= 1.0, (audio, seconds)
    assert browser.errors() == []


async def test_video_element_capture_keeps_audio_in_step_through_an_audio_interruption(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    """The AudioContext's sample clock stops while it is suspended; time does not. The audio
    after the stop must go that much later (silence in between), or it ends early and drifts
    from the video."""
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    await browser.context.add_init_script(NO_TRACK_PROCESSOR + KEEP_AUDIO_CONTEXTS)
    page = await open_page(browser, relay)
    await go_live(page)
    await ffmpeg_status(relay)
    assert await page.evaluate("window.relayClient.captureSource") == "video-element"
    await asyncio.sleep(1)
    await page.evaluate(INTERRUPT_AUDIO)
    await page.wait_for_function("() => audioContexts.at(-1).state === 'running'", timeout=5_000)
    await asyncio.sleep(1.5)

    seconds = await recorded_seconds(page)
    await stop(page)
    await wait_receiver(receiver)
    audio = audio_seconds(receiver.path)
    assert abs(audio - seconds) <= 1.0, (audio, seconds)
    assert browser.errors() == []


async def test_a_video_element_capture_that_cannot_start_falls_back_to_mediarecorder(
    running_relay: Any, browser: Browser
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    await browser.context.add_init_script(NO_TRACK_PROCESSOR + KEEP_AUDIO_CONTEXTS + WORKLET_FAILS)

    forced = await open_page(browser, relay, "?capture=webcodecs")
    await forced.click("#start")
    await expect(forced.locator("#message")).to_contain_text("could not start recording")
    await forced.close()

    page = await open_page(browser, relay)
    await go_live(page)
    await expect(page.locator("#format")).to_contain_text("MediaRecorder · H.264")
    assert await page.evaluate("window.relayClient.captureSource") is None
    # The trial released what it opened.
    await page.wait_for_function(
        "() => audioContexts.length > 0 && audioContexts.every((c) => c.state === 'closed')"
    )
    await stop(page)
    assert browser.errors() == []


async def test_without_webcodecs_the_page_records_with_mediarecorder(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=receiver.url))
    await browser.context.add_init_script(NO_WEBCODECS)

    # Asked for WebCodecs where there is none: Start fails and says so.
    forced = await open_page(browser, relay, "?capture=webcodecs")
    await forced.click("#start")
    await expect(forced.locator("#message")).to_contain_text("could not start recording")
    await expect(forced.locator("#stream-state")).to_have_text("Not streaming")
    await forced.close()

    page = await open_page(browser, relay)
    await go_live(page)
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None and status.ffmpeg.mode == "copy", status.ffmpeg
    assert await page.evaluate("window.relayClient.captureMethod") == "mediarecorder"
    await expect(page.locator("#format")).to_contain_text("MediaRecorder · H.264")
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(receiver)
    assert_recording(receiver.path, STREAM_SECONDS)
    assert browser.errors() == []


async def test_capture_can_be_forced_to_mediarecorder(running_relay: Any, browser: Browser) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    page = await open_page(browser, relay, "?capture=mediarecorder")
    await go_live(page)
    await expect(page.locator("#format")).to_contain_text("MediaRecorder · H.264")
    await stop(page)


async def test_encoder_failure_mid_stream_goes_on_with_mediarecorder(
    running_relay: Any, rtmp_receiver: Any, browser: Browser
) -> None:
    first, second = rtmp_receiver(), rtmp_receiver()
    relay: RelayServer = await running_relay(RelayConfig(default_target=first.url))
    page = await open_page(browser, relay)
    await go_live(page)
    await ffmpeg_status(relay)
    await expect(page.locator("#format")).to_contain_text("WebCodecs")
    await asyncio.sleep(3)

    # The receiver takes a single publisher: the new session goes to another one.
    relay.set_default_target(second.url)
    await page.evaluate(BREAK_ENCODER)
    message = page.locator("#message")
    await expect(message).to_contain_text("video encoder failed", timeout=10_000)
    await expect(page.locator("#format")).to_contain_text("MediaRecorder · H.264", timeout=10_000)
    await expect(page.locator("#stream-state")).to_have_text("Live")
    # The first session ended with what was recorded until the failure.
    await wait_receiver(first)
    await until(lambda: relay.sessions() and relay.sessions()[0].ffmpeg, what="the new stream")
    await frames_flowing(relay, relay.sessions()[0].uuid)
    await asyncio.sleep(2.5)
    await stop(page)
    await wait_receiver(second)
    assert_recording(first.path, 3.0)
    got = probe(second.path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    assert got.duration >= 2.0, got
    assert browser.errors() == []


@pytest.fixture
def proxy() -> Iterator[list[TcpProxy]]:
    proxies: list[TcpProxy] = []
    yield proxies
    for made in proxies:
        made.close()


async def test_webcodecs_stream_resumes_through_a_drop(
    running_relay: Any, rtmp_receiver: Any, browser: Browser, proxy: list[TcpProxy]
) -> None:
    receiver = rtmp_receiver()
    # Catch-up off: nothing recorded through the drop may be skipped.
    relay: RelayServer = await running_relay(
        RelayConfig(default_target=receiver.url, catch_up_lag_s=None)
    )
    proxy.append(TcpProxy(relay.port))
    page = await browser.open(f"http://127.0.0.1:{proxy[0].port}/")
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    await go_live(page)
    session = (await ffmpeg_status(relay)).uuid
    assert await page.evaluate("window.relayClient.captureMethod") == "webcodecs"
    await asyncio.sleep(2)

    proxy[0].reset_all()
    proxy[0].refuse_for(3)
    await expect(page.locator("#stream-state")).to_have_text("Reconnecting…", timeout=5_000)
    await asyncio.sleep(1.5)
    # Per-frame chunks count their span right: what is held is about the time since the drop.
    held = await page.evaluate("window.relayClient.heldSeconds")
    assert 1.0 <= held <= 5.0, held
    await expect(page.locator("#stream-state")).to_have_text("Live", timeout=15_000)
    await expect(page.locator("#message")).to_contain_text("Back live")
    assert [s.uuid for s in relay.sessions()] == [session]
    await asyncio.sleep(2)

    seconds = await recorded_seconds(page)
    await stop(page)
    await wait_receiver(receiver)
    assert_all_frames(receiver.path, seconds)
    assert browser.errors() == []
