"""When a source's media plays on the program: its own timestamps, mapped onto the worker's
clock with a delay that absorbs how unevenly the source's tags arrive.

A source's pictures and sound reach the worker in bursts: a page's WebCodecs path sends a
frame every 30 ms or so, its MediaRecorder path a quarter of a second at once, and the
relay's pipes add their own jitter. Showing each source's latest picture as soon as it is
decoded (and playing its sound through a buffer of its own) put the sound 50-120 ms behind the
picture and showed a MediaRecorder source at about 4 pictures a second. Here both are played
at one position in the source's timeline, `now - base - delay`:

- `base` is the smallest lateness seen (arrival time minus media timestamp): the tags that
  came quickest. It creeps up by DRIFT_PER_S so that a source whose clock runs slower than
  ours is followed, and drops at once when a tag comes quicker than any before.
- `delay` covers the spread of the lateness above `base` (a decaying maximum) plus a margin:
  a tick plays 1/fps of sound at once, an AAC block is 21 ms, and both must have arrived when
  the tick comes. A few tens of ms for WebCodecs, about 300 ms for MediaRecorder's bursts, at
  most MAX_DELAY_S. It grows at once (a tag that would come too late) but shrinks only in
  steps, after the spread has stayed well below it for SHRINK_AFTER_S: every change moves the
  position, and a sound moved by more than its tolerance is heard (audio.py), so one step
  now and then beats a continuous slide.

A tag later than MAX_DELAY_S behind `base` re-anchors the timeline on it: a stream resumed
after a cut, or timestamps that jumped, play from there rather than never.
"""

from __future__ import annotations

AUDIO_BLOCK_S = 0.025
"""An AAC block (1024 samples: 21.3 ms at 48 kHz, 23.2 ms at 44.1 kHz) and the decoder."""
MAX_DELAY_S = 1.0
"""Jitter larger than this is not smoothed but re-anchored: the program waits on no phone."""
DRIFT_PER_S = 0.001
"""How fast `base` may rise: follows a source clock up to 1000 ppm slower than ours."""
DECAY_PER_S = 0.02
"""How fast the measured spread forgets a late burst."""
SHRINK_AFTER_S = 3.0
SHRINK_BY_S = 0.03
"""The delay shrinks once the spread has wanted it this much smaller for SHRINK_AFTER_S."""


def margin_for(fps: int) -> float:
    """The delay's part that does not depend on the source: one tick and one sound block."""
    return 1 / fps + AUDIO_BLOCK_S


class Playout:
    """One source's timeline mapped onto the worker's monotonic clock (seconds)."""

    def __init__(self, margin_s: float) -> None:
        self.margin = margin_s
        self._base: float | None = None
        self._spread = 0.0
        self._delay = margin_s
        self._low_since: float | None = None
        self._last: float | None = None
        self.reanchors = 0

    def reset(self) -> None:
        """A new stream of the source begins: its timestamps start over."""
        self._base = None
        self._spread = 0.0
        self._delay = self.margin
        self._low_since = None
        self._last = None

    def arrived(self, timestamp_s: float, now: float) -> None:
        """A tag with this media timestamp was decoded at `now`."""
        lateness = now - timestamp_s
        base = self._base
        if base is None or self._last is None:
            self._base = lateness
            self._spread = 0.0
            self._delay = self.margin
            self._last = now
            return
        elapsed = max(0.0, now - self._last)
        self._last = now
        base += DRIFT_PER_S * elapsed
        spread = max(0.0, self._spread - DECAY_PER_S * elapsed)
        if lateness < base:
            base = lateness
        elif lateness - base > MAX_DELAY_S:
            base, spread = lateness, 0.0
            self._delay = self.margin
            self.reanchors += 1
        else:
            spread = max(spread, lateness - base)
        self._base, self._spread = base, spread
        wanted = min(MAX_DELAY_S, spread + self.margin)
        if wanted >= self._delay - SHRINK_BY_S:
            self._low_since = None
            self._delay = max(self._delay, wanted)
        elif self._low_since is None:
            self._low_since = now
        elif now - self._low_since >= SHRINK_AFTER_S:
            self._delay, self._low_since = wanted, None

    @property
    def delay(self) -> float:
        """Seconds between a tag's quickest arrival and its playing."""
        return self._delay

    def position(self, now: float) -> float | None:
        """The media timestamp (s) that plays at `now` (None before the first tag)."""
        if self._base is None:
            return None
        return now - self._base - self.delay
