"""Real media helpers for tests: an RTMP receiver (ffmpeg -listen), ffprobe, fixture paths."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Real MediaRecorder captures (fake camera + microphone, 20 s), made by
# scripts/record_fixtures.py with the project's own browser client: see tests/fixtures/README.md.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
H264_FIXTURE = FIXTURES / "mediarecorder-h264-opus-640x480-20s.mkv"
VP8_FIXTURE = FIXTURES / "mediarecorder-vp8-opus-640x480-20s.webm"
MP4_FIXTURE = FIXTURES / "mediarecorder-h264-opus-640x480-20s.mp4"
FIXTURE_SECONDS = 20.0

# Every stream key a test hands out; none may ever appear whole in a log or client message.
SECRETS: set[str] = set()


def find_leaks(texts: list[str], secrets: set[str]) -> list[tuple[str, str]]:
    """(secret, text) for every text that holds a whole secret."""
    return [(key, text) for key in secrets for text in texts if key in text]


def require_tool(name: str) -> str:
    """The path of a system tool; under CI=true a missing one fails instead of skipping."""
    import pytest

    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install ffmpeg)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    # A probe connection would be taken as the publisher by `ffmpeg -listen 1`: read the
    # kernel's socket table instead.
    needle = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(needle.strip()) and fields[3] == "0A":
                return True
    return False


@dataclass
class RtmpReceiver:
    """`ffmpeg -listen 1` recording one published stream to an FLV file."""

    url: str
    path: Path
    process: subprocess.Popen[bytes]

    def wait(self, timeout: float = 30.0) -> int:
        """Wait until the publisher left and the file is complete."""
        return self.process.wait(timeout)

    def close(self) -> None:
        """Stop the receiver if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_receiver(ffmpeg: str, directory: Path, key: str = "streamkey-0123456789") -> RtmpReceiver:
    """Start a receiver on a free loopback port and wait until it listens."""
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/{key}"
    SECRETS.add(key)
    path = directory / f"received-{port}.flv"
    with (directory / f"receiver-{port}.log").open("wb") as log:  # the child keeps its copy
        proc = subprocess.Popen(
            [ffmpeg, "-hide_banner", "-loglevel", "warning", "-listen", "1", "-i", url,
             "-c", "copy", "-f", "flv", "-y", str(path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    deadline = time.monotonic() + 10
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"RTMP receiver did not start on port {port}")
        time.sleep(0.05)
    return RtmpReceiver(url, path, proc)


@dataclass(frozen=True)
class Probe:
    """What ffprobe says about a file."""

    video_codec: str | None
    audio_codec: str | None
    video_frames: int
    duration: float
    width: int | None = None


def probe(path: Path) -> Probe:
    """Codecs, counted video frames and duration of a media file, by ffprobe."""
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [ffprobe, "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_type,codec_name,nb_read_packets,width:format=duration",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    data = json.loads(out.stdout)
    video = next((s for s in data.get("streams", []) if s["codec_type"] == "video"), None)
    audio = next((s for s in data.get("streams", []) if s["codec_type"] == "audio"), None)
    duration = float(data.get("format", {}).get("duration", 0) or 0)
    if duration == 0:
        duration = _duration_from_packets(ffprobe, path)
    return Probe(
        video_codec=video["codec_name"] if video else None,
        audio_codec=audio["codec_name"] if audio else None,
        video_frames=int(video.get("nb_read_packets", 0)) if video else 0,
        duration=duration,
        width=video.get("width") if video else None,
    )


def _duration_from_packets(ffprobe: str, path: Path) -> float:
    """MediaRecorder output has no duration in its header: take the last packet's end."""
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "packet=pts_time,duration_time",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    end = 0.0
    for line in out.stdout.splitlines():
        parts = [p for p in line.split(",") if p and p != "N/A"]
        try:
            end = max(end, sum(float(p) for p in parts[:2]))
        except ValueError:
            continue
    return end
