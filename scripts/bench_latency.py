"""Benchmark: glass-to-RTMP latency and start-to-first-frame of a real browser; one table.

Usage: .venv/bin/python scripts/bench_latency.py [--paths webcodecs mr-h264 mr-vp8 original]
                                                 [--seconds 10] [--json]

Real headless Chromium (Debian's `chromium`, driven by Playwright, with the e2e tests' flags)
opens a page whose camera is a canvas (scripts/latency_clock.py): 640x480 captured at 30 fps,
repainted on every animation frame with the wall clock (`Date.now()`) as 64 black and white
cells (48 bits of epoch ms and a CRC-16), plus a WebAudio tone as the microphone. The page
then clicks Start, as a person would. An RTMP receiver owned by this script (`ffmpeg -listen
1`) decodes what arrives to raw grey frames on a pipe; this script reads each frame, reads the
painted time back, and records latency = arrival (time.time()) - painted time. Same machine,
same clock. Start-to-first-frame runs from the page's Date.now() at the click on Start to the
first frame out of the receiver.

Paths, one after another, each measured for `--seconds` from its first frame (so the
figures include how the path catches up after its start, which the max shows most):
- webcodecs: our relay's own page with `?capture=webcodecs` (the page says in its "Video"
  field, #format, whether WebCodecs or MediaRecorder ran: a page without that option ignores
  the query and records with MediaRecorder);
- mr-h264, mr-vp8: our page with `?capture=mediarecorder&mimeType=video/webm;codecs=...,opus`;
- original: `@api.video/browser-to-rtmp-server` 0.2.4 run with node, fed by its own client
  (`@api.video/browser-to-rtmp-client` 0.2.x) on a small page of the same server (its README's
  page, plus a Start button, `framerate: 30` as the canvas runs and websocket-only socket.io);
  both are installed by npm into a cache in the system temp folder, never into the project.
  It spawns `ffmpeg` from PATH: the same binary as ours (imageio-ffmpeg's), first on its PATH.
A path may be named more than once, to see how much it varies between runs.

Our relay runs in its own process (this script with `--serve`: RelayServer as `--headless
--no-auth --no-tls` would run it, the receiver as its default target), apart from the
measuring process and the browser, as in production.

What the receiver adds: RTMP and FLV demuxing, decoding one frame at a time (`-flags
low_delay`: no frame-threading delay; no path has B-frames), the scale to 640x480 grey and a
300 KiB pipe write. Fed by a local `ffmpeg -f flv` publisher (x264 ultrafast, zerolatency),
painted frame to frame read here took 38 ms at p50, that encoder included. Its start: the
FLV demuxer's stream probe ends once it has seen both streams (`-analyzeduration 1
-fpsprobesize 0`, as the relay's outputs read FLV), and the packets it read are then decoded,
not dropped. `-fflags nobuffer` is left out on purpose: it discards the packets read while
probing, the first keyframe among them, so nothing decodes until the next keyframe and
start-to-first-frame grows by a GOP (2 s: measured 2.04 s instead of 0.34 s with the same
publisher). The canvas is painted up to one animation frame (16 ms) before the capture takes
it, which the latency includes. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latency_clock import CAMERA_INIT_SCRIPT, HEIGHT, WIDTH, decode_frame  # noqa: E402

from desktop_relay.relay.ffmpeg.process import resolve_ffmpeg  # noqa: E402
from desktop_relay.relay.transport.webpage import WEB_DIR  # noqa: E402
from tests.e2e.helpers import CHROMIUM_ARGS, file_lock  # noqa: E402
from tests.media import _listening, free_port  # noqa: E402

WEB_SOURCES = ROOT / "resources" / "web"
ORIGINAL_SERVER = "@api.video/browser-to-rtmp-server@0.2.4"
ORIGINAL_CLIENT = "@api.video/browser-to-rtmp-client@0.2"
ORIGINAL_CACHE = Path(tempfile.gettempdir()) / "desktop-relay-bench-original-0.2.4"
FRAME_BYTES = WIDTH * HEIGHT
FIRST_FRAME_TIMEOUT_S = 30.0
# A decoded time this far off the arrival is a CRC collision, not a latency.
PLAUSIBLE_MS = (-100.0, 60_000.0)


@dataclass(frozen=True)
class PathSpec:
    """One way a browser reaches the RTMP receiver."""

    name: str
    query: dict[str, str]
    original: bool = False


PATHS = {
    "webcodecs": PathSpec("webcodecs", {"capture": "webcodecs"}),
    "mr-h264": PathSpec(
        "mr-h264", {"capture": "mediarecorder", "mimeType": "video/webm;codecs=h264,opus"}
    ),
    "mr-vp8": PathSpec(
        "mr-vp8", {"capture": "mediarecorder", "mimeType": "video/webm;codecs=vp8,opus"}
    ),
    "original": PathSpec("original", {}, original=True),
}


@dataclass
class PathResult:
    """What one path measured (latencies in ms, in arrival order)."""

    path: str
    capture: str = "?"
    format: str = "?"
    frames: int = 0
    undecodable: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    start_to_first_frame_s: float | None = None
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON row: the figures of the table, without every sample."""
        row = asdict(self)
        del row["latencies_ms"]
        lat = sorted(self.latencies_ms)
        row["p50_ms"] = round(statistics.median(lat), 1) if lat else None
        row["p90_ms"] = round(lat[int(0.9 * (len(lat) - 1))], 1) if lat else None
        row["max_ms"] = round(lat[-1], 1) if lat else None
        if self.start_to_first_frame_s is not None:
            row["start_to_first_frame_s"] = round(self.start_to_first_frame_s, 3)
        return row


# ---- processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # A benchmark killed hard must not leave a receiver, relay or node server behind.
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def spawn(command: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """A child in its own process group (a terminal's Ctrl-C reaches only this script, which
    then ends it), logging to `log`."""
    with log.open("wb") as out:  # the child keeps its copy
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=kwargs.pop("stdout", out),
            stderr=out,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            **kwargs,
        )


def end(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the child's process group (node's ffmpeg is in it), then SIGKILL; reap."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    # Whatever the group still holds (a child that outlived its parent) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Until something listens on `port` (read from the kernel's table: a probe connection
    would be taken as the publisher by `ffmpeg -listen 1`)."""
    deadline = time.monotonic() + 20
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on port {port}")
        await asyncio.sleep(0.05)


def tail(path: Path, lines: int = 8) -> str:
    """The end of a child's log, for an error message."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(f"    {line}" for line in text[-lines:])


# ---- the receiver ---------------------------------------------------------------------------


class ClockReceiver:
    """`ffmpeg -listen 1` taking one RTMP publisher and decoding it to grey frames on a pipe,
    read by a thread that notes each frame's arrival and painted time."""

    def __init__(self, ffmpeg: str, folder: Path) -> None:
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live/latency"
        self.log = folder / f"receiver-{self.port}.log"
        self.samples: list[tuple[float, int | None]] = []  # (arrival epoch s, painted ms)
        self.first_arrival: float | None = None
        self.proc = spawn(
            [ffmpeg, "-hide_banner", "-loglevel", "warning", "-nostats",
             "-flags", "low_delay", "-analyzeduration", "1", "-fpsprobesize", "0",
             "-listen", "1", "-i", self.url,
             "-an", "-vf", f"scale={WIDTH}:{HEIGHT}", "-pix_fmt", "gray",
             "-fps_mode", "passthrough", "-flush_packets", "1", "-f", "rawvideo", "pipe:1"],
            self.log, stdout=subprocess.PIPE, bufsize=0,
        )  # fmt: skip
        self.thread = threading.Thread(target=self._read, name="clock-receiver", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        frame = bytearray(FRAME_BYTES)
        view = memoryview(frame)
        while True:
            got = 0
            while got < FRAME_BYTES:
                n = stdout.readinto(view[got:])  # type: ignore[attr-defined]
                if not n:
                    return
                got += n
            arrival = time.time()
            if self.first_arrival is None:
                self.first_arrival = arrival
            self.samples.append((arrival, decode_frame(frame)))

    def close(self) -> None:
        """Stop ffmpeg and the reading thread."""
        end(self.proc, timeout=3.0)
        self.thread.join(5)


# ---- our relay (--serve) --------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    """The relay's own process: as `--headless --no-auth --no-tls`, until SIGTERM."""
    from bench_child import serve_until_sigterm

    from desktop_relay.relay import RelayConfig, RelayServer

    logging.basicConfig(level=logging.WARNING, format="relay: %(levelname)s %(name)s %(message)s")
    relay = RelayServer(
        RelayConfig(
            host="127.0.0.1",
            port=args.port,
            default_target=args.target,
            recordings_dir=Path(args.serve),
            log_level="WARNING",
        )
    )
    await serve_until_sigterm(relay, announce=False)


def page_is_stale() -> bool:
    """Whether the built page is missing or older than its sources."""
    built = WEB_DIR / "page.js"
    if not built.is_file():
        return True
    sources = [
        *WEB_SOURCES.joinpath("src").rglob("*"),
        *WEB_SOURCES.glob("*.json"),
        WEB_SOURCES / "build.mjs",
    ]
    return max(p.stat().st_mtime for p in sources if p.is_file()) > built.stat().st_mtime


def build_page() -> None:
    """Build the page when stale (the e2e tests' lock: they may build it at the same time)."""
    with file_lock("desktop-relay-web-build.lock"):
        if not page_is_stale():
            return
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("npm is needed to build the page (apt-get install nodejs npm)")
        print("building the page (resources/web)...", file=sys.stderr, flush=True)
        if not (WEB_SOURCES / "node_modules").is_dir():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_SOURCES, check=True)
        result = subprocess.run(
            [npm, "run", "build", "--silent"], cwd=WEB_SOURCES, capture_output=True, text=True
        )
    if result.returncode != 0:
        if not (WEB_DIR / "page.js").is_file():
            sys.exit(f"the page does not build:\n{result.stdout}{result.stderr}")
        print(
            "warning: the page's sources do not build now; measuring the last build",
            file=sys.stderr,
        )


# ---- the original -------------------------------------------------------------------------

ORIGINAL_PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><script src="client.js"></script></head>
<body>
<video id="video" autoplay muted playsinline></video>
<button id="start" disabled>Start</button>
<script>
  window.result = { state: "loading", errors: [] };
  (async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    document.getElementById("video").srcObject = stream;
    const client = new BrowserToRtmpClient(stream, {
      host: location.protocol + "//" + location.hostname,
      port: Number(location.port),
      rtmp: new URLSearchParams(location.search).get("rtmp"),
      framerate: 30,
      socketio: { transports: ["websocket"] },
    });
    client.on("error", (error) => window.result.errors.push(error));
    window.client = client;
    const button = document.getElementById("start");
    button.onclick = async () => {
      button.disabled = true;
      await client.start();
      window.result.state = "started";
    };
    button.disabled = false;
    window.result.state = "ready";
  })().catch((error) => { window.result.state = "failed: " + error; });
</script>
</body>
</html>
"""

# The original server as its README starts it, also serving the page above and its client.
ORIGINAL_SERVER_JS = """
const fs = require("fs");
const http = require("http");
const [serverModule, clientJs, pageHtml, port] = process.argv.slice(2);
const BrowserToRtmpServer = require(serverModule);
const server = http.createServer((req, res) => {
  const path = new URL(req.url, "http://127.0.0.1").pathname;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(fs.readFileSync(pageHtml));
  } else if (path === "/client.js") {
    res.writeHead(200, { "content-type": "text/javascript" });
    res.end(fs.readFileSync(clientJs));
  } else if (!path.startsWith("/socket.io/")) {
    res.writeHead(404);
    res.end();
  }
});
new BrowserToRtmpServer(server, { serverLogs: { minLevel: "warn" } });
server.listen(Number(port), "127.0.0.1");
"""


def install_original() -> Path:
    """The original server and client from npm, cached in the system temp folder."""
    modules = ORIGINAL_CACHE / "node_modules" / "@api.video"
    wanted = [
        modules / "browser-to-rtmp-server" / "dist" / "index.js",
        modules / "browser-to-rtmp-client" / "dist" / "index.js",
    ]
    with file_lock("desktop-relay-bench-original.lock"):
        if not all(p.is_file() for p in wanted):
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is needed to fetch the original (apt-get install npm)")
            ORIGINAL_CACHE.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [npm, "install", "--prefix", str(ORIGINAL_CACHE), "--no-audit", "--no-fund",
                 "--ignore-scripts", "--no-package-lock", "--loglevel=error",
                 ORIGINAL_SERVER, ORIGINAL_CLIENT],
                cwd=ORIGINAL_CACHE, check=True, timeout=600, stdout=sys.stderr,
            )  # fmt: skip
    return modules


# ---- one path -------------------------------------------------------------------------------


async def start_server(
    spec: PathSpec, receiver: ClockReceiver, folder: Path, ffmpeg: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Our relay or the original's node server, listening; (process, page URL)."""
    port = free_port()
    log = folder / f"{spec.name}-server.log"
    if spec.original:
        modules = install_original()
        page = folder / "original.html"
        page.write_text(ORIGINAL_PAGE)
        script = folder / "original-server.js"
        script.write_text(ORIGINAL_SERVER_JS)
        # It runs `ffmpeg` from PATH: ours first.
        bin_dir = folder / "bin"
        bin_dir.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (bin_dir / "ffmpeg").symlink_to(ffmpeg)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the original (apt-get install nodejs)")
        proc = spawn(
            [node, str(script), str(modules / "browser-to-rtmp-server"),
             str(modules / "browser-to-rtmp-client" / "dist" / "index.js"), str(page), str(port)],
            log, env=env,
        )  # fmt: skip
        query = urllib.parse.urlencode({"rtmp": receiver.url})
    else:
        recordings = folder / f"{spec.name}-recordings"
        recordings.mkdir()
        proc = spawn(
            [sys.executable, __file__, "--serve", str(recordings), "--port", str(port),
             "--target", receiver.url],
            log,
        )  # fmt: skip
        query = urllib.parse.urlencode(spec.query)
    try:
        await wait_listening(port, proc, "the original server" if spec.original else "the relay")
    except BaseException:
        end(proc)
        raise
    return proc, f"http://127.0.0.1:{port}/?{query}"


READY_JS = {
    # Ours: connected to the relay, the camera open, Start enabled.
    False: """() => document.querySelector('#connection')?.dataset.state === 'connected'
        && document.querySelector('#preview')?.srcObject
        && !document.querySelector('#start').disabled""",
    True: """() => window.result?.state === 'ready' && window.client?.socket?.connected""",
}


async def run_path(
    playwright: Any, chromium: str, spec: PathSpec, seconds: float, ffmpeg: str, folder: Path
) -> PathResult:
    """Start the receiver, the server and a browser; click Start; measure; end them all."""
    result = PathResult(spec.name)
    receiver = ClockReceiver(ffmpeg, folder)
    server: subprocess.Popen[bytes] | None = None
    context = None
    try:
        await wait_listening(receiver.port, receiver.proc, "the RTMP receiver")
        server, url = await start_server(spec, receiver, folder, ffmpeg)
        context = await playwright.chromium.launch_persistent_context(
            str(folder / f"{spec.name}-profile"),
            executable_path=chromium,
            headless=True,
            # The tone must play without a gesture, as a microphone would.
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
            viewport={"width": 1280, "height": 800},
        )
        await context.add_init_script(CAMERA_INIT_SCRIPT)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(url)
        await page.wait_for_function(READY_JS[spec.original], timeout=20_000)
        await page.click("#start")
        clicked = await page.evaluate("window.__latencyClickAt") / 1000
        deadline = time.monotonic() + FIRST_FRAME_TIMEOUT_S
        while receiver.first_arrival is None:
            if time.monotonic() > deadline or receiver.proc.poll() is not None:
                raise RuntimeError(f"no frame reached the receiver in {FIRST_FRAME_TIMEOUT_S:g} s")
            await asyncio.sleep(0.02)
        first = receiver.first_arrival
        result.start_to_first_frame_s = first - clicked
        await asyncio.sleep(max(0.0, first + seconds - time.time()))
        window = [s for s in receiver.samples if s[0] <= first + seconds]
        for arrival, painted in window:
            latency = None if painted is None else 1000 * arrival - painted
            if latency is None or not PLAUSIBLE_MS[0] <= latency <= PLAUSIBLE_MS[1]:
                result.undecodable += 1
            else:
                result.latencies_ms.append(latency)
        result.frames = len(result.latencies_ms)
        result.format, result.capture = await describe(page, spec)
        if errors:
            result.error = "page error: " + errors[0]
        # asyncio.timeout, not wait_for: a Ctrl-C arriving as it ends must not be swallowed.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await stop_stream(page, spec)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        for log in sorted(folder.glob("*.log")):
            if text := tail(log):
                result.error += f"\n  {log.name}:\n{text}"
    finally:
        if context is not None:
            with contextlib.suppress(Exception):
                await context.close()
        if server is not None:
            end(server)
        receiver.close()
    return result


async def describe(page: Any, spec: PathSpec) -> tuple[str, str]:
    """(what the page says it records, and which capture ran)."""
    if spec.original:
        # It records what the browser likes best and says nothing of it.
        return await page.evaluate("window.client.mediaRecorder?.mimeType") or "?", "MediaRecorder"
    text = (await page.text_content("#format") or "").strip()
    mime = await page.evaluate("window.relayClient?.mimeType")
    label = f"{text} ({mime})" if mime else text
    if "WebCodecs" in text:
        return label, "WebCodecs"
    # A page from before the WebCodecs option names no capture: it only has MediaRecorder.
    if "MediaRecorder" in text or mime:
        return label, "MediaRecorder"
    return label, "?"


async def stop_stream(page: Any, spec: PathSpec) -> None:
    """Stop as a person would, so the servers end their ffmpeg gracefully."""
    if spec.original:
        await page.evaluate("window.client.stop()")
    else:
        await page.click("#stop")
        await page.wait_for_function("document.body.dataset.state === 'idle'")


# ---- the table ------------------------------------------------------------------------------


def table(results: list[PathResult]) -> list[str]:
    """One row per path."""
    head = (
        "path",
        "capture",
        "format",
        "frames",
        "bad clock",
        "p50 ms",
        "p90 ms",
        "max ms",
        "start to 1st frame",
    )
    rows = [head]
    for r in results:
        s = r.summary()

        def ms(key: str, row: dict[str, Any] = s) -> str:
            return "-" if row[key] is None else f"{row[key]:.0f}"

        first = r.start_to_first_frame_s
        rows.append(
            (
                r.path,
                r.capture,
                r.format,
                str(r.frames),
                str(r.undecodable),
                ms("p50_ms"),
                ms("p90_ms"),
                ms("max_ms"),
                "-" if first is None else f"{first:.2f} s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return lines


async def bench(args: argparse.Namespace) -> None:
    """Every chosen path in turn, then the table."""
    from playwright.async_api import async_playwright

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        sys.exit("chromium is not installed (apt-get install chromium)")
    if any(not PATHS[p].original for p in args.paths):
        build_page()
    ffmpeg = resolve_ffmpeg()
    # Other work on the machine shows in every figure: say how busy it was.
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    started = time.monotonic()
    results: list[PathResult] = []
    # Ctrl-C (or SIGTERM) ends the path being measured, through its cleanup, and the run.
    # A terminal's Ctrl-C also reaches Playwright's driver, which then fails the path's
    # browser calls: the flag, not only the cancellation, stops the run.
    interrupted = False
    current: asyncio.Task[PathResult] | None = None

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        if current is not None:
            current.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        async with async_playwright() as playwright:
            for i, name in enumerate(args.paths):
                if interrupted:
                    break
                # A path may be named twice (to see how much it varies from run to run).
                folder = Path(tmp) / f"{i}-{name}"
                folder.mkdir()
                print(f"{name}...", file=sys.stderr, flush=True)
                current = asyncio.create_task(
                    run_path(playwright, chromium, PATHS[name], args.seconds, ffmpeg, folder)
                )
                try:
                    results.append(await current)
                except asyncio.CancelledError:
                    if not interrupted:
                        raise
    if interrupted:
        print("interrupted: the paths measured so far", file=sys.stderr)
    wall = time.monotonic() - started
    print(
        f"glass-to-RTMP latency: {args.seconds:g} s per path from its first frame, "
        f"{WIDTH}x{HEIGHT} canvas at 30 fps + tone; whole run {wall:.0f} s"
    )
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average before: {load_before}; after: {load_after}")
    for line in table(results):
        print(line)
    for r in results:
        if r.error:
            print(f"{r.path}: {r.error}")
    if args.json:
        print(json.dumps([r.summary() for r in results], indent=2))
    if interrupted:
        sys.exit(130)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--paths", nargs="+", choices=list(PATHS), default=list(PATHS), help="paths to measure"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds measured per path from its first frame"
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    # The relay's own process (started by the benchmark).
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    asyncio.run(serve(args) if args.serve else bench(args))


if __name__ == "__main__":
    main()
