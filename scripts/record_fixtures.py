"""Record the test suite's MediaRecorder captures with the project's own browser client.

    .venv/bin/python scripts/record_fixtures.py                 # all three, into tests/fixtures/
    .venv/bin/python scripts/record_fixtures.py --out /tmp/caps --only mp4

Real headless Chromium (Debian's `chromium`, driven by Playwright; never `playwright install`)
opens a small page that streams its fake camera (640x480, 20 fps) and fake microphone (48 kHz)
with `BrowserToRtmpClient` from `desktop_relay/web/dist/` (built from resources/web when it is
missing or older than its sources). The page talks to a socket.io receiver in this process
that speaks the relay's protocol (`start`, `binarystream`, `stop`, each acked) and appends every
`binarystream` chunk, exactly as received, to the capture: the file is what a relay's ffmpeg
reads from a browser. Each capture is checked with ffprobe (codecs, size, keyframes) and
replaces the old one only when it passes. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import socketio  # noqa: E402
from aiohttp import web  # noqa: E402

from desktop_relay.relay.media.container import InputProbe  # noqa: E402
from desktop_relay.relay.media.keyframes import video_track_number  # noqa: E402
from desktop_relay.relay.transport.webpage import WEB_DIR  # noqa: E402
from tests.e2e.helpers import CHROMIUM_ARGS  # noqa: E402
from tests.media import FIXTURE_SECONDS, FIXTURES, H264_FIXTURE, MP4_FIXTURE, VP8_FIXTURE  # noqa: E402

WEB_SOURCES = ROOT / "resources" / "web"
CLIENT_SCRIPT = "browser-to-rtmp-client.js"
# About 1.1 MB per 20 s, like the captures the suite was written against: ~330 kbit/s of video
# and the client's default 128 kbit/s of Opus. Chromium's H.264 encoder stays near 330 kbit/s
# on the fake camera's simple picture whatever the target above it (measured: 323 at 1 Mbit/s,
# 331 at 2.5); VP8 follows its target (290 kbit/s at 350k).
H264_BITS_PER_SECOND = 1_000_000
VP8_BITS_PER_SECOND = 400_000
AUDIO_BITS_PER_SECOND = 128_000
# Enough of a capture's start to hold its header (tracks), kept to check the track order early.
HEAD_BYTES = 256 * 1024


class Rejected(Exception):
    """A recording that cannot become the capture; recording again may help."""


@dataclass(frozen=True)
class Capture:
    """One capture: what the recorder is asked for and what ffprobe must find in the result."""

    key: str
    filename: str
    mime_types: tuple[str, ...]
    # The suite relies on Matroska/WebM groups of pictures of ~5 s (Chromium's own default):
    # a target changed mid-stream must start from the relay's cached keyframe, not the next one.
    # MP4 is cut into one fragment per keyframe, so it gets the client's default 2 s.
    keyframe_interval_ms: int
    video_bits_per_second: int
    video_codec: str
    formats: tuple[str, ...]
    # The suite's Matroska captures hold audio as track 1 and video as track 2, as Chromium
    # writes them when the first audio frame reaches its muxer first. That is a race, which a
    # recorder started at once in a fresh browser mostly wins (video first otherwise); a
    # capture that loses it is recorded again (told from its header within a second).
    audio_first: bool


CAPTURES = (
    Capture(
        "h264",
        H264_FIXTURE.name,
        ("video/webm;codecs=h264,opus", "video/x-matroska;codecs=avc1,opus"),
        5000,
        H264_BITS_PER_SECOND,
        "h264",
        ("matroska", "webm"),
        audio_first=True,
    ),
    Capture(
        "vp8",
        VP8_FIXTURE.name,
        ("video/webm;codecs=vp8,opus",),
        5000,
        VP8_BITS_PER_SECOND,
        "vp8",
        ("matroska", "webm"),
        audio_first=True,
    ),
    Capture(
        "mp4",
        MP4_FIXTURE.name,
        ("video/mp4;codecs=avc1.42E01F,opus", "video/mp4;codecs=avc1,opus"),
        2000,
        H264_BITS_PER_SECOND,
        "h264",
        ("mov", "mp4"),
        audio_first=False,
    ),
)

# The recording page: the project's client, as a web site embedding it would use it.
PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><script src="/static/%(script)s"></script></head>
<body>
<video id="preview" autoplay muted playsinline></video>
<script>
  // Connected before the devices open, so that recording starts as soon as they deliver.
  const client = new BrowserToRtmpClient(new MediaStream(), { reconnect: false, wakeLock: false });
  const errors = [];
  client.on("error", (error) => errors.push(error));
  window.connected = () => client.connectionState === "connected";
  window.startRecording = async (options) => {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 20 } },
      audio: { sampleRate: { ideal: 48000 } },
    });
    document.getElementById("preview").srcObject = stream;
    client.setStream(stream);
    client.setOptions(options);
    await client.start();
    const video = stream.getVideoTracks()[0].getSettings();
    const audio = stream.getAudioTracks()[0].getSettings();
    return { mimeType: client.mimeType, video, audio };
  };
  window.stopRecording = async () => {
    await client.stop();
    const result = {
      bytesSent: client.bytesSent, chunksSent: client.chunksSent, errors,
    };
    await client.close();
    return result;
  };
</script>
</body>
</html>
"""


@dataclass
class ChunkReceiver:
    """A socket.io server speaking the relay's protocol that writes one session's chunks to a file.

    `target` names the file of the next `start`; chunks before a `start` are refused like the
    relay does (`FFMPEG_NOT_RUNNING`).
    """

    target: Path | None = None
    bytes_written: int = 0
    chunks: int = 0
    head: bytearray = field(default_factory=bytearray)
    start_config: dict[str, Any] = field(default_factory=dict)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _file: Any = None

    def attach(self, app: web.Application) -> None:
        """Add socket.io to `app`."""
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            transports=["websocket"],
            max_http_buffer_size=64 * 1024 * 1024,
            # Each event handled before the next is read: chunks are written in arrival order
            # (with the default, every event is its own task).
            async_handlers=False,
        )
        sio.on("start", self._on_start)
        sio.on("binarystream", self._on_chunk)
        sio.on("stop", self._on_stop)
        sio.on("disconnect", self._on_disconnect)
        sio.attach(app)

    async def _on_start(self, sid: str, config: dict[str, Any] | None = None) -> None:
        if self.target is None or self._file is not None:
            raise RuntimeError("start without a capture to write, or twice")
        self.start_config = dict(config or {})
        self._file = self.target.open("wb")
        self.bytes_written = self.chunks = 0
        self.head.clear()
        self.stopped.clear()

    async def _on_chunk(self, sid: str, chunk: bytes) -> dict[str, Any] | None:
        if self._file is None:
            return {"name": "FFMPEG_NOT_RUNNING", "message": "No stream started", "fatal": False}
        if chunk:  # an empty chunk is the paused client's heartbeat
            self._file.write(chunk)
            self.bytes_written += len(chunk)
            self.chunks += 1
            if len(self.head) < HEAD_BYTES:
                self.head += chunk[: HEAD_BYTES - len(self.head)]
        return None

    async def _on_stop(self, sid: str) -> None:
        self._close()

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.stopped.set()


@dataclass(frozen=True)
class Facts:
    """What ffprobe says about a capture."""

    format_name: str
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    sample_rate: int | None
    first_track: str | None
    frames: int
    duration: float
    keyframes: tuple[float, ...]


def ffprobe_facts(ffprobe: str, path: Path) -> Facts:
    """Container, codecs, frames, duration and keyframe times of a capture.

    MediaRecorder writes no duration: it is the end of the last packet.
    """

    def run(*args: str) -> str:
        return subprocess.run(
            [ffprobe, "-v", "error", *args, str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    entries = "stream=index,codec_type,codec_name,width,height,sample_rate:format=format_name"
    info = json.loads(run("-show_entries", entries, "-of", "json"))
    streams = info.get("streams", [])
    video = next((s for s in streams if s["codec_type"] == "video"), {})
    audio = next((s for s in streams if s["codec_type"] == "audio"), {})
    kinds = {s["index"]: s["codec_type"] for s in streams}
    packets = json.loads(
        run("-show_entries", "packet=stream_index,pts_time,duration_time,flags", "-of", "json")
    )["packets"]
    end, frames, keyframes = 0.0, 0, []
    for packet in packets:
        if "pts_time" not in packet:
            continue
        pts = float(packet["pts_time"])
        end = max(end, pts + float(packet.get("duration_time", 0.0)))
        if kinds.get(packet["stream_index"]) == "video":
            frames += 1
            if "K" in packet.get("flags", ""):
                keyframes.append(pts)
    return Facts(
        format_name=info.get("format", {}).get("format_name", ""),
        video_codec=video.get("codec_name"),
        audio_codec=audio.get("codec_name"),
        width=video.get("width"),
        height=video.get("height"),
        sample_rate=int(audio["sample_rate"]) if audio.get("sample_rate") else None,
        first_track=kinds.get(0),
        frames=frames,
        duration=end,
        keyframes=tuple(keyframes),
    )


def problems(capture: Capture, facts: Facts, seconds: float) -> list[str]:
    """Why a capture is unfit for the suite (empty when it is fit)."""
    found = []
    if not any(name in facts.format_name.split(",") for name in capture.formats):
        found.append(f"container {facts.format_name!r}, wanted one of {capture.formats}")
    if (facts.video_codec, facts.audio_codec) != (capture.video_codec, "opus"):
        found.append(f"codecs {facts.video_codec}+{facts.audio_codec}")
    if (facts.width, facts.height) != (640, 480):
        found.append(f"size {facts.width}x{facts.height}")
    if facts.sample_rate != 48000:
        found.append(f"audio at {facts.sample_rate} Hz")
    if abs(facts.duration - seconds) > 1.0:
        found.append(f"{facts.duration:.2f} s long")
    # The fake camera's 20 fps, less a frame or so at each end: a busy machine can make the
    # encoder drop frames, and such a take is not the steady camera the tests assume.
    if facts.frames < 0.975 * 20 * seconds:
        found.append(f"only {facts.frames} video frames")
    if capture.audio_first and facts.first_track != "audio":
        found.append(f"track 1 is {facts.first_track}, not audio")
    expected = seconds * 1000 / capture.keyframe_interval_ms
    if not expected - 1 <= len(facts.keyframes) <= expected + 1:
        found.append(f"{len(facts.keyframes)} keyframes at {facts.keyframes}")
    return found


def gaps(times: tuple[float, ...]) -> str:
    """Keyframe spacing, for the report."""
    if len(times) < 2:
        return "one keyframe"
    spacing = [b - a for a, b in itertools.pairwise(times)]
    return f"keyframes every {min(spacing):.2f}-{max(spacing):.2f} s"


def client_is_stale() -> bool:
    """Whether the built client is missing or older than its sources."""
    built = WEB_DIR / CLIENT_SCRIPT
    if not built.is_file():
        return True
    sources = [
        *WEB_SOURCES.joinpath("src").rglob("*"),
        *WEB_SOURCES.glob("*.json"),
        WEB_SOURCES / "build.mjs",
    ]
    return max(p.stat().st_mtime for p in sources if p.is_file()) > built.stat().st_mtime


def build_client() -> None:
    """`npm ci` (when needed) and `npm run build` in resources/web."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to build the client (apt-get install nodejs npm)")
    if not (WEB_SOURCES / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_SOURCES, check=True)
    subprocess.run([npm, "run", "build"], cwd=WEB_SOURCES, check=True)


async def serve(receiver: ChunkReceiver) -> tuple[web.AppRunner, str]:
    """The recording page, the built client and the receiver on a free 127.0.0.1 port."""
    page = PAGE % {"script": CLIENT_SCRIPT}

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/static/", WEB_DIR)
    receiver.attach(app)
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/"


async def record(
    context: Any, url: str, receiver: ChunkReceiver, capture: Capture, target: Path, seconds: float
) -> dict[str, Any]:
    """Stream `seconds` of fake camera and microphone into `target`; the page's own report."""
    receiver.target = target
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        await page.goto(url)
        await page.wait_for_function("window.connected()")
        started = await page.evaluate(
            "options => window.startRecording(options)",
            {
                "mimeType": list(capture.mime_types),
                "videoBitsPerSecond": capture.video_bits_per_second,
                "audioBitsPerSecond": AUDIO_BITS_PER_SECOND,
                "audioSampleRate": 48000,
                "framerate": 20,
                "keyFrameIntervalMs": capture.keyframe_interval_ms,
            },
        )
        loop = asyncio.get_running_loop()
        began = loop.time()
        if capture.audio_first:
            wrong = await wrong_track_order(receiver)
            if wrong:
                await page.evaluate("window.stopRecording()")
                raise Rejected(wrong)
        await asyncio.sleep(max(0.0, began + seconds - loop.time()))
        stopped = await page.evaluate("window.stopRecording()")
        await asyncio.wait_for(receiver.stopped.wait(), 10)
    finally:
        await page.close()
    if page_errors or stopped["errors"]:
        raise RuntimeError(f"the page failed: {page_errors or stopped['errors']}")
    # Every byte the relay would have acked is in the file, and nothing else.
    if stopped["bytesSent"] != receiver.bytes_written:
        raise RuntimeError(
            f"client sent {stopped['bytesSent']} bytes, file has {receiver.bytes_written}"
        )
    return {**started, **stopped, "startConfig": receiver.start_config}


async def wrong_track_order(receiver: ChunkReceiver, timeout: float = 5.0) -> str | None:
    """Why the Matroska header being received is not audio-first, once it is complete."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        fmt = InputProbe().feed(bytes(receiver.head))
        if fmt is not None:
            number = video_track_number(fmt.header)
            return None if number == 2 else f"video is track {number}, not 2 (audio first)"
        await asyncio.sleep(0.1)
    return "no complete header within 5 s"


async def main_async(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        sys.exit("ffprobe is needed to check the captures (apt-get install ffmpeg)")
    if not Path(args.chromium).is_file():
        sys.exit(f"Chromium not found at {args.chromium} (apt-get install chromium)")
    if client_is_stale():
        build_client()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    captures = [c for c in CAPTURES if not args.only or c.key in args.only]

    receiver = ChunkReceiver()
    runner, url = await serve(receiver)
    failed = 0
    try:
        with tempfile.TemporaryDirectory(prefix="record-fixtures-") as tmp:
            async with async_playwright() as playwright:
                for capture in captures:
                    final = out / capture.filename
                    for attempt in range(1, args.attempts + 1):
                        partial = Path(tmp) / capture.filename
                        # A fresh browser each time: a warm one mostly writes video as track 1.
                        context = await playwright.chromium.launch_persistent_context(
                            str(Path(tmp) / f"profile-{capture.key}-{attempt}"),
                            executable_path=args.chromium,
                            headless=True,
                            args=CHROMIUM_ARGS,
                        )
                        try:
                            report = await record(
                                context, url, receiver, capture, partial, args.seconds
                            )
                        except Rejected as error:
                            wrong = [str(error)]
                        else:
                            facts = ffprobe_facts(ffprobe, partial)
                            wrong = problems(capture, facts, args.seconds)
                        finally:
                            await context.close()
                        if not wrong:
                            break
                        print(
                            f"attempt {attempt} of {final.name} rejected: {'; '.join(wrong)}",
                            file=sys.stderr,
                        )
                    if wrong:
                        failed += 1
                        print(f"NOT written {final}", file=sys.stderr)
                        continue
                    shutil.move(partial, final)
                    print(
                        f"wrote {final}: {final.stat().st_size:,} bytes, "
                        f"{facts.duration:.2f} s (ffprobe), {facts.format_name} "
                        f"{facts.video_codec}+{facts.audio_codec} {facts.width}x{facts.height} "
                        f"{facts.sample_rate} Hz, track 1 {facts.first_track}, "
                        f"{facts.frames} video frames, {gaps(facts.keyframes)}, "
                        f"{report['chunksSent']} chunks; recorder type {report['mimeType']}"
                    )
    finally:
        await runner.cleanup()
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=FIXTURES,
        help="folder to write the captures to (default tests/fixtures)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[c.key for c in CAPTURES],
        help="record only this capture (repeatable)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=FIXTURE_SECONDS,
        help="length of each capture (the suite expects %(default)s)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=8,
        help="recordings per capture until one passes the checks (%(default)s)",
    )
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or "/usr/bin/chromium",
        help="the Chromium binary (default: %(default)s)",
    )
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
