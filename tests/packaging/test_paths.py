"""desktop_relay.paths: platform folders and the logging set-up (no build, no Qt)."""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest

from desktop_relay import paths

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders")
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every XDG base folder into tmp_path."""
    for name, sub in (
        ("XDG_STATE_HOME", "state"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
    ):
        monkeypatch.setenv(name, str(tmp_path / sub))
    return tmp_path


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (other fixtures watch it for leaked keys)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@linux_only
def test_folders_follow_xdg(xdg: Path) -> None:
    assert paths.log_dir() == xdg / "state" / "desktop-relay" / "log"
    assert paths.log_file() == paths.log_dir() / "desktop-relay.log"
    assert paths.data_dir() == xdg / "data" / "desktop-relay"
    assert paths.config_dir() == xdg / "config" / "desktop-relay"


def test_setup_logging_writes_the_file_and_stderr(
    xdg: Path, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    path = paths.setup_logging("DEBUG")
    assert path == paths.log_file()
    logging.getLogger("desktop_relay.test").info("hello from the test")
    for handler in root_logger.handlers:
        handler.flush()
    assert "INFO desktop_relay.test: hello from the test" in path.read_text()
    assert "hello from the test" in capsys.readouterr().err
    assert root_logger.level == logging.DEBUG


def test_setup_logging_twice_does_not_double_lines(xdg: Path, root_logger: logging.Logger) -> None:
    before = len(root_logger.handlers)
    paths.setup_logging("INFO")
    path = paths.setup_logging("WARNING")
    assert len(root_logger.handlers) == before + 2  # stderr + file, once
    logging.getLogger("desktop_relay.test").warning("once")
    for handler in root_logger.handlers:
        handler.flush()
    assert path.read_text().count("once") == 1


def test_setup_logging_falls_back_when_the_folder_is_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logger: logging.Logger
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    monkeypatch.setattr(paths, "log_dir", lambda: blocked / "log")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    path = paths.setup_logging("INFO")
    assert path == tmp_path / "tmp" / "desktop-relay" / "desktop-relay.log"
    assert path.is_file()


def test_app_icon_is_found_in_the_source_tree() -> None:
    icon = paths.app_icon_file()
    assert icon is not None and icon.name == "desktop-relay.svg"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_log_files_are_private(xdg: Path, root_logger: logging.Logger) -> None:
    # Logs name the streamers' addresses, targets and session names: the user's eyes only.
    path = paths.setup_logging("INFO")
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    # A rotation makes the file anew: it must be private too, and so must the backups.
    handler = next(h for h in root_logger.handlers if isinstance(h, RotatingFileHandler))
    handler.doRollover()
    logging.getLogger("desktop_relay.test").warning("after the rollover")
    handler.flush()
    assert "after the rollover" in path.read_text()
    assert _mode(path) == 0o600
    assert _mode(path.with_name(path.name + ".1")) == 0o600


@posix_only
def test_log_files_an_older_version_left_open_are_tightened(
    xdg: Path, root_logger: logging.Logger
) -> None:
    folder = paths.log_dir()
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    old = paths.log_file()
    backup = old.with_name(old.name + ".2")
    for path in (old, backup):
        path.write_text("old lines\n")
        path.chmod(0o644)
    assert paths.setup_logging("INFO") == old
    assert _mode(folder) == 0o700
    assert _mode(old) == 0o600 and _mode(backup) == 0o600
    assert old.read_text() == "old lines\n"  # appended to, not truncated


@posix_only
def test_temporary_log_folder_is_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logger: logging.Logger
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    monkeypatch.setattr(paths, "log_dir", lambda: blocked / "log")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    path = paths.setup_logging("INFO")
    assert path.parent == tmp_path / "tmp" / "desktop-relay"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
