"""The relay's HTTP side of the page: `/`, `/static/`, `/api/info`, and a page not built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from desktop_relay.relay import Relay, RelayConfig
from desktop_relay.relay.transport.webpage import add_page_routes


def base(relay: Relay) -> str:
    return f"http://127.0.0.1:{relay.port}"


async def test_page_and_client_are_served_fresh(running_relay: Any, built_page: Path) -> None:
    relay: Relay = await running_relay(RelayConfig())
    async with aiohttp.ClientSession() as http:
        async with http.get(base(relay) + "/") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            # Same names across releases: browsers revalidate instead of running old code.
            assert response.headers["Cache-Control"] == "no-cache"
            html = await response.text()
        assert 'src="static/page.js"' in html
        for asset, kind in [
            ("page.js", "javascript"),
            ("page.css", "text/css"),
            ("browser-to-rtmp-client.js", "javascript"),
            ("browser-to-rtmp-client.mjs", "javascript"),
            ("THIRD_PARTY_LICENSES.txt", "text/plain"),
        ]:
            async with http.get(f"{base(relay)}/static/{asset}") as response:
                assert response.status == 200, asset
                assert kind in response.content_type, (asset, response.content_type)
                last_modified = response.headers["Last-Modified"]
            async with http.get(
                f"{base(relay)}/static/{asset}", headers={"If-Modified-Since": last_modified}
            ) as response:
                assert response.status == 304, asset


@pytest.mark.parametrize(
    "path",
    ["/static/../../relay/server.py", "/static/%2e%2e/%2e%2e/relay/server.py", "/static/nope.js"],
)
async def test_static_serves_nothing_outside_the_build(
    running_relay: Any, built_page: Path, path: str
) -> None:
    relay: Relay = await running_relay(RelayConfig())
    async with (
        aiohttp.ClientSession() as http,
        # Sent as written: no client-side normalisation of the dots.
        http.get(URL(base(relay) + path, encoded=True)) as response,
    ):
        assert response.status == 404
        assert "import" not in await response.text()


@pytest.mark.parametrize("pattern", [None, r"rtmp://example\.com/live/\w+"])
async def test_info_says_whether_the_page_may_choose_a_target(
    running_relay: Any, pattern: str | None
) -> None:
    relay: Relay = await running_relay(RelayConfig(allowed_target_pattern=pattern))
    async with (
        aiohttp.ClientSession() as http,
        http.get(base(relay) + "/api/info") as response,
    ):
        info = await response.json()
    assert info["allowClientTarget"] is (pattern is not None)
    # Plain http: no certificate to trust (see test_https.py for the fingerprints).
    assert info["caFingerprint"] is None and info["certFingerprint"] is None


async def test_unbuilt_page_says_how_to_build_it(tmp_path: Path) -> None:
    app = web.Application()
    add_page_routes(app, Relay(RelayConfig()), web_dir=tmp_path / "dist")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/") as response,
        ):
            assert response.status == 503
            assert "npm ci && npm run build" in await response.text()
    finally:
        await runner.cleanup()
