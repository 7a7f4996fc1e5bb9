"""Which ffmpeg processes this test process started and left running (read from /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def ffmpeg_descendants(root: int | None = None) -> dict[int, str]:
    """Living ffmpeg processes descending from `root` (this process by default): pid -> cmdline."""
    tree = _children()
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
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"
