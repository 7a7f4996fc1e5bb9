"""Real Firefox ESR and WebKitGTK for the e2e tests, beside Playwright's Chromium.

- Firefox: tests/e2e/engines/driver.mjs (npm puppeteer-core over WebDriver BiDi; Debian has
  no geckodriver) runs as a subprocess, and `FirefoxDriver` talks to it in JSON lines.
- WebKitGTK: Debian's WebKitWebDriver, which starts MiniBrowser in automation mode under Xvfb;
  `WebKitDriver` speaks W3C WebDriver to it over HTTP with the standard library: the tests
  use six endpoints (new session, navigate, execute async, find, click, delete), not worth
  Selenium as one more test dependency.

Both are synchronous and thread-safe: async tests call them with `asyncio.to_thread`, so the
relay in the test's event loop keeps running, and one Firefox serves a whole module.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ENGINES_DIR = Path(__file__).resolve().parent / "engines"
DRIVER = ENGINES_DIR / "driver.mjs"
FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_WEBDRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER_GLOB = "/usr/lib/*/webkit2gtk-4.1/MiniBrowser"


def install_driver_modules(npm: str) -> None:
    """`npm ci` in tests/e2e/engines (puppeteer-core, as its lock file pins it) unless done
    since the lock file last changed. Callers hold a lock across pytest-xdist workers."""
    lock = ENGINES_DIR / "package-lock.json"
    installed = ENGINES_DIR / "node_modules" / ".package-lock.json"
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(
        command,
        cwd=ENGINES_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"},
    )
    if result.returncode != 0:
        raise DriverError(f"npm ci in {ENGINES_DIR} failed:\n{result.stdout}\n{result.stderr}")


def minibrowser() -> str | None:
    """WebKitGTK's MiniBrowser (Debian puts it beside the web process, per architecture)."""
    found = sorted(Path("/").glob(MINIBROWSER_GLOB.lstrip("/")))
    return str(found[0]) if found else None


class Xvfb:
    """A virtual X display of its own (`-displayfd` picks a free number)."""

    def __init__(self, xvfb: str) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [xvfb, "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
            pass_fds=[write],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.close()
            raise DriverError("Xvfb did not start")
        self.display = f":{number}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# Firefox's fake devices (a camera of the size asked for, a 1 kHz tone) with no prompt, and no
# network of its own.
FIREFOX_PREFS: dict[str, Any] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # With no sound server an AudioContext takes ~3 s to start and then renders nothing:
    # cubeb's mock backend runs it on a timer instead (the no-sound-server case turns it off).
    "media.cubeb.force_mock_context": True,
    "browser.shell.checkDefaultBrowser": False,
    "app.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "media.gmp-manager.updateEnabled": False,
}


# Held by each test that runs Firefox or WebKit, across pytest-xdist workers: two real browsers
# encoding 720p at once on two cores would starve each other's encoders. (`xdist_group` with
# `--dist loadgroup` would say it better, but pytest-xdist 3.8 does not group on pytest 9.2:
# pytest-xdist issue 1386.)
ENGINE_LOCK = "desktop-relay-browser-engines.lock"


class DriverError(RuntimeError):
    """The browser driver refused or failed a command."""


class FirefoxDriver:
    """Firefox ESR, headless, driven by driver.mjs."""

    def __init__(self, node: str, firefox: str, prefs: dict[str, Any]) -> None:
        config = {"executablePath": firefox, "prefs": prefs}
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"}
        self.process = subprocess.Popen(
            [node, str(DRIVER), json.dumps(config)],
            cwd=ENGINES_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self.stderr: list[str] = []
        first = self.process.stdout.readline()
        hello: dict[str, Any] = (
            json.loads(first) if first else {"ready": False, "error": "driver exited"}
        )
        if not hello.get("ready"):
            err = self.process.stderr.read()
            self.process.wait(10)
            raise DriverError(f"Firefox did not start: {hello.get('error')}\n{err}")
        self.version: str = hello["version"]
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._lock:
                future = self._pending.pop(message["id"], None)
            if future is None:
                continue
            if message["ok"]:
                future.set_result(message["value"])
            else:
                future.set_exception(DriverError(message["error"]))
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(DriverError("the driver exited"))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())

    def call(self, cmd: str, reply_within: float = 60.0, **fields: Any) -> Any:
        future: Future[Any] = Future()
        request_id = next(self._ids)
        with self._lock:
            self._pending[request_id] = future
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except OSError as err:
            raise DriverError(f"the driver is gone: {err}") from err
        return future.result(reply_within)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.close()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


class FirefoxPage:
    """One tab of a `FirefoxDriver`."""

    def __init__(self, driver: FirefoxDriver, url: str) -> None:
        self.driver = driver
        self.id: int = driver.call("open", url=url)

    def eval(self, js: str) -> Any:
        """The value of an expression (a promise is awaited)."""
        return self.driver.call("eval", page=self.id, js=js)

    def wait(self, js: str, timeout: float = 20.0) -> float:
        """Wait until `js` is truthy; the seconds it took."""
        ms = self.driver.call("wait", timeout + 5, page=self.id, js=js, timeout=timeout * 1000)
        return float(ms) / 1000

    def click(self, selector: str) -> None:
        self.driver.call("click", page=self.id, selector=selector)

    def log(self) -> dict[str, list[str]]:
        log: dict[str, list[str]] = self.driver.call("log", page=self.id)
        return log

    def close(self) -> None:
        self.driver.call("closePage", page=self.id)


MINIBROWSER_ARGS = [
    "--automation",
    "--enable-media-stream=true",
    "--enable-mock-capture-devices=true",
    "--enable-write-console-messages-to-stdout=true",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebKitDriver:
    """WebKitWebDriver with one MiniBrowser session, spoken to in W3C WebDriver over HTTP."""

    def __init__(self, webdriver: str, minibrowser: str, display: str, log_path: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DISPLAY": display,
            # Video element frames reach a VideoFrame only off GStreamer's GL sink.
            "WEBKIT_GST_DISABLE_GL_SINK": "1",
        }
        self.log_path = log_path
        self._log = log_path.open("w")
        # A group of its own: MiniBrowser, which the driver starts, is in it too, and is ended
        # with it even when a crashed page left the session unclosable.
        self.process = subprocess.Popen(
            [webdriver, f"--port={self.port}"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                self._request("GET", "/status")
                break
            except (OSError, DriverError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise DriverError(f"WebKitWebDriver did not start:\n{self.log()}") from None
                time.sleep(0.1)
        capabilities = {
            "browserName": "MiniBrowser",
            "webkitgtk:browserOptions": {"binary": minibrowser, "args": MINIBROWSER_ARGS},
        }
        value = self._request(
            "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}}, timeout=60
        )
        self.session = f"/session/{value['sessionId']}"
        self.capabilities: dict[str, Any] = value["capabilities"]
        self._lock = threading.Lock()

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            payload = json.loads(err.read() or b"{}").get("value", {})
            raise DriverError(f"{payload.get('error')}: {payload.get('message')}") from None
        return answer.get("value")

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30
    ) -> Any:
        """A command of the session (`path` after /session/{id})."""
        with self._lock:
            return self._request(method, self.session + path, body, timeout)

    def open(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def eval(self, js: str, timeout: float = 30) -> Any:
        """The value of an expression; a promise is awaited (execute/async with a callback)."""
        script = (
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({js})).then("
            "(value) => done({value}), (error) => done({error: String(error)}));"
        )
        answer = self.call("POST", "/execute/async", {"script": script, "args": []}, timeout)
        if "error" in answer:
            raise DriverError(answer["error"])
        return answer["value"]

    def wait(self, js: str, timeout: float = 20.0) -> float:
        """Wait until `js` is truthy; the seconds it took."""
        started = time.monotonic()
        while not self.eval(js):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"timed out waiting for {js}")
            time.sleep(0.05)
        return time.monotonic() - started

    def click(self, selector: str) -> None:
        found = self.call("POST", "/element", {"using": "css selector", "value": selector})
        element = next(iter(found.values()))
        self.call("POST", f"/element/{element}/click", {})

    def log(self) -> str:
        """What WebKitWebDriver, MiniBrowser and the page's console printed so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if hasattr(self, "session"):
            with contextlib.suppress(OSError, DriverError):
                self._request("DELETE", self.session, timeout=15)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        # Whatever of the group is left (the driver's own id names the group).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
