"""The page's security headers: a Content-Security-Policy, X-Frame-Options and Referrer-Policy
on every route (errors too), and the built page streaming under that policy in real headless
Chromium without a single violation, over http and https (wss)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.security.tls import TlsFiles, ensure_certificate
from desktop_relay.relay.transport.webpage import add_page_routes

from .conftest import BrowserFactory
from .helpers import Browser, PageLog
from .test_https import trusting
from .test_page import STREAM_SECONDS, assert_recording, ffmpeg_status, go_live, stop, wait_receiver

TOKEN = "pairing-token-csp-0123456"


def directives(header: str) -> dict[str, list[str]]:
    """A CSP header as {directive: [sources]}."""
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(headers: Any, what: str, origin_host: str, tls: bool) -> None:
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("Referrer-Policy") == "no-referrer", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    csp = directives(headers.get("Content-Security-Policy", ""))
    assert csp.get("default-src") == ["'none'"], (what, csp)
    assert csp.get("script-src") == ["'self'"], (what, csp)  # no inline script, no eval
    assert csp.get("style-src") == ["'self'"], (what, csp)
    assert csp.get("frame-ancestors") == ["'none'"], (what, csp)
    assert csp.get("base-uri") == ["'none'"], (what, csp)
    assert csp.get("form-action") == ["'none'"], (what, csp)
    # socket.io over ws(s) to this origin: 'self', spelled out for browsers where 'self'
    # does not cover ws: and wss: yet.
    socket_scheme = "wss" if tls else "ws"
    assert csp.get("connect-src") == ["'self'", f"{socket_scheme}://{origin_host}"], (what, csp)


ROUTES = [
    ("/", 200),
    ("/static/page.js", 200),
    ("/static/page.css", 200),
    ("/static/icon.svg", 200),
    ("/static/nope.js", 404),
    ("/static/%2e%2e/%2e%2e/relay/server.py", 404),
    ("/api/info", 200),
    ("/nowhere", 404),  # no route at all: the router's own error
]


async def test_every_route_sends_the_security_headers(
    running_relay: Any, built_page: Path
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    host = f"127.0.0.1:{relay.port}"
    async with aiohttp.ClientSession() as http:
        for path, status in [*ROUTES, ("/ca.crt", 404)]:  # no CA over plain http
            async with http.get(f"http://{host}{path}") as response:
                assert response.status == status, path
                assert_security_headers(response.headers, path, host, tls=False)


async def test_https_routes_send_the_security_headers(
    running_relay: Any, built_page: Path, tmp_path: Path
) -> None:
    files = ensure_certificate(tmp_path / "tls", ["127.0.0.1", "localhost"])
    assert files.ca_cert is not None
    relay: RelayServer = await running_relay(RelayConfig(tls=files))
    host = f"127.0.0.1:{relay.port}"
    context = ssl.create_default_context(cafile=files.ca_cert)
    async with aiohttp.ClientSession() as http:
        for path, status in [*ROUTES, ("/ca.crt", 200)]:
            async with http.get(f"https://{host}{path}", ssl=context) as response:
                assert response.status == status, path
                assert_security_headers(response.headers, path, host, tls=True)


async def test_unbuilt_page_error_sends_the_security_headers(tmp_path: Path) -> None:
    app = web.Application()
    add_page_routes(app, RelayServer(RelayConfig()), web_dir=tmp_path / "dist")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host = f"127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}/") as response:
            assert response.status == 503
            assert_security_headers(response.headers, "503", host, tls=False)
    finally:
        await runner.cleanup()


async def test_pages_of_the_host_app_keep_their_own_headers(
    relay_app: Any, built_page: Path
) -> None:
    # A web site serving the relay beside its own pages (RelayServer.attach): the relay's policy
    # is for the relay's routes, it must not break the site's inline scripts.
    async def own(request: web.Request) -> web.Response:
        return web.Response(text="<script>1</script>", content_type="text/html")

    _, url = await relay_app(RelayConfig(), lambda app: app.router.add_get("/own", own))
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/own") as response:
            assert "Content-Security-Policy" not in response.headers
        async with http.get(url + "/") as response:
            assert "Content-Security-Policy" in response.headers


# Recorded before any page script runs, so nothing the page does escapes it.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def open_watched(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """The page at `url`, with CSP violations (events and console reports) recorded."""
    page = await browser.context.new_page()
    log = browser.logs[page] = PageLog()  # printed if the test fails, as Browser.open does
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.errors.append(str(e)))
    await page.add_init_script(WATCH_VIOLATIONS)
    await page.goto(url)
    return page, console


async def violations(page: Page, console: list[str]) -> list[str]:
    events: list[str] = await page.evaluate("window.__cspViolations")
    reports = [line for line in console if "Content Security Policy" in line]
    return events + reports


@pytest.mark.media
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_page_streams_under_its_csp_without_violations(
    running_relay: Any,
    rtmp_receiver: Any,
    launch_browser: BrowserFactory,
    tmp_path: Path,
    scheme: str,
) -> None:
    receiver = rtmp_receiver()
    tls: TlsFiles | None = None
    extra: list[str] = []
    if scheme == "https":
        tls = ensure_certificate(tmp_path / "tls", ["127.0.0.1", "localhost"])
        extra = trusting(tls)
    relay: RelayServer = await running_relay(
        RelayConfig(tls=tls, auth_token=TOKEN, default_target=receiver.url)
    )
    browser = await launch_browser(extra)
    page, console = await open_watched(
        browser, f"{scheme}://127.0.0.1:{relay.port}/?token={TOKEN}"
    )
    csp = await page.evaluate(
        "async () => (await fetch(location.href)).headers.get('content-security-policy')"
    )
    assert csp and "frame-ancestors 'none'" in csp
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    if tls is not None:
        await expect(page.locator("#trust-help")).to_be_visible()
    await go_live(page)
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None and status.ffmpeg.mode == "copy"
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(receiver)
    assert_recording(receiver.path, STREAM_SECONDS)
    assert browser.errors() == []
    assert await violations(page, console) == []

    # The policy is really enforced, and the watch above really sees violations: a script
    # injected inline does not run and is reported.
    ran = await page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.head.append(s);
          return window.__injected === true;
        }"""
    )
    assert ran is False
    await page.wait_for_function("() => window.__cspViolations.length > 0")
    assert any("script-src" in v for v in await violations(page, console))
