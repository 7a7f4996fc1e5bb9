"""The window's persisted settings (QSettings) and how they become a `RelayConfig`."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Collection
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from .. import paths
from ..relay import LOG_LEVELS, OPTIONS, KeyStore, RelayConfig, TlsFiles

log = logging.getLogger(__name__)

ORGANIZATION = "Desktop Relay"
APPLICATION = "desktop-relay"

# The window's own settings beside the options table's: the default target's preset and server.
_TARGET_DEFAULTS: dict[str, Any] = {"target_preset": "recording", "target_server": ""}


class GuiSettings:
    """What the Settings dialog edits, plus the default target's preset and server.

    One value per option of the table (`OPTIONS`, by name, as the option's setting value),
    read as attributes: `settings.port`, `settings.tls_cert`. Immutable: `replace` makes a
    changed copy.
    """

    __slots__ = ("_values",)
    _values: dict[str, Any]

    def __init__(self, **values: Any) -> None:
        defaults = {opt.name: opt.default for opt in OPTIONS} | _TARGET_DEFAULTS
        unknown = set(values) - set(defaults)
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "_values", defaults | values)

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found otherwise. `_values` itself is unset only while
        # copy or pickle build an instance without __init__: no recursion then.
        try:
            return object.__getattribute__(self, "_values")[name]
        except (AttributeError, KeyError):
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("GuiSettings is immutable: use replace()")

    def __reduce__(self) -> tuple[Any, ...]:
        # For copy and pickle, which cannot set attributes of an immutable instance.
        return (_rebuild_settings, (dict(self._values),))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuiSettings) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"GuiSettings({inner})"

    def get(self, name: str) -> Any:
        """The value of the option or setting called `name`."""
        return self._values[name]

    def replace(self, **changes: Any) -> GuiSettings:
        """A copy with `changes`."""
        return GuiSettings(**(self._values | changes))

    def to_config(self, base: RelayConfig) -> RelayConfig:
        """`base` with these settings' relay options."""
        tls = base.tls
        if self.tls_cert and self.tls_key:
            tls = TlsFiles(Path(self.tls_cert), Path(self.tls_key))
        options = {
            opt.field: opt.to_config(self._values[opt.name])
            for opt in OPTIONS
            if opt.field != "tls"
        }
        return replace(base, tls=tls, **options)

    @classmethod
    def from_config(cls, config: RelayConfig, like: GuiSettings | None = None) -> GuiSettings:
        """The settings a config corresponds to (target fields taken from `like`)."""
        base = like or cls()
        values = {
            opt.name: opt.from_config(getattr(config, opt.field))
            for opt in OPTIONS
            if opt.field != "tls"
        }
        # Only an operator-given certificate is a setting (generated ones carry a CA).
        own = config.tls if config.tls and config.tls.ca_cert is None else None
        values["tls_cert"] = str(own.cert) if own else None
        values["tls_key"] = str(own.key) if own else None
        return base.replace(**values)


def _rebuild_settings(values: dict[str, Any]) -> GuiSettings:
    return GuiSettings(**values)


def restart_reasons(old: RelayConfig, new: RelayConfig) -> list[str]:
    """The changed options that only a relay restart applies, by their labels. A running
    Relay cannot change them (its config is immutable and read at start-up or when sessions
    start): changing one means building a new relay."""
    reasons: list[str] = []
    for opt in OPTIONS:
        reason = opt.restart_reason
        changed = getattr(old, opt.field) != getattr(new, opt.field)
        if opt.restart and changed and reason not in reasons:
            reasons.append(reason)
    return reasons


def apply_log_level(level: str) -> None:
    """Logging levels apply at once, without a restart: the app's, and the relay's own
    loggers, which a Relay sets from its config when it is built."""
    level = level if level in LOG_LEVELS else "INFO"
    logging.getLogger().setLevel(level)
    logging.getLogger("desktop_relay.relay").setLevel(level)


# RelayConfig fields the window keeps as settings; the rest always come from the command line.
SETTINGS_FIELDS = frozenset({opt.field for opt in OPTIONS} | {"default_target"})


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


def _text(raw: object) -> str:
    # QSettings reads an unquoted value with commas (a hand-written list) as a list.
    if isinstance(raw, list):
        return ", ".join(str(item) for item in raw)
    return str(raw)


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
        """The saved settings, defaults for what is missing; a value that cannot be used
        (validated as the command line does) is left at its default and `problems` says so."""
        s = self.qsettings
        values: dict[str, Any] = {}
        for opt in OPTIONS:
            raw = s.value(opt.key)
            if raw is None:
                continue
            try:
                values[opt.name] = opt.read(_text(raw))
            except ValueError as exc:
                log.warning("ignoring %s=%r in %s: %s", opt.key, raw, s.fileName(), exc)
                self._problem(
                    f"The setting {opt.key} in {s.fileName()} cannot be used ({opt.label}: "
                    f"{exc}): the default, {opt.format(opt.default) or 'none'}, is used."
                )
        for name, default in _TARGET_DEFAULTS.items():
            values[name] = str(s.value(f"target/{name.removeprefix('target_')}", default))
        return GuiSettings(**values)

    def save(self, settings: GuiSettings) -> None:
        """Write every setting now (so a crash does not lose them)."""
        s = self.qsettings
        for opt in OPTIONS:
            s.setValue(opt.key, opt.format(settings.get(opt.name)))
        s.setValue("target/preset", settings.target_preset)
        s.setValue("target/server", settings.target_server)
        s.sync()

    def _problem(self, message: str) -> None:
        # Settings are loaded more than once (start-up, each Settings dialog): say it once.
        if message not in self.problems:
            self.problems.append(message)

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
