"""Errors as values with the stable names of the wire protocol."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorName(StrEnum):
    """Error names sent to clients; the first eight are those of the original server."""

    FFMPEG_NOT_FOUND = "FFMPEG_NOT_FOUND"
    FFMPEG_UNEXPECTED_END = "FFMPEG_UNEXPECTED_END"
    FFMPEG_NOT_RUNNING = "FFMPEG_NOT_RUNNING"
    RTMP_CONNECTION_FAILED = "RTMP_CONNECTION_FAILED"
    INVALID_PARAMETERS = "INVALID_PARAMETERS"
    CANT_START_FFMPEG = "CANT_START_FFMPEG"
    FFMPEG_WRITE_ERROR = "FFMPEG_WRITE_ERROR"
    FFMPEG_ERROR = "FFMPEG_ERROR"
    # Added by Desktop Relay.
    MAX_STREAMS_REACHED = "MAX_STREAMS_REACHED"
    TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"
    UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA"
    RELAY_OVERLOADED = "RELAY_OVERLOADED"
    KILLED_BY_OPERATOR = "KILLED_BY_OPERATOR"
    RELAY_SHUTTING_DOWN = "RELAY_SHUTTING_DOWN"
    ALREADY_STARTED = "ALREADY_STARTED"
    AUTH_FAILED = "AUTH_FAILED"
    CHUNK_TOO_LARGE = "CHUNK_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"
    RECORDING_FAILED = "RECORDING_FAILED"
    OUTPUT_STALLED = "OUTPUT_STALLED"
    OUTPUT_RECONNECTING = "OUTPUT_RECONNECTING"
    SRT_CONNECTION_FAILED = "SRT_CONNECTION_FAILED"
    RELAY_BUSY = "RELAY_BUSY"
    SESSION_TAKEN_OVER = "SESSION_TAKEN_OVER"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    CHUNK_GAP = "CHUNK_GAP"
    RESUME_REFUSED = "RESUME_REFUSED"


@dataclass(frozen=True)
class ServerError:
    """An error as the protocol knows it: a stable name, a human message, optional details."""

    name: ErrorName
    message: str
    details: str | None = None
    fatal: bool = True

    def to_wire(self, *, send_details: bool) -> dict[str, Any]:
        """The `error` event payload; details only when the operator allows them."""
        payload: dict[str, Any] = {
            "name": str(self.name),
            "message": self.message,
            "fatal": self.fatal,
        }
        if send_details and self.details:
            payload["details"] = self.details
        return payload


class RelayError(Exception):
    """Raised inside the relay to carry a ServerError to the one place that reports it."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(f"{error.name}: {error.message}")
        self.error = error


def invalid(field: str, message: str) -> RelayError:
    """An INVALID_PARAMETERS refusal that names the offending field."""
    return RelayError(
        ServerError(ErrorName.INVALID_PARAMETERS, f"Invalid '{field}': {message}", fatal=True)
    )


RELAY_SHUTTING_DOWN = ServerError(
    ErrorName.RELAY_SHUTTING_DOWN,
    "The relay is shutting down: this stream has ended",
)

FFMPEG_NOT_RUNNING = ServerError(
    ErrorName.FFMPEG_NOT_RUNNING,
    "The stream is not started: send 'start' before media data.",
    fatal=False,
)
