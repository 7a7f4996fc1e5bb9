"""The program's worker process: decodes the sources, composes the program on a fixed clock
and encodes it once, writing FLV back to the relay's process.

Its own process (started with 'spawn') so that decoding and encoding hold neither the relay's
event loop nor the window's GIL. Two threads: the receiver decodes what the parent sends and
applies its commands; the main thread runs the clock, composes, encodes and sends. The clock
never waits for a source: it composes from the pictures due by each tick (sources.py) and
whatever has not arrived by then is not waited for.

Messages from the parent (tuples over a Connection):
  ("data", source_id, bytes)      whole FLV tags of a source
  ("restart", source_id)          a new FLV stream of that source begins
  ("cmd", request_id, name, args) a command; answered ("ack", request_id, error, state)
  ("stop",)                       finish the stream and exit
Messages to the parent:
  ("flv", bytes)                  the program's FLV, in order
  ("state", ProgramState)         on every change, and every second
  ("ack", request_id, (error type, message) | None, ProgramState)
  ("stopped",)                    the FLV is complete; the process exits
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np

from .audio import CHANNELS, SAMPLE_RATE, AudioMixer, Samples, samples_for_tick, silence
from .config import (
    CORNERS,
    PIP_SIZES,
    Corner,
    PipSize,
    PipState,
    ProgramConfig,
    ProgramState,
    SlateReason,
)
from .errors import SlateImageError
from .flv_tags import FlvFormatError, split_tags
from .picture import Picture, blend, paste, pip_rect, solid
from .slate import load_slate_image, slate_picture
from .sources import Source

logger = logging.getLogger(__name__)

# Behind by more than this, the clock skips ticks rather than bursting to catch up: a
# receiver prefers a short gap to a program that lags for ever.
MAX_LAG_S = 0.5
STATE_EVERY_S = 1.0


# The operator's monitors: a few small pictures a second is enough to see what is on air.
MONITOR_FPS = 4
MONITOR_WIDTH = 320
MONITOR_HEIGHT = 180


class CommandError(ValueError):
    """A command the worker refuses (the message says why)."""


@dataclass(frozen=True)
class _Fade:
    source: str | None
    """What fades out (None: the slate)."""
    start: float
    duration: float


class _Output:
    """A write-only file for PyAV's FLV muxer: no seek, so the muxer streams (it would
    otherwise go back to patch the header); the bytes are sent once per tick."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class ProgramWorker:
    """The worker's state and its two loops (see the module's docstring)."""

    def __init__(self, config: ProgramConfig, conn_in: Connection, conn_out: Connection) -> None:
        self.config = config
        self._in = conn_in
        self._out = conn_out
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # the sources and the operator's state below
        self._stop = threading.Event()
        self._sources: dict[str, Source] = {}
        self._taken: str | None = None
        self._manual_slate = False
        self._held: SlateReason | None = None  # a stall held on the slate (no auto return)
        self._auto_return = config.auto_return
        self._audio_pinned = config.audio_pinned
        self._pip: PipState | None = None
        self._fade: _Fade | None = None
        self._on_air: str | None = None
        self._frames = 0
        self._late = 0
        self._clock_start: float | None = None
        w, h = config.width, config.height
        self._black = solid(w, h, (0, 0, 0))
        self._slate, self._slate_error = slate_picture(w, h, config.name, config.slate_image)
        self._mixer = AudioMixer()
        self._last_summary: tuple[object, ...] | None = None
        self._last_state_at = 0.0
        # Monitor pictures for the operator's window: off, or the program's and these
        # sources' latest pictures, small, MONITOR_FPS times a second.
        self._monitors = False
        self._monitored: tuple[str, ...] = ()
        self._monitor_black = solid(MONITOR_WIDTH, MONITOR_HEIGHT, (0, 0, 0))

    # ---- messages ------------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            try:
                self._out.send(message)
            except (OSError, EOFError, ValueError):
                # The parent is gone: nobody is left to stream to.
                self._stop.set()

    def receive(self) -> None:
        """The receiver thread: decode sources' data, apply commands, until stop or EOF."""
        while not self._stop.is_set():
            try:
                message = self._in.recv()
            except (EOFError, OSError):
                logger.info("the relay closed the program's pipe; stopping")
                self._stop.set()
                return
            kind = message[0]
            if kind == "data":
                self._on_data(message[1], message[2])
            elif kind == "restart":
                with self._lock:
                    source = self._sources.get(message[1])
                if source is not None:
                    source.restart()
            elif kind == "cmd":
                _, request_id, name, args = message
                error: tuple[str, str] | None = None
                try:
                    self._apply(name, args)
                except (CommandError, SlateImageError, KeyError, TypeError, ValueError) as e:
                    error = (type(e).__name__, str(e))
                self._send(("ack", request_id, error, self._state(time.monotonic())))
            elif kind == "stop":
                self._stop.set()
                return

    def _on_data(self, source_id: str, data: bytes) -> None:
        with self._lock:
            source = self._sources.get(source_id)
            if source is None:
                source = self._sources[source_id] = Source(source_id, self.config.fps)
        try:
            tags = split_tags(data)
        except FlvFormatError as e:
            logger.warning("source %s: %s", source_id, e)
            return
        for tag in tags:
            source.feed(tag)

    def _apply(self, name: str, args: dict[str, Any]) -> None:
        if name == "slate_image":
            # Decoded outside the lock: a big picture takes a while, and the clock must not
            # wait for it. An error leaves the slate as it was and tells the operator why.
            path = args.get("path")
            w, h = self.config.width, self.config.height
            if path is None:
                picture, error = slate_picture(w, h, self.config.name, None)
            else:
                picture, error = load_slate_image(Path(path), w, h), None
            with self._lock:
                self._slate, self._slate_error = picture, error
            return
        with self._lock:
            self._command(name, args)

    def _command(self, name: str, args: dict[str, Any]) -> None:
        now = time.monotonic()
        if name == "take":
            source = args.get("source")
            fade_ms = int(args.get("fade_ms", 0))
            if source is not None and not isinstance(source, str):
                raise CommandError("a source id is a string")
            if not 0 <= fade_ms <= 10_000:
                raise CommandError("a fade lasts 0..10000 ms")
            if fade_ms > 0:
                self._fade = _Fade(self._on_air, now, fade_ms / 1000)
            else:
                self._fade = None
            self._taken = source
            self._held = None
            self._manual_slate = False
        elif name == "pip":
            source = args.get("source")
            if source is None:
                self._pip = None
                return
            corner: Corner = args.get("corner", "br")
            size: PipSize = args.get("size", "1/4")
            if corner not in CORNERS:
                raise CommandError(f"corner {corner!r} is not one of {CORNERS}")
            if size not in PIP_SIZES:
                raise CommandError(f"size {size!r} is not one of {PIP_SIZES}")
            self._pip = PipState(str(source), corner, size)
        elif name == "slate":
            on = bool(args["on"])
            if on != self._manual_slate:
                self._fade = None
            self._manual_slate = on
            if not on:
                self._held = None
        elif name == "auto_return":
            self._auto_return = bool(args["on"])
            if self._auto_return:
                self._held = None
        elif name == "audio_pin":
            pinned = args.get("source")
            self._audio_pinned = None if pinned is None else str(pinned)
        elif name == "remove":
            self._sources.pop(str(args["source"]), None)
        elif name == "monitors":
            self._monitors = bool(args["on"])
            self._monitored = tuple(str(s) for s in args.get("sources", ()))
        elif name == "state":
            pass
        else:
            raise CommandError(f"unknown command {name!r}")

    # ---- the clock -----------------------------------------------------------------------

    def run(self) -> None:
        """The clock: compose and encode a picture every 1/fps s until stopped, then finish
        the stream and tell the parent."""
        cfg = self.config
        sink = _Output()
        container = av.open(
            sink,
            mode="w",
            format="flv",
            container_options={"flvflags": "no_duration_filesize", "flush_packets": "1"},
        )
        video = container.add_stream(
            "libx264",
            rate=cfg.fps,
            options={
                "preset": cfg.x264_preset,
                "tune": "zerolatency",
                # Main: what Twitch's ingest documents (High is accepted in practice).
                "profile": "main",
                # CBR-like: a VBV of one second at the bitrate, padded with filler (nal-hrd)
                # so the platforms' ingest sees a constant rate; keyframes exactly every GOP
                # (no scene cuts) to keep the 2 s rule on every cut.
                "maxrate": str(cfg.video_bitrate),
                "bufsize": str(cfg.video_bitrate),
                "x264-params": f"nal-hrd=cbr:scenecut=0:keyint={cfg.gop}:min-keyint={cfg.gop}",
            },
        )
        video.width = cfg.width
        video.height = cfg.height
        video.pix_fmt = "yuv420p"
        video.bit_rate = cfg.video_bitrate
        video.codec_context.gop_size = cfg.gop
        video.codec_context.time_base = Fraction(1, cfg.fps)
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.codec_context.layout = "stereo"
        audio.codec_context.format = "fltp"
        audio.bit_rate = cfg.audio_bitrate
        fifo = av.AudioFifo()
        sample_pos = 0

        def encode_audio(block: Samples) -> None:
            nonlocal sample_pos
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(block, dtype=np.float32), format="fltp", layout="stereo"
            )
            frame.sample_rate = SAMPLE_RATE
            frame.pts = sample_pos
            frame.time_base = Fraction(1, SAMPLE_RATE)
            sample_pos += block.shape[1]
            fifo.write(frame)
            frame_size = audio.codec_context.frame_size or 1024
            while fifo.samples >= frame_size:
                chunk = fifo.read(frame_size)
                assert chunk is not None
                container.mux(audio.encode(chunk))

        start = time.monotonic()
        self._clock_start = time.time()
        tick = 0
        try:
            while not self._stop.is_set():
                due = start + tick / cfg.fps
                delay = due - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                elif -delay > MAX_LAG_S:
                    skipped = int(-delay * cfg.fps)
                    self._late += skipped
                    logger.warning(
                        "the program fell %.2f s behind; skipping %d frames", -delay, skipped
                    )
                    # The sound stays continuous: silence for the skipped ticks.
                    encode_audio(
                        silence(
                            sum(samples_for_tick(t, cfg.fps) for t in range(tick, tick + skipped))
                        )
                    )
                    tick += skipped
                    due = start + tick / cfg.fps
                picture, block = self._tick(tick, due)
                frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
                frame.pts = tick
                frame.time_base = Fraction(1, cfg.fps)
                container.mux(video.encode(frame))
                encode_audio(block)
                self._frames += 1
                if self._monitors and tick % max(1, cfg.fps // MONITOR_FPS) == 0:
                    self._send_monitors(picture)
                tick += 1
                data = sink.take()
                if data:
                    self._send(("flv", data))
                self._maybe_send_state(due)
            container.mux(video.encode(None))
            container.mux(audio.encode(None))
        finally:
            container.close()
            data = sink.take()
            if data:
                self._send(("flv", data))
            self._send(("stopped",))

    def _send_monitors(self, program: Picture) -> None:
        """The program's picture and the monitored sources' latest, small, as RGB."""
        frame = av.VideoFrame.from_ndarray(program, format="yuv420p")
        self._send(("monitor", "program", MONITOR_WIDTH, MONITOR_HEIGHT, _rgb(frame)))
        with self._lock:
            wanted = [(sid, self._sources.get(sid)) for sid in self._monitored]
        for source_id, source in wanted:
            if source is None:
                continue
            picture = source.picture(MONITOR_WIDTH, MONITOR_HEIGHT, self._monitor_black)
            if picture is None:
                continue
            small = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            self._send(("monitor", source_id, MONITOR_WIDTH, MONITOR_HEIGHT, _rgb(small)))

    def _evaluate(self, now: float) -> tuple[str | None, SlateReason | None]:
        """What is on air now: a source, or the slate and why."""
        if self._manual_slate:
            return None, "manual"
        if self._taken is None:
            return None, "no_source"
        if self._held is not None:
            return None, self._held
        source = self._sources.get(self._taken)
        if source is None:
            return None, "ended"
        age = source.age(now)
        if age is None or age > self.config.stall_s:
            return None, "stalled"
        return self._taken, None

    def _tick(self, tick: int, now: float) -> tuple[Picture, Samples]:
        """Compose the picture and mix the sound of one tick."""
        cfg = self.config
        w, h = cfg.width, cfg.height
        with self._lock:
            on_air, reason = self._evaluate(now)
            if (
                on_air is None
                and self._on_air is not None
                and self._on_air == self._taken
                and reason in ("stalled", "ended")
                and not self._auto_return
            ):
                # Off air by a stall: stay on the slate until the operator's next take.
                self._held = reason
            self._on_air = on_air
            fade = self._fade
            if fade is not None and now - fade.start >= fade.duration:
                fade = self._fade = None
            pip = self._pip
            sources = dict(self._sources)
            pinned = self._audio_pinned
            slate = self._slate

        # Every source moves to the picture and sound due now, on air or not: one timeline
        # each, so that a take shows what is current and its sound in step with it.
        positions = {sid: source.advance(now) for sid, source in sources.items()}

        def picture_of(source_id: str | None) -> Picture:
            source = sources.get(source_id) if source_id is not None else None
            if source is None or (source.age(now) or 0.0) > cfg.stall_s:
                return slate
            picture = source.picture(w, h, self._black)
            return slate if picture is None else picture

        picture = picture_of(on_air)
        if fade is not None:
            picture = blend(picture_of(fade.source), picture, (now - fade.start) / fade.duration)
        if pip is not None and on_air is not None and pip.source != on_air:
            source = sources.get(pip.source)
            age = source.age(now) if source is not None else None
            if (
                source is not None
                and source.slot is not None
                and age is not None
                and age <= cfg.stall_s
            ):
                frame = source.slot.frame
                x, y, pw, ph = pip_rect(frame.width, frame.height, w, h, pip.corner, pip.size)
                inset = source.picture(pw, ph, self._black, exact=True)
                if inset is not None:
                    picture = picture.copy()
                    paste(picture, (w, h), inset, (pw, ph), x, y)

        count = samples_for_tick(tick, cfg.fps)
        blocks = {sid: source.audio.pull(count, positions[sid]) for sid, source in sources.items()}
        target = None if on_air is None else (pinned if pinned is not None else on_air)
        crossfade = SAMPLE_RATE * cfg.audio_crossfade_ms // 1000
        if fade is not None:
            crossfade = max(crossfade, int(SAMPLE_RATE * fade.duration))
        block = self._mixer.mix(blocks, target, count, crossfade)
        assert block.shape == (CHANNELS, count)
        return picture, block

    # ---- the state -----------------------------------------------------------------------

    def _state(self, now: float) -> ProgramState:
        with self._lock:
            on_air, reason = self._evaluate(now)
            sources = tuple(s.state(now, self.config.stall_s) for s in self._sources.values())
            return ProgramState(
                running=True,
                on_air=on_air,
                taken=self._taken,
                slate=on_air is None,
                slate_reason=reason,
                pip=self._pip,
                audio_source=self._mixer.current,
                auto_return=self._auto_return,
                clock_start=self._clock_start,
                frames=self._frames,
                late_frames=self._late,
                sources=sources,
                slate_image_error=self._slate_error,
            )

    def _maybe_send_state(self, now: float) -> None:
        state = self._state(now)
        summary = state.summary()
        if summary != self._last_summary or now - self._last_state_at >= STATE_EVERY_S:
            self._last_summary = summary
            self._last_state_at = now
            self._send(("state", state))


def _rgb(frame: av.VideoFrame) -> bytes:
    """A frame as packed RGB at the monitors' size."""
    if frame.width != MONITOR_WIDTH or frame.height != MONITOR_HEIGHT:
        frame = frame.reformat(width=MONITOR_WIDTH, height=MONITOR_HEIGHT, format="rgb24")
    else:
        frame = frame.reformat(format="rgb24")
    return bytes(frame.to_ndarray().tobytes())


def worker_main(config: ProgramConfig, conn_in: Connection, conn_out: Connection) -> None:
    """The worker process's entry point (picklable for 'spawn')."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING, format="program worker: %(levelname)s %(message)s"
        )
    worker = ProgramWorker(config, conn_in, conn_out)
    receiver = threading.Thread(target=worker.receive, name="program-receiver", daemon=True)
    receiver.start()
    try:
        worker.run()
    except Exception as e:
        logger.exception("the program's worker failed")
        worker._send(
            (
                "state",
                replace(
                    worker._state(time.monotonic()), running=False, error=f"worker failed: {e}"
                ),
            )
        )
        raise
    finally:
        conn_out.close()
