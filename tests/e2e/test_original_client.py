"""The original npm client, `@api.video/browser-to-rtmp-client` 0.2.x, unchanged, streams
through the relay from a page of the same aiohttp app (as a web site embedding it would)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from desktop_relay.relay import RelayConfig, SessionState

from .helpers import Browser
from .test_page import STREAM_SECONDS, assert_recording, ffmpeg_status, wait_receiver

pytestmark = pytest.mark.media

# The original's README example, with its default options plus websocket-only socket.io (the
# relay serves no long-polling: it mangles binary chunks).
ORIGINAL_PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><script src="client.js"></script></head>
<body>
<video id="video" autoplay muted playsinline></video>
<script>
  window.result = { state: "loading", errors: [] };
  (async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    document.getElementById("video").srcObject = stream;
    const client = new BrowserToRtmpClient(stream, {
      host: location.protocol + "//" + location.hostname,
      port: Number(location.port),
      socketio: { transports: ["websocket"] },
    });
    client.on("error", (error) => window.result.errors.push(error));
    window.client = client;
    await client.start();
    window.result.state = "started";
  })().catch((error) => { window.result.state = "failed: " + error; });
</script>
</body>
</html>
"""


def original_page_routes(client_js: Path) -> Callable[[web.Application], None]:
    """A `relay_app` setup: the original's README page at /original/, with its script."""

    def add(app: web.Application) -> None:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text=ORIGINAL_PAGE, content_type="text/html")

        async def script(request: web.Request) -> web.FileResponse:
            return web.FileResponse(client_js)

        app.router.add_get("/original/", page)
        app.router.add_get("/original/client.js", script)

    return add


async def test_original_client_streams_through_the_relay(
    relay_app: Any, original_client_js: Path, rtmp_receiver: Any, browser: Browser
) -> None:
    receiver = rtmp_receiver()
    relay, url = await relay_app(
        RelayConfig(default_target=receiver.url), original_page_routes(original_client_js)
    )
    page = await browser.open(f"{url}/original/")
    await page.wait_for_function("window.result.state !== 'loading'")
    assert await page.evaluate("window.result.state") == "started"

    status = await ffmpeg_status(relay)
    assert status.ffmpeg is not None
    # The original sends its own options in `start`, with audioSampleRate = 128000 / 4.
    assert status.ffmpeg.options["audioSampleRate"] == 32000
    assert status.ffmpeg.options["videoBitsPerSecond"] == 2_500_000
    # It records whatever the browser likes by default and never says which: the relay sniffs.
    assert status.ffmpeg.input_format is not None
    assert status.ffmpeg.input_format.startswith("matroska")

    await asyncio.sleep(STREAM_SECONDS)
    # Its stop() stops the recorder, then sends `stop` and resolves on the ack.
    await page.evaluate("window.client.stop()")
    assert relay.sessions()[0].state == SessionState.CONNECTED  # ffmpeg done, may start again
    await wait_receiver(receiver)

    assert_recording(receiver.path, STREAM_SECONDS)
    assert await page.evaluate("window.result.errors") == []
    assert browser.errors() == []
