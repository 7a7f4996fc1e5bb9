"""Whether a session takes an incoming chunk: the checks `Session.feed` runs, in order.

The verdict only says what to do; the session does it (answers the ack, counts, queues,
fails). The order matters: a chunk refused before the limits spends none of the client's
rate, and a numbered chunk is taken (its number recorded) only once it passed the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import FFMPEG_NOT_RUNNING, RELAY_SHUTTING_DOWN, ErrorName, ServerError
from ..status import SessionState
from .limits import ClientLimits
from .resume import MAX_FIRST_SEQ, ChunkSequence, SeqVerdict
from .state import ACTIVE_STATES


class ChunkAction(Enum):
    """What becomes of a chunk. The values name the task that fails the session."""

    WRITE = "write"  # queue it for the encoder
    HEARTBEAT = "heartbeat"  # empty: a paused browser is still there; ack at once
    DUPLICATE = "duplicate"  # already taken (a resend after a resume): drop, ack success
    SHUTTING_DOWN = "shutdown"  # the relay stops
    NOT_RUNNING = "not-running"  # no stream: before `start` or after `stop`
    GAP = "gap"  # numbered chunks are missing before it
    INVALID = "invalid"  # a number the stream cannot take (a first one near the top)
    OVER_LIMIT = "limit"  # too large, or over the chunk rate or the bitrate
    OVERLOADED = "overload"  # too much already waits for the encoder


@dataclass(frozen=True)
class ChunkVerdict:
    """The decision on one chunk: `error` is its ack when it is refused."""

    action: ChunkAction
    error: ServerError | None = None

    @property
    def fails_session(self) -> bool:
        """The refusal ends the session's stream (fatal), not only this chunk."""
        return self.action in (ChunkAction.GAP, ChunkAction.OVER_LIMIT, ChunkAction.OVERLOADED)

    @property
    def taken(self) -> bool:
        """The chunk counts as the client's: the idle clock restarts and its number is
        recorded, even if the overload check then refuses it (the session fails anyway)."""
        return self.action in (ChunkAction.WRITE, ChunkAction.HEARTBEAT, ChunkAction.OVERLOADED)


WRITE = ChunkVerdict(ChunkAction.WRITE)
HEARTBEAT = ChunkVerdict(ChunkAction.HEARTBEAT)
DUPLICATE = ChunkVerdict(ChunkAction.DUPLICATE)


def admit_chunk(
    *,
    size: int,
    seq: int | None,
    closed: bool,
    state: SessionState,
    sequence: ChunkSequence,
    limits: ClientLimits | None,
    buffered_bytes: int,
    max_buffered_bytes: int,
) -> ChunkVerdict:
    """Decide on a chunk of `size` bytes numbered `seq` (None: unnumbered).

    Spends the client's rate in `limits` when the chunk gets that far; changes nothing else
    (the caller records `seq` in `sequence` when the verdict is `taken`).
    """
    if closed:
        return ChunkVerdict(ChunkAction.SHUTTING_DOWN, RELAY_SHUTTING_DOWN)
    if state not in ACTIVE_STATES:
        return ChunkVerdict(ChunkAction.NOT_RUNNING, FFMPEG_NOT_RUNNING)
    if seq is not None:
        verdict = sequence.check(seq)
        if verdict is SeqVerdict.DUPLICATE:
            # Writing it again would corrupt the stream; but it counts against the limits
            # like any chunk, or resending old numbers would be a way round them.
            refusal = limits.check(size) if limits else None
            if refusal is not None:
                return ChunkVerdict(ChunkAction.OVER_LIMIT, refusal)
            return DUPLICATE
        if verdict is SeqVerdict.TOO_HIGH:
            return ChunkVerdict(
                ChunkAction.INVALID,
                ServerError(
                    ErrorName.INVALID_PARAMETERS,
                    f"Invalid 'binarystream' seq: a stream's first chunk must be numbered "
                    f"below {MAX_FIRST_SEQ}",
                    fatal=False,
                ),
            )
        if verdict is SeqVerdict.GAP:
            return ChunkVerdict(
                ChunkAction.GAP,
                ServerError(
                    ErrorName.CHUNK_GAP,
                    f"Chunk {seq} came after chunk {sequence.last}: chunks from "
                    f"{(sequence.last or 0) + 1} on are missing, the stream cannot go on",
                ),
            )
    refusal = limits.check(size) if limits else None
    if refusal is not None:
        return ChunkVerdict(ChunkAction.OVER_LIMIT, refusal)
    if not size:
        return HEARTBEAT
    if buffered_bytes + size > max_buffered_bytes:
        return ChunkVerdict(
            ChunkAction.OVERLOADED,
            ServerError(
                ErrorName.RELAY_OVERLOADED,
                "The relay cannot send the stream as fast as it arrives (ffmpeg or the RTMP "
                f"server is too slow); more than {max_buffered_bytes / 1048576:.1f} MiB waited",
            ),
        )
    return WRITE
