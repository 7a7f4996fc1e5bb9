"""RTMP target validation and stream-key masking.

A target ends up as an ffmpeg argument, so it must never be something ffmpeg would read as a
file, another protocol or an option: only `rtmp://` or `rtmps://` with a plain host name.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MAX_TARGET_LENGTH = 2048
# Shorter parts of a key are not masked on their own: they would garble common words in logs
# (the whole key is always masked, whatever its length, by `mask_target`).
MIN_SECRET_LENGTH = 4
# Where a host or an application ends.
_SEPARATOR = re.compile(r"[/?#]")
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
    """Split a target into its public server part and its secret part, the stream key.

    The server part is the scheme, host, port and RTMP application (the first path segment);
    the key is everything after it: the whole play path, trailing slashes and query included.
    Masking by this structure rather than by "the last segment" keeps keys hidden wherever the
    operator put them (`app/KEY/`, `app/KEY/extra`, `app/stream?key=...`, `app?token=...`).
    When nothing follows the first segment, that segment is the key: it is what a custom server
    typed without an application plus a key typed apart gives (`rtmp://host` + `KEY`).
    `url == server + "/" + key` (no slash when the key starts with `?`).
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        raise ValueError("not a URL")
    found = _SEPARATOR.search(url, scheme_end + 3)
    if found is None:
        return url, ""
    host_end = found.start()
    app_end = host_end
    if url[host_end] == "/":
        after_app = _SEPARATOR.search(url, host_end + 1)
        app_end = after_app.start() if after_app else len(url)
    tail = url[app_end:]
    if not tail.strip("/"):
        # Only one segment (or none): it is the operator's key, not an application to show.
        return url[:host_end], url[host_end:].removeprefix("/")
    return url[:app_end], tail.removeprefix("/")


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
    if key.startswith("?"):
        return f"{server}?{mask_key(key[1:])}"
    return f"{server}/{mask_key(key.rstrip('/'))}"


def mask_in_text(text: str, secrets: list[str]) -> str:
    """Replace every known secret (stream keys, whole targets) in free text such as ffmpeg logs."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, mask_key(secret))
    return text


def secrets_of(url: str | None) -> list[str]:
    """The strings that must never appear unmasked when `url` is in use.

    The whole key (see `split_key`), and each of its path segments, query pairs and query
    values on its own: ffmpeg prints them apart (its application is `app/KEY` for
    `app/KEY/extra`, its tcUrl carries the query, a server error may name the play path).
    """
    if not url:
        return []
    try:
        _, key = split_key(url)
    except ValueError:
        return [url]
    if not key:
        return []
    path, _, query = key.partition("?")
    found = {key, key.strip("/?"), path, query}
    found.update(path.split("/"))
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        found.update({pair, value if eq else name})
    found.update({unquote(part) for part in found})
    return sorted(part for part in found if len(part) >= MIN_SECRET_LENGTH)
