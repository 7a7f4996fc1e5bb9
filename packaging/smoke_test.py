"""Smoke test of the built artifact: install it, relay a stream headless, open and quit the window.

Usage: `.venv/bin/python packaging/smoke_test.py [--no-build] [--fast] [--tarball]
[--keep-installed]`
(or `bash packaging/smoke_test.sh`). Needs the test extra (python-socketio client, pytest for
tests/media.py), ffmpeg/ffprobe on PATH for the RTMP receiver and the checks, and root for
`dpkg -i` (otherwise, or with --tarball, the tarball is unpacked into a temporary folder).

Steps: build (packaging/build.py); the licences and notices in the .deb and the tarball;
install; `--version`; headless on 127.0.0.1 with the page,
/api/info and a fixture stream to an RTMP receiver (checked with ffprobe, and that the bundled
ffmpeg did the work); the window offscreen with a live session, quit by SIGTERM (the window's
quit path), with no ffmpeg left; the window on Xvfb (when installed) to time the cold start to
a mapped window. Figures go to dist/smoke-figures.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.media and tests.replay: the suite's own helpers

import socketio  # noqa: E402

from tests.media import H264_FIXTURE, free_port, probe, start_receiver  # noqa: E402
from tests.replay import Streamer  # noqa: E402

DIST = ROOT / "dist"
APP = "desktop-relay"
TOKEN = "smoke-test-token-0123456789"
CONTROL_TOKEN = "smoke-test-control-0123456789"
STREAM_SECONDS = 6.0
# Generous: the machine may be busy with real-time media tests of other developers.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class SmokeFailure(Exception):
    """A check of the smoke test failed."""


def check(condition: object, message: str) -> None:
    """Fail the smoke test with `message` unless `condition` holds."""
    if not condition:
        raise SmokeFailure(message)


def step(message: str) -> None:
    """Announce a step."""
    print(f"\n== {message}", flush=True)


@dataclass
class Figures:
    """What the smoke test measured."""

    seconds: dict[str, float] = field(default_factory=dict)
    load_average: list[float] = field(default_factory=list)  # context for the times
    installed_from: str = ""
    window_shown_by: str = ""


# ---- processes ---------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children, their children, ...)."""
    seen: list[int] = []
    queue = _children(pid)
    while queue:
        child = queue.pop()
        if child not in seen:
            seen.append(child)
            queue += _children(child)
    return seen


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def exe_of(pid: int) -> str:
    """The executable of a process, or '' once it is gone."""
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/exe")
    return ""


class AppProcess:
    """The installed app running as a child, its output collected by a reader thread."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.cmd = cmd
        self.log_path = log
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.ffmpeg_seen: dict[int, str] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self._log.write(line)
            self._log.flush()

    def wait_for_line(self, needle: str, timeout: float) -> tuple[float, str]:
        """The first output line holding `needle` and when it came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if needle in line:
                    return when, line
            check(self.proc.poll() is None, f"the app exited early: {self.tail()}")
            time.sleep(0.02)
        raise SmokeFailure(f"no line with {needle!r} within {timeout:.0f} s: {self.tail()}")

    def note_ffmpeg(self) -> dict[int, str]:
        """Remember the ffmpeg processes below the app (to check later that none is left)."""
        for pid in descendants(self.proc.pid):
            exe = exe_of(pid)
            if "ffmpeg" in Path(exe).name:
                self.ffmpeg_seen[pid] = exe
        return self.ffmpeg_seen

    def terminate_and_wait(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM (the app's graceful stop), then wait; returns how long the exit took."""
        self.note_ffmpeg()
        family = descendants(self.proc.pid)
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise SmokeFailure(f"the app did not exit within {timeout:.0f} s of SIGTERM") from None
        took = time.monotonic() - t0
        check(code == 0, f"the app exited with {code}: {self.tail()}")
        time.sleep(0.2)  # let an orphan's exit settle before looking for it
        left = [pid for pid in family + list(self.ffmpeg_seen) if alive(pid)]
        check(not left, f"processes left after exit: {[(p, exe_of(p)) for p in left]}")
        return took

    def kill(self) -> None:
        """Kill the app and whatever it started (cleanup after a failure)."""
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def tail(self, lines: int = 15) -> str:
        """The last lines of the app's output."""
        return "\n".join(line for _, line in self.lines[-lines:])


# ---- notices -----------------------------------------------------------------------------

NOTICES = "THIRD-PARTY-NOTICES.txt"
DEP5_FORMAT = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"


def check_notices_text(text: str, where: str, page: bool) -> None:
    """The notices name what the app bundles under its licence, with the texts the GPL and
    LGPL require and FFmpeg's build and source."""
    for needle in (
        "GNU GENERAL PUBLIC LICENSE",
        "GNU LESSER GENERAL PUBLIC LICENSE",
        "Replacing Qt",
        "ffmpeg version",
        "configuration: ",
        "Written offer",
        "Corresponding source",
        "PySide6",
        "aiohttp",
        "python-socketio",
        "PyInstaller bootloader",
        *(["mediabunny", "socket.io-client"] if page else []),
    ):
        check(needle in text, f"{where} lacks {needle!r}")


def check_dep5(text: str, where: str) -> None:
    """A Debian machine-readable copyright file: its header, and every Files paragraph has a
    Copyright and a License."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    check(paragraphs and paragraphs[0].startswith(DEP5_FORMAT), f"{where} is not DEP-5")
    files = [p for p in paragraphs if p.startswith("Files:")]
    check(len(files) >= 3, f"{where} has {len(files)} Files paragraphs")
    for paragraph in files:
        fields = {line.split(":", 1)[0] for line in paragraph.splitlines() if line[:1] != " "}
        check({"Copyright", "License"} <= fields, f"{where}: incomplete {paragraph[:80]!r}")
    check("GPL-3.0-or-later" in text and "LGPL-3.0-only" in text, f"{where}: GPL/LGPL missing")


def deb_member(deb: Path, member: str) -> str:
    """A file's text out of a .deb, without installing it."""
    tar = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    out = subprocess.run(["tar", "-xO", f"./{member}"], input=tar, capture_output=True, check=True)
    return out.stdout.decode()


def check_notices(page: bool) -> None:
    """Notices in the .deb (/usr/share/doc and in the app) and in the tarball."""
    step("licences and notices in the .deb and the tarball")
    debs = sorted(DIST.glob(f"{APP}_*.deb"))
    if debs and shutil.which("dpkg-deb"):
        deb = debs[-1]
        listing = subprocess.run(
            ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
        ).stdout
        for member in (
            f"./usr/share/doc/{APP}/copyright",
            f"./usr/share/doc/{APP}/{NOTICES}",
            f"./opt/{APP}/_internal/{NOTICES}",  # what the app's About dialog reads
        ):
            check(member in listing, f"{deb.name} lacks {member}")
        copyright_text = deb_member(deb, f"usr/share/doc/{APP}/copyright")
        check_dep5(copyright_text, f"{deb.name}: copyright")
        check_notices_text(deb_member(deb, f"usr/share/doc/{APP}/{NOTICES}"), deb.name, page)
        print(f"   {deb.name}: /usr/share/doc/{APP}/copyright (DEP-5) and {NOTICES}")
    else:
        print("   (no .deb or no dpkg-deb: .deb not checked)")
    tarball = next(iter(sorted(DIST.glob(f"{APP}-*-linux-*.tar.gz"))), None)
    check(tarball is not None, "no tarball in dist/: build first")
    assert tarball is not None
    names = set(
        subprocess.run(
            ["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    for member in (f"{APP}/{NOTICES}", f"{APP}/_internal/{NOTICES}"):
        check(member in names, f"{tarball.name} lacks {member}")
    text = subprocess.run(
        ["tar", "-xzOf", str(tarball), f"{APP}/{NOTICES}"], capture_output=True, check=True
    ).stdout.decode()
    check_notices_text(text, tarball.name, page)
    print(f"   {tarball.name}: {APP}/{NOTICES} ({len(text) / 1e3:.0f} kB)")


# ---- install -----------------------------------------------------------------------------


def dpkg_installed(package: str) -> bool:
    """Whether Debian package `package` is installed."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return out.returncode == 0 and "ok installed" in out.stdout


@contextlib.contextmanager
def installed(use_tarball: bool, keep: bool, workdir: Path, figures: Figures) -> Iterator[Path]:
    """Install the build; yields the launcher to run. Removes what it installed afterwards."""
    debs = sorted(DIST.glob(f"{APP}_*.deb"))
    can_dpkg = os.geteuid() == 0 and shutil.which("dpkg") is not None and bool(debs)
    if use_tarball or not can_dpkg:
        tarball = next(iter(sorted(DIST.glob(f"{APP}-*-linux-*.tar.gz"))), None)
        check(tarball is not None, "no tarball in dist/: build first")
        assert tarball is not None
        step(f"unpack {tarball.name}")
        subprocess.run(["tar", "-C", str(workdir), "-xzf", str(tarball)], check=True)
        figures.installed_from = tarball.name
        yield workdir / APP / APP
        return
    deb = debs[-1]
    was_installed = dpkg_installed(APP)
    step(f"install {deb.name} with dpkg -i")
    t0 = time.monotonic()
    if subprocess.run(["dpkg", "-i", str(deb)]).returncode != 0:
        # Missing Depends (the libxcb set): let apt bring them, as a user's apt would.
        subprocess.run(["apt-get", "install", "-f", "-y", "--no-install-recommends"], check=True)
    figures.seconds["install"] = round(time.monotonic() - t0, 1)
    figures.installed_from = deb.name
    try:
        launcher = Path("/usr/bin") / APP
        check(launcher.is_symlink() or launcher.is_file(), f"{launcher} was not installed")
        check(
            launcher.resolve() == Path("/opt") / APP / APP,
            f"{launcher} points to {launcher.resolve()}",
        )
        check_desktop_entry(Path("/usr/share/applications") / f"{APP}.desktop")
        doc = Path("/usr/share/doc") / APP
        check((doc / "copyright").is_file(), f"{doc}/copyright was not installed")
        check((doc / NOTICES).is_file(), f"{doc}/{NOTICES} was not installed")
        for icon in ("scalable/apps/desktop-relay.svg", "256x256/apps/desktop-relay.png"):
            check((Path("/usr/share/icons/hicolor") / icon).is_file(), f"no icon {icon}")
        yield launcher
    finally:
        if not keep and not was_installed:
            step("remove the package")
            subprocess.run(["dpkg", "-r", APP], check=False, stdout=subprocess.DEVNULL)
            check(not Path("/opt", APP).exists(), "/opt/desktop-relay left after dpkg -r")


def check_desktop_entry(path: Path) -> None:
    """The .desktop file is installed, names an icon and a command that is on PATH."""
    check(path.is_file(), f"{path} was not installed")
    entry: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            entry[key.strip()] = value.strip()
    check(entry.get("Type") == "Application", "the .desktop entry is not an Application")
    check(entry.get("Icon") == APP, f"the .desktop entry's icon is {entry.get('Icon')}")
    command = entry.get("Exec", "").split()[0]
    check(shutil.which(command) is not None, f"the .desktop Exec {command!r} is not on PATH")


# ---- the app -----------------------------------------------------------------------------


def app_env(workdir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: a fresh home so settings, logs, certificates and keys are the
    app's own defaults and nothing of the developer's is read or written."""
    home = workdir / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "PYTHONPATH",
            "PYTHONHOME",
            "VIRTUAL_ENV",
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "QT_QPA_PLATFORM",
            "DBUS_SESSION_BUS_ADDRESS",
        }
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(workdir / "runtime"),
    )
    (workdir / "runtime").mkdir(mode=0o700, exist_ok=True)
    env.update(extra)
    return env


def app_flags(launcher: Path) -> set[str]:
    """The options the installed app knows (the security options came in later)."""
    out = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=60)
    return {word.strip(",[]") for word in out.stdout.split() if word.startswith("--")}


def auth_flags(flags: set[str]) -> list[str]:
    """A known pairing token, when the app has pairing."""
    return ["--token", TOKEN] if "--token" in flags else []


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE  # the app's own self-made certificate, on loopback


def http_get(
    url: str, headers: dict[str, str] | None = None, body: object = None
) -> tuple[int, bytes, str]:
    """Status, body and content type of a GET, or of a POST of `body` as JSON (errors are
    statuses, not exceptions)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10, context=_INSECURE) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def wait_for_http(port: int, proc: AppProcess, timeout: float = START_TIMEOUT) -> str:
    """The base URL once the relay answers /api/info (https first, then http)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check(proc.proc.poll() is None, f"the app exited early: {proc.tail()}")
        for scheme in ("https", "http"):
            with contextlib.suppress(OSError, ssl.SSLError):
                status, _, _ = http_get(f"{scheme}://127.0.0.1:{port}/api/info")
                if status == 200:
                    return f"{scheme}://127.0.0.1:{port}"
        time.sleep(0.05)
    raise SmokeFailure(f"the relay did not answer on port {port}: {proc.tail()}")


def check_page(base: str, page_expected: bool) -> None:
    """/ serves the page (when it was built), /api/info JSON, the client script."""
    status, body, kind = http_get(f"{base}/api/info")
    check(status == 200 and "json" in kind, f"/api/info: {status} {kind}")
    info = json.loads(body)
    check(isinstance(info, dict), f"/api/info is not an object: {info!r}")
    status, body, _ = http_get(f"{base}/")
    if page_expected:
        check(status == 200 and b"<html" in body.lower(), f"GET / answered {status}")
        status, _, _ = http_get(f"{base}/static/browser-to-rtmp-client.js")
        check(status == 200, f"the client script answered {status}")
    else:
        check(status == 503, f"GET / without a built page answered {status}")
    print(f"   GET / {status}, /api/info {info}")


async def stream(base: str, seconds: float, stop: bool = True) -> Streamer:
    """One browser-like session: connect with the token, start, replay the fixture, stop."""
    client = socketio.AsyncClient(ssl_verify=False)
    streamer = await Streamer(base, client=client).connect(auth={"token": TOKEN})
    try:
        check(await streamer.start({"framerate": 30}), f"start refused: {streamer.errors}")
        await streamer.replay(H264_FIXTURE, seconds)
        if stop and not streamer.disconnected.is_set():
            await streamer.stop()
    finally:
        await streamer.close()
    return streamer


def check_received(path: Path, at_least: float) -> str:
    """The RTMP receiver's file is H.264 + AAC and long enough."""
    check(path.is_file() and path.stat().st_size > 0, f"nothing received in {path}")
    result = probe(path)
    check(result.video_codec == "h264", f"received video is {result.video_codec}")
    check(result.audio_codec == "aac", f"received audio is {result.audio_codec}")
    check(result.duration >= at_least, f"received only {result.duration:.1f} s")
    return f"h264+aac {result.duration:.1f} s, {result.video_frames} video frames"


def receiver_ffmpeg() -> str:
    """The receiver's ffmpeg: the system's (the tests' choice), else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def headless(launcher: Path, workdir: Path, flags: set[str], page: bool, figures: Figures) -> None:
    """Serve the page and relay a fixture stream to an RTMP receiver, then stop on SIGTERM."""
    step("headless: page, /api/info and a fixture stream to RTMP, the program on air")
    receiver = start_receiver(receiver_ffmpeg(), workdir)
    # The program: PyAV and its 'spawn' worker, which in the frozen app is this executable
    # again (launcher.py's freeze_support). Older builds have no program: not asked of them.
    program = "--program-url" in flags
    program_receiver = (
        start_receiver(receiver_ffmpeg(), workdir, key="program-0123456789") if program else None
    )
    port = free_port()
    cmd = [
        str(launcher),
        "--headless",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rtmp-url",
        receiver.url,
        *auth_flags(flags),
    ]
    if program_receiver is not None:
        cmd += ["--program-url", program_receiver.url, "--control-token", CONTROL_TOKEN]
    app = AppProcess(cmd, app_env(workdir), workdir / "headless.log")
    try:
        when, line = app.wait_for_line("listening on", START_TIMEOUT)
        figures.seconds["headless_start_to_listening"] = round(when - app.started, 2)
        print(f"   {line.strip()}")
        base = wait_for_http(port, app)
        print(
            f"   serving {base} (https: the app's own certificate)"
            if base.startswith("https")
            else f"   serving {base}"
        )
        check_page(base, page)
        sessions: list[Streamer] = []

        taken: list[str] = []

        async def session_and_watch() -> None:
            task = asyncio.ensure_future(stream(base, STREAM_SECONDS))
            while not task.done():
                app.note_ffmpeg()
                if program and not taken:
                    source = await asyncio.to_thread(take_first_source, base)
                    if source is not None:
                        taken.append(source)
                await asyncio.sleep(0.2)
            sessions.append(await task)

        t0 = time.monotonic()
        asyncio.run(session_and_watch())
        figures.seconds["headless_stream"] = round(time.monotonic() - t0, 1)
        check(
            not any(e.get("fatal") for e in sessions[0].errors),
            f"session errors: {sessions[0].errors}",
        )
        check(app.ffmpeg_seen, "no ffmpeg ran below the app")
        bundled = [
            exe
            for exe in app.ffmpeg_seen.values()
            if Path(exe).resolve().is_relative_to(launcher.resolve().parent)
        ]
        check(bundled, f"ffmpeg was not the bundled one: {set(app.ffmpeg_seen.values())}")
        check(receiver.wait(30) == 0, "the RTMP receiver failed")
        print(f"   received: {check_received(receiver.path, STREAM_SECONDS - 2.5)}")
        if program_receiver is not None:
            check(taken, "the session never showed in GET /api/program to be taken")
            status, _, _ = http_get(f"{base}/api/program")
            check(status == 401, f"GET /api/program without the control token: {status}")
        print(f"   bundled ffmpeg: {bundled[0]}")
        took = app.terminate_and_wait()
        print(f"   SIGTERM: exited 0 after {took:.1f} s, no ffmpeg left")
        if program_receiver is not None:
            # The program runs until the relay stops: its stream ends with the SIGTERM.
            check(program_receiver.wait(30) == 0, "the program's RTMP receiver failed")
            result = probe(program_receiver.path)
            check(
                result.video_codec == "h264" and result.width == 1280,
                f"the program's stream: {result}",
            )
            check(result.duration >= STREAM_SECONDS - 2.5, f"program: {result.duration:.1f} s")
            print(
                f"   program: took {taken[0][:8]}... by the control API; received "
                f"{result.duration:.1f} s of {result.width}-wide H.264 from the frozen worker"
            )
        log = workdir / "home" / ".local" / "state" / APP / "log" / f"{APP}.log"
        # Reported, not required, until cli.main calls desktop_relay.paths.setup_logging.
        print(f"   log file in the platform folder: {'yes' if log.is_file() else 'NO'} ({log})")
    finally:
        app.kill()
        receiver.close()
        if program_receiver is not None:
            program_receiver.close()


def take_first_source(base: str) -> str | None:
    """Take the first live source on the program by the control API; its id, or None while
    there is none yet."""
    auth = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
    status, body, _ = http_get(f"{base}/api/program", auth)
    check(status == 200, f"GET /api/program with the control token: {status} {body[:200]!r}")
    live = [s["id"] for s in json.loads(body).get("sources", []) if s.get("state") == "live"]
    if not live:
        return None
    status, body, _ = http_get(f"{base}/api/program", auth, {"take": live[0]})
    check(status == 200, f"POST take: {status} {body[:200]!r}")
    answer = json.loads(body)
    check(answer.get("source") == live[0], f"the take was not applied: {answer}")
    return str(live[0])


def window_offscreen(launcher: Path, workdir: Path, flags: set[str], figures: Figures) -> None:
    """The window offscreen with a live session; SIGTERM quits it with no ffmpeg left."""
    step("window (QT_QPA_PLATFORM=offscreen): start, a live session, quit")
    receiver = start_receiver(receiver_ffmpeg(), workdir, key="smoke-window-key-0123456789")
    port = free_port()
    cmd = [
        str(launcher),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rtmp-url",
        receiver.url,
        *auth_flags(flags),
    ]
    env = app_env(workdir, QT_QPA_PLATFORM="offscreen", DESKTOP_RELAY_REPORT_SHOWN="1")
    app = AppProcess(cmd, env, workdir / "window-offscreen.log")
    try:
        base = wait_for_http(port, app)
        ready = time.monotonic() - app.started
        figures.seconds["window_offscreen_start_to_relay_ready"] = round(ready, 2)
        shown = [when for when, line in app.lines if "window shown" in line]
        if shown:
            figures.seconds["window_offscreen_start_to_shown"] = round(shown[0] - app.started, 2)
        print(f"   relay in the window answers after {ready:.2f} s")
        # The app opens Help > About once (DESKTOP_RELAY_REPORT_SHOWN) and says what it shows.
        deadline = time.monotonic() + 60
        about: list[str] = []
        while not about and time.monotonic() < deadline:
            about = [line for _, line in list(app.lines) if "about shows" in line]
            time.sleep(0.2)
        check(bool(about), "Help > About reported nothing within 60 s")
        check(
            all(n in about[0] for n in ("GNU GENERAL PUBLIC LICENSE", "GNU LESSER", "FFmpeg")),
            f"About lacks the notices: {about[0]}",
        )
        chars = int(about[0].split("about shows ", 1)[1].split(" ", 1)[0])
        check(chars > 10_000, f"About shows only {chars} characters of notices")
        check("ffmpeg: ffmpeg version" in about[0], f"About lacks ffmpeg's version: {about[0]}")
        print(f"   About shows {chars:,} characters of notices and ffmpeg's version")

        async def live_session_then_quit() -> float:
            task = asyncio.ensure_future(stream(base, STREAM_SECONDS * 2, stop=False))
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and not task.done():
                if app.note_ffmpeg():  # polls /proc: no event to wait for
                    break
                await asyncio.sleep(0.1)
            check(app.ffmpeg_seen, "no ffmpeg started for the window's session")
            await asyncio.sleep(3.0)  # some media through, then quit mid-stream
            took = await asyncio.to_thread(app.terminate_and_wait)
            with contextlib.suppress(Exception):  # the relay ended the session: expected
                await asyncio.wait_for(task, 15)
            return took

        took = asyncio.run(live_session_then_quit())
        figures.seconds["window_quit_with_live_session"] = round(took, 1)
        print(f"   SIGTERM with a live session: exited 0 after {took:.1f} s, no ffmpeg left")
        check(receiver.wait(30) == 0, "the RTMP receiver failed")
        print(f"   received before quit: {check_received(receiver.path, 1.0)}")
    finally:
        app.kill()
        receiver.close()


@contextlib.contextmanager
def xvfb() -> Iterator[str | None]:
    """A private X server on a free display (None when Xvfb is not installed)."""
    binary = shutil.which("Xvfb")
    if binary is None:
        yield None
        return
    number = next(
        n
        for n in range(90, 200)
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists()
    )
    proc = subprocess.Popen(
        [binary, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            check(proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start")
            time.sleep(0.05)
        yield f":{number}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def mapped_window(display: str, title: str) -> bool:
    """Whether a window titled `title` is mapped and viewable on `display`."""
    env = dict(os.environ, DISPLAY=display)
    tree = subprocess.run(
        ["xwininfo", "-root", "-tree"], capture_output=True, text=True, env=env
    ).stdout
    for line in tree.splitlines():
        if f'"{title}"' in line:
            window = line.split()[0]
            info = subprocess.run(
                ["xwininfo", "-id", window], capture_output=True, text=True, env=env
            ).stdout
            if "IsViewable" in info:
                return True
    return False


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far: less noisy than wall time on a
    machine busy with other work."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


X11_RUNS = ("cold", "warm-1", "warm-2")


def evict_from_page_cache(folder: Path) -> int:
    """Drop the app's own files from the page cache, so the next start reads them from disk.

    Only these files: dropping every cache (/proc/sys/vm/drop_caches) would slow down whatever
    else runs on the machine. System libraries stay cached, as they are on a used desktop.
    """
    evicted = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # dirty pages can't be dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += path.stat().st_size
            finally:
                os.close(fd)
    return evicted


def window_x11(launcher: Path, workdir: Path, flags: set[str], figures: Figures) -> None:
    """The window on a real X server (xcb plugin, system libxcb): first and warm starts."""
    with xvfb() as display:
        if display is None or shutil.which("xwininfo") is None:
            print("   (Xvfb or xwininfo missing: cold start on X not measured)")
            return
        for run in X11_RUNS:
            step(f"window on Xvfb {display}: {run} start to a mapped window")
            if run == "cold":
                evicted = evict_from_page_cache(launcher.resolve().parent)
                print(f"   evicted {evicted / 1e6:.0f} MB of the app's files from the page cache")
            port = free_port()
            cmd = [str(launcher), "--host", "127.0.0.1", "--port", str(port), *auth_flags(flags)]
            app = AppProcess(cmd, app_env(workdir, DISPLAY=display), workdir / f"x11-{run}.log")
            try:
                deadline = time.monotonic() + START_TIMEOUT
                while not mapped_window(display, "Desktop Relay"):
                    check(app.proc.poll() is None, f"the window exited: {app.tail()}")
                    check(time.monotonic() < deadline, f"no window mapped: {app.tail()}")
                    time.sleep(0.02)
                shown = time.monotonic() - app.started
                cpu = cpu_seconds(app.proc.pid)
                figures.seconds[f"x11_{run}_start_to_mapped_window"] = round(shown, 2)
                figures.seconds[f"x11_{run}_cpu_to_mapped_window"] = round(cpu, 2)
                figures.window_shown_by = "xwininfo: mapped and viewable on Xvfb"
                print(f"   mapped after {shown:.2f} s ({cpu:.2f} s of CPU)")
                wait_for_http(port, app)
                took = app.terminate_and_wait()
                print(f"   SIGTERM: exited 0 after {took:.1f} s")
            finally:
                app.kill()


# ---- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run every step; exit status 0 when all passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="test what is in dist/")
    parser.add_argument("--tarball", action="store_true", help="unpack instead of dpkg -i")
    parser.add_argument("--keep-installed", action="store_true", help="don't dpkg -r after")
    parser.add_argument("--fast", action="store_true", help="build with light compression")
    parser.add_argument("--skip-web", action="store_true", help="build without npm")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    figures = Figures()
    check(H264_FIXTURE.is_file(), f"fixture missing: {H264_FIXTURE}")
    if not args.no_build:
        step("build")
        build_args = ["--fast"] * args.fast + ["--skip-web"] * args.skip_web
        build_py = str(ROOT / "packaging" / "build.py")
        subprocess.run([sys.executable, build_py, *build_args], check=True)
        figures.seconds["build"] = round(time.monotonic() - t0, 1)
    build = json.loads((DIST / "build-figures.json").read_text())
    page = bool(build.get("page_included"))
    try:
        check_notices(page)
    except SmokeFailure as failure:
        print(f"\nSMOKE TEST FAILED: {failure}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="desktop-relay-smoke-") as tmp:
        workdir = Path(tmp)
        try:
            with installed(args.tarball, args.keep_installed, workdir, figures) as launcher:
                step(f"{launcher} --version")
                out = subprocess.run(
                    [str(launcher), "--version"], capture_output=True, text=True, timeout=60
                )
                check(
                    out.stdout.strip() == f"{APP} {build['version']}",
                    f"--version said {out.stdout.strip()!r}",
                )
                print(f"   {out.stdout.strip()}")
                flags = app_flags(launcher)
                headless(launcher, workdir, flags, page, figures)
                window_offscreen(launcher, workdir, flags, figures)
                window_x11(launcher, workdir, flags, figures)
        except SmokeFailure as failure:
            print(f"\nSMOKE TEST FAILED: {failure}\n(logs were in {workdir})", file=sys.stderr)
            for log in sorted(workdir.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
            return 1
    figures.seconds["smoke_test_total"] = round(time.monotonic() - t0, 1)
    figures.load_average = [round(x, 1) for x in os.getloadavg()]
    (DIST / "smoke-figures.json").write_text(json.dumps(figures.__dict__, indent=2) + "\n")
    print("\nSmoke test passed")
    for name, seconds in figures.seconds.items():
        print(f"  {name:<40} {seconds:7.2f} s")
    print(f"  load average (1, 5, 15 min): {figures.load_average} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
