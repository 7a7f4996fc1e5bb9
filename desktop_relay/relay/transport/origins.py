"""Which web pages may open a socket to the relay (socket.io's CORS check)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def own_origin(scheme: Callable[[], str]) -> Callable[[str, dict[str, Any]], bool]:
    """The default rule: pages this relay serves, over https when it serves TLS.

    engine.io's own default compares with `http://` + Host (its aiohttp driver does not see
    TLS), which refuses the relay's own https page.
    """

    def allowed(origin: str, environ: dict[str, Any]) -> bool:
        host = environ.get("HTTP_HOST", "")
        ours = scheme()
        candidates = [f"{ours}://{host}"]
        if "HTTP_X_FORWARDED_PROTO" in environ or "HTTP_X_FORWARDED_HOST" in environ:
            # Behind a proxy, as engine.io's default allows.
            proto = environ.get("HTTP_X_FORWARDED_PROTO", ours).split(",")[0].strip()
            forwarded = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0].strip()
            candidates.append(f"{proto}://{forwarded}")
        return origin in candidates

    return allowed
