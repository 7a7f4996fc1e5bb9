"""Delays between reconnection attempts: doubling, capped, jittered, reset by a stable run."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class Backoff:
    """1 s, 2 s, 4 s ... up to 30 s, each within +-20 %; pure apart from its clock and random.

    Jitter keeps outputs that failed together (one server down) from retrying in lockstep.
    A connection that stayed up `stable_after` seconds resets the sequence, so a blip after
    hours of streaming retries after 1 s, not after the last delay of a long-gone outage.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 30.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        stable_after: float = 10.0,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("invalid backoff parameters")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.stable_after = stable_after
        self._rng = rng
        self._clock = clock
        self.failures = 0  # delays handed out since the last reset
        self._up_since: float | None = None

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.failures = 0
        self._up_since = None

    def connected(self) -> None:
        """The output is up from now on; if it stays up `stable_after`, the next delay resets."""
        self._up_since = self._clock()

    def next_delay(self) -> float:
        """The delay before the next attempt (call it once per failure)."""
        if self._up_since is not None and self._clock() - self._up_since >= self.stable_after:
            self.failures = 0
        self._up_since = None
        base = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return base * (1 + self.jitter * (2 * self._rng() - 1))
