"""The operator's destinations: the services, servers and local recording new sessions go to.

Each destination is kept in the settings file under `destinations/` (name, service, server,
on or off) and its stream key in the KeyStore, named by the destination's id: never in the
settings file, never shown or logged whole. A window that saved a single default target
(the settings' `target/preset` and `target/server`, its key as `STREAM_KEY_NAME`) has it
moved here once, as the first destination, switched on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..relay import (
    OutputState,
    OutputStatus,
    SessionState,
    SessionStatus,
    TargetError,
    mask_target,
    validate_target,
)
from .sessions.row import output_place
from .settings import SettingsStore
from .target_presets import CUSTOM, RECORDING, TYPED_SERVERS, join_target, preset_by_id

log = logging.getLogger(__name__)

GROUP = "destinations"
KEY_PREFIX = "destination-"
# Sessions whose outputs count in a destination's live state (an ended one has none left).
_STREAMING = (SessionState.STARTING, SessionState.LIVE, SessionState.ENDING, SessionState.WAITING)


@dataclass(frozen=True)
class Destination:
    """One place new sessions may go. `has_key`: a stream key belongs to it (in the
    KeyStore), so a missing one is noticed instead of sending the bare server address."""

    id: str
    name: str
    service: str = CUSTOM.id  # a target_widget preset id
    server: str = ""  # the public part of the URL (scheme, host, application)
    enabled: bool = True
    has_key: bool = False

    @property
    def recording(self) -> bool:
        """Whether this is the local recording (a file per session, no server)."""
        return self.service == RECORDING.id

    @property
    def key_name(self) -> str:
        """Its stream key's name in the KeyStore."""
        return f"{KEY_PREFIX}{self.id}"

    @property
    def service_label(self) -> str:
        """`Twitch`, `Local recording`, or the host of a custom server."""
        if self.recording:
            return "Local recording"
        preset = preset_by_id(self.service)
        if preset in TYPED_SERVERS:
            return _host(self.server) or preset.label
        return preset.label


def new_id() -> str:
    """A fresh destination id (also its key's name: never reused)."""
    return uuid.uuid4().hex[:12]


def default_name(service: str, server: str) -> str:
    """The name a destination gets when the operator gives none."""
    return Destination("", "", service, server).service_label


def _host(server: str) -> str:
    try:
        return urlsplit(server).hostname or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class DefaultOutputs:
    """What the enabled destinations give new sessions: RTMP(S) targets (unmasked) and
    whether to record beside them; with no targets sessions are recorded anyway."""

    urls: tuple[str, ...] = ()
    record: bool = False
    names: tuple[str, ...] = ()  # the destinations used, in order
    skipped: tuple[str, ...] = ()  # enabled but unusable: "Twitch (its stream key is missing)"

    def describe(self) -> str:
        """A sentence for the panel (no URL: names only)."""
        if not self.names:
            where = "No destination is on: new sessions are recorded to files"
        elif not self.urls:
            where = "New sessions are recorded to files"
        else:
            where = f"New sessions go to {_and(self.names)}"
        if self.skipped:
            where += f". Skipped: {_and(self.skipped)}"
        return where + "."


def _and(names: Iterable[str]) -> str:
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass(frozen=True)
class LiveState:
    """How a destination's outputs are doing across the live sessions."""

    live: int = 0
    connecting: int = 0
    retrying: int = 0
    failed: int = 0
    retry_in_s: float | None = None  # the soonest next attempt of a retrying output
    reasons: tuple[str, ...] = ()  # why outputs retry or failed (masked by the relay)

    @property
    def sessions(self) -> int:
        """Sessions with an output here."""
        return self.live + self.connecting + self.retrying + self.failed

    @property
    def down(self) -> bool:
        """Some output here is retrying or gave up."""
        return bool(self.retrying or self.failed)

    def text(self) -> str:
        """`1 live · 1 retrying in 4 s`; empty when no session goes here."""
        retrying = "retrying"
        if self.retry_in_s is not None:
            retrying += f" in {self.retry_in_s:.0f} s"
        counts = (
            (self.live, "live"),
            (self.connecting, "connecting"),
            (self.retrying, retrying),
            (self.failed, "failed"),
        )
        return " · ".join(f"{count} {word}" for count, word in counts if count)


class DestinationStore:
    """The saved destinations, their keys and URLs; also what the sessions table's
    "Add destination" and "Remove destination" menus list (see SessionsView.destinations)."""

    def __init__(self, settings: SettingsStore) -> None:
        self.settings = settings
        # Keys are read once (a keyring may be slow) and kept as whole URLs, as the relay
        # keeps its targets; the masked form is what is compared with outputs.
        self._keys: dict[str, str] = {}
        self._urls: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self._items = self._load()
        for destination in self._items:
            if destination.id not in self._keys:  # (a migration may have resolved it)
                self._resolve(destination, settings.load_key(destination.key_name))

    # ---- queries ---------------------------------------------------------------------

    def all(self) -> list[Destination]:
        """Every destination, in the operator's order."""
        return list(self._items)

    def get(self, destination_id: str) -> Destination | None:
        """The destination with this id."""
        return next((d for d in self._items if d.id == destination_id), None)

    def key_of(self, destination: Destination) -> str:
        """Its stream key ("" if none): for the edit dialog's hidden field only."""
        return self._keys.get(destination.id, "")

    def url_of(self, destination: Destination) -> str | None:
        """Its whole target URL; None for the recording or an unusable destination."""
        return self._urls.get(destination.id)

    def masked_url(self, destination: Destination) -> str | None:
        """Its URL with the key masked, as session snapshots show targets."""
        return mask_target(self._urls.get(destination.id))

    def problem(self, destination: Destination) -> str | None:
        """Why it cannot be used (`its stream key is missing`), or None."""
        return self._problems.get(destination.id)

    def has_recording(self) -> bool:
        """Whether a local recording destination exists (one is enough)."""
        return any(d.recording for d in self._items)

    def defaults(self) -> DefaultOutputs:
        """What the enabled destinations give new sessions."""
        urls: list[str] = []
        names: list[str] = []
        skipped: list[str] = []
        record = False
        for destination in self._items:
            if not destination.enabled:
                continue
            problem = self.problem(destination)
            if problem is not None:
                skipped.append(f"{destination.name} ({problem})")
            elif destination.recording:
                record = True
                names.append(destination.name)
            else:
                url = self._urls[destination.id]
                if url not in urls:  # the same target twice would publish twice
                    urls.append(url)
                    names.append(destination.name)
        return DefaultOutputs(tuple(urls), record, tuple(names), tuple(skipped))

    def matches(self, destination: Destination, output: OutputStatus) -> bool:
        """Whether a session's output goes to this destination."""
        if destination.recording:
            return output.recording_path is not None
        masked = self.masked_url(destination)
        return masked is not None and output.recording_path is None and output.target == masked

    def owner_of(self, output: OutputStatus) -> Destination | None:
        """The (first) destination an output goes to."""
        return next((d for d in self._items if self.matches(d, output)), None)

    def live_state(self, destination: Destination, sessions: Iterable[SessionStatus]) -> LiveState:
        """Its outputs' states across the streaming sessions."""
        counts = {state: 0 for state in OutputState}
        waits: list[float] = []
        reasons: list[str] = []
        for status in sessions:
            if status.state not in _STREAMING:
                continue
            for output in status.outputs:
                if not self.matches(destination, output):
                    continue
                counts[output.state] += 1
                if output.next_attempt_in_s is not None:
                    waits.append(output.next_attempt_in_s)
                if output.last_error and output.state in (
                    OutputState.RECONNECTING,
                    OutputState.FAILED,
                ):
                    reasons.append(output.last_error)
                break  # a session counts once
        return LiveState(
            live=counts[OutputState.LIVE],
            connecting=counts[OutputState.CONNECTING],
            retrying=counts[OutputState.RECONNECTING],
            failed=counts[OutputState.FAILED],
            retry_in_s=min(waits) if waits else None,
            reasons=tuple(dict.fromkeys(reasons)),
        )

    # ---- the sessions table's menus (SessionsView.destinations) ------------------------

    def choices_for(self, status: SessionStatus) -> list[tuple[str, str | None]]:
        """(name, URL or None for a recording) of each usable destination that is not an
        output of this session yet, on or off: the operator picks one for one session."""
        choices: list[tuple[str, str | None]] = []
        for destination in self._items:
            if self.problem(destination) is not None:
                continue
            if any(self.matches(destination, o) for o in status.outputs):
                continue
            choices.append((destination.name, self.url_of(destination)))
        return choices

    def label_of(self, output: OutputStatus) -> str:
        """An output as the menus name it: `Twitch (rtmp://…/****abcd)`, or its place."""
        owner = self.owner_of(output)
        place = output_place(output)
        return f"{owner.name} ({place})" if owner is not None else place

    # ---- changes ---------------------------------------------------------------------

    def put(self, destination: Destination, key: str) -> str | None:
        """Add a destination, or replace the one with its id, with its stream key ("" for
        none); returns a warning about where the key is kept, if any."""
        destination = replace(destination, has_key=bool(key) and not destination.recording)
        position = next((i for i, d in enumerate(self._items) if d.id == destination.id), None)
        if position is None:
            self._items.append(destination)
        else:
            self._items[position] = destination
        warning = self.settings.save_key(destination.key_name, key if destination.has_key else "")
        self._resolve(destination, key)
        self._write()
        return warning

    def set_enabled(self, destination_id: str, enabled: bool) -> bool:
        """Switch a destination on or off; False if there is no such destination."""
        for i, destination in enumerate(self._items):
            if destination.id == destination_id:
                self._items[i] = replace(destination, enabled=enabled)
                self._write()
                return True
        return False

    def remove(self, destination_id: str) -> Destination | None:
        """Forget a destination and its stream key; returns it (None if unknown)."""
        destination = self.get(destination_id)
        if destination is None:
            return None
        self._items.remove(destination)
        self._keys.pop(destination_id, None)
        self._urls.pop(destination_id, None)
        self._problems.pop(destination_id, None)
        self._write()
        self.settings.save_key(destination.key_name, "")
        return destination

    # ---- persistence -----------------------------------------------------------------

    def _resolve(self, destination: Destination, key: str) -> None:
        """Remember its key and URL, or why it has none."""
        self._keys[destination.id] = key if destination.has_key else ""
        self._urls.pop(destination.id, None)
        self._problems.pop(destination.id, None)
        if destination.recording:
            return
        if destination.has_key and not key:
            # Without it the URL would only fail at the service: say so, and let the
            # operator type it again (the old default target recorded instead, likewise).
            self._problems[destination.id] = "its stream key is missing"
            return
        try:
            self._urls[destination.id] = validate_target(join_target(destination.server, key))
        except TargetError as exc:
            self._problems[destination.id] = f"the target {exc}"

    def _load(self) -> list[Destination]:
        s = self.settings.qsettings
        if not s.contains(f"{GROUP}/ids"):
            return self._migrate()
        ids = [i for i in str(s.value(f"{GROUP}/ids", "") or "").split(",") if i]
        items = []
        for destination_id in dict.fromkeys(ids):
            prefix = f"{GROUP}/{destination_id}"
            service = str(s.value(f"{prefix}/service", CUSTOM.id))
            server = str(s.value(f"{prefix}/server", "") or "")
            items.append(
                Destination(
                    id=destination_id,
                    name=str(s.value(f"{prefix}/name", "") or "") or default_name(service, server),
                    service=service,
                    server=server,
                    enabled=_flag(s.value(f"{prefix}/enabled", True)),
                    has_key=_flag(s.value(f"{prefix}/has_key", False)),
                )
            )
        return items

    def _write(self) -> None:
        s = self.settings.qsettings
        s.remove(GROUP)  # destinations removed meanwhile leave nothing behind
        s.setValue(f"{GROUP}/ids", ",".join(d.id for d in self._items))
        for d in self._items:
            prefix = f"{GROUP}/{d.id}"
            s.setValue(f"{prefix}/name", d.name)
            s.setValue(f"{prefix}/service", d.service)
            s.setValue(f"{prefix}/server", d.server)
            s.setValue(f"{prefix}/enabled", d.enabled)
            s.setValue(f"{prefix}/has_key", d.has_key)
        s.sync()

    def _migrate(self) -> list[Destination]:
        """The single default target of earlier versions as the first destination, switched
        on; its key moves to the destination's name (removed from the old one only once
        the new one reads back)."""
        saved = self.settings.load()
        if saved.target_preset == RECORDING.id or not saved.target_server:
            self._items = []
            self._write()
            return []
        key = self.settings.load_stream_key()
        service = preset_by_id(saved.target_preset).id
        destination = Destination(
            new_id(),
            default_name(service, saved.target_server),
            service,
            saved.target_server,
            enabled=True,
            # The old target always had a key (a missing one made sessions record): a
            # missing key is shown as such, for the operator to type it again.
            has_key=True,
        )
        self._items = [destination]
        if key:
            self.settings.save_key(destination.key_name, key)
            if self.settings.load_key(destination.key_name) != key:
                # Not kept where it should be: try again next start, the old key untouched.
                log.warning("the default target's stream key could not be moved")
                self._resolve(destination, key)
                return self._items
            self.settings.save_stream_key("")
        self._write()
        log.info("the default target became the destination %r", destination.name)
        return self._items


def _flag(value: object) -> bool:
    # INI files give strings back ("true"/"false"); other formats give bools.
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
