"""How much headroom the relay's machine has: past it, new streams are refused (RELAY_BUSY)
while the live ones keep every frame. No mass disconnect, ever: shedding load means saying no
to the next stream, never dropping one that runs.

Two signs, sampled on the relay's stats tick: the machine's CPU use (all cores, from Linux's
/proc/stat, averaged over WINDOW_S), and encoders that fall behind their input (a session's
bytes waiting for its encoder past BACKLOG_BYTES for SLOW_FOR_S: the machine has no room for
more). ffmpeg's own speed figure is no sign: it is an average since the start, which a pause
lowers for good. Elsewhere (no /proc) only the encoders' backlog counts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

# The CPU figure is the mean over this long: a start's own spike must not refuse the next.
WINDOW_S = 3.0
# Bytes waiting for an encoder that, this long, mean it cannot keep up (a few seconds of a
# phone's stream; a resume's resend passes faster than that).
BACKLOG_BYTES = 4 * 1024 * 1024
SLOW_FOR_S = 3.0


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


class LoadMonitor:
    """Samples the machine's CPU and the encoders' speed; `busy()` says why there is no room
    (None: there is). `max_cpu` is a fraction of all cores (None: CPU never refuses)."""

    def __init__(
        self,
        max_cpu: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_times: Callable[[], tuple[int, int] | None] = read_cpu_times,
    ) -> None:
        self.max_cpu = max_cpu
        self._clock = clock
        self._cpu_times = cpu_times
        self._samples: deque[tuple[float, int, int]] = deque()
        self._slow_since: float | None = None
        self.cpu: float | None = None  # the last mean, as a fraction of all cores

    def sample(self, encoder_backlogs: Iterable[int]) -> None:
        """One tick: the CPU counters now, and the bytes waiting for each live encoder."""
        now = self._clock()
        times = self._cpu_times()
        if times is not None:
            self._samples.append((now, *times))
            while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW_S:
                self._samples.popleft()
            (t0, busy0, total0), (_, busy1, total1) = self._samples[0], self._samples[-1]
            if total1 > total0 and now - t0 >= 0.5:
                self.cpu = (busy1 - busy0) / (total1 - total0)
        slow = any(backlog > BACKLOG_BYTES for backlog in encoder_backlogs)
        if not slow:
            self._slow_since = None
        elif self._slow_since is None:
            self._slow_since = now

    def busy(self) -> str | None:
        """Why a new stream should be refused now, in words, else None."""
        if self.max_cpu is not None and self.cpu is not None and self.cpu > self.max_cpu:
            return f"its computer's processor is {self.cpu:.0%} busy"
        since = self._slow_since
        if since is not None and self._clock() - since >= SLOW_FOR_S:
            return "its encoders already fall behind the streams they have"
        return None
