"""How the relay core speaks to one client, whatever carries it (socket.io in `transport`)."""

from __future__ import annotations

from typing import Any, Protocol


class ClientLink(Protocol):
    """One connected client as the core sees it: where it is, and three ways to reach it.

    Sends are queued and delivered in order; they never block the core. The transport that
    made the link reports the client's departure to the core on its own.
    """

    remote_address: str
    user_agent: str

    def send_error(self, payload: dict[str, Any]) -> None:
        """Queue an `error` event (the protocol's wire payload)."""

    def send_ffmpeg_output(self, line: str) -> None:
        """Queue an `ffmpegOutput` event (a masked ffmpeg log line)."""

    def send_output_state(self, payload: dict[str, Any]) -> None:
        """Queue an `outputState` event: one destination's state (OutputStatus.to_dict)."""

    def send_health(self, payload: list[dict[str, str]]) -> None:
        """Queue a `health` event: the stream's current warnings (HealthWarning.to_dict)."""

    async def close(self) -> None:
        """Deliver what is queued (briefly), then disconnect the client."""
