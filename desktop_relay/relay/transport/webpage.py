"""HTTP routes beside socket.io: the join page browsers open, and what it needs to know."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..security.tls import fingerprint

if TYPE_CHECKING:
    from ..core import Relay

# Built by `npm run build` in resources/web (see README); shipped inside the package.
WEB_DIR = Path(__file__).resolve().parents[2] / "web" / "dist"

NOT_BUILT = (
    "The browser page is not built: run `npm ci && npm run build` in resources/web, "
    "or install Desktop Relay from a release."
)

# The page and its scripts change with every release under the same names: browsers must
# revalidate (FileResponse answers 304 when unchanged), not run a cached old client.
_HEADERS = {"Cache-Control": "no-cache"}

# The built page is same-origin files only (index.html, page.js, page.css, icon.svg): no inline
# script or style, no eval, no fonts, frames or forms; the preview plays a MediaStream
# (srcObject), which no fetch directive governs. It talks to its own origin only: fetch
# api/info and socket.io over websocket. CSP 3 lets 'self' match ws:/wss: of the same host,
# older Safari did not: the socket's own origin is spelled out too (see `_csp`).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'{socket}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# On every response of these routes, errors included: framing, referrers and sniffing are
# refused whatever the body is.
_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# A Host header fit to repeat in the policy (host or [v6], optional port); anything else
# (a client's junk) gets the policy without the spelled-out socket origin.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _csp(request: web.BaseRequest) -> str:
    """The page's Content-Security-Policy for this request's origin."""
    host = request.host
    socket = ""
    if _HOST_RE.fullmatch(host):
        socket = f" {'wss' if request.secure else 'ws'}://{host}"
    return _CSP.format(socket=socket)


def _static_file(web_dir: Path, relative: str) -> Path | None:
    """The file under `web_dir` that `relative` names, or None (missing, or outside it)."""
    root = web_dir.resolve()
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _fingerprint(path: Path | None) -> str | None:
    """The SHA-256 fingerprint of a certificate file, or None (no file, or unreadable)."""
    if path is None:
        return None
    try:
        return fingerprint(path)
    except (OSError, ValueError):
        return None


def add_page_routes(app: web.Application, relay: Relay, web_dir: Path = WEB_DIR) -> None:
    """Add `/` (the join page), `/static/` (its assets and the client), `/api/info` and
    `/ca.crt` to `app`.

    The directory is looked up per request, so a page built after the relay started is served.
    Their responses, errors included, and the 404/405 answers for paths no route matches,
    carry a Content-Security-Policy, X-Frame-Options and Referrer-Policy; other routes of
    `app` (a site serving the relay beside its own pages) keep their own headers.
    """

    async def info(request: web.Request) -> web.Response:
        tls = relay.config.tls
        return web.json_response(
            {
                "allowClientTarget": relay.config.allowed_target_pattern is not None,
                "maxChunkBytes": relay.config.max_chunk_bytes,
                # For the page's "trust this relay" help: the local CA that `/ca.crt` serves
                # (None without TLS, or with the operator's own --cert/--key), and the
                # certificate the relay presents (what browsers show and `--headless` prints).
                "caFingerprint": _fingerprint(tls.ca_cert) if tls else None,
                "certFingerprint": _fingerprint(tls.cert) if tls else None,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def index(request: web.Request) -> web.StreamResponse:
        page = web_dir / "index.html"
        if not page.is_file():
            return web.Response(status=503, content_type="text/plain", text=NOT_BUILT)
        return web.FileResponse(page, headers=_HEADERS)

    async def static(request: web.Request) -> web.StreamResponse:
        path = _static_file(web_dir, request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_HEADERS)

    async def ca_certificate(request: web.Request) -> web.StreamResponse:
        """The local CA, for a device to trust once (see the join page's instructions)."""
        tls = relay.config.tls
        ca = tls.ca_cert if tls else None
        if ca is None or not ca.is_file():
            raise web.HTTPNotFound(text="This relay does not use its own certificate authority")
        return web.Response(
            body=ca.read_bytes(),
            content_type="application/x-x509-ca-cert",
            headers={"Content-Disposition": 'attachment; filename="desktop-relay-ca.crt"'},
        )

    ours = {
        app.router.add_get("/api/info", info).resource,
        app.router.add_get("/ca.crt", ca_certificate).resource,
        app.router.add_get("/", index).resource,
        app.router.add_get("/static/{path:.+}", static).resource,
    }

    async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
        # A signal, not per handler: it also sees raised HTTP errors and unexpected 500s.
        match = request.match_info
        if match.http_exception is not None or match.route.resource in ours:
            response.headers.update(_SECURITY_HEADERS)
            response.headers["Content-Security-Policy"] = _csp(request)

    app.on_response_prepare.append(security_headers)
