#!/usr/bin/env python3
"""Check the join page in a real Safari on a Mac: what WebKitGTK on Linux cannot prove (Safari's
MediaRecorder, its WebCodecs audio, its camera stack).

Run the relay (on the Mac or on the LAN), then on the Mac:

    python3 scripts/safari_check.py --enable URL            # once: allows remote automation
    python3 scripts/safari_check.py URL --capture webcodecs
    python3 scripts/safari_check.py URL --capture mediarecorder

URL is the relay's join link, with its `#token=` if the relay has one. Safari takes the camera
only on a secure page: use `http://localhost:8086/` on the Mac itself, or the relay's https
link after accepting its certificate once in Safari by hand. The script drives Safari through
`safaridriver` (W3C WebDriver, standard library only): it opens the page with `?capture=...`,
presses Start, waits for Live, streams a few seconds, presses Stop, and prints what the page
said. Exit status 0 when the page went live and sent media, 1 otherwise. Needs only Python 3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PAGE_STATE = """return {
  state: document.body.dataset.state,
  streamState: document.querySelector('#stream-state')?.textContent,
  connection: document.querySelector('#connection')?.textContent,
  format: document.querySelector('#format')?.textContent,
  message: document.querySelector('#message')?.textContent,
  capture: window.relayClient?.captureMethod ?? null,
  source: window.relayClient?.captureSource ?? null,
  bytesSent: window.relayClient?.bytesSent ?? 0,
  previewWidth: document.querySelector('#preview')?.videoWidth ?? 0,
  userAgent: navigator.userAgent,
};"""


class WebDriver:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}").get("value")
        except urllib.error.HTTPError as err:
            value = json.loads(err.read() or b"{}").get("value", {})
            raise RuntimeError(f"{value.get('error')}: {value.get('message')}") from None

    def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request(method, f"/session/{self.session}{path}", body)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.command(
            "POST", "/execute/sync", {"script": PAGE_STATE, "args": []}
        )
        return state

    def wait(self, what: str, check: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}: {state}")
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        found = self.command("POST", "/element", {"using": "css selector", "value": selector})
        element = next(iter(found.values()))
        self.command("POST", f"/element/{element}/click", {})


def with_capture(url: str, capture: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "capture"]
    if capture != "auto":
        query.append(("capture", capture))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the relay's join link")
    parser.add_argument("--capture", choices=["auto", "webcodecs", "mediarecorder"], default="auto")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to stream")
    parser.add_argument("--port", type=int, default=4445, help="safaridriver's port")
    parser.add_argument(
        "--enable", action="store_true", help="run `safaridriver --enable` first (asks a password)"
    )
    args = parser.parse_args()

    if args.enable:
        subprocess.run(["safaridriver", "--enable"], check=True)
    driver_process = subprocess.Popen(["safaridriver", "--port", str(args.port)])
    driver = WebDriver(args.port)
    try:
        for _ in range(100):
            try:
                driver.request("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        session = driver.request(
            "POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "safari"}}}
        )
        driver.session = session["sessionId"]
        print(f"Safari {session['capabilities'].get('browserVersion')}")
        try:
            # safaridriver's own command: camera and microphone without a prompt.
            driver.command("POST", "/apple/permissions", {"permissions": {"getUserMedia": True}})
        except RuntimeError as err:
            print(f"could not pre-allow the camera ({err}); allow it for the site in Safari")
        url = with_capture(args.url, args.capture)
        driver.command("POST", "/url", {"url": url})
        print(f"opened {url}")
        state = driver.wait(
            "the camera and the relay",
            lambda s: s["previewWidth"] > 0 and s["connection"] == "Connected",
            30,
        )
        print(f"user agent: {state['userAgent']}")
        started = time.monotonic()
        driver.click("#start")
        state = driver.wait(
            "Live", lambda s: s["state"] == "live" or (s["state"] == "idle" and s["message"]), 30
        )
        if state["state"] != "live":
            print(f"did not go live: {state['message']}")
            return 1
        print(f"Live after {time.monotonic() - started:.2f} s: {state['streamState']}")
        print(f"capture: {state['capture']} ({state['source']}); format: {state['format']}")
        time.sleep(args.seconds)
        state = driver.state()
        sent_bytes = state["bytesSent"]
        print(f"after {args.seconds:.0f} s: {state['streamState']}, {sent_bytes} bytes sent")
        if state["message"]:
            print(f"page says: {state['message']}")
        sent = state["state"] == "live" and state["bytesSent"] > 0
        driver.click("#stop")
        state = driver.wait("the stop", lambda s: s["state"] == "idle", 30)
        print(f"stopped: {state['message']}")
        print("OK" if sent else "FAILED: no media reached the relay")
        return 0 if sent else 1
    except (RuntimeError, TimeoutError) as err:
        # A crashed page ends the session: "session deleted because of page crash".
        print(f"FAILED: {err}")
        return 1
    finally:
        if driver.session:
            with contextlib.suppress(OSError, RuntimeError):
                driver.request("DELETE", f"/session/{driver.session}")
        driver_process.terminate()
        driver_process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
