"""After a resume, bring live outputs back to live: skip the backlog's old pictures.

When a browser's connection drops and it resumes its session, it resends everything it
recorded meanwhile, as fast as its link allows. A recording wants all of it. An RTMP audience
does not: a stream that goes on from where it stopped stays as far behind live as the drop
lasted, for good. So an RTMP output drops the backlog's tags up to the first keyframe that is
at most `max_lag_s` behind live, and goes on from there; the timestamps jump forward, as they
do when a broadcaster drops frames, and players follow.

How far behind live a tag is: the stream's timestamps (milliseconds of media) against the
relay's clock. While the stream flows normally the relay remembers how early, at best, a tag
arrives relative to its timestamp (the *edge*: the highest `timestamp - arrival` of the last
seconds). A tag that comes `lag` seconds later than the edge predicts is `lag` behind live.

Only a resume arms it: a browser that paused its recorder resumes with timestamps that went on
without the pause, which looks exactly like lag but is not a backlog; nothing is skipped then.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .flv import FlvTag

# The edge is the best (earliest) arrival of this many recent seconds: long enough to span
# a few of the browser's chunks, short enough to forget a pause soon after it ended.
EDGE_WINDOW_S = 10.0
# An armed catch-up that finds no keyframe close enough to live within this long gives up
# and lets outputs go on (from the next keyframe): never starve an output.
ARMED_TIMEOUT_S = 60.0
# Bytes an armed catch-up may hold for live outputs, per session. The hold is bounded in
# tags by keyframes already, but not in bytes: a client's backlog whose keyframes never come
# close enough to live (or a stream with none at all) held 66 MB in 22 s. Past this the hold
# ends as at the timeout: what it holds is released, the outputs go on late.
MAX_HELD_BYTES = 16 * 1024 * 1024
# How long a late stream is held, at most, to tell a backlog (arriving faster than time)
# from a stream that only goes on late: the decision costs live outputs this much delay once.
DECIDE_S = 1.0
# Media this far ahead of the clock since the first late tag, and at least half again as
# fast as time, is a backlog: only then are held tags dropped at a newer keyframe.
BACKLOG_LEAD_S = 0.5


@dataclass(frozen=True)
class CatchUpCut:
    """What an armed catch-up decided on a batch of tags (see `CatchUp.cut`)."""

    # Tags live outputs get now, in order: held ones first (possibly from earlier batches).
    release: list[FlvTag]
    # Media seconds skipped (dropped for live outputs) once the catch-up is done, else 0.
    skipped_s: float
    # The catch-up ended with this batch: outputs go on normally afterwards.
    done: bool
    # Why it gave up without finding live again, if it did: "timeout" or "bound" (the held
    # bytes reached `max_held_bytes`). None when it ended as it should.
    gave_up: str | None = None


class CatchUp:
    """Tracks the live edge of one stream and, once armed, where live outputs resume.

    Armed, it first tells a backlog from a stream that merely goes on late (a client that did
    not record through the drop sends its next chunks at the pace of time, as late as the drop
    was long, with nothing newer to skip to): while late, tags are held for live outputs, for
    at most `decide_s`. Tags arriving faster than time (a backlog resent at link speed) are
    skipped up to the first keyframe close enough to live; tags arriving at the pace of time
    are all released, nothing skipped. Held tags are bounded: until it is known to be a backlog
    by the decision time (or half a second of media ahead of the clock), and in a backlog only
    those from the latest keyframe on are kept; in any case at most `max_held_bytes` (then it
    gives up and releases them) and for at most ARMED_TIMEOUT_S (`expire`, on the owner's
    timer, also when no tags come).
    """

    def __init__(
        self,
        max_lag_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        decide_s: float = DECIDE_S,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self.max_lag_s = max_lag_s
        self.decide_s = decide_s
        self.max_held_bytes = max_held_bytes
        self._clock = clock
        # (arrival, timestamp - arrival) in ms, the offsets decreasing: a sliding maximum.
        self._offsets: deque[tuple[float, float]] = deque()
        self._armed_edge: float | None = None
        self._armed_at = 0.0
        self._held: list[FlvTag] = []
        self._held_bytes = 0
        # When holding began (s), the first held tag's lag and its timestamp (ms).
        self._first: tuple[float, float, int] | None = None
        self.total_skipped_s = 0.0
        self.catch_ups = 0

    @property
    def armed(self) -> bool:
        """Whether a backlog is expected (between `arm` and the cut that ends it)."""
        return self._armed_edge is not None

    def reset(self) -> None:
        """A new stream (its timestamps start again): forget the edge and any arming."""
        self._offsets.clear()
        self._disarm()

    @property
    def held_bytes(self) -> int:
        """Bytes held back from live outputs now (at most about `max_held_bytes`)."""
        return self._held_bytes

    @property
    def due_at(self) -> float | None:
        """When an armed catch-up gives up (on its clock), or None when not armed: the
        owner calls `expire` then, so that a hold never outlives it for want of tags."""
        return self._armed_at + ARMED_TIMEOUT_S if self._armed_edge is not None else None

    def _disarm(self) -> None:
        self._armed_edge = None
        self._held = []
        self._held_bytes = 0
        self._first = None

    def arm(self) -> None:
        """The client resumed: what comes next may be a backlog. Without a known edge (the
        stream had not flowed yet) or with catch-up off, nothing is armed."""
        if self.max_lag_s is None or not self._offsets:
            return
        self._disarm()
        self._armed_edge = self._offsets[0][1]
        self._armed_at = self._clock()

    def observe(self, tags: Sequence[FlvTag]) -> None:
        """Tags that arrived now, in a normal flow (not armed): they move the edge."""
        if not tags:
            return
        now = self._clock() * 1000.0
        # FLV tags come in decode order: the last is the newest (give or take the audio
        # and video interleaving, a few ms).
        offset = tags[-1].timestamp - now
        offsets = self._offsets
        while offsets and offsets[-1][1] <= offset:
            offsets.pop()
        offsets.append((now, offset))
        horizon = now - EDGE_WINDOW_S * 1000.0
        while len(offsets) > 1 and offsets[0][0] < horizon:
            offsets.popleft()

    def lag_s(self, tag: FlvTag, now_ms: float | None = None) -> float:
        """How far behind live `tag` arrives, in seconds (0 when no edge is known)."""
        edge = self._armed_edge
        if edge is None:
            if not self._offsets:
                return 0.0
            edge = self._offsets[0][1]
        now = self._clock() * 1000.0 if now_ms is None else now_ms
        return max(0.0, (edge - (tag.timestamp - now)) / 1000.0)

    def cut(self, tags: Sequence[FlvTag]) -> CatchUpCut:
        """While armed: what live outputs get of `tags` (see CatchUpCut)."""
        assert self._armed_edge is not None and self.max_lag_s is not None
        now_s = self._clock()
        now = now_s * 1000.0
        max_lag = self.max_lag_s
        if now_s - self._armed_at > ARMED_TIMEOUT_S:
            return self._give_up(self._held + list(tags), "timeout")
        for index, tag in enumerate(tags):
            lag = self.lag_s(tag, now)
            if self._first is None:
                if lag <= max_lag:
                    # The first tag after the resume is close to live: nothing to skip.
                    return self._finish(list(tags), 0.0)
                self._first = (now_s, lag, tag.timestamp)
            if tag.starts_gop:
                if lag <= max_lag:
                    # Live again: from this keyframe on; everything held before it is skipped.
                    return self._finish(list(tags[index:]), self._skipped(tag))
                if self._is_backlog(now_s, lag):
                    # An older keyframe held is worth nothing now that a newer one came.
                    self._held = []
                    self._held_bytes = 0
            self._held.append(tag)
            self._held_bytes += len(tag.raw)
            if self._held_bytes > self.max_held_bytes:
                # Bounded whatever the stream does: release what is held and the rest of
                # this batch; nothing more is held for this resume.
                return self._give_up(self._held + list(tags[index + 1 :]), "bound")
        if self._first is None:  # no tags yet
            return CatchUpCut(release=[], skipped_s=0.0, done=False)
        first_at, first_lag, _ = self._first
        waited = now_s - first_at
        if waited >= self.decide_s and self._held:
            caught_up = first_lag - self.lag_s(self._held[-1], now)
            if caught_up < waited / 2:
                # Arriving at about the pace of time: no backlog, only a late stream. Send
                # all of it; skipping would lose video and never reach live anyway.
                held, self._held, self._held_bytes = self._held, [], 0
                return self._finish_with(held)
        return CatchUpCut(release=[], skipped_s=0.0, done=False)

    def expire(self) -> CatchUpCut | None:
        """The timeout's check, without tags: an armed catch-up past `due_at` gives up and
        releases what it holds (None: not armed, or not due yet)."""
        due = self.due_at
        if due is None or self._clock() <= due:
            return None
        return self._give_up(list(self._held), "timeout")

    def _give_up(self, release: list[FlvTag], reason: str) -> CatchUpCut:
        cut = self._finish_with(release)
        return CatchUpCut(cut.release, cut.skipped_s, True, gave_up=reason)

    def _is_backlog(self, now_s: float, lag: float) -> bool:
        """Whether the late tags come faster than time (a backlog), judged by now."""
        assert self._first is not None
        first_at, first_lag, _ = self._first
        caught_up = first_lag - lag
        return caught_up >= BACKLOG_LEAD_S and caught_up >= (now_s - first_at) / 2

    def _finish_with(self, release: list[FlvTag]) -> CatchUpCut:
        """End with `release`: what was dropped before its first tag counts as skipped."""
        return self._finish(release, self._skipped(release[0]) if release else 0.0)

    def _skipped(self, resume_at: FlvTag) -> float:
        if self._first is None:
            return 0.0
        return max(0.0, (resume_at.timestamp - self._first[2]) / 1000.0)

    def _finish(self, release: list[FlvTag], skipped_s: float) -> CatchUpCut:
        if skipped_s > 0:
            self.total_skipped_s += skipped_s
            self.catch_ups += 1
        self._disarm()
        # The edge starts afresh from live tags: the backlog's late arrivals are no guide.
        self._offsets.clear()
        self.observe(release)
        return CatchUpCut(release=release, skipped_s=skipped_s, done=True)
