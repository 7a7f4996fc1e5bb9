"""Per-client limits: chunk size, and token buckets for chunk rate and ingest bitrate."""

from __future__ import annotations

import time

from ..config import RelayConfig
from ..errors import ErrorName, ServerError

# What a resume may resend at once beyond the usual burst: the page keeps at most this much
# for a resume (60 s of media, 64 MiB), so no more can be owed.
RESUME_BUFFER_S = 60.0
RESUME_BUFFER_BYTES = 64 * 1024 * 1024


class TokenBucket:
    """Allows `rate` units per second on average and bursts of up to `burst` units; a credit
    granted on top (`grant`) is spent after the bucket and does not refill."""

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._credit = 0.0
        self._at = time.monotonic() if now is None else now

    def take(self, amount: float, now: float | None = None) -> bool:
        """Spend `amount` if available; False (spending nothing) if over the limit."""
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if amount > self._tokens + self._credit:
            return False
        from_bucket = min(amount, self._tokens)
        self._tokens -= from_bucket
        self._credit -= amount - from_bucket
        return True

    def grant(self, credit: float) -> None:
        """Allow `credit` more once (a resume's backlog); replaces an unspent earlier one, so
        that grants never add up past what one backlog can be."""
        self._credit = max(self._credit, credit)


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

    def grant_backlog(self, away_s: float) -> None:
        """A resume after `away_s` seconds without data: what the client recorded meanwhile
        comes at once, on top of the live stream. It may pass the rate limits up to what that
        time could hold at the limits' own rates (at most the page's resume buffer): a client
        that cycles resumes gains no more than the time it was away."""
        away = min(max(0.0, away_s), RESUME_BUFFER_S)
        cfg = self._config
        self._chunks.grant(away * cfg.max_chunks_per_second)
        self._bytes.grant(min(RESUME_BUFFER_BYTES, away * cfg.max_ingest_bits_per_second / 8))

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
