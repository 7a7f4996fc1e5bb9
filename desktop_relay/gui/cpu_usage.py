"""CPU use of the window's process and of the ffmpeg processes it runs, as `top` shows it (% of
one core), read from Linux's /proc. Elsewhere there is no figure (None). No Qt."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..procstat import read_stat


def _cpu_seconds(pid: int) -> float | None:
    stat = read_stat(pid)
    return stat.cpu_s if stat is not None else None


class CpuUsage:
    """Samples CPU seconds per process; `sample` returns (own %, children %) since the last
    call. A process that ended between samples does not count (its last share is lost)."""

    def __init__(self) -> None:
        self.available = Path("/proc/self/stat").exists()
        self._own: float | None = None
        self._children: dict[int, float] = {}
        self._at: float | None = None

    def sample(self, pids: list[int], now: float | None = None) -> tuple[float, float] | None:
        """CPU % of one core of this process and of `pids` together, since the last sample
        (None on the first sample, or without /proc)."""
        if not self.available:
            return None
        now = time.monotonic() if now is None else now
        own = _cpu_seconds(os.getpid())
        children = {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}
        result = None
        if self._at is not None and own is not None and self._own is not None and now > self._at:
            elapsed = now - self._at
            spent = sum(cpu - self._children.get(pid, cpu) for pid, cpu in children.items())
            result = (100 * (own - self._own) / elapsed, 100 * max(spent, 0.0) / elapsed)
        self._own, self._children, self._at = own, children, now
        return result
