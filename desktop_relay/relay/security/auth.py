"""The pairing token browsers must present, and how it travels."""

from __future__ import annotations

import contextlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .private_files import private_dir, tighten, write_private

TOKEN_BYTES = 16


def new_token() -> str:
    """A fresh random token, short enough to type if a QR code cannot be scanned."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def presented_token(environ: dict[str, Any], auth: Any) -> str | None:
    """The token a client sent: socket.io `auth.token` first, else the URL's `token=`."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    values = query.get("token")
    return values[0] if values else None


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison."""
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def load_or_create_token(path: Path) -> str:
    """The token kept in `path` (made once, readable only by the user).

    A file an older version left readable by others is made 0600 (folder 0700) first.
    """
    with contextlib.suppress(OSError):
        private_dir(path.parent)
    tighten(path)
    try:
        token = path.read_text().strip()
        if token:
            return token
    except OSError:
        pass
    token = new_token()
    save_token(path, token)
    return token


def save_token(path: Path, token: str) -> None:
    """Keep `token` in `path`, readable only by the user (after a rotation, for next start)."""
    private_dir(path.parent)
    write_private(path, (token + "\n").encode())
