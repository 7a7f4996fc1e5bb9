"""Every option of the relay's options table from the Settings dialog: it reaches the relay's
config, survives the settings file, and is refused with the command line's own message."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QDoubleSpinBox, QSpinBox

from desktop_relay.cli import main
from desktop_relay.gui.app import startup_config
from desktop_relay.gui.settings import GuiSettings
from desktop_relay.gui.settings_dialog import SettingsDialog
from desktop_relay.relay import OPTIONS, Option, OptionKind, RelayConfig, TlsFiles, option
from desktop_relay.relay.security.tls import ensure_certificate

from .conftest import make_store
from .helpers import OpenWindow, accept_restart


@pytest.fixture(autouse=True)
def keep_log_level() -> Iterator[None]:
    """The dialog's log level applies to the process's root logger: restore it."""
    loggers = [logging.getLogger(), logging.getLogger("desktop_relay.relay")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def _slate_png(path: Path) -> Path:
    """A small real PNG (the slate option takes a picture)."""
    image = QImage(64, 36, QImage.Format.Format_RGB888)
    image.fill(QColor("orange"))
    assert image.save(str(path), "PNG")
    return path


def _non_default(opt: Option, tmp_path: Path, ffmpeg_exe: str) -> dict[str, str]:
    """What to type for `opt` (and its partner) to differ from the test relay's config;
    values a relay can really run with."""
    if opt.field == "tls":
        own = ensure_certificate(tmp_path / "own", ["127.0.0.1"])
        return {"tls_cert": str(own.cert), "tls_key": str(own.key)}
    text = {
        "host": "::1",
        "port": str(_free_port()),
        "max_streams": "3",
        "allowed_target_pattern": r"rtmp://127\.0\.0\.1:\d+/live/.*",
        "ffmpeg_path": ffmpeg_exe,
        "recordings_dir": str(tmp_path / "elsewhere"),
        "allowed_origins": "https://studio.example.com, http://127.0.0.1:9",
        "max_chunk_bytes": "2097152",
        "max_chunks_per_second": "25.5",
        "max_ingest_bitrate": "8000000",
        "video_encoder": "libx264",
        "idle_timeout": "0",  # never
        "resume_grace": "5",
        "safety_copy": "true",
        "log_level": "DEBUG",
        "max_connections_per_address": "0",  # no cap
        "max_cpu": "95",
        "ping_interval": "5",
        "ping_timeout": "20",
        "program_size": "1920x1080",
        "program_fps": "25",
        "program_bitrate": "6000000",
        "program_name": "Sunday Show",
        "slate_image": str(_slate_png(tmp_path / "slate.png")),
    }[opt.name]
    return {opt.name: text}


def settings_dialog(window: object) -> SettingsDialog:
    dialog = getattr(window, "dialog", None)
    assert isinstance(dialog, SettingsDialog)
    return dialog


@pytest.mark.parametrize("opt", [o for o in OPTIONS if o.name != "tls_key"], ids=lambda o: o.name)
async def test_each_option_reaches_the_relay_and_the_settings_file(
    opt: Option, open_window: OpenWindow, settings_path: Path, tmp_path: Path, ffmpeg_exe: str
) -> None:
    if opt.name == "host" and not _ipv6_loopback():
        pytest.skip("no IPv6 loopback to listen on")
    typed = _non_default(opt, tmp_path, ffmpeg_exe)
    wanted = {name: option(name).read(text) for name, text in typed.items()}
    async with open_window(store=make_store(settings_path)) as window:
        first_relay = window.controller.relay
        window.settings_action.trigger()
        dialog = settings_dialog(window)
        for name, text in typed.items():
            dialog.editors[name].set_text(text)
        if opt.name == "allowed_target_pattern":
            dialog.allow_client.setChecked(True)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert not dialog.isVisible(), dialog.error_label.text()
        if opt.restart:
            question = window.pending_question
            assert question is not None and opt.restart_reason in question.text()
            relay = await accept_restart(window, question, first_relay, 15)
            expected = (
                TlsFiles(Path(wanted["tls_cert"]), Path(wanted["tls_key"]))
                if opt.field == "tls"
                else opt.to_config(wanted[opt.name])
            )
            got = getattr(relay.config, opt.field)
            assert got == expected
            assert got != getattr(first_relay.config, opt.field)  # type: ignore[union-attr]
        else:
            assert window.pending_question is None
            assert logging.getLogger("desktop_relay.relay").level == logging.DEBUG

    # As at the next start: the file holds it, and the relay is built with it.
    store = make_store(settings_path)
    loaded = store.load()
    assert {name: loaded.get(name) for name in wanted} == wanted
    assert not store.problems
    config = startup_config(store, RelayConfig())
    if opt.field != "tls":
        assert getattr(config, opt.field) == opt.to_config(wanted[opt.name])
    else:
        assert config.tls is not None and str(config.tls.key) == wanted["tls_key"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("allowed_target_pattern", "rtmp://(unclosed"),
        ("allowed_target_pattern", r"(?=x)rtmp://.*"),
        ("allowed_origins", "https://example.com/page"),
        ("allowed_origins", "studio.example.com"),
    ],
)
def test_a_bad_value_is_refused_with_the_command_lines_message(
    name: str, text: str, qapp: QApplication, capfd: pytest.CaptureFixture[str]
) -> None:
    opt = option(name)
    dialog = SettingsDialog(GuiSettings())
    dialog.show()
    try:
        dialog.tabs.setCurrentIndex(0)
        if name == "allowed_target_pattern":
            dialog.allow_client.setChecked(True)
            dialog.pattern_edit.setText(text)
        else:
            edit = dialog.editors[name].widget
            edit.setText(text)  # type: ignore[attr-defined]
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert dialog.isVisible()  # refused
        shown = dialog.error_label.text()
        assert shown.startswith(f"{opt.label}: ")
        assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == opt.group  # shown to fix
    finally:
        dialog.reject()
    with pytest.raises(SystemExit) as info:
        main(["--headless", opt.flag, text])
    assert info.value.code == 2
    why = shown.removeprefix(f"{opt.label}: ")
    assert f"argument {opt.flag}: {why}" in capfd.readouterr().err


def test_number_boxes_hold_only_what_the_option_accepts(qapp: QApplication) -> None:
    dialog = SettingsDialog(GuiSettings())
    for opt in OPTIONS:
        if opt.kind not in (OptionKind.INT, OptionKind.FLOAT):
            continue
        box = dialog.editors[opt.name].widget
        assert isinstance(box, QSpinBox | QDoubleSpinBox)
        # The lowest the box holds is the option's minimum, or 0 shown as what it means.
        if opt.zero_text:
            assert box.minimum() == 0 and box.specialValueText() == opt.zero_text
            assert opt.read(opt.format(box.minimum())) in (None, 0)
        else:
            assert box.minimum() == opt.minimum
        if opt.maximum is not None:
            assert box.maximum() == opt.maximum
        opt.parse(opt.format(box.maximum()))  # accepted by the command line too
    dialog.deleteLater()


def test_every_option_is_in_the_dialog_and_it_fits_a_small_screen(qapp: QApplication) -> None:
    dialog = SettingsDialog(GuiSettings())
    dialog.show()
    try:
        assert {opt.name for opt in OPTIONS} == set(dialog.editors)
        tabs = {dialog.tabs.tabText(i) for i in range(dialog.tabs.count())}
        assert tabs == {"Network", "Limits", "Sessions", "Files", "Program", "Security", "Logging"}
        size = dialog.frameGeometry().size().expandedTo(dialog.sizeHint())
        assert size.width() <= 1280 and size.height() <= 800 - 40, size  # (a panel)
        # Opened on the defaults and OK'd untouched, nothing changes.
        assert dialog.validate() is None and dialog.chosen() == GuiSettings()
    finally:
        dialog.reject()


async def test_unusable_values_in_the_file_start_with_defaults_and_say_so(
    open_window: OpenWindow, settings_path: Path, tmp_path: Path
) -> None:
    settings_path.parent.mkdir(parents=True, exist_ok=True)
    settings_path.write_text(
        "[relay]\nhost=127.0.0.1\nport=0\nmax_streams=2\nvideo_encoder=h265\n"
        f"recordings_dir={tmp_path / 'rec'}\n"
        "[limits]\nmax_chunk_bytes=12\nmax_ingest_bitrate=fast\n"
        "[security]\nallowed_origins=https://ok.example, not-an-origin\n"
        "[sessions]\nidle_timeout=soon\nsafety_copy=perhaps\n"
    )
    store = make_store(settings_path)
    config = startup_config(store, RelayConfig())
    defaults = RelayConfig()
    for field in (
        "video_encoder",
        "max_chunk_bytes",
        "max_ingest_bits_per_second",
        "cors_allowed_origins",
        "idle_timeout",
        "safety_copy",
    ):
        assert getattr(config, field) == getattr(defaults, field), field
    assert config.max_ffmpeg_instances == 2 and config.port == 0  # the usable ones apply
    keys = [
        "relay/video_encoder",
        "limits/max_chunk_bytes",
        "limits/max_ingest_bitrate",
        "security/allowed_origins",
        "sessions/idle_timeout",
        "sessions/safety_copy",
    ]
    assert len(store.problems) == len(keys)
    for key in keys:
        assert [p for p in store.problems if key in p and "the default" in p], key
    store.load()
    assert len(store.problems) == len(keys)  # said once, however often it is read
    async with open_window(config=config, store=store) as window:
        assert window.banner.isVisible()
        assert any("limits/max_chunk_bytes" in m for m in window.banner.messages)
