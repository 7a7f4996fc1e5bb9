"""Sessions that outlive their sockets: the resume token and the chunk numbering rules.

A phone that changes network, or a browser whose websocket drops, loses its socket but not
its stream: the relay keeps the session *waiting* (its ffmpeg keeps running, without input)
for `RelayConfig.resume_grace_s` seconds, and a new socket that presents the session's
resume token takes it over. Numbered chunks let the client resend what was not acknowledged
without the relay writing anything twice.

Protocol additions (all ignored by, and invisible to, the original 0.2.x client):

- `start(config, ack)`: the success ack now carries one argument,
  `{"sessionId": <uuid>, "resumeToken": <secret>, "lastSeq": <int | null>}`. The original
  client's callback takes no argument and ignores it. The token is the session's for its
  whole life (a resume does not change it); it is sent only here, never logged, and checked
  in constant time. A `start` begins a new numbering, so `lastSeq` is null after it.
- `binarystream(chunk, seq, ack)`: `seq` (int, not bool, 0 <= seq < 2**53; null or absent:
  an unnumbered chunk, handled exactly as before) is the client's consecutive numbering; the
  first numbered chunk of a stream may carry any number below 2**32 (`MAX_FIRST_SEQ`, so that
  the numbers cannot run out). Acks:
  - a new chunk: no argument once written, as for unnumbered chunks;
  - a duplicate (seq <= the last accepted one): dropped, acked with two arguments
    `(null, {"duplicate": true})`. The error slot stays empty because the original clients
    (and ours) treat any truthy first argument as an error; a client that cares reads the
    second argument;
  - a gap (seq > last + 1): `CHUNK_GAP` (fatal) as the ack and as an `error` event, and the
    session's stream ends: the relay cannot invent the missing bytes;
  - an invalid `seq` (and a stream's first at 2**32 or above): `INVALID_PARAMETERS` (not
    fatal), the chunk is not written;
  - a duplicate counts against the chunk size, rate and bitrate limits like any chunk: a
    client cannot resend without bound.
- A socket that goes away while its session streams (network error, ping timeout, closed
  transport, and also a client disconnect without `stop`: a closing tab cannot be told from
  a lost network, and the disconnect packet races the websocket's close) leaves the session
  waiting for the grace period; observers hear `waiting`. Only a session that streams waits:
  after the client's own `stop` (or before any `start`) the session ends with its socket, as
  before, and so does one killed by the operator or disconnected by the relay itself.
- `resume({"sessionId", "token"}, ack)` on a new, paired socket that has not started a
  stream of its own: the socket's own empty session is discarded and the socket takes the
  session over; ack `{"sessionId", "lastSeq"}`: resend from `lastSeq + 1` (from your first
  unacknowledged chunk if null). If the session's old socket is still connected (the relay
  has not noticed it is dead yet, the usual case after a network change), the token wins:
  the old socket is disconnected and the new one takes over. Observers hear `resumed`.
  Refusals (wrong token, unknown or ended session, a socket already streaming, a malformed
  request) get `RESUME_REFUSED` (not fatal: the socket may still `start` a new stream) as
  the ack and as an `error` event, with one message for every cause, so that a caller learns
  nothing about which session ids exist.
"""

from __future__ import annotations

import hmac
import secrets
from enum import Enum
from typing import Any

# JavaScript numbers are exact integers below 2**53: anything above is not a client count.
MAX_SEQ = 2**53
# A stream's first numbered chunk must be below this: numbering on from near MAX_SEQ would
# run out of numbers (a first chunk of 2**53 - 1 made every later one a "duplicate"). From
# any number below it, 2**53 - 2**32 numbers remain: at 100 chunks a second, millions of years.
MAX_FIRST_SEQ = 2**32


class ResumeTicket:
    """A session's resume token: made once, given only to its client, checked in constant
    time. Its repr never shows the token (sessions get logged and printed)."""

    __slots__ = ("_token",)

    def __init__(self, token: str | None = None) -> None:
        self._token = token if token is not None else secrets.token_urlsafe(24)

    @property
    def token(self) -> str:
        """The secret itself: for the `start` ack only."""
        return self._token

    def matches(self, presented: Any) -> bool:
        """Whether `presented` is this token (constant time; non-strings never match)."""
        if not isinstance(presented, str):
            return False
        return hmac.compare_digest(self._token.encode(), presented.encode("utf-8", "replace"))

    def __repr__(self) -> str:
        return "ResumeTicket(<hidden>)"


class SeqVerdict(Enum):
    """What a numbered chunk is to the session."""

    NEW = "new"  # the next one (or the first): write it
    DUPLICATE = "duplicate"  # already accepted: drop it, ack success
    GAP = "gap"  # chunks are missing before it: the stream cannot go on
    TOO_HIGH = "too-high"  # a first number of MAX_FIRST_SEQ or more: refused, not written


class ChunkSequence:
    """The last accepted sequence number of a session's numbered chunks.

    `check` only classifies; `accept` records a chunk once the session took it, so that a
    chunk refused for another reason (limits, stream not running) may be sent again.
    """

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: int | None = None

    def check(self, seq: int) -> SeqVerdict:
        """Classify `seq` against the last accepted number (any first number below
        MAX_FIRST_SEQ is new)."""
        if self.last is None:
            return SeqVerdict.NEW if seq < MAX_FIRST_SEQ else SeqVerdict.TOO_HIGH
        if seq == self.last + 1:
            return SeqVerdict.NEW
        if seq <= self.last:
            return SeqVerdict.DUPLICATE
        return SeqVerdict.GAP

    def accept(self, seq: int) -> None:
        """Record `seq` as taken (call only after `check` said NEW)."""
        self.last = seq


def parse_seq(value: Any) -> int | None:
    """A chunk's `seq` argument: None when absent (null), else an int in [0, 2**53).

    Raises ValueError for anything else (bools, floats, strings, out of range).
    """
    if value is None:
        return None
    # bool is an int subclass: `true` is not a sequence number.
    if type(value) is not int or not 0 <= value < MAX_SEQ:
        raise ValueError("must be an integer from 0 to 2**53 - 1")
    return value


def parse_resume_request(raw: Any) -> tuple[str, str] | None:
    """`(session_id, token)` from a `resume` payload, or None when it is malformed."""
    if not isinstance(raw, dict):
        return None
    session_id, token = raw.get("sessionId"), raw.get("token")
    if not isinstance(session_id, str) or not isinstance(token, str):
        return None
    # Bounded: a hostile client should not make the relay compare megabytes.
    if not 0 < len(session_id) <= 64 or not 0 < len(token) <= 256:
        return None
    return session_id, token
