"""The headless relay's event loop: asyncio's own, with I/O readiness and timers gathered for
a moment.

Under load the relay's loop woke for almost every arrival: a socket's frame here, an
ffmpeg's burst there, 250 to 300 times a second at 32 sessions, each wake-up a context
switch and a pass of the loop for one or two events (on this project's 2-core VM a wake-up
costs about 30 us of CPU on its own). `PacedSelector` lets them gather: when the loop would
wait sooner than its interval after its last wake-up, it first sleeps out the rest of the
interval, then takes everything that became ready at once, and runs every timer that came
due meanwhile. The loop then wakes at most about 1/interval times a second, and each pass
handles many sessions. The headless relay's interval grows with what the loop serves
(PACE_PER_SOURCE_S per file descriptor, up to PACE_S, 50 ms: the whole of it from about 16
sessions on), so that a lone stream is hardly held back and many are gathered the most.

What it costs is latency, and only under load: an event that arrives, or a timer that comes
due, less than the interval after the previous wake-up waits for the rest of it (a chunk's
ack, a burst of the encoder's FLV to the outputs, a ping: at most about 6 ms at 1 session,
27 ms at 8, 50 ms at 16 and more). An idle loop answers the first event at once and runs its
timers on time. The relay has no timer that 50 ms matters to (pings, watchdogs and backoffs
count in seconds; the program's frames are timed in its worker process). Readers of
ffmpeg's pipes that wait for a burst to complete read at once on a paced loop (`pace`) when
the pace is the longer wait: it gathers the burst already.

Measured with scripts/bench_capacity.py at 32 sessions, the relay alone: paced at a fixed
25 ms against unpaced in 5 pairs, the relay's own CPU about -7 % (README); timers gathered
too (they had kept their times, so every pipe's 8 and 20 ms read delay and each session's
half-second checks woke the loop on their own: about 100 wake-ups a second, now about 60),
a further -7 to -16 % in alternating pairs; 50 ms rather than 25 at 32 sessions, -6 to -7 %
more (ack p50 +7 to +9 ms).

The window's relay runs on Qt's loop (qasync) and is not paced.
"""

from __future__ import annotations

import asyncio
import selectors
import time
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

# The longest an I/O event or a timer waits for the loop's next pass (see the module)...
PACE_S = 0.05
# ...and the headless relay's pace below that: this much per file descriptor the loop
# watches. A session adds about three (its websocket, and its encoder's and output's stdin
# pipes, which asyncio watches for their close; the listening sockets count too): measured,
# 6 ms at 1 session, 27 ms at 8, the whole PACE_S from about 16 on (99 descriptors at 32).
# The more the loop serves, the more each pass gathers.
PACE_PER_SOURCE_S = 0.001

T = TypeVar("T")


_PACES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()


class PacedSelector(selectors.DefaultSelector):
    """The platform's default selector, waking the loop at most once per interval for I/O
    and timers alike (a timer due sooner waits for the end of the interval). The interval is
    `interval`, or with `per_source` that much per registered file descriptor, up to
    `interval` (`current_interval`)."""

    def __init__(self, interval: float = PACE_S, per_source: float = 0.0) -> None:
        super().__init__()
        self.interval = interval
        self.per_source = per_source
        self._woke = 0.0  # monotonic time the last select returned
        self.wakeups = 0  # selects that returned (for tests and benchmarks)

    def current_interval(self) -> float:
        """The pace now: `interval`, or `per_source` times the descriptors watched, at most
        `interval`."""
        if not self.per_source:
            return self.interval
        return min(self.interval, self.per_source * len(self.get_map()))

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            left = self._woke + self.current_interval() - time.monotonic()
            if left > 0:
                time.sleep(left)
                ready = super().select(0)
                if ready or (timeout is not None and timeout <= left):
                    return self._returned(ready)  # the loop runs the timers now due
                if timeout is not None:
                    timeout -= left
        return self._returned(super().select(timeout))

    def _returned(
        self, ready: list[tuple[selectors.SelectorKey, int]]
    ) -> list[tuple[selectors.SelectorKey, int]]:
        self._woke = time.monotonic()
        self.wakeups += 1
        return ready


def new_event_loop(
    interval: float = PACE_S, per_source: float = PACE_PER_SOURCE_S
) -> asyncio.AbstractEventLoop:
    """A selector event loop on a PacedSelector (`interval` 0: not paced; `per_source` 0:
    always `interval`)."""
    if interval <= 0:
        return asyncio.SelectorEventLoop()
    loop = asyncio.SelectorEventLoop(PacedSelector(interval, per_source))
    _PACES[loop] = interval
    return loop


def pace(loop: asyncio.AbstractEventLoop) -> float:
    """The longest `loop` gathers I/O and timers for (made by `new_event_loop`), 0 if it does
    not gather."""
    return _PACES.get(loop, 0.0)


def run(
    main: Coroutine[Any, Any, T], interval: float = PACE_S, per_source: float = PACE_PER_SOURCE_S
) -> T:
    """asyncio.run(main) on a paced loop: the headless relay's (and its benchmarks')."""
    with asyncio.Runner(loop_factory=lambda: new_event_loop(interval, per_source)) as runner:
        return runner.run(main)
