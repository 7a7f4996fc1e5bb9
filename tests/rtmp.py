"""RTMP test helpers beyond tests/media.py: a receiver on a chosen (reused) port, packet flags."""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

from .media import SECRETS, RtmpReceiver, _listening, require_tool

_serial = itertools.count()


def start_receiver_on(
    ffmpeg: str, directory: Path, port: int, key: str = "streamkey-0123456789"
) -> RtmpReceiver:
    """An `ffmpeg -listen 1` receiver on `port`, which an earlier receiver may have used.

    ffmpeg sets SO_REUSEADDR on its listening socket, so a new receiver can take the port of
    one that was killed (its connections linger in TIME_WAIT). Each receiver gets its own file.
    """
    url = f"rtmp://127.0.0.1:{port}/live/{key}"
    SECRETS.add(key)
    n = next(_serial)
    path = directory / f"received-{port}-{n}.flv"
    with (directory / f"receiver-{port}-{n}.log").open("wb") as log:
        proc = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "warning", "-listen", "1", "-i", url,
             "-c", "copy", "-f", "flv", "-y", str(path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    deadline = time.monotonic() + 10
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"RTMP receiver did not start on port {port}")
        time.sleep(0.05)
    return RtmpReceiver(url, path, proc)


def port_of(url: str) -> int:
    """The port of an rtmp://127.0.0.1:PORT/... address."""
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def packets(path: Path) -> list[tuple[str, str]]:
    """(codec_type, flags) of every packet of a media file, in file order, by ffprobe."""
    out = subprocess.run(
        [require_tool("ffprobe"), "-v", "error", "-show_entries", "packet=codec_type,flags",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return [(row[0], row[1] if len(row) > 1 else "") for row in rows]
