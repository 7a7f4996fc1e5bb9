"""Where a stream goes: the destination kinds (`rtmp`, `rtmps`, `srt`, `file`).

A kind owns everything that differs between them: which addresses it accepts (a target ends
up as an ffmpeg argument, so it must never be something ffmpeg would read as a file, another
protocol or an option), which part of an address is secret and how it is masked, the muxer
and its arguments, how an ended or stalled ffmpeg is told, and the error a lost connection
is named by. Everything else (outputs, sessions, the window) asks the kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from ..errors import ErrorName, ServerError
from ..ffmpeg.output_args import copy_from_flv
from ..ffmpeg.process import exit_error

MAX_TARGET_LENGTH = 2048
# Shorter parts of a key are not masked on their own: they would garble common words in logs
# (the whole key is always masked, whatever its length, by `mask_target`).
MIN_SECRET_LENGTH = 4
# Where a host or an application ends.
_SEPARATOR = re.compile(r"[/?#]")
# Plain DNS names or IPv4 literals; IPv6 literals are handled separately in brackets.
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$"
)
_IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+$")
_PATH_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_QUERY_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$")
# ffmpeg's exit code when a write fails with EPIPE (-EPIPE & 0xff).
_EXIT_EPIPE = 224

# What ffmpeg prints when it cannot reach an RTMP server, or when one drops the connection.
_RTMP_FAILURE = re.compile(
    r"Connection refused|Cannot open connection|Connection timed out|No route to host|"
    r"Name or service not known|Failed to resolve|Network is unreachable|Server error|"
    r"Handshake|TLS|Error opening output",
    re.IGNORECASE,
)
_RTMP_CLOSED = re.compile(
    r"Broken pipe|Connection reset by peer|End of file|Error number -32 occurred",
    re.IGNORECASE,
)
# libsrt through ffmpeg: a caller that finds no listener, or loses it.
_SRT_FAILURE = re.compile(
    r"Connection setup failure|Connection refused|Connection timed out|connection timeout|"
    r"No route to host|Name or service not known|Failed to resolve|Network is unreachable|"
    r"Error opening output|Invalid argument",
    re.IGNORECASE,
)
_SRT_CLOSED = re.compile(
    r"Connection was broken|Broken pipe|Connection reset|Input/output error|"
    r"Error number -32 occurred",
    re.IGNORECASE,
)
_FILE_FAILURE = re.compile(
    r"No space left on device|Permission denied|Read-only file system|Input/output error|"
    r"Disk quota exceeded|File too large|Error writing trailer|Error submitting a packet to "
    r"the muxer",
    re.IGNORECASE,
)
# SRT options a target may carry: what a caller needs, nothing that opens a port here.
_SRT_OPTIONS = frozenset({"streamid", "passphrase", "pbkeylen", "latency", "mode"})
_SRT_SECRET_OPTIONS = ("streamid", "passphrase")


class TargetError(ValueError):
    """A target that is not an acceptable rtmp://, rtmps:// or srt:// address."""


class DestinationKind:
    """One kind of destination; see module doc. Instances are the module's constants."""

    name: ClassVar[str]
    # What the window and messages call the far end.
    label: ClassVar[str]
    # The error a connection that fails or is lost is named by.
    connection_error: ClassVar[ErrorName]
    is_recording: ClassVar[bool] = False

    def validate(self, url: str) -> str:
        """Return `url` if it is a safe target of this kind, else raise TargetError."""
        raise NotImplementedError

    def split_key(self, url: str) -> tuple[str, str]:
        """The public server part and the secret part of `url` (ValueError if no URL)."""
        raise NotImplementedError

    def secrets(self, url: str) -> list[str]:
        """The strings that must never appear unmasked while `url` is in use."""
        raise NotImplementedError

    def mask(self, url: str) -> str:
        """`url` with its secret part masked: safe to log, show and send."""
        raise NotImplementedError

    def muxer_args(self, url: str, send_buffer_size: int) -> list[str]:
        """The output side of a `-c copy` ffmpeg sending to `url`."""
        raise NotImplementedError

    def classify_exit(self, returncode: int | None, lines: list[str]) -> ServerError | None:
        """The error an ffmpeg exit with these last (masked) lines means, if this kind can
        tell; None leaves it to the generic rule."""
        return None

    def stall_message(self, waited: float, has_output: bool) -> str:
        """Why a running ffmpeg of this kind counts as stalled."""
        if has_output:
            return f"The {self.label} stopped taking the stream: nothing sent for {waited:.0f} s"
        return f"The {self.label} did not take the stream within {waited:.0f} s"


class _NetworkKind(DestinationKind):
    """A kind that connects to a server: a broken pipe or a 'closed' line means the server
    closed the connection, a 'failure' line that connecting failed (the regexes differ)."""

    closed_re: ClassVar[re.Pattern[str]]
    failure_re: ClassVar[re.Pattern[str]]

    def classify_exit(self, returncode: int | None, lines: list[str]) -> ServerError | None:
        details = "\n".join(lines)
        if returncode == _EXIT_EPIPE or any(self.closed_re.search(line) for line in lines):
            return ServerError(
                self.connection_error, f"The {self.label} closed the connection", details
            )
        if any(self.failure_re.search(line) for line in lines):
            return ServerError(
                self.connection_error, f"Connection to the {self.label} failed", details
            )
        return None


class _RtmpKind(_NetworkKind):
    connection_error = ErrorName.RTMP_CONNECTION_FAILED

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]  # one instance per scheme
        self.label = "RTMP server"  # type: ignore[misc]

    def validate(self, url: str) -> str:
        parts = _split_url(url)
        if not _PATH_RE.match(parts.path) or not _QUERY_RE.match(parts.query) or parts.fragment:
            raise TargetError("has characters not allowed in an RTMP path")
        return url

    def split_key(self, url: str) -> tuple[str, str]:
        return _split_rtmp_key(url)

    def secrets(self, url: str) -> list[str]:
        return _rtmp_secrets(url)

    def mask(self, url: str) -> str:
        server, key = _split_rtmp_key(url)
        if not key:
            return server
        if key.startswith("?"):
            return f"{server}?{mask_key(key[1:])}"
        return f"{server}/{mask_key(key.rstrip('/'))}"

    def muxer_args(self, url: str, send_buffer_size: int) -> list[str]:
        return [
            "-f",
            "flv",
            "-flvflags",
            "no_duration_filesize",
            # A fixed socket buffer of about a quarter second of the stream (encoder_args.
            # send_buffer_size; Linux doubles it): with the kernel's autotuned 4 MiB, a stalled
            # server swallows minutes of a low bitrate before ffmpeg blocks where the stall
            # watchdog sees it.
            "-send_buffer_size",
            str(send_buffer_size),
            url,
        ]

    closed_re = _RTMP_CLOSED
    failure_re = _RTMP_FAILURE


class _SrtKind(_NetworkKind):
    name = "srt"
    label = "SRT server"
    connection_error = ErrorName.SRT_CONNECTION_FAILED

    def validate(self, url: str) -> str:
        parts = _split_url(url)
        if parts.port is None:
            raise TargetError("needs a port (srt://host:port)")
        if parts.path not in ("", "/") or parts.fragment:
            raise TargetError("must have no path: put the stream id in ?streamid=")
        if not _QUERY_RE.match(parts.query):
            raise TargetError("has characters not allowed in an SRT query")
        try:
            options = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            options = [] if not parts.query else [("", "")]
        seen: set[str] = set()
        for name, value in options:
            if name not in _SRT_OPTIONS:
                allowed = ", ".join(sorted(_SRT_OPTIONS))
                raise TargetError(f"has an SRT option {name!r} that is not allowed ({allowed})")
            if name in seen:
                raise TargetError(f"gives the SRT option {name!r} twice")
            seen.add(name)
            _check_srt_option(name, value)
        return url

    def split_key(self, url: str) -> tuple[str, str]:
        scheme_end = url.find("://")
        if scheme_end < 0:
            raise ValueError("not a URL")
        server, sep, query = url.partition("?")
        return server.rstrip("/"), f"{sep}{query}" if sep else ""

    def secrets(self, url: str) -> list[str]:
        _, query = self.split_key(url)
        found: set[str] = set()
        for name, value in _srt_options(query):
            if name in _SRT_SECRET_OPTIONS and value:
                found.update({value, f"{name}={value}"})
        # ffmpeg may print the URL's query with its escapes, or unescaped.
        found.update({unquote(part) for part in found})
        found.update(
            part
            for part in query.lstrip("?").split("&")
            if part.partition("=")[0] in _SRT_SECRET_OPTIONS
        )
        return sorted(part for part in found if len(part) >= MIN_SECRET_LENGTH)

    def mask(self, url: str) -> str:
        server, query = self.split_key(url)
        if not query:
            return server
        shown = []
        for part in query.lstrip("?").split("&"):
            name, _, value = part.partition("=")
            shown.append(f"{name}={mask_key(value)}" if name in _SRT_SECRET_OPTIONS else part)
        return f"{server}?{'&'.join(shown)}"

    def muxer_args(self, url: str, send_buffer_size: int) -> list[str]:
        # MPEG-TS over SRT: what SRT receivers (OBS, SRT ingest of platforms, ffmpeg) expect.
        # H.264 from FLV gets Annex B start codes and AAC its ADTS headers from the muxer.
        return ["-f", "mpegts", url]

    closed_re = _SRT_CLOSED
    failure_re = _SRT_FAILURE


class _FileKind(DestinationKind):
    name = "file"
    label = "recording"
    connection_error = ErrorName.RECORDING_FAILED
    is_recording = True

    def validate(self, url: str) -> str:
        return url  # made by the relay (recordings.py), never given by anyone

    def split_key(self, url: str) -> tuple[str, str]:
        return url, ""

    def secrets(self, url: str) -> list[str]:
        return []

    def mask(self, url: str) -> str:
        return "recording"

    def muxer_args(self, url: str, send_buffer_size: int) -> list[str]:
        raise TypeError("a recording is written through an inherited fd (output_args)")

    def classify_exit(self, returncode: int | None, lines: list[str]) -> ServerError | None:
        cause = next((m.group(0) for line in lines if (m := _FILE_FAILURE.search(line))), None)
        if cause:
            return ServerError(
                ErrorName.RECORDING_FAILED,
                f"Writing the recording failed ({cause})",
                "\n".join(lines),
            )
        return None

    def stall_message(self, waited: float, has_output: bool) -> str:
        return f"The recording stopped being written: nothing for {waited:.0f} s"


RTMP = _RtmpKind("rtmp")
RTMPS = _RtmpKind("rtmps")
SRT = _SrtKind()
FILE = _FileKind()
# The kinds a target (not a recording) may be, by scheme.
KINDS: dict[str, DestinationKind] = {k.name: k for k in (RTMP, RTMPS, SRT)}
SCHEMES_TEXT = "rtmp://, rtmps:// or srt://"


@dataclass(frozen=True)
class Destination:
    """Where one output of a session goes: a target of a kind, or a local recording file."""

    url: str
    is_file: bool = False

    @property
    def kind(self) -> DestinationKind:
        """The destination's kind (FILE for a recording)."""
        return FILE if self.is_file else kind_of(self.url)

    @property
    def is_recording(self) -> bool:
        """Whether this is a local recording (the one place that question is answered)."""
        return self.kind.is_recording

    @property
    def masked(self) -> str:
        """The address as it may be shown, logged and sent."""
        return self.kind.mask(self.url) if not self.is_file else "recording"

    def secrets(self) -> list[str]:
        """What must never appear unmasked while it is in use."""
        return self.kind.secrets(self.url)


def classify_exit(
    returncode: int | None,
    last_lines: list[str],
    *,
    to_file: bool = False,
    kind: DestinationKind | None = None,
) -> ServerError:
    """Turn an unexpected exit of an output's ffmpeg into the protocol's error, with its last
    output lines: the kind's own reading first (`to_file`: a recording, whose failure is a
    file error, never a connection one), else "ffmpeg ended unexpectedly"."""
    recent = last_lines[-12:]
    told = (FILE if to_file else kind or RTMP).classify_exit(returncode, recent)
    return told if told is not None else exit_error(returncode, recent)


def kind_named(name: str) -> DestinationKind:
    """The kind of this name (`OutputStatus.kind`); KeyError for none."""
    return FILE if name == FILE.name else KINDS[name]


def build_output_args(binary: str, url: str, send_buffer_size: int) -> list[str]:
    """`-c copy` from FLV on stdin to one target, in its kind's muxer."""
    return [*copy_from_flv(binary), *kind_of(url).muxer_args(url, send_buffer_size)]


def kind_of(url: str) -> DestinationKind:
    """The kind of a target by its scheme (ValueError for none of ours)."""
    scheme, sep, _ = url.partition("://")
    kind = KINDS.get(scheme.lower()) if sep else None
    if kind is None:
        raise ValueError(f"not a {SCHEMES_TEXT} target")
    return kind


def validate_target(url: object) -> str:
    """Return `url` if it is a safe rtmp://, rtmps:// or srt:// target, else raise
    TargetError saying why."""
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
    try:
        kind = kind_of(url)
    except ValueError:
        raise TargetError(f"must start with {SCHEMES_TEXT}") from None
    return kind.validate(url)


def split_key(url: str) -> tuple[str, str]:
    """Split a target into its public server part and its secret part (the stream key of
    RTMP, the query of SRT). RTMP: the server part is the scheme, host, port and RTMP
    application (the first path segment); the key is everything after it: the whole play
    path, trailing slashes and query included. Masking by this structure rather than by "the
    last segment" keeps keys hidden wherever the operator put them (`app/KEY/`,
    `app/KEY/extra`, `app/stream?key=...`, `app?token=...`). When nothing follows the first
    segment, that segment is the key: it is what a custom server typed without an
    application plus a key typed apart gives (`rtmp://host` + `KEY`).
    `url == server + "/" + key` (no slash when the key starts with `?`).
    """
    try:
        kind = kind_of(url)
    except ValueError:
        return _split_rtmp_key(url)
    return kind.split_key(url)


def mask_target(url: str | None) -> str | None:
    """The target with its secrets masked: safe to log, show and send to clients."""
    if url is None:
        return None
    try:
        return kind_of(url).mask(url)
    except ValueError:
        try:
            return RTMP.mask(url)
        except ValueError:
            return "****"


def secrets_of(url: str | None) -> list[str]:
    """The strings that must never appear unmasked when `url` is in use: the whole secret
    and each of its parts on its own, as ffmpeg may print them apart."""
    if not url:
        return []
    try:
        kind = kind_of(url)
    except ValueError:
        kind = RTMP
    try:
        return kind.secrets(url)
    except ValueError:
        return [url]


def mask_key(key: str) -> str:
    """Hide a stream key, keeping only enough of its end to tell keys apart."""
    if not key:
        return ""
    if len(key) < 12:
        return "****"
    return "****" + key[-4:]


def mask_in_text(text: str, secrets: list[str]) -> str:
    """Replace every known secret (stream keys, whole targets) in free text such as ffmpeg logs."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, mask_key(secret))
    return text


def _split_url(url: str) -> SplitResult:
    """The checks every network target shares: a URL with a host, no credentials."""
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
    return parts


def _srt_options(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def _check_srt_option(name: str, value: str) -> None:
    if name == "mode" and value != "caller":
        # A listener or rendezvous target would open a port on the operator's machine.
        raise TargetError("may only use mode=caller (a listener would open a port here)")
    if name == "passphrase" and not 10 <= len(value) <= 79:
        raise TargetError("has a passphrase that is not 10 to 79 characters long")
    if name == "streamid" and not value:
        raise TargetError("has an empty streamid")
    if name == "pbkeylen" and value not in ("0", "16", "24", "32"):
        raise TargetError("has a pbkeylen that is not 16, 24 or 32")
    if name == "latency" and not (value.isdigit() and 0 <= int(value) <= 60_000_000):
        raise TargetError("has a latency that is not microseconds (0 to 60000000)")


def _split_rtmp_key(url: str) -> tuple[str, str]:
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


def _rtmp_secrets(url: str) -> list[str]:
    """The strings that must never appear unmasked when `url` is in use.

    The whole key (see `split_key`), and each of its path segments, query pairs and query
    values on its own: ffmpeg prints them apart (its application is `app/KEY` for
    `app/KEY/extra`, its tcUrl carries the query, a server error may name the play path).
    """
    try:
        _, key = _split_rtmp_key(url)
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
