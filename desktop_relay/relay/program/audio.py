"""The program's sound: each source's decoded audio on its own timeline, and a mixer that
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
    steady pull per tick), kept on the source's timeline so that it plays in step with the
    source's pictures.

    `push` places decoded sound at its media timestamp (a gap is filled with silence, a
    timestamp going back starts the buffer over); `pull` plays from the position the source's
    `Playout` gives. While the sound plays, the buffer runs on sample by sample and is
    re-aligned only when it is more than `tolerance_ms` off that position (a change in the
    playout delay, a source clock that drifts): re-aligning drops or inserts sound, and doing
    that for every millisecond of timestamp rounding would be heard. The sound fades out into
    an underrun and back in after it: a step to or from zero clicks.
    """

    def __init__(self, tolerance_ms: int = 10, max_ms: int = 2000) -> None:
        self._tolerance = SAMPLE_RATE * tolerance_ms // 1000
        self._max = SAMPLE_RATE * max_ms // 1000
        self._data = silence(0)
        self._start = 0.0  # the media timestamp (s) of the first buffered sample
        self._playing = False
        self._lock = threading.Lock()
        self.underruns = 0
        self.realigned = 0

    @property
    def buffered(self) -> int:
        """Samples waiting."""
        return int(self._data.shape[1])

    def clear(self) -> None:
        """Forget the buffered sound (the source's stream starts over)."""
        with self._lock:
            self._data = silence(0)
            self._playing = False

    def push(self, samples: Samples, timestamp_s: float) -> None:
        """Add decoded sound (48 kHz, stereo, planar float) that begins at `timestamp_s`."""
        with self._lock:
            have = self._data.shape[1]
            if have == 0:
                self._data, self._start = samples, timestamp_s
            else:
                gap = round((timestamp_s - self._start) * SAMPLE_RATE) - have
                if gap < -self._tolerance or gap > self._max:
                    # Back in time, or far ahead: a new timeline, not a gap to fill.
                    self._data, self._start = samples, timestamp_s
                elif gap > self._tolerance:
                    self._data = np.concatenate((self._data, silence(gap), samples), axis=1)
                else:
                    # Timestamps are whole milliseconds: a sample or two off is rounding.
                    self._data = np.concatenate((self._data, samples), axis=1)
            extra = self._data.shape[1] - self._max
            if extra > 0:
                self._data = self._data[:, extra:]
                self._start += extra / SAMPLE_RATE

    def pull(self, count: int, position: float | None) -> Samples:
        """The `count` samples that play from media time `position` on (silence where there
        are none; None: the source's timeline is not known yet)."""
        with self._lock:
            have = self._data.shape[1]
            if position is None or have == 0:
                return self._underrun(count)
            skew = round((position - self._start) * SAMPLE_RATE)
            fade_in = False
            leaving: Samples | None = None
            if not self._playing or abs(skew) > self._tolerance:
                if skew <= -count:
                    # The sound begins after this tick: silence until it does.
                    return self._underrun(count)
                if self._playing:
                    # Crossfaded from where it was to where it goes: a jump would click.
                    self.realigned += 1
                    leaving = self._data[:, :_EDGE]
                if skew > 0:
                    self._data = self._data[:, skew:]
                elif skew < 0:
                    # Silence first, then the sound faded in where it starts.
                    head = self._data[:, :_EDGE].copy()
                    head *= np.linspace(0.0, 1.0, head.shape[1], dtype=np.float32)
                    self._data = np.concatenate(
                        (silence(-skew), head, self._data[:, head.shape[1] :]), axis=1
                    )
                self._start = position
                fade_in = not self._playing
                self._playing = True
                have = self._data.shape[1]
            if have >= count:
                out = self._data[:, :count]
                self._data = self._data[:, count:]
                self._start += count / SAMPLE_RATE
            else:
                out = self._underrun(count)
            if fade_in or leaving is not None:
                out = out.copy()
                n = min(count, _EDGE)
                ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
                out[:, :n] *= ramp
                if leaving is not None:
                    m = min(n, leaving.shape[1])
                    out[:, :m] += leaving[:, :m] * ramp[::-1][:m]
            return out

    def _underrun(self, count: int) -> Samples:
        """What is left, faded out, then silence (the lock held)."""
        if not self._playing:
            return silence(count)
        self.underruns += 1
        self._playing = False
        have = self._data.shape[1]
        tail = self._data[:, :count].copy()
        n = min(tail.shape[1], _EDGE)
        if n:
            tail[:, tail.shape[1] - n :] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        self._data = silence(0)
        self._start += have / SAMPLE_RATE
        return np.concatenate((tail, silence(count - tail.shape[1])), axis=1)


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
