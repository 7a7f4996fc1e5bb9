"""How much headroom the relay's machine has: past it, new streams are refused (RELAY_BUSY)
while the live ones keep every frame. No mass disconnect, ever: shedding load means saying no
to the next stream, never dropping one that runs.

Two signs, sampled on the relay's stats tick: the machine's CPU use (all cores, from Linux's
/proc/stat, averaged over WINDOW_S), and encoders that fall behind their input (a session's
bytes waiting for its encoder past BACKLOG_BYTES for SLOW_FOR_S: the machine has no room for
more). ffmpeg's own speed figure is no sign: it is an average since the start, which a pause
lowers for good. Elsewhere (no /proc) only the encoders' backlog counts.

Starts the mean has not seen yet. The mean lags by seconds, so a burst of starts (128 at once
in the capacity benchmark) all arrive while it still shows the idle machine: measured alone,
none was refused and every session fell out of real time. So each admitted start reserves a
session's cost until the mean has seen it: until WINDOW_S after its encoder made its first
frame (the session went live), or at most RESERVE_S when it never does. A start is refused
when the projected use, the mean plus the other starts' reservations, is past the maximum
(the newcomer itself is not counted: a lone start is judged on the mean, as before). A
session's cost is learned as the mean per live session whenever no reservation is pending
(everything the relay runs is then in the mean; whatever else the machine runs counts
against the relay, which only errs on the side of refusing), but never below
MIN_SESSION_CORES (paused sessions cost nothing until they go on); with no live session it is
DEFAULT_SESSION_CORES. Before the first mean (a burst into a relay just started) the
projection starts from an idle machine.

The encoders' backlog cannot see a burst: it shows only after SLOW_FOR_S, and an overloaded
event loop leaves the bytes in the kernel's socket buffers, where no backlog counts them.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# The CPU figure is the mean over this long: a start's own spike must not refuse the next.
WINDOW_S = 3.0
# Bytes waiting for an encoder that, this long, mean it cannot keep up (a few seconds of a
# phone's stream; a resume's resend passes faster than that).
BACKLOG_BYTES = 4 * 1024 * 1024
SLOW_FOR_S = 3.0
# A session's CPU before any was measured, in cores: above what the benchmarks measured for one
# whole session (H.264 copy: about 1.3 % of a core in its ffmpegs, 0.2 % in the relay, with
# the kernel's loopback work under 2 %; VP8 made H.264 by libx264: 4.2 % in its encoder).
DEFAULT_SESSION_CORES = 0.05
# What a learned cost may go down to, in cores: about one H.264 copy session, all counted.
MIN_SESSION_CORES = 0.015
# A reservation whose session never goes live (no media, refused by the start hook) lapses.
RESERVE_S = 10.0


def read_cpu_times(path: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot, None without /proc."""
    try:
        with path.open() as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user time
    return total - idle, total


@dataclass
class _Reservation:
    admitted_at: float
    live_at: float | None = None


class LoadMonitor:
    """Samples the machine's CPU and the encoders' speed; `busy()` says why there is no room
    (None: there is). `max_cpu` is a fraction of all cores (None: CPU never refuses); `cores`
    turns DEFAULT_SESSION_CORES into such a fraction (default: this machine's)."""

    def __init__(
        self,
        max_cpu: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_times: Callable[[], tuple[int, int] | None] = read_cpu_times,
        cores: int | None = None,
    ) -> None:
        self.max_cpu = max_cpu
        self._clock = clock
        self._cpu_times = cpu_times
        self._samples: deque[tuple[float, int, int]] = deque()
        self._slow_since: float | None = None
        self.cpu: float | None = None  # the last mean, as a fraction of all cores
        cores = cores or os.cpu_count() or 1
        self._default_cost = DEFAULT_SESSION_CORES / cores
        self._min_cost = MIN_SESSION_CORES / cores
        # Whether this machine has a CPU figure at all (/proc), known before the first mean.
        self._cpu_readable = max_cpu is not None and cpu_times() is not None
        self._learned_cost: float | None = None
        self._reservations: dict[str, _Reservation] = {}

    @property
    def session_cost(self) -> float:
        """One session's estimated CPU, as a fraction of all cores."""
        return self._default_cost if self._learned_cost is None else self._learned_cost

    def admit(self, key: str) -> None:
        """A start was taken (session `key`): reserve its cost until the mean has seen it."""
        self._reservations[key] = _Reservation(self._clock())

    def pending(self, key: str | None = None) -> int:
        """Reservations outstanding, but `key`'s own."""
        self._expire(self._clock())
        return sum(1 for k in self._reservations if k != key)

    def sample(self, backlogs: Mapping[str, int]) -> None:
        """One tick: the CPU counters now, and the bytes waiting for each live encoder by its
        session's key (a reserved session found live is in the mean WINDOW_S later)."""
        now = self._clock()
        times = self._cpu_times()
        if times is not None:
            self._samples.append((now, *times))
            while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW_S:
                self._samples.popleft()
            (t0, busy0, total0), (_, busy1, total1) = self._samples[0], self._samples[-1]
            if total1 > total0 and now - t0 >= 0.5:
                self.cpu = (busy1 - busy0) / (total1 - total0)
        for key, reservation in self._reservations.items():
            if reservation.live_at is None and key in backlogs:
                reservation.live_at = now
        self._expire(now)
        if not backlogs:
            self._learned_cost = None
        elif not self._reservations and self.cpu is not None:
            self._learned_cost = max(self.cpu / len(backlogs), self._min_cost)
        slow = any(backlog > BACKLOG_BYTES for backlog in backlogs.values())
        if not slow:
            self._slow_since = None
        elif self._slow_since is None:
            self._slow_since = now

    def _expire(self, now: float) -> None:
        for key, reservation in list(self._reservations.items()):
            if (reservation.live_at is not None and now - reservation.live_at >= WINDOW_S) or (
                now - reservation.admitted_at >= RESERVE_S
            ):
                del self._reservations[key]

    def busy(self, key: str | None = None) -> str | None:
        """Why a new stream (session `key`, whose own reservation does not count against it)
        should be refused now, in words, else None."""
        if self.max_cpu is not None and self._cpu_readable:
            cpu = self.cpu or 0.0
            if cpu > self.max_cpu:
                return f"its computer's processor is {cpu:.0%} busy"
            pending = self.pending(key)
            projected = cpu + pending * self.session_cost
            if projected > self.max_cpu:
                now = "not measured yet" if self.cpu is None else f"{cpu:.0%} busy"
                return (
                    f"its computer's processor is {now}, and the {pending} "
                    f"stream(s) just started will take it to about {projected:.0%}"
                )
        since = self._slow_since
        if since is not None and self._clock() - since >= SLOW_FOR_S:
            return "its encoders already fall behind the streams they have"
        return None
