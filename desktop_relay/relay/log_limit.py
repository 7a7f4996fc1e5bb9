"""Rate limiting of repeated log lines, so a misbehaving client cannot flood the operator's log."""

from __future__ import annotations

import time
from collections.abc import Hashable


class RepeatLimiter:
    """Lets the first line of a kind through, then at most one per `interval` seconds.

    The line let through after a quiet spell says how many like it were held back, so the
    log stays honest about how often something happened without writing every occurrence.
    """

    def __init__(self, interval: float = 10.0, max_kinds: int = 256) -> None:
        self.interval = interval
        self._max_kinds = max_kinds
        # kind -> (monotonic time it was last let through, occurrences held back since)
        self._kinds: dict[Hashable, tuple[float, int]] = {}

    def allow(self, kind: Hashable, now: float | None = None) -> int | None:
        """None: hold this occurrence back. Else: let it through; the value is how many
        occurrences of `kind` were held back since the last one let through."""
        now = time.monotonic() if now is None else now
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.interval:
            self._kinds[kind] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._kinds) >= self._max_kinds:
            # Bounded memory: forget the kind let through longest ago.
            oldest = min(self._kinds, key=lambda k: self._kinds[k][0])
            del self._kinds[oldest]
        self._kinds[kind] = (now, 0)
        return seen[1] if seen is not None else 0
