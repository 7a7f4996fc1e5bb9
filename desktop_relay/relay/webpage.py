"""HTTP routes beside socket.io: the join page browsers open, and what it needs to know."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import Relay

# Built by `npm run build` in resources/web (see README); shipped inside the package.
WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"


def add_page_routes(app: web.Application, relay: Relay) -> None:
    """Add `/` (the join page), its assets and `/api/info` to `app`."""

    async def info(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "allowClientTarget": relay.config.allowed_target_pattern is not None,
                "maxChunkBytes": relay.config.max_chunk_bytes,
            }
        )

    async def index(request: web.Request) -> web.StreamResponse:
        page = WEB_DIR / "index.html"
        if not page.is_file():
            return web.Response(
                status=503,
                content_type="text/plain",
                text="The browser page is not built: run `npm ci && npm run build` in "
                "resources/web, or install Desktop Relay from a release.",
            )
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/info", info)
    app.router.add_get("/", index)
    if WEB_DIR.is_dir():
        app.router.add_static("/static/", WEB_DIR, show_index=False)
