"""The relay child every benchmark runs (`--serve`): a relay on 127.0.0.1 that sends each
session where the benchmark says, served until SIGTERM (or SIGINT), then stopped gracefully.
Imported by the bench_*.py scripts, which run it in a process of its own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from desktop_relay.relay import RelayConfig, RelayServer
from desktop_relay.relay.config import StartConfig
from desktop_relay.relay.outputs.destinations import Destination
from desktop_relay.relay.session.session import Session

Targets = Callable[[Session, StartConfig], list[Destination]]


class BenchRelay(RelayServer):
    """A relay whose sessions go where `targets` says (None: the relay's own choice)."""

    def __init__(self, config: RelayConfig, targets: Targets | None = None) -> None:
        super().__init__(config)
        self._targets = targets

    def resolve_outputs(self, session: Session, config: StartConfig) -> list[Destination]:
        if self._targets is None:
            return super().resolve_outputs(session, config)
        return self._targets(session, config)


async def serve_until_sigterm(relay: RelayServer, *, announce: bool = True) -> None:
    """Start `relay`, say where it listens (`listening on 127.0.0.1:PORT`, which the parent
    waits for), serve until SIGTERM or SIGINT, then stop it (sessions end gracefully)."""
    await relay.start()
    if announce:
        print(f"listening on 127.0.0.1:{relay.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await relay.stop()
