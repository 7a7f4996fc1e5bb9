"""One home for the window's settings: a readable INI in the config folder, hand edits
honoured, an unreadable file set aside (not fatal), an older version's file carried over."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from desktop_relay import paths
from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.settings import SettingsStore
from desktop_relay.relay.security.keystore import KeyStore

OpenWindow = Callable[..., AbstractAsyncContextManager[MainWindow]]


def _keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json", use_keyring=False)


def test_the_file_lives_in_the_config_folder_and_hand_edits_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    store = SettingsStore.for_user()
    assert store.path.parent == paths.config_dir()
    assert store.path == tmp_path / "config" / "desktop-relay" / "settings.ini"
    store.path.write_text("[relay]\nport=9123\nhost=127.0.0.1\n\n[log]\nlevel=DEBUG\n")
    again = SettingsStore.for_user().load()  # as at the next start
    assert (again.port, again.host, again.log_level) == (9123, "127.0.0.1", "DEBUG")


def test_an_unreadable_file_is_set_aside_and_defaults_are_used(tmp_path: Path) -> None:
    path = tmp_path / "settings.ini"
    garbage = b"\x00\xff\xfe [[[\n=== \n[relay\nport=1\n"
    path.write_bytes(garbage)
    store = SettingsStore.open(path, _keys(tmp_path))
    assert store.load().port == 8086  # the default
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("settings.ini.unreadable-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage  # nothing lost
    assert store.problems and str(aside[0]) in store.problems[0]
    # The new file works.
    store.save(store.load())
    assert not SettingsStore.open(path, _keys(tmp_path)).problems


def test_an_older_versions_file_is_carried_over_once(tmp_path: Path) -> None:
    legacy = tmp_path / "Desktop Relay" / "desktop-relay.ini"
    legacy.parent.mkdir()
    legacy.write_text("[relay]\nport=9001\n")
    path = tmp_path / "desktop-relay" / "settings.ini"
    assert SettingsStore.open(path, _keys(tmp_path), legacy=legacy).load().port == 9001
    assert legacy.exists()  # left for an older version still installed
    legacy.write_text("[relay]\nport=9002\n")
    assert SettingsStore.open(path, _keys(tmp_path), legacy=legacy).load().port == 9001


async def test_the_window_shows_why_the_defaults_are_used(
    open_window: OpenWindow, tmp_path: Path
) -> None:
    path = tmp_path / "broken" / "settings.ini"
    path.parent.mkdir()
    path.write_bytes(b"\x00\xff [[[\n[relay\nport=1\n")  # (an unclosed section)
    store = SettingsStore.open(path, _keys(tmp_path))
    async with open_window(store=store) as window:
        assert window.banner.isVisible()
        assert "could not be read" in window.banner.label.text()
