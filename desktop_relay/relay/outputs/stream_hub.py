"""A session's normalized stream fanned out: the encoder's FLV in, every output fed from it.

The hub parses only FLV framing (flv.FlvReader), keeps what a starting output needs
(stream_cache.StreamCache: headers and the current group of pictures) and hands every tag to
every output (stream_output.StreamOutput), none of which can hold up the others.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Protocol

from ..media.catch_up import ARMED_TIMEOUT_S, CatchUp, CatchUpCut
from ..media.flv import FlvReader, FlvTag
from ..media.stream_cache import StreamCache
from ..media.stream_health import HealthWarning, StreamHealth
from ..status import OutputStatus
from .destinations import Destination
from .sink import OutputEvents
from .stream_output import StreamOutput

log = logging.getLogger(__name__)

# The catch-up's timer fires this long after its timeout falls due (so the check finds it
# due), and looks again this often if the catch-up's clock says it is not yet.
CATCH_UP_TIMER_SLACK_S = 0.1


class StreamTap(Protocol):
    """A reader of the live stream that is not an output (thumbnails.ThumbnailTap): fed each
    read's live tags after the outputs, told when a new stream begins; no status, no state."""

    def feed_batch(self, tags: list[FlvTag], raw: bytes) -> None: ...
    def restart(self) -> None: ...


class _OutputLines:
    """One output's events as the hub passes them on: its log lines prefixed `[outN] `."""

    def __init__(self, events: OutputEvents, output_id: str) -> None:
        self._events = events
        self._prefix = f"[{output_id}] "

    def output_changed(self, status: OutputStatus) -> None:
        self._events.output_changed(status)

    def ffmpeg_output(self, line: str) -> None:
        self._events.ffmpeg_output(self._prefix + line)


class StreamHub:
    """One session's outputs and the cache they start from."""

    def __init__(
        self,
        *,
        ffmpeg_binary: str,
        send_buffer_size: int,
        stall_timeout: float,
        start_stall_timeout: float,
        events: OutputEvents,
        catch_up_lag_s: float | None = None,
    ) -> None:
        self._binary = ffmpeg_binary
        self._send_buffer_size = send_buffer_size
        self._stall = (stall_timeout, start_stall_timeout)
        self._events = events
        self._reader = FlvReader()
        self.cache = StreamCache()
        # Where live outputs skip a resumed client's backlog (recordings keep it all).
        self.catch_up = CatchUp(catch_up_lag_s)
        self._catch_up_timer: asyncio.TimerHandle | None = None
        self.health = StreamHealth()
        self._outputs: dict[str, StreamOutput] = {}
        self._taps: list[StreamTap] = []
        self._ids = itertools.count(1)

    # ---- outputs ------------------------------------------------------------------------

    def add(self, output: Destination) -> str:
        """Start sending the stream to `output`; returns the new output's id."""
        output_id = f"out{next(self._ids)}"
        stream_output = StreamOutput(
            output_id,
            output,
            self.cache,
            ffmpeg_binary=self._binary,
            send_buffer_size=self._send_buffer_size,
            events=_OutputLines(self._events, output_id),
            stall_timeout=self._stall[0],
            start_stall_timeout=self._stall[1],
        )
        self._outputs[output_id] = stream_output
        stream_output.start()
        return output_id

    async def remove(self, output_id: str, timeout: float = 5.0) -> bool:
        """Stop one output gracefully; False if there is no such output."""
        stream_output = self._outputs.pop(output_id, None)
        if stream_output is None:
            return False
        await stream_output.stop(timeout)
        return True

    def add_tap(self, tap: StreamTap) -> None:
        """Also feed `tap` the live stream (it starts from `cache` on its own)."""
        if tap not in self._taps:
            self._taps.append(tap)

    def remove_tap(self, tap: StreamTap) -> None:
        """Stop feeding `tap`."""
        if tap in self._taps:
            self._taps.remove(tap)

    def outputs(self) -> list[StreamOutput]:
        """The outputs, in the order they were added."""
        return list(self._outputs.values())

    def health_warnings(self, silent_s: float = 0.0) -> tuple[HealthWarning, ...]:
        """What the stream's health checks find now (stream_health.py), the audio having been
        silent for `silent_s` (audio_meter.py)."""
        live = [o for o in self._outputs.values() if not o.destination.is_recording]
        return self.health.evaluate(
            [o.destination.url for o in live], [o.speed for o in live], silent_s=silent_s
        )

    def statuses(self) -> tuple[OutputStatus, ...]:
        """A snapshot of every output."""
        return tuple(o.status() for o in self._outputs.values())

    # ---- the stream ---------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes of the encoder's FLV, in order (raises flv.FlvError on a broken stream)."""
        tags, raw = self._reader.feed_batch(data)
        if self.cache.header is None and self._reader.header is not None:
            self.cache.set_header(self._reader.header)
        if not tags:
            return
        # The cache first, then the outputs, with no await between: an output starting now
        # snapshots the cache and then takes live tags without a gap or a repeat.
        self.cache.add_batch(tags)
        self.health.observe(tags)
        catch_up = self.catch_up
        if not catch_up.armed:
            catch_up.observe(tags)
            # The whole read at once: per tag and output this is the relay's hottest path.
            for stream_output in self._outputs.values():
                stream_output.feed_batch(tags, raw)
            for tap in self._taps:
                tap.feed_batch(tags, raw)
            return
        self._deliver_cut(catch_up.cut(tags), tags, raw)

    def _deliver_cut(self, cut: CatchUpCut, tags: list[FlvTag], raw: bytes) -> None:
        """What an armed catch-up decided: recordings get every new tag (`tags`, `raw`),
        live outputs and taps what it released."""
        live_tags = cut.release
        live_raw = raw if live_tags == tags else b"".join(tag.raw for tag in live_tags)
        for stream_output in self._outputs.values():
            if stream_output.destination.is_recording:
                if tags:
                    stream_output.feed_batch(tags, raw)
                continue
            if live_tags:
                stream_output.feed_batch(live_tags, live_raw)
            if cut.skipped_s > 0:
                stream_output.note_skipped(cut.skipped_s)
        if live_tags:
            for tap in self._taps:
                tap.feed_batch(live_tags, live_raw)
        if cut.skipped_s > 0:
            log.info("live outputs skipped %.1f s of backlog to be back to live", cut.skipped_s)
        if cut.gave_up == "bound":
            log.warning(
                "the catch-up after a resume held %.0f MiB (its bound) without finding live "
                "again: released %d tags; live outputs go on behind live",
                self.catch_up.max_held_bytes / 1048576,
                len(live_tags),
            )
        elif cut.gave_up == "timeout":
            log.warning(
                "the catch-up after a resume found no keyframe close to live in %.0f s: "
                "released %d held tags; live outputs go on behind live",
                ARMED_TIMEOUT_S,
                len(live_tags),
            )
        if cut.done:
            self._cancel_catch_up_timer()

    def expect_backlog(self) -> None:
        """The client resumed: live outputs skip what comes too late (see catch_up.py)."""
        self.catch_up.arm()
        self._cancel_catch_up_timer()
        due = self.catch_up.due_at
        if due is not None:
            # The timeout is checked on a timer too: a hold must end even if no tag comes.
            delay = max(0.0, due - time.monotonic()) + CATCH_UP_TIMER_SLACK_S
            self._catch_up_timer = asyncio.get_running_loop().call_later(delay, self._catch_up_due)

    def _catch_up_due(self) -> None:
        self._catch_up_timer = None
        cut = self.catch_up.expire()
        if cut is not None:
            self._deliver_cut(cut, [], b"")
        elif self.catch_up.armed:
            # Its clock is not the loop's (a test's): look again shortly.
            self._catch_up_timer = asyncio.get_running_loop().call_later(
                CATCH_UP_TIMER_SLACK_S, self._catch_up_due
            )

    def _cancel_catch_up_timer(self) -> None:
        if self._catch_up_timer is not None:
            self._catch_up_timer.cancel()
            self._catch_up_timer = None

    def new_stream(self) -> None:
        """The encoder restarted: a new FLV stream begins; outputs reconnect onto it."""
        self._reader = FlvReader()
        self.cache.reset()
        self.catch_up.reset()
        self._cancel_catch_up_timer()
        self.health.reset()
        for stream_output in self._outputs.values():
            stream_output.restart()
        for tap in self._taps:
            tap.restart()

    async def stop(self, timeout: float = 5.0, terminate_grace: float = 2.0) -> None:
        """Stop every output (gracefully: each sends what it has), all at once."""
        self._cancel_catch_up_timer()
        outputs = list(self._outputs.values())
        await asyncio.gather(
            *(o.stop(timeout, terminate_grace) for o in outputs), return_exceptions=True
        )
