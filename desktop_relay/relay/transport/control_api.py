"""The program's control API, for Bitfocus Companion / Stream Deck and scripts: plain HTTP on
the relay's own port, `Authorization: Bearer <control token>`.

- `GET /api/program`: the program's state as JSON (ProgramStatus.to_dict).
- `POST /api/program` with one JSON object, one command: `{"take": id}`, `{"take": id,
  "fade_ms": N}`, `{"take": "preview"}`, `{"preview": id}` (or null), `{"slate": bool}`,
  `{"pip": {"source": id, "corner": "tl|tr|bl|br", "size": "1/4|1/3"}}`, `{"pip": null}`,
  `{"auto_return": bool}` (a stalled source comes back by itself), `{"audio": id}` (that
  source's sound whatever is on air) or `{"audio": null}` (the sound follows the picture).
  200 with the new state; 400 with a named error for a malformed body, an unknown key or an
  unknown source; 409 for a source that is not live or a program that is off.

- `GET /api/program/events`: the same state pushed as server-sent events (`event: program`,
  `data: <the JSON above>`), the current state first, then each change; a comment line every
  KEEPALIVE_S so that proxies and clients see the stream is alive. At most MAX_STREAMS at once.

The control token is the operator's, never the pairing token every phone holds: phones must
not run the show. No token, a wrong one or the pairing token: 401, and nothing about the
state. Tokens are compared in constant time; failures are logged once per address per 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

from ..core import Relay
from ..log_limit import RepeatLimiter
from ..program.show import ProgramRequestError, ProgramStatus
from ..security.auth import token_matches

log = logging.getLogger(__name__)

API_PATH = "/api/program"
EVENTS_PATH = "/api/program/events"
KEEPALIVE_S = 15.0
# Controllers are a Stream Deck or two and a script; more than this is a leak or an abuse.
MAX_STREAMS = 16
# A command is a few dozen bytes; anything much larger is no command.
MAX_BODY_BYTES = 4096
_COMMANDS = ("take", "fade_ms", "preview", "slate", "pip", "auto_return", "audio")


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"error": name, "message": message}, status=status)


class ControlApi:
    """The routes of the control API for one relay; see module doc."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._failures = RepeatLimiter(10.0)
        self._streams = 0
        self._closing = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        """Serve `GET` and `POST` of API_PATH and `GET` of EVENTS_PATH from `app`."""
        app.router.add_get(API_PATH, self.get)
        app.router.add_post(API_PATH, self.post)
        app.router.add_get(EVENTS_PATH, self.events)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _app: web.Application) -> None:
        # Event streams never end by themselves: end them before the server waits for its
        # handlers, or shutdown would wait for its timeout.
        self._closing.set()

    # ---- handlers ---------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        """The program's state."""
        refused = self._authorize(request)
        if refused is not None:
            return refused
        return self._state(self.relay.program_status())

    async def post(self, request: web.Request) -> web.Response:
        """One command; the program's state after it."""
        refused = self._authorize(request)
        if refused is not None:
            return refused
        try:
            body = await self._body(request)
            status = await self._run(body)
        except ProgramRequestError as exc:
            return _error(exc.status, exc.name, exc.message)
        return self._state(status)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The program's state as server-sent events: now, then on every change."""
        refused = self._authorize(request)
        if refused is not None:
            return refused
        if self._streams >= MAX_STREAMS:
            return _error(503, "TOO_MANY_STREAMS", f"at most {MAX_STREAMS} event streams at once")
        # Only the latest state matters: a slow reader skips the states it missed.
        pending: asyncio.Queue[ProgramStatus] = asyncio.Queue(maxsize=1)

        def changed(status: ProgramStatus) -> None:
            if pending.full():
                pending.get_nowait()
            pending.put_nowait(status)

        self._streams += 1
        self.relay.add_listener("program_changed", changed)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # nginx and the like: pass each event on at once
            }
        )
        try:
            await response.prepare(request)
            last: dict[str, Any] | None = None
            status: ProgramStatus | None = self.relay.program_status()
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                while not self._closing.is_set():
                    if status is None:
                        await response.write(b": keep-alive\n\n")
                    else:
                        data = status.to_dict()
                        if data != last:
                            last = data
                            text = json.dumps(data, separators=(",", ":"))
                            await response.write(f"event: program\ndata: {text}\n\n".encode())
                    getter = asyncio.ensure_future(pending.get())
                    done, _ = await asyncio.wait(
                        (getter, closing), timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        status = getter.result()
                    else:
                        getter.cancel()
                        status = None
            finally:
                closing.cancel()
        except (ConnectionResetError, ConnectionError):
            pass  # the controller went away
        finally:
            self.relay.remove_listener("program_changed", changed)
            self._streams -= 1
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response

    # ---- internals ----------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> web.Response | None:
        expected = self.relay.control_token
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        presented = presented.strip() if scheme.lower() == "bearer" else ""
        pairing = self.relay.auth_token
        ok = (
            expected is not None
            and token_matches(expected, presented)
            # Belt and braces: were the two ever set alike, a phone's token still fails.
            and not (pairing is not None and token_matches(pairing, presented))
        )
        if ok:
            return None
        remote = request.remote or "?"
        held = self._failures.allow(("control", remote))
        if held is not None:
            more = f" (and {held} more since)" if held else ""
            why = "no token" if not presented else "a wrong token"
            log.warning("control API: %s from %s refused%s", why, remote, more)
        return web.json_response(
            {"error": "UNAUTHORIZED", "message": "A valid control token is needed"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="desktop-relay"'},
        )

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise ProgramRequestError("INVALID_BODY", f"the body is over {MAX_BODY_BYTES} bytes")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise ProgramRequestError("INVALID_BODY", f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ProgramRequestError("INVALID_BODY", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ProgramRequestError("INVALID_BODY", "the body must be one JSON object")
        unknown = sorted(set(body) - set(_COMMANDS))
        if unknown:
            raise ProgramRequestError(
                "UNKNOWN_KEY", f"unknown key {unknown[0]!r} (known: {', '.join(_COMMANDS)})"
            )
        commands = [key for key in body if key != "fade_ms"]
        if len(commands) != 1:
            raise ProgramRequestError(
                "INVALID_BODY", "give exactly one of take, preview, slate, pip, auto_return, audio"
            )
        if "fade_ms" in body and "take" not in body:
            raise ProgramRequestError("INVALID_BODY", "fade_ms goes with take")
        return body

    async def _run(self, body: dict[str, Any]) -> ProgramStatus:
        program = self.relay.program
        if program is None:
            raise ProgramRequestError(
                "PROGRAM_OFF", "the program is off (give it a destination: --program-url)", 409
            )
        if "take" in body:
            fade = body.get("fade_ms", 0)
            if isinstance(fade, bool) or not isinstance(fade, int):
                raise ProgramRequestError("INVALID_VALUE", "fade_ms must be a whole number")
            source = _source_id(body["take"], "take")
            if source == "preview":
                return await program.take_preview(fade)
            return await program.take(source, fade)
        if "preview" in body:
            preview = body["preview"]
            return program.preview(None if preview is None else _source_id(preview, "preview"))
        if "slate" in body:
            if not isinstance(body["slate"], bool):
                raise ProgramRequestError("INVALID_VALUE", "slate must be true or false")
            return await program.slate(body["slate"])
        if "auto_return" in body:
            if not isinstance(body["auto_return"], bool):
                raise ProgramRequestError("INVALID_VALUE", "auto_return must be true or false")
            return await program.set_auto_return(body["auto_return"])
        if "audio" in body:
            audio = body["audio"]
            return await program.pin_audio(None if audio is None else _source_id(audio, "audio"))
        pip = body["pip"]
        if pip is None:
            return await program.pip(None)
        if not isinstance(pip, dict) or set(pip) - {"source", "corner", "size"}:
            raise ProgramRequestError(
                "INVALID_VALUE", 'pip must be null or {"source": id, "corner": ..., "size": ...}'
            )
        corner, size = pip.get("corner", "br"), pip.get("size", "1/4")
        if not isinstance(corner, str) or not isinstance(size, str):
            raise ProgramRequestError("INVALID_VALUE", "corner and size must be strings")
        return await program.pip(_source_id(pip.get("source"), "pip source"), corner, size)

    @staticmethod
    def _state(status: ProgramStatus) -> web.Response:
        return web.json_response(status.to_dict(), headers={"Cache-Control": "no-store"})


def _source_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ProgramRequestError("INVALID_VALUE", f"{what} must be a source id (a string)")
    return value
