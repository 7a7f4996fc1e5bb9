"""What Linux's /proc says about a process: its state, parent, CPU time and memory. One parser
for the window's CPU figures, the benchmarks and the tests' process checks. Elsewhere (no
/proc) every reader returns None."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat that we use."""

    state: str  # R, S, D, Z (zombie), T (stopped)...
    ppid: int
    cpu_s: float  # user + system time
    rss_bytes: int


def read_stat(pid: int) -> ProcStat | None:
    """A process's stat, or None if it is gone (or there is no /proc)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces and ")": split after the last.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(
            state=fields[0],
            ppid=int(fields[1]),
            cpu_s=(int(fields[11]) + int(fields[12])) / _TICKS,
            rss_bytes=int(fields[21]) * _PAGE,
        )
    except (IndexError, ValueError):
        return None


def cpu_ns(pid: int) -> int | None:
    """Nanoseconds on a CPU of all a process's threads (schedstat: finer than stat's ticks)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def children_by_parent(*, living: bool = True) -> dict[int, list[int]]:
    """Every process's children: parent pid -> child pids (zombies left out if `living`)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is None or (living and stat.state == "Z"):
            continue
        tree.setdefault(stat.ppid, []).append(int(entry.name))
    return tree


def is_alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process."""
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"
