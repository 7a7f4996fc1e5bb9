"""The relay served to browsers: the core (`core.Relay`) with its socket.io transport."""

from __future__ import annotations

from aiohttp import web

from .config import RelayConfig
from .core import Relay
from .transport.socket_transport import SocketTransport


class RelayServer(Relay):
    """A relay that listens: what the window, `--headless` and most library users run.

    Every control and observer of the core is here too (`kill`, `set_default_target`,
    `add_listener`...); this class only adds the network side.
    """

    def __init__(self, config: RelayConfig | None = None) -> None:
        super().__init__(config)
        self.transport = SocketTransport(self)

    @property
    def port(self) -> int | None:
        """The port listened on once started (the configured one may be 0)."""
        return self.transport.port

    @property
    def host(self) -> str:
        """The address listened on."""
        return self.config.host

    @property
    def scheme(self) -> str:
        """`https` when serving TLS, else `http`."""
        return self.transport.scheme

    def attach(self, app: web.Application) -> None:
        """Serve the relay (socket.io and the browser page) from an existing aiohttp app;
        then call `start_background()`."""
        self.transport.attach(app)

    async def start(self) -> None:
        """Listen on the configured host and port, and start the periodic work."""
        await self.transport.start()
        self.start_background()

    async def stop(self) -> None:
        """End every session (see `Relay.stop`), then stop serving."""
        await super().stop()
        await self.transport.stop()
