"""How responsive is the window with many live sessions? Measures the event-loop lag.

Runs the real window offscreen (qasync: Qt's loop is asyncio's) with its relay on 127.0.0.1,
then a separate process of python-socketio clients that replay a MediaRecorder capture into
it in real time (~250 ms chunks, like the browser page), each through its own ffmpeg recording
to a file in a temporary folder. While every session is live, a probe task sleeps 50 ms over
and over; how late it wakes up is the lag every click, repaint and socket event also sees.

    .venv/bin/python scripts/bench_gui_lag.py                  # 16 sessions, 12 s measured
    .venv/bin/python scripts/bench_gui_lag.py --sessions 4 --screenshot docs/screenshot-window.png

The clients run in their own process so that their work does not count as the window's lag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "mediarecorder-h264-opus-640x480-20s.mkv"
)
FIXTURE_SECONDS = 20.0
CHUNK_S = 0.25
PROBE_S = 0.05

# What the Client column shows: the kinds of devices that join a relay.
USER_AGENTS = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
)
NAMES = (
    "Stage left",
    "Stage right",
    "Drums",
    "Crowd",
    "Pulpit",
    "Choir",
    "Keys",
    "Door cam",
    "Phone 1",
    "Phone 2",
    "Phone 3",
    "Tablet",
    "Booth",
    "Wide",
    "Close-up",
    "Backstage",
)


# ---- the clients' process (plain asyncio) ------------------------------------------------


async def replay_one(url: str, token: str | None, number: int, seconds: float) -> str | None:
    """One browser-like session: connect, start, send the capture in real time, stop."""
    import socketio

    client = socketio.AsyncClient(ssl_verify=False)
    errors: list[Any] = []
    client.on("error", errors.append)
    await client.connect(
        url,
        transports=["websocket"],
        headers={"User-Agent": USER_AGENTS[number % len(USER_AGENTS)]},
        auth={"token": token} if token else None,
    )
    try:
        name = NAMES[number % len(NAMES)]
        await client.call("start", {"framerate": 20, "name": name}, timeout=10)
        data = FIXTURE.read_bytes()
        total = int(len(data) * min(seconds, FIXTURE_SECONDS) / FIXTURE_SECONDS)
        step = max(1, int(len(data) * CHUNK_S / FIXTURE_SECONDS))
        t0 = time.monotonic()
        for i, offset in enumerate(range(0, total, step)):
            await client.call("binarystream", data[offset : min(offset + step, total)], timeout=30)
            if any(isinstance(e, dict) and e.get("fatal") for e in errors):
                break
            await asyncio.sleep(max(0.0, t0 + (i + 1) * CHUNK_S - time.monotonic()))
        await client.call("stop", timeout=30)
    finally:
        await client.disconnect()
    return repr(errors[0]) if errors else None


async def run_clients(url: str, token: str | None, sessions: int, seconds: float) -> int:
    """Every session at once, started 50 ms apart (as people press Start)."""

    async def staggered(n: int) -> str | None:
        await asyncio.sleep(n * 0.05)
        return await replay_one(url, token, n, seconds)

    results = await asyncio.gather(*(staggered(n) for n in range(sessions)), return_exceptions=True)
    failures = [r for r in results if r is not None]
    for failure in failures:
        print(f"client: {failure}", file=sys.stderr)
    return 1 if failures else 0


# ---- the window's process (qasync) ---------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def measure(window: Any, args: argparse.Namespace, folder: Path) -> int:
    """Start the clients, wait until every session is live, probe the lag, tidy up."""
    from desktop_relay.relay import SessionState

    controller = window.controller
    address = controller.listen_address
    scheme = "https" if controller.uses_tls else "http"
    url = f"{scheme}://127.0.0.1:{address[1]}"
    stream_s = args.seconds + 8.0  # ffmpeg probes ~2.6 s before the first frame
    command = [sys.executable, __file__, "--clients", url, "--sessions", str(args.sessions)]
    command += ["--seconds", str(stream_s)]
    env = {**os.environ, "BENCH_TOKEN": controller.auth_token or ""}
    clients = await asyncio.create_subprocess_exec(*command, env=env)

    def live() -> int:
        return sum(
            1
            for row in window.model.rows()
            if row.status.state == SessionState.LIVE
            and row.status.ffmpeg
            and row.status.ffmpeg.frames_sent > 0
        )

    deadline = time.monotonic() + 30
    while live() < args.sessions:
        if time.monotonic() > deadline or clients.returncode is not None:
            print(f"only {live()} of {args.sessions} sessions went live", file=sys.stderr)
            clients.kill()
            await clients.wait()
            return 1
        await asyncio.sleep(0.1)

    if args.screenshot is not None and args.sessions > 0:
        # Before the measurement (the captures last 20 s): the figures of a screenshot run
        # include taking it; measure without --screenshot for the README.
        await screenshot_live(window, args.screenshot)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    end = wall0 + args.seconds
    while time.monotonic() < end:
        t0 = loop.time()
        await asyncio.sleep(PROBE_S)
        # Qt's coarse timers (qasync uses them) may fire up to 5 % early: count that as 0.
        lags.append(max(0.0, (loop.time() - t0 - PROBE_S) * 1000))
    wall = time.monotonic() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    live_during = live()
    pictures = sum(1 for r in window.model.rows() if r.thumbnail is not None)
    thumbnails_on = window.controller.relay is not None and window.controller.relay.thumbnails
    frames = sum(r.status.ffmpeg.frames_sent for r in window.model.rows() if r.status.ffmpeg)
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall * 100

    rc = await clients.wait()
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    window.quit()
    await closed.wait()
    recordings = await asyncio.to_thread(lambda: list(folder.glob("recordings/*.mkv")))

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end of the run")
    print(f"sessions live: {live_during} of {args.sessions} ({frames} frames sent so far)")
    print(
        f"thumbnails: {'on' if thumbnails_on else 'off'}, {pictures} of {args.sessions} rows "
        "with a picture; audio meters on"
    )
    print(f"measured: {wall:.1f} s, {len(lags)} probes of asyncio.sleep({PROBE_S})")
    print(
        "event-loop lag (ms): "
        f"p50 {percentile(lags, 50):.1f}  p95 {percentile(lags, 95):.1f}  "
        f"p99 {percentile(lags, 99):.1f}  max {max(lags):.1f}  mean {statistics.fmean(lags):.1f}"
    )
    print(f"window process CPU (relay + Qt, without ffmpeg): {cpu:.0f} % of one core")
    print(f"recordings written: {len(recordings)}; clients exit code {rc}")
    # The session sent to nowhere for the screenshot hears OUTPUT_RECONNECTING: its client
    # reports errors (exit code 1), as it should.
    expected_rc = 1 if args.screenshot is not None and args.sessions > 0 else 0
    return 0 if rc == expected_rc and live_during == args.sessions else 1


async def screenshot_live(window: Any, path: Path) -> None:
    """Send the last session to an RTMP address where nothing listens (its output retries,
    its row says so), give the health checks and sound meters their first seconds, select
    the first session (its log shows), and save the window."""
    from desktop_relay.relay import OutputState

    rows = list(window.model.rows())
    doomed, first = rows[-1].status.uuid, rows[0].status.uuid
    # A loopback port nobody listens on: ffmpeg's connection is refused at once.
    window.controller.set_session_target(doomed, "rtmp://127.0.0.1:9/live/bench-key-0123")

    def ready() -> bool:
        row, shown = window.model.row(doomed), window.model.row(first)
        retrying = row is not None and any(
            o.state == OutputState.RECONNECTING for o in row.status.outputs
        )
        # The suite's capture has a keyframe every 5 s: past the checks' first 5 s, its
        # keyframe-interval warning shows too.
        warned = shown is not None and bool(shown.status.health)
        pictures = all(r.thumbnail is not None for r in window.model.rows())
        heard = shown is not None and shown.status.audio is not None
        return retrying and warned and pictures and heard

    for _ in range(120):
        if ready():
            break
        await asyncio.sleep(0.1)
    window.view.select_session(first)
    await asyncio.sleep(1.0)  # a refresh or two, and the log pane's poll
    path.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(path))
    print(f"screenshot: {path}")


def show_destinations(store: Any) -> None:
    """For the screenshot: the recording on (where the sessions go) and a service saved but
    off (nothing leaves this machine; the key is a stand-in)."""
    from desktop_relay.gui.destinations import Destination, DestinationStore, new_id

    destinations = DestinationStore(store)
    destinations.put(Destination(new_id(), "Recordings", service="recording"), "")
    twitch = Destination(
        new_id(), "Twitch", service="twitch", server="rtmp://live.twitch.tv/app", enabled=False
    )
    destinations.put(twitch, "live_000000000_standinkeyforscreenshot")


def run_window(args: argparse.Namespace) -> int:
    """The window and its relay, as `desktop-relay` runs them, with temporary settings."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync  # type: ignore[import-untyped]
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_relay.gui.main_window import MainWindow
    from desktop_relay.gui.relay_controller import RelayController
    from desktop_relay.gui.settings import SettingsStore
    from desktop_relay.relay import RelayConfig
    from desktop_relay.relay.security.keystore import KeyStore
    from desktop_relay.relay.security.tls import ensure_certificate, machine_hosts
    from desktop_relay.relay.transport.network import lan_addresses

    with tempfile.TemporaryDirectory(prefix="bench-gui-") as tmp:
        folder = Path(tmp)
        config = RelayConfig(
            host="127.0.0.1",
            port=0,
            recordings_dir=folder / "recordings",
            auth_token=secrets.token_urlsafe(16),
            log_level="WARNING",
        )
        if not args.no_tls:
            # As the app runs by default: https with its own certificate.
            config = replace(
                config, tls=ensure_certificate(folder / "tls", machine_hosts(lan_addresses()))
            )
        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
        app.setQuitOnLastWindowClosed(False)

        async def main() -> int:
            store = SettingsStore(
                QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat),
                KeyStore(folder / "keys.json", use_keyring=False),
            )
            if args.screenshot is not None:
                show_destinations(store)
            controller = RelayController(config)
            window = MainWindow(controller, store)
            window.resize(1280, 800)
            window.show()
            if not await controller.start():
                return 1
            return await measure(window, args, folder)

        result: int = qasync.run(main())
        return result


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured seconds (<= 12)")
    parser.add_argument("--screenshot", type=Path, default=None, help="save the window as PNG")
    parser.add_argument("--no-tls", action="store_true", help="plain http instead of https")
    parser.add_argument("--clients", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        # The browsers stand in for phones and laptops elsewhere on the LAN: on this machine
        # they must not take the CPU from the window and its ffmpegs.
        os.nice(19)
        token = os.environ.get("BENCH_TOKEN") or None
        return asyncio.run(run_clients(args.clients, token, args.sessions, args.seconds))
    # The capture lasts 20 s; ~8 s go to connecting and ffmpeg's probe.
    args.seconds = min(args.seconds, FIXTURE_SECONDS - 8.0)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_window(args)


if __name__ == "__main__":
    sys.exit(main())
