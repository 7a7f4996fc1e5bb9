"""The program as the relay runs it: the engine (engine.py, its worker decodes, composes and
encodes once), the sessions that feed it, and the program's own outputs.

Sources are the live sessions. Only those the show needs are decoded: the one taken, the one
on preview, the picture-in-picture and a pinned microphone. Each is fed through a tap on its
session's StreamHub, which starts from the hub's cache (headers and the current group of
pictures), so a source newly fed has a picture within a decode of one GOP. A take waits for
that picture (at most TAKE_WAIT_S) before it cuts, so the audience never sees the slate flash
on a take. The program's FLV goes through a StreamHub of its own: its destinations are
outputs like a session's (any kind: RTMP, RTMPS, SRT), reconnecting alone, with status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..media.flv import FlvTag
from ..outputs.destinations import Destination
from ..outputs.sink import OutputEvents
from ..outputs.stream_hub import StreamHub
from ..outputs.thumbnails import Thumbnail
from ..status import OutputStatus
from .config import CORNERS, PIP_SIZES, Corner, PipSize, PipState, ProgramConfig, ProgramState
from .engine import ProgramEngine, ProgramError

log = logging.getLogger(__name__)

# How long a take waits for a newly fed source's first decoded picture before cutting anyway.
TAKE_WAIT_S = 1.5
# The longest fade an operator may ask for.
MAX_FADE_MS = 10_000
# A source that leaves the show is still fed this long after its fade (or cut) ends: the
# picture and the sound crossfade from it, and a take back soon finds it decoded.
LINGER_S = 2.0


class ProgramRequestError(ValueError):
    """A program command that cannot be done: `name` is the control API's error name
    (UNKNOWN_SOURCE, SOURCE_NOT_LIVE, INVALID_VALUE, PROGRAM_OFF), `status` its HTTP status."""

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ProgramSource:
    """A session as the program sees it: its id, the name its browser gave, its state."""

    id: str
    name: str
    state: str


@dataclass(frozen=True)
class ProgramStatus:
    """A snapshot of the program, safe to show and send (targets masked)."""

    enabled: bool
    live: bool  # the program is being made (its worker runs)
    source: str | None  # the source taken (on air unless the slate covers it)
    on_air: str | None  # the source whose picture is on the program now
    preview: str | None
    slate: bool
    slate_reason: str | None
    pip: PipState | None
    sources: tuple[ProgramSource, ...] = ()
    outputs: tuple[OutputStatus, ...] = ()
    error: str | None = None
    auto_return: bool = True
    audio_pinned: str | None = None
    slate_image_error: str | None = None  # why the operator's slate image is not shown
    width: int = 0
    height: int = 0
    fps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The control API's JSON (GET /api/program)."""
        return {
            "live": self.live,
            "source": self.source,
            "onAir": self.on_air,
            "preview": self.preview,
            "slate": self.slate,
            "slateReason": self.slate_reason,
            "pip": None
            if self.pip is None
            else {"source": self.pip.source, "corner": self.pip.corner, "size": self.pip.size},
            "sources": [{"id": s.id, "name": s.name, "state": s.state} for s in self.sources],
            "outputs": [o.to_dict() for o in self.outputs],
            "size": f"{self.width}x{self.height}" if self.width else None,
            "fps": self.fps or None,
            "error": self.error,
            "autoReturn": self.auto_return,
            "audioPinned": self.audio_pinned,
            "slateImageError": self.slate_image_error,
        }


OFF = ProgramStatus(False, False, None, None, None, True, None, None)


class ProgramEvents(OutputEvents, Protocol):
    """How the program tells the relay what happens: its outputs' events and this."""

    def program_changed(self) -> None:
        """What the program shows, or one of its sources or outputs, changed."""

    def program_picture(self, which: str, thumbnail: Thumbnail) -> None:
        """A small picture of the program ("program") or of the preview ("preview"), a few a
        second while monitors are on (`Program.set_monitors`)."""


class _SourceTap:
    """One session's normalized stream into the engine (a StreamHub tap): it starts from the
    hub's cache (FLV header, metadata, codec headers, the current GOP), then takes live reads;
    a new stream (the encoder restarted) starts it over."""

    def __init__(self, engine: ProgramEngine, source_id: str, hub: StreamHub) -> None:
        self._engine = engine
        self._id = source_id
        self._hub = hub
        self._started = False

    def begin(self) -> None:
        """Feed what the cache holds now, if it is ready."""
        if not self._started and self._hub.cache.ready:
            self._started = True
            self._engine.feed(self._id, self._hub.cache.start_bytes())

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None:
        if not self._started:
            # The cache took this read already: its start bytes include it.
            self.begin()
            return
        self._engine.feed(self._id, raw)

    def restart(self) -> None:
        self._started = False
        self._engine.restart_source(self._id)


@dataclass
class _Source:
    name: str
    hub: StreamHub
    state: str
    tap: _SourceTap | None = None
    fed_at: float = field(default_factory=time.monotonic)
    # Fed at least until then (monotonic), wanted or not: see LINGER_S.
    keep_until: float = 0.0


class Program:
    """The program: see module doc. `start()`, then the relay tells it of sessions with
    `source_live`/`source_state`/`source_gone` and runs the operator's commands; `stop()`."""

    def __init__(
        self,
        config: ProgramConfig,
        destinations: list[Destination],
        *,
        ffmpeg_binary: str,
        events: ProgramEvents,
        stall_timeout: float = 5.0,
        start_stall_timeout: float = 20.0,
        engine_factory: Callable[..., ProgramEngine] = ProgramEngine,
    ) -> None:
        self.config = config
        self._destinations = list(destinations)
        self._events = events
        self._sources: dict[str, _Source] = {}
        self._preview: str | None = None
        self._pinned: str | None = None
        self._lock = asyncio.Lock()
        # Set once start() is over (on air or failed): a command that comes while the worker
        # still starts waits for it rather than hear "not running".
        self._start_over = asyncio.Event()
        self._starting = False
        self.engine = engine_factory(
            config, on_output=self._on_output, on_state=self._on_state, on_monitor=self._on_monitor
        )
        self._monitors = False
        self.hub = StreamHub(
            ffmpeg_binary=ffmpeg_binary,
            # A quarter second of the program's bitrate (as for sessions' outputs).
            send_buffer_size=max(64 * 1024, min(512 * 1024, config.video_bitrate // 8 // 4)),
            stall_timeout=stall_timeout,
            start_stall_timeout=start_stall_timeout,
            events=events,
        )
        self._summary: tuple[object, ...] | None = None

    # ---- life --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker (the program shows the slate), then the program's outputs.
        Commands given meanwhile wait for this to end (the worker's start timeout bounds it)."""
        self._starting = True
        try:
            await self.engine.start()
            for destination in self._destinations:
                self.hub.add(destination)
        finally:
            self._starting = False
            self._start_over.set()
        self._update_monitors()
        self._events.program_changed()

    async def stop(self, timeout: float = 5.0) -> None:
        """End the program: the sources' taps, the worker (its stream's tail goes out), the
        outputs gracefully; no process left."""
        for source in self._sources.values():
            self._untap(source)
        try:
            await self.engine.stop(timeout)
        finally:
            await self.hub.stop(timeout)
        self._events.program_changed()

    # ---- sources -----------------------------------------------------------------------

    def source_live(self, source_id: str, name: str, hub: StreamHub, state: str) -> None:
        """A session streams (or streams again): it may be taken from now on."""
        source = self._sources.get(source_id)
        if source is not None and source.hub is not hub:
            self._untap(source)
            source = None
        if source is None:
            self._sources[source_id] = _Source(name, hub, state)
        else:
            source.name, source.state = name, state
        self._sync_taps()
        self._events.program_changed()

    def source_state(self, source_id: str, state: str) -> None:
        """A source's session changed state (waiting, live again...)."""
        source = self._sources.get(source_id)
        if source is not None and source.state != state:
            source.state = state
            self._events.program_changed()

    def source_gone(self, source_id: str) -> None:
        """A session ended: it is no source any more (on air, the slate follows)."""
        source = self._sources.pop(source_id, None)
        if source is None:
            return
        self._untap(source)
        if self._preview == source_id:
            self._preview = None
        if self.engine.running:
            task = asyncio.create_task(self._forget(source_id), name=f"program-forget-{source_id}")
            task.add_done_callback(_log_failure)
        self._events.program_changed()

    async def _forget(self, source_id: str) -> None:
        async with self._lock:
            await self.engine.remove_source(source_id)

    # ---- commands (the control API's and the window's) -----------------------------------

    async def take(self, source_id: str, fade_ms: int = 0) -> ProgramStatus:
        """Put a live source on air: a cut, or a fade of `fade_ms` ms."""
        await self._check_running()
        if not 0 <= fade_ms <= MAX_FADE_MS:
            raise ProgramRequestError(
                "INVALID_VALUE", f"fade_ms must be 0 to {MAX_FADE_MS} milliseconds"
            )
        self._check_live(source_id)
        async with self._lock:
            self._tap(source_id)
            await self._wait_for_picture(source_id)
            self._linger(self.engine.state.taken, fade_ms)
            await self.engine.take(source_id, fade_ms)
            self._sync_taps()
        log.info("program: %s on air%s", source_id[:8], f" (fade {fade_ms} ms)" if fade_ms else "")
        return self._changed()

    async def take_preview(self, fade_ms: int = 0) -> ProgramStatus:
        """Take the source on preview; what was on air goes to preview (Studio Mode)."""
        preview = self._preview
        if preview is None:
            raise ProgramRequestError("NO_PREVIEW", "no source is on preview", 409)
        before = self.engine.state.taken
        status = await self.take(preview, fade_ms)
        self._preview = before if before in self._sources else None
        self._sync_taps()
        self._update_monitors()
        return self._changed() if self._preview != preview else status

    def preview(self, source_id: str | None) -> ProgramStatus:
        """Show a live source beside the program, ready to take (None: no preview)."""
        if source_id is not None:
            self._check_live(source_id)
        self._preview = source_id
        self._sync_taps()
        self._update_monitors()
        return self._changed()

    async def slate(self, on: bool) -> ProgramStatus:
        """Cover the program with the slate, or uncover it."""
        await self._check_running()
        async with self._lock:
            await self.engine.slate(on)
        return self._changed()

    async def pip(
        self, source_id: str | None, corner: str = "br", size: str = "1/4"
    ) -> ProgramStatus:
        """A second live source in a corner (None: none)."""
        await self._check_running()
        if corner not in CORNERS:
            raise ProgramRequestError(
                "INVALID_VALUE", f"corner must be one of {', '.join(CORNERS)}"
            )
        if size not in PIP_SIZES:
            raise ProgramRequestError(
                "INVALID_VALUE", f"size must be one of {', '.join(PIP_SIZES)}"
            )
        if source_id is not None:
            self._check_live(source_id)
        async with self._lock:
            if source_id is not None:
                self._tap(source_id)
                await self._wait_for_picture(source_id)
            self._linger(self.engine.state.pip.source if self.engine.state.pip else None, 0)
            await self.engine.pip(source_id, _corner(corner), _size(size))
            self._sync_taps()
        return self._changed()

    def set_monitors(self, enabled: bool) -> None:
        """Pictures of the program and the preview for the operator's window (a few a second,
        `program_picture`), or none: off by default, a headless relay never pays for them."""
        self._monitors = bool(enabled)
        self._update_monitors()

    def _update_monitors(self) -> None:
        if not self.engine.running:
            return
        sources = (self._preview,) if self._monitors and self._preview else ()
        task = asyncio.create_task(
            self.engine.set_monitors(self._monitors, sources), name="program-monitors"
        )
        task.add_done_callback(_log_failure)

    def _on_monitor(self, which: str, width: int, height: int, rgb: bytes) -> None:
        if which != "program":
            if which != self._preview:
                return
            which = "preview"
        self._events.program_picture(which, Thumbnail(width, height, rgb, time.monotonic()))

    async def set_auto_return(self, on: bool) -> ProgramStatus:
        """Whether a stalled or ended source on air comes back by itself when it is back
        (on by default), or stays on the slate until the next take."""
        await self._check_running()
        async with self._lock:
            await self.engine.set_auto_return(on)
        return self._changed()

    async def pin_audio(self, source_id: str | None) -> ProgramStatus:
        """Keep one live source's microphone on the program whatever picture is on air (None:
        the sound follows the picture, with a short crossfade on a cut)."""
        await self._check_running()
        if source_id is not None:
            self._check_live(source_id)
        async with self._lock:
            if source_id is not None:
                self._tap(source_id)
            self._linger(self._pinned, 0)
            await self.engine.pin_audio(source_id)
            self._pinned = source_id
            self._sync_taps()
        return self._changed()

    # ---- what it shows ------------------------------------------------------------------

    def status(self) -> ProgramStatus:
        """A snapshot of the program."""
        state = self.engine.state
        return ProgramStatus(
            enabled=True,
            live=state.running,
            source=state.taken,
            on_air=state.on_air,
            preview=self._preview,
            slate=state.slate,
            slate_reason=state.slate_reason,
            pip=state.pip,
            sources=tuple(ProgramSource(sid, s.name, s.state) for sid, s in self._sources.items()),
            outputs=self.hub.statuses(),
            error=state.error,
            auto_return=state.auto_return,
            audio_pinned=self._pinned,
            slate_image_error=state.slate_image_error,
            width=self.config.width,
            height=self.config.height,
            fps=self.config.fps,
        )

    # ---- internals ----------------------------------------------------------------------

    async def _check_running(self) -> None:
        if self._starting:
            # A controller's first press can come while the worker starts (a second or two
            # in the packaged app, which spawns itself and loads PyAV).
            await self._start_over.wait()
        if not self.engine.running:
            raise ProgramRequestError(
                "PROGRAM_OFF", self.engine.state.error or "the program is not running", 409
            )

    def _check_live(self, source_id: str) -> None:
        source = self._sources.get(source_id)
        if source is None:
            raise ProgramRequestError("UNKNOWN_SOURCE", f"no source {source_id!r}")
        if source.state != "live":
            raise ProgramRequestError(
                "SOURCE_NOT_LIVE", f"source {source_id!r} is {source.state}, not live", 409
            )

    def _wanted(self) -> set[str]:
        state = self.engine.state
        wanted = {state.taken, self._preview, self._pinned}
        if state.pip is not None:
            wanted.add(state.pip.source)
        return {sid for sid in wanted if sid is not None and sid in self._sources}

    def _linger(self, source_id: str | None, fade_ms: int) -> None:
        """Keep feeding a source that leaves the show through its fade and LINGER_S after."""
        source = self._sources.get(source_id) if source_id is not None else None
        if source is None:
            return
        source.keep_until = max(source.keep_until, time.monotonic() + fade_ms / 1000 + LINGER_S)
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + fade_ms / 1000 + LINGER_S + 0.05, self._sync_taps)

    def _sync_taps(self) -> None:
        """Feed the sources the show needs, and no other (each fed one costs a decoder)."""
        wanted = self._wanted()
        now = time.monotonic()
        for sid, source in self._sources.items():
            if sid in wanted:
                self._tap(sid)
            elif source.tap is not None and source.keep_until <= now:
                self._untap(source)
                if self.engine.running:
                    task = asyncio.create_task(self._forget(sid), name=f"program-forget-{sid}")
                    task.add_done_callback(_log_failure)

    def _tap(self, source_id: str) -> None:
        source = self._sources[source_id]
        if source.tap is None:
            source.tap = _SourceTap(self.engine, source_id, source.hub)
            source.fed_at = time.monotonic()
            source.hub.add_tap(source.tap)
            source.tap.begin()

    @staticmethod
    def _untap(source: _Source) -> None:
        if source.tap is not None:
            source.hub.remove_tap(source.tap)
            source.tap = None

    async def _wait_for_picture(self, source_id: str) -> None:
        deadline = time.monotonic() + TAKE_WAIT_S
        while time.monotonic() < deadline:
            known = self.engine.state.source(source_id)
            if known is not None and known.width is not None and not known.stalled:
                return
            try:
                state = await self.engine.refresh()
            except ProgramError:
                return
            known = state.source(source_id)
            if known is not None and known.width is not None and not known.stalled:
                return
            await asyncio.sleep(0.03)
        log.info("program: %s has no picture yet; taking it anyway", source_id[:8])

    def _on_output(self, data: bytes) -> None:
        self.hub.feed(data)

    def _on_state(self, state: ProgramState) -> None:
        summary = state.summary()
        if summary != self._summary:
            self._summary = summary
            self._events.program_changed()

    def _changed(self) -> ProgramStatus:
        self._events.program_changed()
        return self.status()


def _corner(text: str) -> Corner:
    return next(c for c in CORNERS if c == text)


def _size(text: str) -> PipSize:
    return next(s for s in PIP_SIZES if s == text)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("program: %s failed: %s", task.get_name(), task.exception())
