"""Real parts for the program's tests: synthetic sources made by ffmpeg at test time, fed at
real-time pace, and the program's FLV decoded back into pictures and sound."""

from __future__ import annotations

import asyncio
import io
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from desktop_relay.relay.program import ProgramConfig, ProgramEngine, ProgramState
from desktop_relay.relay.program.flv_tags import HEADER_SIZE, Tag, TagSplitter

SOURCE_SECONDS = 8
RED = (255, 0, 0)
BLUE = (0, 0, 255)
RED_HZ = 440
BLUE_HZ = 660


@dataclass(frozen=True)
class SourceFile:
    """A synthetic capture: one colour and one tone, H.264 + AAC in FLV, as the relay's
    encoder writes it (FLV header, onMetaData, sequence headers, a keyframe first)."""

    path: Path
    width: int
    height: int
    rgb: tuple[int, int, int]
    tone_hz: int

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def make_source(
    ffmpeg: str, path: Path, size: str, colour: str, tone_hz: int, rate: int, channels: int
) -> None:
    subprocess.run(
        [ffmpeg, "-v", "error", "-y",
         "-f", "lavfi", "-i", f"color=c={colour}:s={size}:r=30",
         "-f", "lavfi", "-i", f"sine=f={tone_hz}:r={rate}",
         "-t", str(SOURCE_SECONDS),
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
         "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-ac", str(channels),
         "-f", "flv", "-flvflags", "no_duration_filesize", str(path)],
        check=True,
        timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="session")
def sources(ffmpeg_exe: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SourceFile]:
    """Two sources of different sizes, colours, tones and sound formats (the worker resamples
    44.1 kHz mono to 48 kHz stereo)."""
    directory = tmp_path_factory.mktemp("program-sources")
    red = SourceFile(directory / "red.flv", 640, 480, RED, RED_HZ)
    blue = SourceFile(directory / "blue.flv", 1280, 720, BLUE, BLUE_HZ)
    make_source(ffmpeg_exe, red.path, "640x480", "red", RED_HZ, 48000, 2)
    make_source(ffmpeg_exe, blue.path, "1280x720", "blue", BLUE_HZ, 44100, 1)
    return {"red": red, "blue": blue}


async def feed_paced(
    engine: ProgramEngine,
    source_id: str,
    data: bytes,
    *,
    seconds: float | None = None,
    on_fed: Callable[[float], None] | None = None,
) -> float:
    """Feed a source's FLV at real-time pace (each tag at its timestamp), each tag in two
    chunks that cut it anywhere (as pipes do); stop after `seconds` of media if given.
    Returns the wall time of the last feed."""
    tags = [t for t in TagSplitter().feed(data) if isinstance(t, Tag)]
    engine.feed(source_id, data[:HEADER_SIZE])
    t0 = time.monotonic()
    last = time.time()
    for i, tag in enumerate(tags):
        if not tag.is_config:
            if seconds is not None and tag.timestamp_ms >= seconds * 1000:
                break
            delay = t0 + tag.timestamp_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        cut = 1 + i % (len(tag.raw) - 1)
        engine.feed(source_id, tag.raw[:cut])
        engine.feed(source_id, tag.raw[cut:])
        last = time.time()
        if on_fed is not None:
            on_fed(last)
    return last


@dataclass
class Picture:
    """One decoded program picture."""

    wall: float
    """When the worker composed it (clock_start + its timestamp)."""
    pts: float
    width: int
    height: int
    rgb: np.ndarray


@dataclass
class Decoded:
    """The program's FLV, decoded."""

    pictures: list[Picture]
    video_profile: str | None
    audio_packets: list[tuple[int, int]]
    """(pts, duration) in ms of each AAC packet."""
    audio: np.ndarray
    """The decoded sound, stereo float, from the first packet's time."""
    audio_start: float
    """Wall time of the first audio sample."""
    audio_rate: int

    def at(self, wall: float) -> Picture:
        """The picture composed at or just before `wall`."""
        best = self.pictures[0]
        for picture in self.pictures:
            if picture.wall > wall:
                break
            best = picture
        return best

    def between(self, start: float, end: float) -> list[Picture]:
        return [p for p in self.pictures if start <= p.wall < end]

    def sound(self, start: float, end: float) -> np.ndarray:
        """Mono sound between two wall times."""
        a = int((start - self.audio_start) * self.audio_rate)
        b = int((end - self.audio_start) * self.audio_rate)
        return self.audio[:, max(0, a) : max(0, b)].mean(axis=0)


def decode_program(data: bytes, clock_start: float) -> Decoded:
    """Decode every picture and all the sound of the program's FLV."""
    pictures: list[Picture] = []
    audio_packets: list[tuple[int, int]] = []
    chunks: list[np.ndarray] = []
    audio_first: float | None = None
    rate = 48000
    with av.open(io.BytesIO(data), format="flv") as container:
        video = container.streams.video[0]
        profile = video.codec_context.profile
        for packet in container.demux():
            if packet.stream.type == "audio" and packet.pts is not None:
                audio_packets.append((int(packet.pts), int(packet.duration or 0)))
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    assert frame.time is not None
                    pictures.append(
                        Picture(
                            clock_start + frame.time,
                            frame.time,
                            frame.width,
                            frame.height,
                            frame.to_ndarray(format="rgb24"),
                        )
                    )
                elif isinstance(frame, av.AudioFrame):
                    if audio_first is None:
                        assert frame.time is not None
                        audio_first = frame.time
                    rate = frame.sample_rate
                    chunks.append(frame.to_ndarray())
    sound = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)
    return Decoded(
        pictures, profile, audio_packets, sound, clock_start + (audio_first or 0.0), rate
    )


def colour_of(rgb: np.ndarray, x: int, y: int, radius: int = 4) -> tuple[int, int, int]:
    """The mean colour of a small square around (x, y)."""
    patch = rgb[y - radius : y + radius + 1, x - radius : x + radius + 1].reshape(-1, 3)
    r, g, b = (int(v) for v in patch.mean(axis=0))
    return r, g, b


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


def dominant_hz(sound: np.ndarray, rate: int) -> float:
    """The strongest frequency of a stretch of sound."""
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(len(sound))))
    return float(np.fft.rfftfreq(len(sound), 1 / rate)[int(np.argmax(spectrum))])


@dataclass
class Run:
    """A running engine with everything it sent."""

    engine: ProgramEngine
    output: bytearray = field(default_factory=bytearray)
    states: list[ProgramState] = field(default_factory=list)

    def decode(self) -> Decoded:
        start = self.engine.state.clock_start
        assert start is not None
        return decode_program(bytes(self.output), start)

    async def wait_for(
        self, predicate: Callable[[ProgramState], bool], timeout: float
    ) -> ProgramState:
        deadline = time.monotonic() + timeout
        while not predicate(self.engine.state):
            if time.monotonic() > deadline:
                raise AssertionError(f"state not reached in {timeout} s: {self.engine.state}")
            await asyncio.sleep(0.02)
        return self.engine.state


@pytest.fixture
async def program() -> AsyncIterator[Callable[..., Awaitable[Run]]]:
    """Start engines (stopped, and their workers reaped, at the test's end)."""
    runs: list[Run] = []

    async def start(config: ProgramConfig | None = None, **options: Any) -> Run:
        output = bytearray()
        states: list[ProgramState] = []
        engine = ProgramEngine(config, on_output=output.extend, on_state=states.append, **options)
        run = Run(engine, output, states)
        runs.append(run)
        await engine.start()
        return run

    yield start
    for run in runs:
        await run.engine.stop()
