"""The join page in real Firefox ESR (Debian's firefox-esr, headless, fake camera and a 1 kHz
fake microphone), driven over WebDriver BiDi by npm puppeteer-core (tests/e2e/engines), through
the real relay and ffmpeg into a recording that ffprobe reads.

Firefox has VideoEncoder and AudioEncoder but no MediaStreamTrackProcessor: the page reads the
camera from a video element and the microphone through its AudioWorklet (the path that the
Chromium tests only imitate by deleting the processor), and its MediaRecorder records VP8 +
Opus, which the relay turns into H.264. One Firefox serves the module; each test has its tab.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_relay.relay import RelayConfig, RelayServer, SessionState

from ..media import probe
from ..netfaults import TcpProxy
from .engines import (
    ENGINE_LOCK,
    FIREFOX,
    FIREFOX_PREFS,
    FirefoxDriver,
    FirefoxPage,
    install_driver_modules,
)
from .helpers import file_lock, missing
from .test_page import ffmpeg_status
from .test_webcodecs import audio_seconds

pytestmark = pytest.mark.media

FIREFOX_CAMERA_FPS = 30  # Firefox's fake camera (1280x720 as the page asks)
# Seconds of sound per second of stream from the video-element capture with cubeb's mock
# context, which runs slow (see assert_frames_and_sound); MediaRecorder keeps its own time.
MOCK_AUDIO_CLOCK = 0.75
STREAM_SECONDS = 3.0
# The page is live within 2 s of Start on whichever path works (issue 24): with cubeb's mock
# context on WebCodecs (0.2-0.9 s here), without a sound server on MediaRecorder (~1.0 s: the
# trial does not wait for an audio start still pending after 1 s).
LIVE_WITHIN_S = 2.0

STATE = "document.body.dataset.state"
TEXT = "document.querySelector('{}').textContent"
CAPTURE = (
    "({method: window.relayClient.captureMethod ?? null,"
    " source: window.relayClient.captureSource ?? null})"
)
# The page's own clock, from the click on Start to the client's first "live".
TIME_START = """(() => {
  delete window.startAt; delete window.liveAt;
  document.querySelector('#start').addEventListener('click', () => {
    window.startAt = performance.now();
  }, {capture: true, once: true});
  window.relayClient.on('state', (state) => {
    if (state === 'live' && window.liveAt === undefined) window.liveAt = performance.now();
  });
})()"""
START_TO_LIVE = "(window.liveAt - window.startAt) / 1000"


@pytest.fixture(autouse=True)
def one_engine_at_a_time() -> Iterator[None]:
    """No other Firefox or WebKit test runs meanwhile, on any worker (see ENGINE_LOCK)."""
    with file_lock(ENGINE_LOCK):
        yield


@pytest.fixture(scope="module")
def firefox_launcher(built_page: Path) -> Iterator[Any]:
    """Factory: `firefox_launcher(**prefs)` starts a headless Firefox ESR with the fake devices
    and `prefs` on top; every one is closed at the module's end."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("node and npm drive Firefox (apt-get install nodejs npm)")
    if not Path(FIREFOX).is_file():
        missing("Firefox ESR is not installed (apt-get install firefox-esr)")
    assert node is not None and npm is not None
    with file_lock("desktop-relay-engine-driver.lock"):
        install_driver_modules(npm)
    drivers: list[FirefoxDriver] = []

    def launch(**prefs: Any) -> FirefoxDriver:
        drivers.append(FirefoxDriver(node, FIREFOX, {**FIREFOX_PREFS, **prefs}))
        return drivers[-1]

    yield launch
    for driver in drivers:
        driver.close()


@pytest.fixture(scope="module")
def firefox(firefox_launcher: Any) -> FirefoxDriver:
    """The module's Firefox, with cubeb's mock audio context (no sound server here)."""
    driver: FirefoxDriver = firefox_launcher()
    return driver


class Tab:
    """A Firefox tab, called from the test's event loop (the driver blocks; threads do not
    hold the relay up)."""

    def __init__(self, page: FirefoxPage) -> None:
        self.page = page

    @classmethod
    async def open(cls, driver: FirefoxDriver, url: str) -> Tab:
        """The join page at `url`, with its camera preview playing and the relay connected."""
        tab = cls(await asyncio.to_thread(FirefoxPage, driver, url))
        await tab.wait("document.querySelector('#preview').videoWidth > 0")
        await tab.wait(f"{TEXT.format('#connection')} === 'Connected'")
        return tab

    async def eval(self, js: str) -> Any:
        return await asyncio.to_thread(self.page.eval, js)

    async def wait(self, js: str, timeout: float = 20.0) -> float:
        return await asyncio.to_thread(self.page.wait, js, timeout)

    async def text(self, selector: str) -> str:
        text: str = await self.eval(TEXT.format(selector))
        return text

    async def go_live(self) -> float:
        """Press Start; the seconds from the click until the client was live (the page's
        clock: no driver round trips in it)."""
        await self.eval(TIME_START)
        await asyncio.to_thread(self.page.click, "#start")
        await self.wait(f"{STATE} === 'live'")
        assert await self.text("#stream-state") == "Live"
        seconds: float = await self.eval(START_TO_LIVE)
        return seconds

    async def stop(self) -> None:
        await asyncio.to_thread(self.page.click, "#stop")
        await self.wait(f"{STATE} === 'idle'")
        assert (await self.text("#message")).startswith("Stream stopped after")

    async def errors(self) -> list[str]:
        log = await asyncio.to_thread(self.page.log)
        return log["errors"]

    async def close(self) -> None:
        await asyncio.to_thread(self.page.close)


async def recorded_seconds(tab: Tab) -> float:
    seconds: float = await tab.eval("(Date.now() - window.relayClient.liveSince) / 1000")
    return seconds


def recording(tmp_path: Path) -> Path:
    """The relay's one recording (the relay fixtures record into the test's folder)."""
    made = sorted((tmp_path / "recordings").iterdir())
    assert len(made) == 1, made
    return made[0]


def spans(path: Path) -> dict[str, tuple[float, float]]:
    """Each stream's first and last packet time, for a failure's message."""
    found: dict[str, tuple[float, float]] = {}
    for stream in ("v", "a"):
        command = ["ffprobe", "-v", "error", "-select_streams", f"{stream}:0"]
        command += ["-show_entries", "packet=pts_time", "-of", "csv=p=0", str(path)]
        out = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
        times = sorted(float(t) for t in out.split() if t != "N/A")
        if times:
            found[stream] = (times[0], times[-1])
    return found


def assert_frames_and_sound(path: Path, seconds: float, audio_clock: float = 1.0) -> None:
    """H.264 + AAC, with most of the camera's frames, and sound from start to end.

    `audio_clock`: seconds of sound per second of the stream. The video-element capture stamps
    its sound by the AudioContext's own sample clock, and cubeb's mock context is a timer that
    runs slow: 3.49-3.54 s of AudioContext time per 4 s here, less under load (3.77 s of sound
    in a 4.83 s stream, on a busy machine)."""
    got = probe(path)
    assert (got.video_codec, got.audio_codec) == ("h264", "aac"), got
    # The page drops frames while the encoder is behind (two cores shared with other tests).
    assert got.video_frames >= 0.75 * seconds * FIREFOX_CAMERA_FPS, (got, seconds)
    assert got.duration >= 0.9 * seconds, (got, seconds)
    audio = audio_seconds(path)
    expected = audio_clock * seconds
    assert expected - 1.0 <= audio <= seconds + 1.0, (audio, seconds, spans(path))


@pytest.mark.parametrize("query", ["", "?capture=webcodecs"], ids=["auto", "capture-webcodecs"])
async def test_firefox_streams_webcodecs_from_a_video_element(
    running_relay: Any, firefox: FirefoxDriver, tmp_path: Path, query: str
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    tab = await Tab.open(firefox, f"http://127.0.0.1:{relay.port}/{query}")
    assert await tab.eval("typeof MediaStreamTrackProcessor") == "undefined"
    seconds_to_live = await tab.go_live()
    print(f"Firefox, mock audio, {query or 'auto'}: Live {seconds_to_live:.2f} s after Start")
    assert seconds_to_live < LIVE_WITHIN_S, seconds_to_live
    assert await tab.eval(CAPTURE) == {"method": "webcodecs", "source": "video-element"}
    assert (await tab.text("#format")).startswith("WebCodecs (video element) · H.264 + Opus · ")
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert (status.ffmpeg.mode, status.ffmpeg.input_format) == ("copy", "matroska h264+opus")
    await asyncio.sleep(STREAM_SECONDS)

    seconds = await recorded_seconds(tab)
    await tab.stop()
    assert_frames_and_sound(recording(tmp_path), seconds, MOCK_AUDIO_CLOCK)
    assert await tab.errors() == []
    await tab.close()


async def test_firefox_streams_with_mediarecorder(
    running_relay: Any, firefox: FirefoxDriver, tmp_path: Path
) -> None:
    """Firefox's MediaRecorder records WebM (VP8 + Opus) only: the relay makes it H.264."""
    relay: RelayServer = await running_relay(RelayConfig())
    tab = await Tab.open(firefox, f"http://127.0.0.1:{relay.port}/?capture=mediarecorder")
    await tab.go_live()
    assert await tab.eval(CAPTURE) == {"method": "mediarecorder", "source": None}
    assert (await tab.text("#format")).startswith("MediaRecorder · VP8 + Opus · ")
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    assert (status.ffmpeg.mode, status.ffmpeg.input_format) == ("transcode", "matroska vp8+opus")
    await asyncio.sleep(STREAM_SECONDS)

    seconds = await recorded_seconds(tab)
    await tab.stop()
    assert_frames_and_sound(recording(tmp_path), seconds)
    assert await tab.errors() == []
    await tab.close()


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    made: list[TcpProxy] = []
    yield made
    for proxy in made:
        proxy.close()


async def test_firefox_stream_resumes_through_a_drop(
    running_relay: Any, firefox: FirefoxDriver, proxies: list[TcpProxy], tmp_path: Path
) -> None:
    # Catch-up off: nothing recorded through the drop may be skipped.
    relay: RelayServer = await running_relay(RelayConfig(catch_up_lag_s=None))
    assert relay.port is not None
    proxies.append(TcpProxy(relay.port))
    # The page through the proxy, so its socket goes through it too.
    tab = await Tab.open(firefox, f"http://127.0.0.1:{proxies[0].port}/")
    await tab.go_live()
    status = await ffmpeg_status(relay)
    assert await tab.eval(CAPTURE) == {"method": "webcodecs", "source": "video-element"}
    await asyncio.sleep(1.5)

    # Every connection reset, and none taken for 2 s.
    proxies[0].reset_all()
    proxies[0].refuse_for(2)
    await tab.wait(f"{TEXT.format('#stream-state')} === 'Reconnecting…'", timeout=5)
    await tab.wait(f"{STATE} === 'live'", timeout=15)
    assert "Back live" in await tab.text("#message")
    # The same session, taken over by the new socket.
    assert [s.uuid for s in relay.sessions()] == [status.uuid]
    await asyncio.sleep(1.5)

    seconds = await recorded_seconds(tab)
    await tab.stop()
    # What the page recorded through the drop reached the recording too.
    assert_frames_and_sound(recording(tmp_path), seconds, MOCK_AUDIO_CLOCK)
    # Firefox reports the dropped and refused websockets as errors of the page; nothing else.
    errors = await tab.errors()
    assert errors and all("/socket.io/?EIO=4&transport=websocket" in e for e in errors), errors
    await tab.close()


@pytest.fixture(scope="module")
def firefox_without_sound(firefox_launcher: Any) -> FirefoxDriver:
    """Firefox without cubeb's mock context, as on a machine with no sound server: its
    AudioContext starts only after ~3 s and then renders nothing."""
    driver: FirefoxDriver = firefox_launcher(**{"media.cubeb.force_mock_context": False})
    return driver


async def test_firefox_without_a_sound_server_is_live_within_2_s_with_sound(
    running_relay: Any, firefox_without_sound: FirefoxDriver, tmp_path: Path
) -> None:
    """Issue 24's "real Firefox without a sound server is Live within 2 s with sound": the
    start does not wait on the slow audio, whichever path the page picks."""
    relay: RelayServer = await running_relay(RelayConfig())
    tab = await Tab.open(firefox_without_sound, f"http://127.0.0.1:{relay.port}/")
    seconds_to_live = await tab.go_live()
    capture = await tab.eval(CAPTURE)
    print(f"Firefox without a sound server: Live {seconds_to_live:.2f} s after Start, {capture}")
    assert seconds_to_live < LIVE_WITHIN_S, seconds_to_live
    if capture["method"] == "mediarecorder":
        # As here: the element path's audio had not started after 1 s, and the page knows it.
        fallback = await tab.eval("window.relayClient.captureFallback")
        assert fallback["cause"] == "audio-start", fallback
    await asyncio.sleep(STREAM_SECONDS)

    seconds = await recorded_seconds(tab)
    await tab.stop()
    assert_frames_and_sound(recording(tmp_path), seconds)
    assert await tab.errors() == []
    await tab.close()


async def test_firefox_without_a_sound_server_forced_webcodecs_names_the_sound(
    running_relay: Any, firefox_without_sound: FirefoxDriver
) -> None:
    """`?capture=webcodecs` has nothing to fall back to: Start fails after its 3 s trial, and
    the message names the sound (not "the video encoder")."""
    relay: RelayServer = await running_relay(RelayConfig())
    tab = await Tab.open(firefox_without_sound, f"http://127.0.0.1:{relay.port}/?capture=webcodecs")
    await asyncio.to_thread(tab.page.click, "#start")
    await tab.wait(f"{STATE} === 'idle' && {TEXT.format('#message')} !== ''", timeout=6)
    assert await tab.text("#message") == (
        "This browser could not start recording: the browser's sound did not start. Try again,"
        " pick another microphone (or “No microphone”), or use another browser. This link"
        " forces “capture=webcodecs”: without it the page chooses by itself."
    )
    assert await tab.text("#stream-state") == "Not streaming"
    # Connected, never started: the trial comes before the relay is asked.
    assert [s.state for s in relay.sessions()] == [SessionState.CONNECTED]
    assert await tab.errors() == []
    await tab.close()
