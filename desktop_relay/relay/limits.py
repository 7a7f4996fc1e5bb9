"""Per-client rate limits: a token bucket for chunks and one for bytes."""

from __future__ import annotations

import time


class TokenBucket:
    """Allows `rate` units per second on average and bursts of up to `burst` units."""

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic() if now is None else now

    def take(self, amount: float, now: float | None = None) -> bool:
        """Spend `amount` if available; False (spending nothing) if over the limit."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if amount > self._tokens:
            return False
        self._tokens -= amount
        return True
