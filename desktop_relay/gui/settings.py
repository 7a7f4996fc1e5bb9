"""The window's persisted settings (QSettings) and how they become a `RelayConfig`."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from .. import paths
from ..relay import KeyStore, RelayConfig, TlsFiles

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ORGANIZATION = "Desktop Relay"
APPLICATION = "desktop-relay"


@dataclass(frozen=True)
class GuiSettings:
    """What the Settings dialog edits, plus the default target's preset and server."""

    host: str = RelayConfig.host
    port: int = RelayConfig.port
    max_streams: int | None = None
    allowed_target_pattern: str | None = None
    ffmpeg_path: str | None = None
    recordings_dir: str | None = None
    log_level: str = RelayConfig.log_level
    # The operator's own certificate and key; None: the relay's generated certificate.
    tls_cert: str | None = None
    tls_key: str | None = None
    target_preset: str = "recording"
    target_server: str = ""

    def to_config(self, base: RelayConfig) -> RelayConfig:
        """`base` with these settings' relay options."""
        tls = base.tls
        if self.tls_cert and self.tls_key:
            tls = TlsFiles(Path(self.tls_cert), Path(self.tls_key))
        return replace(
            base,
            tls=tls,
            host=self.host,
            port=self.port,
            max_ffmpeg_instances=self.max_streams,
            allowed_target_pattern=self.allowed_target_pattern,
            ffmpeg_path=self.ffmpeg_path,
            recordings_dir=Path(self.recordings_dir) if self.recordings_dir else None,
            log_level=self.log_level,
        )

    @classmethod
    def from_config(cls, config: RelayConfig, like: GuiSettings | None = None) -> GuiSettings:
        """The settings a config corresponds to (target fields taken from `like`)."""
        base = like or cls()
        return replace(
            base,
            host=config.host,
            port=config.port,
            max_streams=config.max_ffmpeg_instances,
            allowed_target_pattern=config.allowed_target_pattern,
            ffmpeg_path=config.ffmpeg_path,
            recordings_dir=str(config.recordings_dir) if config.recordings_dir else None,
            log_level=config.log_level,
            # Only an operator-given certificate is a setting (generated ones carry a CA).
            tls_cert=str(config.tls.cert) if config.tls and config.tls.ca_cert is None else None,
            tls_key=str(config.tls.key) if config.tls and config.tls.ca_cert is None else None,
        )


# Options a running Relay cannot change (its config is immutable and read at start-up or
# when sessions start): changing one means building a new relay.
_RESTART_FIELDS = {
    "host": "bind address",
    "port": "port",
    "max_ffmpeg_instances": "max streams",
    "allowed_target_pattern": "client-supplied targets",
    "ffmpeg_path": "ffmpeg path",
    "recordings_dir": "recording folder",
    "tls": "certificate",
}


def restart_reasons(old: RelayConfig, new: RelayConfig) -> list[str]:
    """The changed options that only a relay restart applies, by their labels."""
    return [
        label for name, label in _RESTART_FIELDS.items() if getattr(old, name) != getattr(new, name)
    ]


def apply_log_level(level: str) -> None:
    """Logging levels apply at once, without a restart: the app's, and the relay's own
    loggers, which a Relay sets from its config when it is built."""
    level = level if level in LOG_LEVELS else "INFO"
    logging.getLogger().setLevel(level)
    logging.getLogger("desktop_relay.relay").setLevel(level)


# RelayConfig fields the window keeps as settings; the rest always come from the command line.
SETTINGS_FIELDS = frozenset(
    {
        "host",
        "port",
        "max_ffmpeg_instances",
        "allowed_target_pattern",
        "ffmpeg_path",
        "recordings_dir",
        "log_level",
        "default_target",
        "tls",
    }
)


def command_line_overrides(
    saved: RelayConfig, command_line: RelayConfig, given: Collection[str] | None = None
) -> RelayConfig:
    """Options given on the command line win over saved ones.

    `given` names the RelayConfig fields the command line set explicitly. Without it, an
    option still at its default value is taken as not given, so the saved setting applies.
    """
    if given is None:
        defaults = RelayConfig()
        changes = {
            f.name: getattr(command_line, f.name)
            for f in fields(RelayConfig)
            if getattr(command_line, f.name) != getattr(defaults, f.name)
        }
        return replace(saved, **changes)
    changes = {
        f.name: getattr(command_line, f.name)
        for f in fields(RelayConfig)
        if f.name not in SETTINGS_FIELDS or f.name in given
    }
    if "tls" not in given and saved.tls is None:
        # No certificate of the operator's saved: the command line's generated one.
        changes["tls"] = command_line.tls
    return replace(saved, **changes)


def _optional(value: object) -> str | None:
    text = str(value or "").strip()
    return text or None


SETTINGS_FILE = "settings.ini"

# The default target's stream key lives in the KeyStore, never in the settings file.
STREAM_KEY_NAME = "default-target-key"


class SettingsStore:
    """Reads and writes `GuiSettings` in a QSettings and the stream key in a KeyStore;
    tests pass both with temporary paths."""

    def __init__(self, qsettings: QSettings, keys: KeyStore) -> None:
        self.qsettings = qsettings
        self.keys = keys
        # What went wrong opening the file (set aside, defaults used): the window shows it.
        self.problems: list[str] = []

    @property
    def path(self) -> Path:
        """The settings file."""
        return Path(self.qsettings.fileName())

    @classmethod
    def for_user(cls) -> SettingsStore:
        """The user's settings file, `settings.ini` in the platform's config folder beside the
        relay's own files (not where Qt would put it), and the keyring for stream keys."""
        legacy = QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
        ).fileName()
        return cls.open(
            paths.config_dir() / SETTINGS_FILE,
            KeyStore(paths.data_dir() / "stream-keys.json"),
            legacy=Path(legacy),
        )

    @classmethod
    def open(cls, path: Path, keys: KeyStore, *, legacy: Path | None = None) -> SettingsStore:
        """The settings in the INI file `path` (created when saved). A file left where older
        versions kept it (`legacy`) is copied over once; a file that cannot be read is set
        aside (renamed, never deleted) and the defaults are used, with `problems` saying so."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if legacy is not None and not path.exists() and legacy.is_file():
            shutil.copy2(legacy, path)
            log.info("settings moved from %s to %s", legacy, path)
        qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        problems = []
        if qsettings.status() != QSettings.Status.NoError:
            aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            del qsettings
            path.replace(aside)
            log.warning("unreadable settings file %s set aside as %s", path, aside)
            problems.append(
                f"The settings file could not be read: it was set aside as {aside} and the "
                "defaults are used."
            )
            qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        store = cls(qsettings, keys)
        store.problems = problems
        return store

    def load(self) -> GuiSettings:
        """The saved settings, defaults for what is missing or unreadable."""
        s = self.qsettings
        d = GuiSettings()
        try:
            port = int(str(s.value("relay/port", d.port)))
            max_streams = int(str(s.value("relay/max_streams", 0) or 0))
        except ValueError:
            log.warning("ignoring unreadable numbers in %s", s.fileName())
            port, max_streams = d.port, 0
        level = str(s.value("log/level", d.log_level)).upper()
        return GuiSettings(
            host=str(s.value("relay/host", d.host)) or d.host,
            port=port if 0 <= port <= 65535 else d.port,
            max_streams=max_streams if max_streams > 0 else None,
            allowed_target_pattern=_optional(s.value("relay/allowed_target_pattern", "")),
            ffmpeg_path=_optional(s.value("relay/ffmpeg_path", "")),
            recordings_dir=_optional(s.value("relay/recordings_dir", "")),
            log_level=level if level in LOG_LEVELS else d.log_level,
            tls_cert=_optional(s.value("tls/cert", "")),
            tls_key=_optional(s.value("tls/key", "")),
            target_preset=str(s.value("target/preset", d.target_preset)),
            target_server=str(s.value("target/server", d.target_server)),
        )

    def save(self, settings: GuiSettings) -> None:
        """Write every setting now (so a crash does not lose them)."""
        s = self.qsettings
        s.setValue("relay/host", settings.host)
        s.setValue("relay/port", settings.port)
        s.setValue("relay/max_streams", settings.max_streams or 0)
        s.setValue("relay/allowed_target_pattern", settings.allowed_target_pattern or "")
        s.setValue("relay/ffmpeg_path", settings.ffmpeg_path or "")
        s.setValue("relay/recordings_dir", settings.recordings_dir or "")
        s.setValue("log/level", settings.log_level)
        s.setValue("tls/cert", settings.tls_cert or "")
        s.setValue("tls/key", settings.tls_key or "")
        s.setValue("target/preset", settings.target_preset)
        s.setValue("target/server", settings.target_server)
        s.sync()

    def load_stream_key(self) -> str:
        """The default target's stream key (keyring, else the user-only file)."""
        return self.load_key(STREAM_KEY_NAME)

    def save_stream_key(self, key: str) -> str | None:
        """Keep the default target's stream key; returns a warning if it is less protected
        than in a system keyring."""
        return self.save_key(STREAM_KEY_NAME, key)

    def load_key(self, name: str) -> str:
        """The stream key kept as `name` (keyring, else the user-only file); "" if none."""
        return self.keys.get(name) or ""

    def save_key(self, name: str, key: str) -> str | None:
        """Keep a stream key as `name` ("" forgets it); returns a warning if it could not be
        saved or is less protected than in a system keyring."""
        try:
            if key:
                self.keys.set(name, key)
            else:
                self.keys.delete(name)
        except OSError as exc:
            log.warning("could not save the stream key: %s", exc)
            return f"The stream key is used now but could not be saved: {exc.strerror or exc}"
        return self.keys.warning if key else None

    def save_window_state(self, geometry: QByteArray, splitters: list[QByteArray]) -> None:
        """The window's size, place and splitter positions."""
        self.qsettings.setValue("window/geometry", geometry)
        for number, state in enumerate(splitters):
            self.qsettings.setValue(f"window/splitter{number}", state)
        self.qsettings.sync()

    def load_window_state(
        self, splitters: int
    ) -> tuple[QByteArray | None, list[QByteArray | None]]:
        """What `save_window_state` kept (None where nothing usable was saved)."""

        def read(key: str) -> QByteArray | None:
            value = self.qsettings.value(key)
            return value if isinstance(value, QByteArray) else None

        return read("window/geometry"), [read(f"window/splitter{n}") for n in range(splitters)]
