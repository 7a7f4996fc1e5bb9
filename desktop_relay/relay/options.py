"""The operator's relay options as one table: the command line, the window's settings file and
its Settings dialog all read `OPTIONS`, so an option's flag, label, limits and validation are
written once.

Each option has two forms: its *setting value* (str, int, float, bool, a tuple of str, or None
for "not set"), which the window keeps and the dialog edits, and its RelayConfig value
(`to_config`), which may differ in type (a path becomes a `Path`). `parse` is the validation:
argparse calls it through a type wrapper and the dialog on what was typed, so both refuse a
value with the same message.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .config import RelayConfig
from .ffmpeg import video_encoders
from .target_pattern import PatternError, check_pattern

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class OptionKind(enum.Enum):
    """How an option is written, parsed and edited."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    LIST = "list"
    PATH = "path"


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Option:
    """One operator-settable relay option."""

    name: str  # the setting's name (GuiSettings attribute) and the argparse dest
    field: str  # the RelayConfig field it sets ("tls" for the certificate and its key)
    flag: str  # the command line's flag
    label: str  # the dialog's label
    help: str  # the command line's help and the dialog's tooltip
    kind: OptionKind
    group: str  # the dialog's tab: Network, Limits, Sessions, Files, Security, Logging
    key: str  # the key in the settings file
    default: Any  # the setting value when nothing is given
    # A running relay's config is immutable: all but a few options need a new relay.
    restart: bool = True
    reason: str = ""  # how a restart question names it (default: the label, lower case)
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # None is a valid value ("unlimited", "never"); numbers write it as 0.
    optional: bool = False
    # For numbers: 0 or less means None (today's `--idle-timeout 0`: never).
    zero_is_none: bool = False
    # The dialog's text for 0 or None in a number box ("unlimited", "any free port").
    zero_text: str = ""
    unit: str = ""  # shown after a number in the dialog
    metavar: str | None = None
    placeholder: str = ""
    # Extra validation of a text (or of each item of a list): returns it, or raises ValueError.
    check: Callable[[str], str] | None = None
    # PATH options: a folder (else a file); whether RelayConfig holds a Path (else a str).
    directory: bool = False
    config_path: bool = True

    @property
    def restart_reason(self) -> str:
        """How a restart question names this option."""
        return self.reason or self.label.lower()

    def parse(self, text: str) -> Any:
        """The setting value `text` stands for; ValueError with a message saying why not."""
        text = text.strip()
        kind = self.kind
        if kind in (OptionKind.INT, OptionKind.FLOAT):
            return self._number(text)
        if kind is OptionKind.BOOL:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"must be true or false, not {text!r}")
        if kind is OptionKind.CHOICE:
            for choice in self.choices:
                if choice.lower() == text.lower():
                    return choice
            choose = ", ".join(repr(c) for c in self.choices)
            raise ValueError(f"invalid choice: {text!r} (choose from {choose})")
        if kind is OptionKind.LIST:
            items = tuple(self.parse_item(item) for item in re.split(r"[\s,]+", text) if item)
            return items or self.default
        if not text:
            return self.default
        return self.check(text) if self.check else text

    def parse_item(self, text: str) -> str:
        """One item of a LIST option (the command line gives them one flag each)."""
        text = text.strip()
        if not text:
            raise ValueError("must not be empty")
        return self.check(text) if self.check else text

    def read(self, text: str) -> Any:
        """`parse`, also taking what `format` writes for None (a settings file's 0)."""
        if self.optional and text.strip() in ("", self.format(None)):
            return None
        return self.parse(text)

    def format(self, value: Any) -> str:
        """The text of a setting value, which `read` takes back."""
        if self.kind in (OptionKind.INT, OptionKind.FLOAT):
            if value is None:
                return "0"
            if self.kind is OptionKind.INT or float(value).is_integer():
                return str(int(value))
            return repr(float(value))
        if self.kind is OptionKind.BOOL:
            return "true" if value else "false"
        if self.kind is OptionKind.LIST:
            return ", ".join(value or ())
        return "" if value is None else str(value)

    def to_config(self, value: Any) -> Any:
        """The RelayConfig value of a setting value."""
        if self.kind is OptionKind.PATH and self.config_path:
            return Path(value) if value else None
        if self.kind is OptionKind.LIST:
            if not value:
                return None
            # socket.io takes "*" (any origin) as a string, not as an item of a list.
            return "*" if tuple(value) == ("*",) else list(value)
        return value

    def from_config(self, value: Any) -> Any:
        """The setting value of a RelayConfig value."""
        if self.kind is OptionKind.PATH:
            return str(value) if value else None
        if self.kind is OptionKind.LIST:
            if not value:
                return None
            return (value,) if isinstance(value, str) else tuple(value)
        return value

    def _number(self, text: str) -> int | float | None:
        number: int | float
        try:
            number = int(text) if self.kind is OptionKind.INT else float(text)
        except ValueError:
            whole = "a whole number" if self.kind is OptionKind.INT else "a number"
            raise ValueError(f"must be {whole}, not {text!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, not {text!r}")
        if self.zero_is_none and number <= 0:
            return None
        low, high = self.minimum, self.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            if low is not None and high is not None:
                raise ValueError(f"must be between {low:g} and {high:g}")
            if low is not None:
                raise ValueError(f"must be at least {low:g}")
            raise ValueError(f"must be at most {high:g}")
        return number


def _pattern(text: str) -> str:
    try:
        return check_pattern(text)
    except PatternError as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


_ORIGIN = re.compile(r"https?://[^/\s?#]+")


def _origin(text: str) -> str:
    # The browser's Origin header is compared as is: a path or a trailing slash never matches.
    if text == "*" or _ORIGIN.fullmatch(text):
        return text
    raise ValueError(
        f"{text!r} is not a web origin: give scheme://host[:port], like https://example.com "
        "(no path), or * for any"
    )


def _program_name(text: str) -> str:
    # Drawn on the slate in a small bitmap font: printable, one line, short.
    if len(text) > 40 or not text.isprintable():
        raise ValueError("must be one line of at most 40 printable characters")
    return text


_DEFAULTS = RelayConfig()


def _default(field: str) -> Any:
    return getattr(_DEFAULTS, field)


OPTIONS: tuple[Option, ...] = (
    # The first ones in the order a restart question names them.
    Option(
        name="host",
        field="host",
        flag="--host",
        label="Bind address",
        help=f"address to listen on (default {_default('host')})",
        kind=OptionKind.TEXT,
        group="Network",
        key="relay/host",
        default=_default("host"),
        metavar="HOST",
    ),
    Option(
        name="port",
        field="port",
        flag="--port",
        label="Port",
        help=f"port (default {_default('port')})",
        kind=OptionKind.INT,
        group="Network",
        key="relay/port",
        default=_default("port"),
        minimum=0,
        maximum=65535,
        zero_text="any free port",
    ),
    Option(
        name="max_streams",
        field="max_ffmpeg_instances",
        flag="--max-streams",
        label="Max streams",
        help="most sessions streaming at once",
        kind=OptionKind.INT,
        group="Limits",
        key="relay/max_streams",
        default=None,
        minimum=1,
        optional=True,
        zero_text="unlimited",
        metavar="N",
    ),
    Option(
        name="allowed_target_pattern",
        field="allowed_target_pattern",
        flag="--allow-client-rtmp",
        label="Target pattern",
        reason="client-supplied targets",
        help="let browsers choose targets that fully match REGEX",
        kind=OptionKind.TEXT,
        group="Sessions",
        key="relay/allowed_target_pattern",
        default=None,
        optional=True,
        metavar="REGEX",
        placeholder=r"rtmps?://live\.example\.com/app/.*",
        check=_pattern,
    ),
    Option(
        name="ffmpeg_path",
        field="ffmpeg_path",
        flag="--ffmpeg",
        label="ffmpeg",
        reason="ffmpeg path",
        help="ffmpeg binary to use",
        kind=OptionKind.PATH,
        group="Files",
        key="relay/ffmpeg_path",
        default=None,
        optional=True,
        metavar="PATH",
        placeholder="bundled ffmpeg",
        config_path=False,
    ),
    Option(
        name="recordings_dir",
        field="recordings_dir",
        flag="--recordings-dir",
        label="Recording folder",
        help="where sessions without a target are recorded",
        kind=OptionKind.PATH,
        group="Files",
        key="relay/recordings_dir",
        default=None,
        optional=True,
        metavar="DIR",
        directory=True,
    ),
    # Only an operator-given certificate is a setting (a generated one carries a CA); the
    # two go together, which the command line and the dialog check beside the table.
    Option(
        name="tls_cert",
        field="tls",
        flag="--cert",
        label="Certificate",
        help="your own TLS certificate (PEM)",
        metavar="CERT",
        kind=OptionKind.PATH,
        group="Security",
        key="tls/cert",
        default=None,
        optional=True,
        placeholder="the relay's own (generated) certificate",
    ),
    Option(
        name="tls_key",
        field="tls",
        flag="--key",
        label="Certificate key",
        reason="certificate",
        help="the key of --cert (PEM)",
        metavar="KEY",
        kind=OptionKind.PATH,
        group="Security",
        key="tls/key",
        default=None,
        optional=True,
        placeholder="key of your certificate (PEM)",
    ),
    Option(
        name="allowed_origins",
        field="cors_allowed_origins",
        flag="--allowed-origin",
        label="Allowed origins",
        help="another web origin whose pages may connect (repeatable; in the window, "
        "several separated by commas)",
        kind=OptionKind.LIST,
        group="Security",
        key="security/allowed_origins",
        default=None,
        optional=True,
        metavar="ORIGIN",
        placeholder="only the relay's own page",
        check=_origin,
    ),
    Option(
        name="max_chunk_bytes",
        field="max_chunk_bytes",
        flag="--max-chunk-bytes",
        label="Largest chunk",
        help="largest single chunk a browser may send, in bytes "
        f"(default {_default('max_chunk_bytes')})",
        kind=OptionKind.INT,
        group="Limits",
        key="limits/max_chunk_bytes",
        default=_default("max_chunk_bytes"),
        minimum=1024,
        maximum=1024**3,
        unit="bytes",
        metavar="BYTES",
    ),
    Option(
        name="max_chunks_per_second",
        field="max_chunks_per_second",
        flag="--max-chunks-per-second",
        label="Chunks per second",
        help="most chunks a browser may send per second, sustained "
        f"(default {_default('max_chunks_per_second'):g})",
        kind=OptionKind.FLOAT,
        group="Limits",
        key="limits/max_chunks_per_second",
        default=_default("max_chunks_per_second"),
        minimum=1,
        maximum=100_000,
        unit="per second",
        metavar="N",
    ),
    Option(
        name="max_ingest_bitrate",
        field="max_ingest_bits_per_second",
        flag="--max-ingest-bitrate",
        label="Max ingest bitrate",
        help="most bits per second a browser may send, sustained "
        f"(default {_default('max_ingest_bits_per_second')})",
        kind=OptionKind.INT,
        group="Limits",
        key="limits/max_ingest_bitrate",
        default=_default("max_ingest_bits_per_second"),
        minimum=100_000,
        maximum=2_000_000_000,
        unit="bit/s",
        metavar="BITS",
    ),
    Option(
        name="max_connections_per_address",
        field="max_connections_per_address",
        flag="--max-connections-per-address",
        label="Connections per address",
        help="most connections one network address may hold (0: no cap; default "
        f"{_default('max_connections_per_address')}); raise it behind a TLS proxy, where "
        "every browser shares the proxy's address",
        kind=OptionKind.INT,
        group="Limits",
        key="limits/max_connections_per_address",
        default=_default("max_connections_per_address"),
        optional=True,
        zero_is_none=True,
        zero_text="no cap",
        maximum=100_000,
        metavar="N",
    ),
    Option(
        name="max_cpu",
        field="max_cpu_percent",
        flag="--max-cpu",
        label="Busy above",
        help="refuse new streams (RELAY_BUSY) while the machine's processors are busier than "
        "this share, in percent (default 0: never; 90 keeps room on a machine used only for "
        "the relay); streams already live go on",
        kind=OptionKind.FLOAT,
        group="Limits",
        key="limits/max_cpu",
        default=_default("max_cpu_percent"),
        optional=True,
        zero_is_none=True,
        zero_text="never",
        maximum=100,
        unit="%",
        metavar="PERCENT",
    ),
    Option(
        name="ping_interval",
        field="ping_interval_s",
        flag="--ping-interval",
        label="Ping interval",
        help="seconds between the relay's liveness pings to each browser (default "
        f"{_default('ping_interval_s'):g}); a link that answers none for interval + timeout "
        "is taken as lost",
        kind=OptionKind.FLOAT,
        group="Network",
        key="network/ping_interval",
        default=_default("ping_interval_s"),
        minimum=0.5,
        maximum=60,
        unit="s",
        metavar="SECONDS",
    ),
    Option(
        name="ping_timeout",
        field="ping_timeout_s",
        flag="--ping-timeout",
        label="Ping timeout",
        help="seconds a browser has to answer a ping (default "
        f"{_default('ping_timeout_s'):g}); raise it for slow uplinks, where an answer waits "
        "behind the video",
        kind=OptionKind.FLOAT,
        group="Network",
        key="network/ping_timeout",
        default=_default("ping_timeout_s"),
        minimum=0.5,
        maximum=120,
        unit="s",
        metavar="SECONDS",
    ),
    Option(
        name="video_encoder",
        field="video_encoder",
        flag="--video-encoder",
        label="Video encoder",
        help="H.264 encoder for VP8/VP9 video (H.264 is copied): auto uses a hardware encoder "
        "this machine really has (NVENC, Quick Sync, VA-API), else libx264 (default: auto)",
        kind=OptionKind.CHOICE,
        group="Sessions",
        key="relay/video_encoder",
        default=_default("video_encoder"),
        choices=video_encoders.CHOICES,
    ),
    Option(
        name="idle_timeout",
        field="idle_timeout",
        flag="--idle-timeout",
        label="Idle timeout",
        help="end a streaming session that sends nothing for this long (0: never; "
        f"default {_default('idle_timeout'):g})",
        kind=OptionKind.FLOAT,
        group="Sessions",
        key="sessions/idle_timeout",
        default=_default("idle_timeout"),
        optional=True,
        zero_is_none=True,
        zero_text="never",
        maximum=7 * 24 * 3600,
        unit="s",
        metavar="SECONDS",
    ),
    Option(
        name="resume_grace",
        field="resume_grace_s",
        flag="--resume-grace",
        label="Resume grace period",
        help="how long a session whose connection was lost waits for its browser to resume "
        f"it, ffmpeg still running (0: it ends at once; default {_default('resume_grace_s'):g})",
        kind=OptionKind.FLOAT,
        group="Sessions",
        key="sessions/resume_grace",
        default=_default("resume_grace_s"),
        optional=True,
        zero_is_none=True,
        zero_text="off",
        maximum=24 * 3600,
        unit="s",
        metavar="SECONDS",
    ),
    Option(
        name="safety_copy",
        field="safety_copy",
        flag="--safety-copy",
        label="Safety copy",
        help="also keep each session's browser bytes, as received, in the recordings folder "
        "(name.browser.webm): the copy to fall back on",
        kind=OptionKind.BOOL,
        group="Sessions",
        key="sessions/safety_copy",
        default=_default("safety_copy"),
    ),
    Option(
        name="program_size",
        field="program_size",
        flag="--program-size",
        label="Program size",
        help="the program's picture size, constant while it runs "
        f"(default {_default('program_size')})",
        kind=OptionKind.CHOICE,
        group="Program",
        key="program/size",
        default=_default("program_size"),
        choices=("1280x720", "1920x1080"),
        metavar="WxH",
    ),
    Option(
        name="program_fps",
        field="program_fps",
        flag="--program-fps",
        label="Program frame rate",
        help=f"the program's frames per second (default {_default('program_fps')})",
        kind=OptionKind.INT,
        group="Program",
        key="program/fps",
        default=_default("program_fps"),
        minimum=1,
        maximum=60,
        unit="fps",
        metavar="N",
    ),
    Option(
        name="program_bitrate",
        field="program_bitrate",
        flag="--program-bitrate",
        label="Program bitrate",
        help="the program's video bitrate, constant (CBR) as platforms want it "
        f"(default {_default('program_bitrate')})",
        kind=OptionKind.INT,
        group="Program",
        key="program/bitrate",
        default=_default("program_bitrate"),
        minimum=100_000,
        maximum=50_000_000,
        unit="bit/s",
        metavar="BITS",
    ),
    Option(
        name="program_name",
        field="program_name",
        flag="--program-name",
        label="Program name",
        help="the name the built-in slate shows",
        kind=OptionKind.TEXT,
        group="Program",
        key="program/name",
        default=_default("program_name"),
        metavar="NAME",
        check=_program_name,
    ),
    Option(
        name="slate_image",
        field="slate_image",
        flag="--slate-image",
        label="Slate image",
        help="a PNG or JPEG the program shows when no source is on air, instead of the "
        'built-in "We\'ll be right back" card',
        kind=OptionKind.PATH,
        group="Program",
        key="program/slate_image",
        default=None,
        optional=True,
        metavar="FILE",
        placeholder="the built-in card",
    ),
    Option(
        name="log_level",
        field="log_level",
        flag="--log-level",
        label="Log level",
        help=f"how much to log (default {_default('log_level')})",
        kind=OptionKind.CHOICE,
        group="Logging",
        key="log/level",
        default=_default("log_level"),
        choices=LOG_LEVELS,
        restart=False,  # logging levels apply at once
    ),
)

OPTION_GROUPS = ("Network", "Limits", "Sessions", "Files", "Program", "Security", "Logging")


def option(name: str) -> Option:
    """The option called `name` (KeyError if none)."""
    for candidate in OPTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def _check_table() -> None:
    # A typo in a field name would otherwise only show when that option is used.
    known = {f.name for f in fields(RelayConfig)}
    for opt in OPTIONS:
        if opt.field not in known or opt.group not in OPTION_GROUPS:
            raise ValueError(f"option {opt.name}: unknown field or group")


_check_table()
