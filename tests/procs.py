"""Which ffmpeg processes this test process started and left running (read from /proc)."""

from __future__ import annotations

import os
from pathlib import Path

from desktop_relay.procstat import children_by_parent, is_alive


def ffmpeg_descendants(root: int | None = None) -> dict[int, str]:
    """Living ffmpeg processes descending from `root` (this process by default): pid -> cmdline."""
    tree = children_by_parent()
    out: dict[int, str] = {}
    stack = [root or os.getpid()]
    while stack:
        for child in tree.get(stack.pop(), []):
            stack.append(child)
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "ffmpeg" in cmd.split(" ")[0]:
                out[child] = cmd.strip()
    return out


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process."""
    return is_alive(pid)
