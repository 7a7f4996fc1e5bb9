"""Per-client limits: chunk size, and token buckets for chunk rate and ingest bitrate."""

from __future__ import annotations

import time

from ..config import RelayConfig
from ..errors import ErrorName, ServerError


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


class ClientLimits:
    """One streaming session's limits, from the relay's config at its start."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        burst = config.limit_burst_s
        rate = config.max_chunks_per_second
        self._chunks = TokenBucket(rate, max(1.0, rate * burst))
        byte_rate = config.max_ingest_bits_per_second / 8
        # A burst may hold one whole maximal chunk (a screen's first keyframe is large).
        self._bytes = TokenBucket(byte_rate, byte_rate * burst + config.max_chunk_bytes)

    def check(self, size: int) -> ServerError | None:
        """Why a chunk of `size` bytes must be refused now, or None (it is counted)."""
        cfg = self._config
        if size > cfg.max_chunk_bytes:
            return ServerError(
                ErrorName.CHUNK_TOO_LARGE,
                f"A chunk of {size} bytes is larger than the relay accepts "
                f"({cfg.max_chunk_bytes} bytes); record with a shorter timeslice",
            )
        if not self._chunks.take(1):
            return ServerError(
                ErrorName.RATE_LIMITED,
                f"Too many chunks: more than {cfg.max_chunks_per_second:g} per second",
            )
        if not self._bytes.take(size):
            return ServerError(
                ErrorName.RATE_LIMITED,
                "The stream's bitrate is above the relay's limit of "
                f"{cfg.max_ingest_bits_per_second / 1e6:g} Mbit/s",
            )
        return None
