"""The join page in real WebKitGTK (Debian's webkit2gtk-driver: WebKitWebDriver and MiniBrowser
with mock capture devices, under Xvfb), spoken to in W3C WebDriver (tests/e2e/engines.py).

What this engine can prove here: the page's API detection in a WebKit (WebCodecs, no
MediaStreamTrackProcessor, so the video-element capture); the element path streaming H.264 +
Opus with the microphone (automatic and `?capture=webcodecs`, with no `AudioData.copyTo`) and
video only; that no path crashes the web process; and that the page says "Live, but nothing is
recorded" within 5-6 s when Debian 12's MediaRecorder yields nothing (GStreamer 1.22 lacks
`autovideoflip`), while the relay marks the session `no_media`. It is not Safari's media stack.

Before issue 24's client changes the WebCodecs capture with a microphone (automatic and
`?capture=webcodecs`) crashed this web process about a second after Live ("double free or
corruption"; the page then rebuilt every audio block through `AudioData.copyTo`, which crashes
it too). The client now makes its PCM samples with their final timestamps and never calls
`copyTo`: those paths stream, and these tests say so (which of its changes ended the crash
was not bisected).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_relay.relay import RelayConfig, RelayServer

from ..media import probe
from .engines import ENGINE_LOCK, WEBKIT_WEBDRIVER, WebKitDriver, Xvfb, minibrowser
from .helpers import file_lock, missing, until
from .test_page import ffmpeg_status
from .test_webcodecs import audio_seconds

pytestmark = pytest.mark.media

# WebKit's mock camera gives 30 fps; the page drops what the encoder cannot take.
MIN_WEBKIT_FPS = 5
STREAM_SECONDS = 3.0
CRASH = "WebProcess CRASHED"

STATE = "document.body.dataset.state"
TEXT = "document.querySelector('{}').textContent"
CAPTURE = (
    "({method: window.relayClient.captureMethod ?? null,"
    " source: window.relayClient.captureSource ?? null})"
)
NO_MICROPHONE = """(() => {
  const select = document.querySelector('#microphone');
  select.value = 'none';
  select.dispatchEvent(new Event('change'));
})()"""
# Set once on the page: a web process that crashed and was reloaded has lost it.
MARK = "window.testMark = 'same page'"
SAME_PAGE = "window.testMark === 'same page'"
# Counts the page's `AudioData.copyTo` calls (none expected: they crashed this web process).
COUNT_AUDIO_COPIES = """(() => {
  window.audioCopies = 0;
  const copyTo = AudioData.prototype.copyTo;
  AudioData.prototype.copyTo = function (...args) {
    window.audioCopies += 1;
    return copyTo.apply(this, args);
  };
})()"""
# The page's clock: when the client went live, and when it said that nothing is recorded.
TIME_NO_MEDIA = """(() => {
  window.relayClient.on('state', (state) => {
    if (state === 'live' && window.liveAt === undefined) window.liveAt = performance.now();
  });
  window.relayClient.on('noMedia', () => { window.noMediaAt ??= performance.now(); });
})()"""
# The longest a page may show "Live" while nothing is recorded: its watchdog's 5 s, plus a
# second of timers on a busy machine.
NO_MEDIA_WITHIN_S = 6.0


@pytest.fixture(autouse=True)
def one_engine_at_a_time() -> Iterator[None]:
    """No other Firefox or WebKit test runs meanwhile, on any worker (see ENGINE_LOCK)."""
    with file_lock(ENGINE_LOCK):
        yield


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A virtual display of the module's own for MiniBrowser."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        missing("Xvfb is not installed (apt-get install xvfb)")
    assert xvfb is not None
    screen = Xvfb(xvfb)
    yield screen.display
    screen.close()


@pytest.fixture
def webkit(display: str, built_page: Path, tmp_path: Path) -> Iterator[WebKitDriver]:
    """A fresh MiniBrowser session for each test (one starts in under a second, and a crash
    ends its session)."""
    browser = minibrowser()
    if not Path(WEBKIT_WEBDRIVER).is_file() or browser is None:
        missing("WebKitGTK's driver is not installed (apt-get install webkit2gtk-driver)")
    assert browser is not None
    driver = WebKitDriver(WEBKIT_WEBDRIVER, browser, display, tmp_path / "webkit.log")
    yield driver
    driver.close()


class WebKitPage:
    """The one page of a WebKit session, called from the test's event loop."""

    def __init__(self, driver: WebKitDriver) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.open, url)
        await self.eval(MARK)
        await self.wait("document.querySelector('#preview').videoWidth > 0")
        await self.wait(f"{TEXT.format('#connection')} === 'Connected'")

    async def eval(self, js: str) -> Any:
        return await asyncio.to_thread(self.driver.eval, js)

    async def wait(self, js: str, timeout: float = 20.0) -> float:
        return await asyncio.to_thread(self.driver.wait, js, timeout)

    async def text(self, selector: str) -> str:
        text: str = await self.eval(TEXT.format(selector))
        return text

    async def go_live(self) -> None:
        await asyncio.to_thread(self.driver.click, "#start")
        await self.wait(f"{STATE} === 'live'")
        assert await self.text("#stream-state") == "Live"

    async def stop(self) -> None:
        await asyncio.to_thread(self.driver.click, "#stop")
        await self.wait(f"{STATE} === 'idle'")
        assert (await self.text("#message")).startswith("Stream stopped after")

    def assert_alive(self) -> None:
        """The web process never crashed (MiniBrowser logs each crash)."""
        log = self.driver.log()
        assert CRASH not in log, log[-4000:]


def health(relay: RelayServer, session_id: str) -> set[str]:
    """The relay's health checks that the session fails now."""
    status = relay.get(session_id)
    return {str(w.check) for w in status.health} if status is not None else set()


async def without_microphone(page: WebKitPage) -> None:
    await page.eval(NO_MICROPHONE)
    await page.wait(
        "document.querySelector('#preview').srcObject?.getAudioTracks().length === 0"
        " && document.querySelector('#preview').videoWidth > 0"
    )


async def test_webkit_streams_video_from_a_video_element(
    running_relay: Any, webkit: WebKitDriver, tmp_path: Path
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    page = WebKitPage(webkit)
    await page.open(f"http://127.0.0.1:{relay.port}/")
    # WebKit has the encoders and rVFC but no MediaStreamTrackProcessor.
    apis = await page.eval(
        "Object.fromEntries(['MediaStreamTrackProcessor', 'VideoEncoder', 'AudioEncoder',"
        " 'VideoFrame', 'AudioData', 'AudioWorkletNode', 'MediaRecorder']"
        ".map((name) => [name, typeof window[name]]))"
    )
    assert apis == {
        "MediaStreamTrackProcessor": "undefined",
        "VideoEncoder": "function",
        "AudioEncoder": "function",
        "VideoFrame": "function",
        "AudioData": "function",
        "AudioWorkletNode": "function",
        "MediaRecorder": "function",
    }, apis
    assert await page.eval("typeof HTMLVideoElement.prototype.requestVideoFrameCallback") == (
        "function"
    )
    await without_microphone(page)
    await page.go_live()
    # So the page reads the camera from a video element.
    assert await page.eval(CAPTURE) == {"method": "webcodecs", "source": "video-element"}
    format_text = await page.text("#format")
    assert format_text.startswith("WebCodecs (video element) · H.264 · "), format_text
    assert format_text.endswith("no sound"), format_text
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None and status.ffmpeg.mode == "copy", status.ffmpeg
    await asyncio.sleep(STREAM_SECONDS)

    seconds: float = await page.eval("(Date.now() - window.relayClient.liveSince) / 1000")
    await page.stop()
    assert await page.eval(SAME_PAGE)
    page.assert_alive()
    made = sorted((tmp_path / "recordings").iterdir())
    assert len(made) == 1, made
    got = probe(made[0])
    assert (got.video_codec, got.audio_codec) == ("h264", None), got
    assert got.duration >= seconds - 1.0, (got, seconds)
    # Frames flow, and keep flowing: this is no measure of WebKitGTK's speed. Its software
    # OpenH264 at 720p gave 105 frames in 3.7 s on a quiet machine, 26 in 3.9 s on a busy one.
    assert got.video_frames >= MIN_WEBKIT_FPS * seconds, (got, seconds)


@pytest.mark.parametrize(
    ("query", "microphone"),
    [("", True), ("?capture=webcodecs", True), ("?capture=webcodecs", False)],
    ids=["auto-camera-and-microphone", "webcodecs-camera-and-microphone", "webcodecs-camera"],
)
async def test_webkit_streams_webcodecs_from_a_video_element_without_crashing(
    running_relay: Any, webkit: WebKitDriver, tmp_path: Path, query: str, microphone: bool
) -> None:
    """The paths that crashed the web process about a second after Live (with a microphone),
    and forced WebCodecs without one: they stream, H.264 + Opus from the element and the
    AudioWorklet with sound in the recording, the page never calls `AudioData.copyTo`, and the
    web process lives on (the video-only automatic path is the test above)."""
    relay: RelayServer = await running_relay(RelayConfig())
    page = WebKitPage(webkit)
    await page.open(f"http://127.0.0.1:{relay.port}/{query}")
    await page.eval(COUNT_AUDIO_COPIES)
    if not microphone:
        await without_microphone(page)
    await page.go_live()
    assert await page.eval(CAPTURE) == {"method": "webcodecs", "source": "video-element"}
    format_text = await page.text("#format")
    codecs = "H.264 + Opus" if microphone else "H.264"
    assert format_text.startswith(f"WebCodecs (video element) · {codecs} · "), format_text
    await asyncio.sleep(STREAM_SECONDS)
    assert await page.eval(f"{STATE} === 'live' && {SAME_PAGE}")
    assert await page.text("#stream-state") == "Live"

    seconds: float = await page.eval("(Date.now() - window.relayClient.liveSince) / 1000")
    await page.stop()
    assert await page.eval(SAME_PAGE)
    page.assert_alive()
    assert await page.eval("window.audioCopies") == 0
    made = sorted((tmp_path / "recordings").iterdir())
    assert len(made) == 1, made
    got = probe(made[0])
    assert (got.video_codec, got.audio_codec) == ("h264", "aac" if microphone else None), got
    assert got.duration >= seconds - 1.0, (got, seconds)
    assert got.video_frames >= MIN_WEBKIT_FPS * seconds, (got, seconds)
    if microphone:
        # WebKit's mock microphone, stamped by the AudioContext's clock: 4.16 s in 4.17 s here.
        audio = audio_seconds(made[0])
        assert seconds - 1.0 <= audio <= seconds + 1.0, (audio, seconds)


@pytest.mark.parametrize("microphone", [True, False], ids=["camera-and-microphone", "camera"])
async def test_webkit_mediarecorder_that_yields_nothing_is_said_within_6_s(
    running_relay: Any, webkit: WebKitDriver, microphone: bool
) -> None:
    """Debian 12's WebKitGTK MediaRecorder records nothing here: the page goes live, then
    says so (never a silent "Live" with 0 B), the relay marks the session `no_media` and the
    page shows that too; it runs on, stops, and the web process never crashes."""
    relay: RelayServer = await running_relay(RelayConfig())
    page = WebKitPage(webkit)
    await page.open(f"http://127.0.0.1:{relay.port}/?capture=mediarecorder")
    await page.eval(TIME_NO_MEDIA)
    if not microphone:
        await without_microphone(page)
    await page.go_live()
    assert await page.eval(CAPTURE) == {"method": "mediarecorder", "source": None}
    assert (await page.text("#format")).startswith("MediaRecorder · H.264")
    await asyncio.sleep(2)
    assert await page.eval(f"{STATE} === 'live' && {SAME_PAGE}")

    await page.wait(f"{TEXT.format('#stream-state')} === 'Live, but nothing is recorded'", 8)
    said_after: float = await page.eval("(window.noMediaAt - window.liveAt) / 1000")
    print(f"WebKitGTK MediaRecorder: nothing recorded, said {said_after:.2f} s after Live")
    assert said_after <= NO_MEDIA_WITHIN_S, said_after
    assert await page.text("#message") == (
        "Nothing is being recorded: the browser's recorder made no video in the first 5 seconds,"
        " so viewers get nothing. Reload the page, or use another browser. This link forces"
        " “capture=mediarecorder”: without it the page chooses by itself."
    )
    assert await page.eval("document.querySelector('#live-badge').hidden")
    no_media = await page.eval("window.relayClient.noMedia")
    assert (no_media["cause"], no_media["method"]) == ("recorder", "mediarecorder"), no_media
    assert no_media.get("switchingTo") is None, no_media  # forced: no other way is tried
    assert await page.eval("window.relayClient.bytesSent") == 0

    # The relay's own check, on the session and on the page.
    (session,) = relay.sessions()
    await until(lambda: "no_media" in health(relay, session.uuid), 5, what="no_media health")
    await page.wait("document.querySelector('#health li[data-check=\"no_media\"]') !== null", 3)
    assert await page.eval(f"{STATE} === 'live' && {SAME_PAGE}")
    await page.stop()
    page.assert_alive()
