"""The join page over https with the relay's own certificate and a pairing token, in real
headless Chromium that trusts exactly this certificate's key; and the page over plain http on
a network name, which must say that the camera needs https."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import expect

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.security.tls import TlsFiles, ensure_certificate, fingerprint

from .conftest import BrowserFactory
from .test_page import STREAM_SECONDS, assert_recording, ffmpeg_status, go_live, stop, wait_receiver

TOKEN = "pairing-token-https-0123"


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    """The relay's local CA and a server certificate for the loopback names."""
    return ensure_certificate(tmp_path / "tls", ["127.0.0.1", "localhost"])


def trusting(tls: TlsFiles) -> list[str]:
    """Chromium flags trusting the relay's certificate key, and no other untrusted one."""
    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return [f"--ignore-certificate-errors-spki-list={digest}"]


def https_url(relay: RelayServer, path: str = "/") -> str:
    return f"https://127.0.0.1:{relay.port}{path}"


async def get(relay: RelayServer, tls: TlsFiles, path: str) -> aiohttp.ClientResponse:
    """GET over https, trusting the relay's CA (as a device that installed it would)."""
    assert tls.ca_cert is not None
    context = ssl.create_default_context(cafile=tls.ca_cert)
    async with aiohttp.ClientSession() as http, http.get(https_url(relay, path), ssl=context) as r:
        await r.read()
        return r


@pytest.mark.media
async def test_camera_streams_over_https_with_the_join_link(
    running_relay: Any, rtmp_receiver: Any, launch_browser: BrowserFactory, tls: TlsFiles
) -> None:
    receiver = rtmp_receiver()
    relay: RelayServer = await running_relay(
        RelayConfig(tls=tls, auth_token=TOKEN, default_target=receiver.url)
    )
    assert tls.ca_cert is not None
    info = await (await get(relay, tls, "/api/info")).json()
    assert info["caFingerprint"] == fingerprint(tls.ca_cert)
    assert info["certFingerprint"] == fingerprint(tls.cert)
    assert (await get(relay, tls, "/ca.crt")).status == 200

    browser = await launch_browser(trusting(tls))
    # Without the token: refused, in plain words.
    stranger = await browser.open(https_url(relay))
    await expect(stranger.locator("#message")).to_contain_text(
        "only accepts devices that opened its join link"
    )
    await expect(stranger.locator("#connection")).to_have_text("Disconnected")
    await stranger.close()

    page = await browser.open(https_url(relay, f"/?token={TOKEN}"))
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    # The help for phones, with the CA to download and its fingerprint to compare.
    help_ = page.locator("#trust-help")
    await expect(help_).to_be_visible()
    await expect(help_.locator("summary")).to_contain_text("Certificate warning?")
    await help_.locator("summary").click()
    await expect(page.locator("#ca-fingerprint")).to_have_text(info["caFingerprint"])
    link = page.locator("#ca-download")
    await expect(link).to_be_visible()
    assert await link.evaluate("a => a.href") == https_url(relay, "/ca.crt")
    await expect(help_).to_contain_text("visit this website")
    await expect(help_).to_contain_text("Proceed to 127.0.0.1 (unsafe)")

    await go_live(page)
    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None and status.ffmpeg.mode == "copy"
    await asyncio.sleep(STREAM_SECONDS)
    await stop(page)
    await wait_receiver(receiver)
    assert_recording(receiver.path, STREAM_SECONDS)
    assert browser.errors() == []


async def test_https_help_on_a_phone(
    running_relay: Any, launch_browser: BrowserFactory, tls: TlsFiles, tmp_path: Path
) -> None:
    relay: RelayServer = await running_relay(RelayConfig(tls=tls, auth_token=TOKEN))
    browser = await launch_browser(trusting(tls), viewport={"width": 390, "height": 844})
    page = await browser.open(https_url(relay, f"/?token={TOKEN}"))
    await page.wait_for_function("() => document.querySelector('#preview').videoWidth > 0")
    await expect(page.locator("#connection")).to_have_text("Connected")
    await page.locator("#trust-help summary").click()
    await expect(page.locator("#ca-download")).to_be_visible()
    # Nothing wider than the phone, fingerprints included.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "screenshot-page-phone-https.png"
    await page.screenshot(path=str(shot), full_page=True)
    if target := os.environ.get("DESKTOP_RELAY_SCREENSHOT_PHONE"):
        shutil.copyfile(shot, target)


async def test_socketio_accepts_the_relays_own_https_origin_only(
    running_relay: Any, tls: TlsFiles
) -> None:
    relay: RelayServer = await running_relay(RelayConfig(tls=tls))
    assert tls.ca_cert is not None
    context = ssl.create_default_context(cafile=tls.ca_cert)
    url = https_url(relay, "/socket.io/?EIO=4&transport=websocket")
    async with aiohttp.ClientSession() as http:
        # What a browser sends from the join page (engine.io's default check assumes http).
        async with http.ws_connect(url, ssl=context, origin=https_url(relay, "")) as ws:
            assert (await ws.receive_str()).startswith("0{")  # engine.io's open packet
        for other in ("https://evil.example", f"http://127.0.0.1:{relay.port}"):
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await http.ws_connect(url, ssl=context, origin=other)


async def test_own_certificate_has_no_ca_to_download(
    running_relay: Any, built_page: Path, tls: TlsFiles
) -> None:
    # The operator's --cert/--key: no CA of the relay's own.
    relay: RelayServer = await running_relay(RelayConfig(tls=TlsFiles(tls.cert, tls.key)))
    info = await (await get(relay, tls, "/api/info")).json()
    assert info["caFingerprint"] is None
    assert info["certFingerprint"] == fingerprint(tls.cert)
    assert (await get(relay, tls, "/ca.crt")).status == 404


async def test_plain_http_on_a_network_name_says_the_camera_needs_https(
    running_relay: Any, launch_browser: BrowserFactory
) -> None:
    relay: RelayServer = await running_relay(RelayConfig())
    # A name that resolves to loopback but that browsers do not count as secure, like a LAN
    # address over plain http.
    browser = await launch_browser(["--host-resolver-rules=MAP relay.test 127.0.0.1"])
    page = await browser.open(f"http://relay.test:{relay.port}/")
    await expect(page.locator("#connection")).to_have_text("Connected")
    message = page.locator("#message")
    await expect(message).to_contain_text("The camera needs https")
    await expect(message).to_contain_text(f"http://relay.test:{relay.port}")
    await expect(message).to_have_attribute("data-kind", "error")
    await expect(page.locator("#start")).to_be_disabled()
    await expect(page.locator("#trust-help")).to_be_hidden()
    assert browser.errors() == []
