"""A test-owned TCP proxy on 127.0.0.1 that can stall, reset or refuse connections on command.

Faults are tested as they happen on a real network: a proxy between two real peers, not a
mock. It runs in its own thread so it works the same under plain asyncio, qasync or sync tests.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable

# Small kernel buffers on the proxy's side: a stalled peer then backs the sender up within
# seconds (as a real stalled server does), not after megabytes of loopback buffering.
_BUFFER = 16 * 1024


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port` until told to misbehave."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stalled = False
        self._refuse_until = 0.0
        # Client-to-server bytes per second while throttled (None: full speed), and until
        # when each throttled socket must wait before it is read again.
        self._uplink_rate: float | None = None
        self._clients: set[socket.socket] = set()
        self._paused: dict[socket.socket, float] = {}
        self._closed = False
        self.accepted = 0
        # Commands run on the proxy's own thread: the selector is not thread-safe.
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"proxy-{self.port}", daemon=True)
        self._thread.start()

    # ---- commands ------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop reading and forwarding in both directions; connections stay open."""
        self._stalled = True
        self._wake()

    def resume(self) -> None:
        """Forward again after `stall()`."""
        self._stalled = False
        self._wake()

    def throttle_uplink(self, bytes_per_second: float | None) -> None:
        """Forward what clients send at most this fast (None: full speed again); what the
        server sends is not slowed. A phone whose upload is slower than its stream."""
        self._uplink_rate = bytes_per_second
        self._wake()

    def reset_all(self) -> None:
        """Abort every open connection with a TCP reset (RST), on both sides."""
        if not self._thread.is_alive():
            self._reset_now()
            return
        done = threading.Event()
        self._commands.put(lambda: (self._reset_now(), done.set()))
        self._wake()
        done.wait(5)

    def _reset_now(self) -> None:
        with self._lock:
            pairs = list(self._peers.items())
            self._peers.clear()
        for sock, _ in pairs:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(sock)
            with contextlib.suppress(OSError):
                # Linger 0: close() sends RST instead of FIN, like a dropped NAT mapping.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()

    def refuse_for(self, seconds: float) -> None:
        """Reset new connections at once for `seconds`."""
        self._refuse_until = time.monotonic() + seconds

    def close(self) -> None:
        """Stop the proxy and close everything."""
        self._closed = True
        self._wake()
        self._thread.join(5)
        self._reset_now()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    # ---- the loop ------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _run(self) -> None:
        while not self._closed:
            while not self._commands.empty():
                self._commands.get()()
            self._unpause()
            for key, _ in self._selector.select(self._select_timeout()):
                if key.data == "wake":
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                elif key.fileobj is self._listener:
                    self._accept()
                elif not self._stalled:
                    self._forward(key.fileobj)  # type: ignore[arg-type]
            # While stalled, nothing is read: keep the sockets out of the selector so it
            # does not spin on readable data.
            self._sync_registration()

    def _sync_registration(self) -> None:
        with self._lock:
            socks = list(self._peers)
        for sock in socks:
            try:
                registered = self._selector.get_key(sock) is not None
            except (KeyError, ValueError):
                registered = False
            hold = self._stalled or sock in self._paused
            if hold and registered:
                self._selector.unregister(sock)
            elif not hold and not registered and sock.fileno() >= 0:
                self._selector.register(sock, selectors.EVENT_READ, "peer")

    def _unpause(self) -> None:
        now = time.monotonic()
        for sock, until in list(self._paused.items()):
            if until <= now or self._uplink_rate is None:
                del self._paused[sock]

    def _select_timeout(self) -> float:
        if not self._paused:
            return 0.2
        return max(0.0, min(0.2, min(self._paused.values()) - time.monotonic()))

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if time.monotonic() < self._refuse_until:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        self.accepted += 1
        for sock in (client, upstream):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(True)
        with self._lock:
            self._peers[client] = upstream
            self._peers[upstream] = client
            self._clients.add(client)

    def _forward(self, sock: socket.socket) -> None:
        with self._lock:
            other = self._peers.get(sock)
        if other is None:
            return
        rate = self._uplink_rate if sock in self._clients else None
        try:
            # Throttled: a twentieth of a second's worth at a time, then a pause as long.
            data = sock.recv(65536 if rate is None else max(1, int(rate / 20)))
            if data:
                other.sendall(data)
                if rate is not None:
                    self._paused[sock] = time.monotonic() + len(data) / rate
                return
        except OSError:
            pass
        self._drop(sock, other)

    def _drop(self, sock: socket.socket, other: socket.socket) -> None:
        with self._lock:
            self._peers.pop(sock, None)
            self._peers.pop(other, None)
            self._clients.discard(sock)
            self._clients.discard(other)
        self._paused.pop(sock, None)
        self._paused.pop(other, None)
        for s in (sock, other):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
