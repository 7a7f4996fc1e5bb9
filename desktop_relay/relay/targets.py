"""RTMP target validation and stream-key masking.

A target ends up as an ffmpeg argument, so it must never be something ffmpeg would read as a
file, another protocol or an option: only `rtmp://` or `rtmps://` with a plain host name.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_TARGET_LENGTH = 2048
_SCHEMES = ("rtmp", "rtmps")
# Plain DNS names or IPv4 literals; IPv6 literals are handled separately in brackets.
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$"
)
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+$")
_PATH_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_QUERY_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")


class TargetError(ValueError):
    """A target that is not an acceptable rtmp:// or rtmps:// address."""


def validate_target(url: object) -> str:
    """Return `url` if it is a safe RTMP(S) target, else raise TargetError saying why."""
    if not isinstance(url, str):
        raise TargetError("must be a string")
    if not url:
        raise TargetError("is empty")
    if len(url) > MAX_TARGET_LENGTH:
        raise TargetError(f"is longer than {MAX_TARGET_LENGTH} characters")
    if not url.isascii():
        raise TargetError("contains non-ASCII characters (use punycode for host names)")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetError("contains spaces or control characters")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise TargetError("must start with rtmp:// or rtmps://")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"is not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetError("must not contain user credentials; put the key in the path")
    host = parts.hostname or ""
    if not host:
        raise TargetError("has no host")
    if parts.netloc.startswith("["):
        if not _IPV6_RE.match(host):
            raise TargetError("has an invalid IPv6 host")
    elif not _HOST_RE.match(host):
        raise TargetError("has an invalid host name")
    if port is not None and not 0 < port < 65536:
        raise TargetError("has an invalid port")
    if not _PATH_RE.match(parts.path) or not _QUERY_RE.match(parts.query) or parts.fragment:
        raise TargetError("has characters not allowed in an RTMP path")
    return url


def split_key(url: str) -> tuple[str, str]:
    """Split a target into its server part and its stream key (last path segment + query)."""
    parts = urlsplit(url)
    path = parts.path
    base_path, _, key = path.rpartition("/")
    if parts.query:
        key = f"{key}?{parts.query}"
    server = f"{parts.scheme}://{parts.netloc}{base_path}"
    return server, key


def mask_key(key: str) -> str:
    """Hide a stream key, keeping only enough of its end to tell keys apart."""
    if not key:
        return ""
    if len(key) < 12:
        return "****"
    return "****" + key[-4:]


def mask_target(url: str | None) -> str | None:
    """The target with its stream key masked: safe to log, show and send to clients."""
    if url is None:
        return None
    try:
        server, key = split_key(url)
    except ValueError:
        return "****"
    if not key:
        return server
    return f"{server}/{mask_key(key)}"


def mask_in_text(text: str, secrets: list[str]) -> str:
    """Replace every known secret (stream keys, whole targets) in free text such as ffmpeg logs."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_key(secret))
    return text


def secrets_of(url: str | None) -> list[str]:
    """The strings that must never appear unmasked when `url` is in use."""
    if not url:
        return []
    try:
        _, key = split_key(url)
    except ValueError:
        return [url]
    out = [key] if key else []
    if "?" in key:
        out.extend(p for p in key.split("?") if p)
    return out
