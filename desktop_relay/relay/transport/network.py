"""The machine's LAN addresses, for the join URLs shown to the operator."""

from __future__ import annotations

import contextlib
import ipaddress
import socket


def lan_addresses() -> list[str]:
    """IPv4 addresses other machines may reach this one on, best guess first."""
    found: list[str] = []
    # A UDP "connect" sends nothing; it only asks the kernel which source address it
    # would route from, which is the address the LAN knows us by.
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
        found.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    out: list[str] = []
    for addr in found:
        ip = ipaddress.ip_address(addr)
        if not ip.is_loopback and not ip.is_unspecified and addr not in out:
            out.append(addr)
    return out


def join_urls(host: str, port: int, *, tls: bool) -> list[str]:
    """The URLs browsers should open for a relay listening on `host`."""
    scheme = "https" if tls else "http"
    hosts = [*lan_addresses(), "127.0.0.1"] if host in ("0.0.0.0", "::", "") else [host]
    return [f"{scheme}://{h if ':' not in h else f'[{h}]'}:{port}/" for h in hosts]
