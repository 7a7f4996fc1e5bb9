"""The program's sound: each source's decoded audio in a small jitter buffer, and a mixer that
follows the picture with a crossfade (a hard switch between two waveforms clicks)."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
CHANNELS = 2

Samples = npt.NDArray[np.float32]
"""Planar float audio of shape (CHANNELS, n)."""

_EDGE = SAMPLE_RATE * 5 // 1000
"""The fade into and out of an underrun: 5 ms, short enough to lose nothing audible."""


def silence(count: int) -> Samples:
    """`count` samples of silence."""
    return np.zeros((CHANNELS, count), dtype=np.float32)


def samples_for_tick(tick: int, fps: int) -> int:
    """How many samples belong to clock tick `tick`: 48000 / fps is not whole for every rate,
    so the ticks share them out without drift."""
    return (tick + 1) * SAMPLE_RATE // fps - tick * SAMPLE_RATE // fps


class AudioBuffer:
    """One source's sound between its decoder (bursts, as chunks arrive) and the clock (a
    steady pull per tick).

    It starts to play only once `prime_ms` are buffered, so that the next bursts' jitter does
    not underrun it; if it underruns, the missing part is silence and it primes again. Above
    `max_ms` (the source's clock runs faster than ours, or a burst after a stall) it drops the
    oldest sound down to `trim_ms`: a source's sound must not lag its picture for ever.
    """

    def __init__(self, prime_ms: int = 40, max_ms: int = 200, trim_ms: int = 80) -> None:
        self._prime = SAMPLE_RATE * prime_ms // 1000
        self._max = SAMPLE_RATE * max_ms // 1000
        self._trim = SAMPLE_RATE * trim_ms // 1000
        self._data = silence(0)
        self._primed = False
        self._fade_in = False
        self._lock = threading.Lock()
        self.underruns = 0

    @property
    def buffered(self) -> int:
        """Samples waiting."""
        return int(self._data.shape[1])

    def clear(self) -> None:
        """Forget the buffered sound (the source's stream starts over)."""
        with self._lock:
            self._data = silence(0)
            self._primed = False

    def push(self, samples: Samples) -> None:
        """Add decoded sound (48 kHz, stereo, planar float)."""
        with self._lock:
            self._data = np.concatenate((self._data, samples), axis=1)
            if self._data.shape[1] > self._max:
                self._data = self._data[:, -self._trim :]

    def pull(self, count: int) -> Samples:
        """The next `count` samples (silence where there are none yet). The sound fades out
        into an underrun and back in after it: a step to or from zero clicks."""
        with self._lock:
            have = self._data.shape[1]
            if not self._primed:
                if have < self._prime:
                    return silence(count)
                self._primed = True
                self._fade_in = True
            if have >= count:
                out = self._data[:, :count]
                self._data = self._data[:, count:]
            else:
                self.underruns += 1
                self._primed = False
                tail = self._data.copy()
                n = min(have, _EDGE)
                if n:
                    tail[:, have - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
                out = np.concatenate((tail, silence(count - have)), axis=1)
                self._data = silence(0)
            if self._fade_in:
                self._fade_in = False
                out = out.copy()
                n = min(count, _EDGE)
                out[:, :n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
            return out


class AudioMixer:
    """Picks the program's sound from the sources' blocks, tick by tick, crossfading linearly
    whenever the sound's source changes (None is silence)."""

    def __init__(self) -> None:
        self.current: str | None = None
        self._previous: str | None = None
        self._position = 0
        self._length = 0

    def mix(
        self, blocks: dict[str, Samples], target: str | None, count: int, crossfade_samples: int
    ) -> Samples:
        """The program's next `count` samples, given every source's block for this tick and
        the source whose sound should be on air (`crossfade_samples` long if it changes)."""
        if target != self.current:
            # A change during a crossfade restarts from the source being faded in: a short
            # step at worst, where the alternative is tracking a chain of fades.
            self._previous = self.current
            self.current = target
            self._position = 0
            self._length = max(1, crossfade_samples)
        new = blocks.get(self.current) if self.current is not None else None
        new_block = new if new is not None else silence(count)
        if self._position >= self._length:
            return new_block
        old = blocks.get(self._previous) if self._previous is not None else None
        old_block = old if old is not None else silence(count)
        ramp: Samples = np.arange(self._position, self._position + count, dtype=np.float32)
        ramp /= np.float32(self._length)
        np.clip(ramp, 0.0, 1.0, out=ramp)
        self._position += count
        out: Samples = old_block * (np.float32(1.0) - ramp)
        out += new_block * ramp
        return out
