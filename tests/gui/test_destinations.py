"""Destinations from the window (issue 14 item 4): several at once, each on or off with its
live state, added to and removed from one live session, keys in the KeyStore only, and the
old single default target carried over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit, QMenu, QMessageBox

from desktop_relay.gui.app import startup_config
from desktop_relay.gui.destinations import Destination, DestinationStore
from desktop_relay.gui.destinations_panel import DestinationsPanel
from desktop_relay.gui.main_window import MainWindow
from desktop_relay.gui.sessions.columns import Column
from desktop_relay.gui.settings import GuiSettings, SettingsStore
from desktop_relay.relay import OutputState, OutputStatus, RelayConfig, mask_target

from ..media import H264_FIXTURE, SECRETS, RtmpReceiver, probe
from .conftest import make_store
from .helpers import OpenWindow, new_session, row_of, streaming, until

TWITCH = "rtmp://live.twitch.tv/app"
TWITCH_KEY = "live_123456789_abcdefghijklmnop"
SECRETS.add(TWITCH_KEY)


def add_destination(
    panel: DestinationsPanel, service: str, server: str = "", key: str = "", name: str = ""
) -> Destination:
    """Add a destination through the panel's dialog, as the operator does."""
    dialog = panel.add()
    dialog.name_edit.setText(name)
    dialog.target_widget.set_preset(service)
    if server:
        dialog.target_widget.server_edit.setText(server)
    dialog.target_widget.key_edit.setText(key)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert not dialog.isVisible(), dialog.target_widget.error_label.text()
    assert dialog.destination is not None
    return dialog.destination


def item_text(panel: DestinationsPanel, name: str) -> str:
    """A destination's two lines in the panel's list."""
    for row in range(panel.list.count()):
        text = panel.list.item(row).text()
        if text.split("\n")[0] == name:
            return text
    raise AssertionError(f"no destination {name} in {panel.list.count()} rows")


def outputs_line(window: MainWindow, session: str) -> list[str]:
    """The Outputs column's second line, one state per output."""
    text = row_of(window, session).texts[Column.OUTPUTS]
    return text.split("\n")[1].split(" · ") if "\n" in text else []


def output_to(window: MainWindow, session: str, url: str) -> OutputStatus | None:
    """The session's output to `url`, as its row has it."""
    masked = mask_target(url)
    return next((o for o in row_of(window, session).status.outputs if o.target == masked), None)


def menu_actions(window: MainWindow, session: str, submenu: str) -> list[QAction]:
    """The entries of one of the row's context submenus."""
    window.view.select_session(session)
    menu = window.view.build_menu()
    sub = next(a.menu() for a in menu.actions() if a.text() == submenu)
    assert isinstance(sub, QMenu)
    return [a for a in sub.actions() if not a.isSeparator()]


# ---- live sessions -------------------------------------------------------------------


@pytest.mark.media
async def test_two_destinations_get_the_session_and_a_killed_receiver_shows_retrying(
    open_window: OpenWindow, rtmp_receiver: Callable[..., RtmpReceiver]
) -> None:
    flaky, steady = rtmp_receiver("flaky-0123456789abcd"), rtmp_receiver("steady-0123456789abc")
    async with open_window() as window, streaming(window) as streamer:
        panel = window.destinations_panel
        # A whole URL typed as the server, and a server and key typed apart.
        add_destination(panel, "custom", flaky.url, name="Flaky")
        server, _, key = steady.url.rpartition("/")
        add_destination(panel, "custom", server, key, name="Steady")
        assert window.controller.relay is not None
        assert window.controller.relay.default_targets == [flaky.url, steady.url]
        assert panel.summary.text() == "New sessions go to Flaky and Steady."

        session = await new_session(window, streamer, "two-places")
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=14))
        await until(
            lambda: outputs_line(window, session) == ["live", "live"], 15, "both outputs live"
        )
        await until(
            lambda: (
                "1 live" in item_text(panel, "Flaky") and "1 live" in item_text(panel, "Steady")
            ),
            5,
            "the panel to show both live",
        )
        flaky.process.kill()
        flaky.process.wait()
        await until(
            lambda: outputs_line(window, session)[0].startswith("retrying"),
            15,
            "the row to show the killed receiver's output retrying",
        )
        await until(
            lambda: "retrying" in item_text(panel, "Flaky"), 5, "the panel to show it retrying"
        )
        assert outputs_line(window, session)[1] == "live"
        assert item_text(panel, "Steady").endswith("1 live")
        steady_output = output_to(window, session, steady.url)
        assert steady_output is not None and steady_output.state == OutputState.LIVE
        sent = steady_output.bytes_sent
        await until(
            lambda: (
                (o := output_to(window, session, steady.url)) is not None and o.bytes_sent > sent
            ),
            5,
            "the steady output to go on sending",
        )
        await replay
        await streamer.stop()
    await asyncio.to_thread(steady.wait, 30)
    assert probe(steady.path).video_frames > 100


@pytest.mark.media
async def test_a_disabled_destination_gets_nothing_and_switches_apply_to_new_sessions(
    open_window: OpenWindow, rtmp_receiver: Callable[..., RtmpReceiver], relay_config: RelayConfig
) -> None:
    first, second = rtmp_receiver("first-0123456789abcd"), rtmp_receiver("second-0123456789abc")
    async with open_window() as window:
        panel = window.destinations_panel
        one = add_destination(panel, "custom", first.url, name="One")
        two = add_destination(panel, "custom", second.url, name="Two")
        recording = add_destination(panel, "recording", name="Files")
        panel.set_enabled(two.id, False)
        panel.set_enabled(recording.id, False)
        assert item_text(panel, "Two").endswith("off")
        assert window.controller.config.default_target == first.url
        assert window.controller.config.extra_targets == ()

        async with streaming(window) as streamer:
            early = await new_session(window, streamer, "early")
            replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=6))
            await until(lambda: outputs_line(window, early) == ["live"], 15, "One live")
            # Switched while a session streams: for sessions that start from now on.
            panel.set_enabled(one.id, False)
            panel.set_enabled(two.id, True)
            panel.set_enabled(recording.id, True)
            assert panel.summary.text() == "New sessions go to Two and Files."
            await asyncio.sleep(1.5)
            (only,) = row_of(window, early).status.outputs
            assert only.target == mask_target(first.url)
            await replay
            await streamer.stop()
        await asyncio.to_thread(first.wait, 20)
        # The disabled destination's receiver never had a publisher.
        assert second.process.poll() is None and not second.path.exists()

        async with streaming(window) as streamer:
            late = await new_session(window, streamer, "late")
            replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=5))
            await until(lambda: outputs_line(window, late) == ["live", "live"], 15, "Two + file")
            outputs = row_of(window, late).status.outputs
            assert outputs[0].target == mask_target(second.url)
            assert outputs[1].recording_path is not None
            await until(lambda: item_text(panel, "Files").endswith("1 live"), 5, "Files live")
            assert "1 live" not in item_text(panel, "One")
            await replay
            await streamer.stop()
    await asyncio.to_thread(second.wait, 20)
    assert probe(second.path).video_frames > 0
    files = list(relay_config.recordings_dir.glob("*-late.mkv"))  # type: ignore[union-attr]
    assert len(files) == 1 and probe(files[0]).video_frames > 0


@pytest.mark.media
async def test_add_then_remove_a_destination_on_a_live_session_leaves_the_other_alone(
    open_window: OpenWindow, rtmp_receiver: Callable[..., RtmpReceiver]
) -> None:
    main, extra = rtmp_receiver("main-0123456789abcdef"), rtmp_receiver("extra-0123456789abcde")
    async with open_window() as window, streaming(window) as streamer:
        panel = window.destinations_panel
        add_destination(panel, "custom", main.url, name="Main")
        spare = add_destination(panel, "custom", extra.url, name="Spare")
        panel.set_enabled(spare.id, False)
        session = await new_session(window, streamer, "grows")
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=16))
        await until(lambda: outputs_line(window, session) == ["live"], 15, "Main live")
        main_output = output_to(window, session, main.url)
        assert main_output is not None
        encoder = row_of(window, session).status.ffmpeg
        assert encoder is not None

        samples: list[int] = []

        async def sample(seconds: float) -> None:
            """Main's bytes, once a second: each must be above the one before."""
            for _ in range(int(seconds)):
                await asyncio.sleep(1.0)
                output = output_to(window, session, main.url)
                assert output is not None and output.id == main_output.id
                samples.append(output.bytes_sent)

        # Add: Main is already an output, so only Spare is offered.
        (add,) = menu_actions(window, session, "Add destination")
        assert add.text() == "Spare"
        add.trigger()
        await until(
            lambda: outputs_line(window, session) == ["live", "live"], 15, "Spare's output live"
        )
        await until(lambda: extra.path.exists() and extra.path.stat().st_size > 0, 5, "data")
        await sample(3)
        assert menu_actions(window, session, "Add destination") == []

        # Remove: both outputs are listed, by destination name.
        entries = menu_actions(window, session, "Remove destination")
        assert [a.text() for a in entries] == [
            f"Main ({mask_target(main.url)})",
            f"Spare ({mask_target(extra.url)})",
        ]
        entries[1].trigger()
        await until(lambda: len(row_of(window, session).status.outputs) == 1, 10, "Spare gone")
        await asyncio.to_thread(extra.wait, 10)  # its publisher left: the file is complete
        await sample(3)
        (last,) = menu_actions(window, session, "Remove destination")
        assert not last.isEnabled()  # the only destination left: Kill or Change target
        status = row_of(window, session).status
        assert status.ffmpeg is not None and status.ffmpeg.pid == encoder.pid  # encoded once
        assert samples == sorted(samples) and len(set(samples)) == len(samples), samples
        await replay
        await streamer.stop()
    assert probe(extra.path).video_frames > 0
    await asyncio.to_thread(main.wait, 20)
    assert probe(main.path).video_frames > 200
    # (The only message: stream keys are in a file here, not a keyring.)
    assert not [m for m in window.banner.messages if "failed" in m], window.banner.messages


# ---- keys ----------------------------------------------------------------------------


async def test_keys_live_in_the_key_store_and_are_masked_in_the_window(
    open_window: OpenWindow, settings_store: SettingsStore, settings_path: Path
) -> None:
    async with open_window() as window:
        panel = window.destinations_panel
        twitch = add_destination(panel, "twitch", key=TWITCH_KEY)
        assert twitch.name == "Twitch" and twitch.server == TWITCH and twitch.has_key
        # A file, not the user's keyring (conftest.make_store): the panel says so once.
        assert window.banner.messages and "keyring" in window.banner.messages[-1]
        assert window.controller.config.default_target == f"{TWITCH}/{TWITCH_KEY}"

        shown = [panel.summary.text()]
        for row in range(panel.list.count()):
            shown += [panel.list.item(row).text(), panel.list.item(row).toolTip()]
        assert "****mnop" in panel.list.item(0).toolTip()
        # The edit dialog has it in a password field only.
        dialog = panel.edit()
        assert dialog is not None
        assert dialog.target_widget.key_edit.echoMode() == QLineEdit.EchoMode.Password
        shown += [label.text() for label in dialog.findChildren(type(panel.summary))]
        dialog.reject()
        assert not any(TWITCH_KEY in text for text in shown), shown

    keys = settings_path.with_name("stream-keys.json").read_text(encoding="utf-8")
    assert TWITCH_KEY in keys and twitch.key_name in keys
    settings_store.qsettings.sync()
    assert TWITCH_KEY not in settings_path.read_text(encoding="utf-8")
    # Removing it forgets its key too.
    store = make_store(settings_path)
    DestinationStore(store).remove(twitch.id)
    assert store.load_key(twitch.key_name) == ""
    assert TWITCH_KEY not in settings_path.with_name("stream-keys.json").read_text()


async def test_the_dialog_refuses_what_is_not_rtmp_and_remove_asks_first(
    open_window: OpenWindow,
) -> None:
    async with open_window() as window:
        panel = window.destinations_panel
        assert not panel.list.isVisible()
        assert panel.summary.text() == ("No destination is on: new sessions are recorded to files.")
        dialog = panel.add()
        dialog.target_widget.set_preset("custom")
        dialog.target_widget.server_edit.setText("http://example.com/live")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert dialog.isVisible()
        assert "rtmp://" in dialog.target_widget.error_label.text()
        dialog.reject()
        assert panel.destinations.all() == []

        for service in ("kick", "facebook", "youtube", "apivideo"):
            add_destination(panel, service, key=f"{service}-key-0123456789")
        add_destination(panel, "recording")
        kick, facebook = panel.destinations.all()[:2]
        assert kick.server == "rtmps://fa723fc1b171.global-contribute.live-video.net/app"
        assert facebook.server == "rtmps://live-api-s.facebook.com:443/rtmp"
        assert facebook.service == "facebook"  # the trailing slash is the preset's own
        assert window.controller.config.record
        assert panel.summary.text() == (
            "New sessions go to Kick, Facebook, YouTube, api.video and Local recording."
        )
        # A second local recording is not offered: one file per session is enough.
        dialog = panel.add()
        assert dialog.target_widget.preset_combo.findData("recording") == -1
        dialog.reject()

        panel.list.setCurrentRow(0)
        question = panel.ask_remove()
        assert question is not None and "Kick" in question.text()
        question.button(QMessageBox.StandardButton.Cancel).click()
        assert len(panel.destinations.all()) == 5
        question = panel.ask_remove()
        assert question is not None
        question.button(QMessageBox.StandardButton.Yes).click()
        assert panel.destinations.all()[0].name == "Facebook"
        relay = window.controller.relay
        assert relay is not None and len(relay.default_targets) == 3


# ---- carried over from the single default target -------------------------------------


def old_settings(path: Path, preset: str, server: str, key: str) -> SettingsStore:
    """Settings as the window saved them before destinations."""
    store = make_store(path)
    store.save(GuiSettings(host="127.0.0.1", port=0, target_preset=preset, target_server=server))
    if key:
        store.save_stream_key(key)
    return store


def test_the_old_default_target_becomes_the_first_destination(
    qapp: object, settings_path: Path
) -> None:
    old_settings(settings_path, "twitch", TWITCH, TWITCH_KEY)
    config = startup_config(make_store(settings_path), RelayConfig())
    assert config.default_target == f"{TWITCH}/{TWITCH_KEY}"
    assert config.host == "127.0.0.1" and not config.record

    store = make_store(settings_path)
    (twitch,) = DestinationStore(store).all()
    assert (twitch.name, twitch.service, twitch.server) == ("Twitch", "twitch", TWITCH)
    assert twitch.enabled and twitch.has_key
    # The key moved to the destination's name; nothing else holds it.
    assert store.load_key(twitch.key_name) == TWITCH_KEY
    assert store.load_stream_key() == ""
    assert TWITCH_KEY not in settings_path.read_text(encoding="utf-8")
    # Once: a second start finds the same single destination.
    assert DestinationStore(make_store(settings_path)).all() == [twitch]


def test_migration_of_a_recording_or_a_lost_key(qapp: object, tmp_path: Path) -> None:
    recording = tmp_path / "recording" / "settings.ini"
    old_settings(recording, "recording", "", "")
    assert DestinationStore(make_store(recording)).all() == []
    assert startup_config(make_store(recording), RelayConfig()).default_target is None

    lost = tmp_path / "lost" / "settings.ini"
    old_settings(lost, "custom", "rtmp://127.0.0.1:1935/live", "")
    store = DestinationStore(make_store(lost))
    (kept,) = store.all()
    assert kept.server == "rtmp://127.0.0.1:1935/live" and kept.enabled
    assert store.problem(kept) == "its stream key is missing"
    # Not sent to the bare server: recorded, and the panel says why.
    assert store.defaults().urls == ()
    assert "stream key is missing" in store.defaults().describe()
    assert startup_config(make_store(lost), RelayConfig()).default_target is None
    panel = DestinationsPanel(DestinationStore(make_store(lost)))
    assert "stream key is missing" in panel.list.item(0).text()
    panel.deleteLater()


def test_command_line_targets_win_over_destinations(qapp: object, settings_path: Path) -> None:
    store = make_store(settings_path)
    destinations = DestinationStore(store)
    for name, key in (("One", "one-0123456789abcdef"), ("Two", "two-0123456789abcdef")):
        destinations.put(
            Destination(name.lower(), name, "custom", "rtmp://127.0.0.1:1935/live"), key
        )
    destinations.put(Destination("files", "Files", "recording"), "")
    saved = startup_config(make_store(settings_path), RelayConfig(), given=frozenset())
    assert saved.default_target == "rtmp://127.0.0.1:1935/live/one-0123456789abcdef"
    assert saved.extra_targets == ("rtmp://127.0.0.1:1935/live/two-0123456789abcdef",)
    assert saved.record
    # Also when the command line's fields are guessed from their values (given=None).
    assert startup_config(make_store(settings_path), RelayConfig()) == saved

    cli = RelayConfig(default_target="rtmp://127.0.0.1:1935/live/cli-0123456789abcdef")
    for given in ({"default_target"}, None):
        chosen = startup_config(make_store(settings_path), cli, given)
        assert chosen.default_target == cli.default_target
        assert chosen.extra_targets == () and not chosen.record
    # The panel then says where new sessions really go, until a destination changes.
    panel = DestinationsPanel(DestinationStore(make_store(settings_path)))
    panel.show_relay_defaults(chosen)
    assert "command line" in panel.summary.text() and "****" in panel.summary.text()
    item = panel.list.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert panel.summary.text() == "New sessions go to Two and Files."
    panel.deleteLater()


SRT_PASSPHRASE = "srt-window-pass-0123"
SECRETS.add(SRT_PASSPHRASE)


async def test_an_srt_server_destination_from_the_preset_is_masked_and_checked(
    open_window: OpenWindow,
) -> None:
    """The "SRT server" preset: the server is typed, the stream id and passphrase go where a
    key goes and are masked like one; a listener target is refused naming why."""
    async with open_window() as window:
        panel = window.destinations_panel
        query = f"streamid=live/show-0123456789&passphrase={SRT_PASSPHRASE}"
        srt = add_destination(panel, "srt", server="srt://127.0.0.1:9000", key=query)
        assert srt.name == "127.0.0.1" and srt.service == "srt"
        url = f"srt://127.0.0.1:9000?{query}"
        assert window.controller.config.default_target == url
        shown = [panel.summary.text()]
        for row in range(panel.list.count()):
            shown += [panel.list.item(row).text(), panel.list.item(row).toolTip()]
        assert not any(SRT_PASSPHRASE in text or "show-0123456789" in text for text in shown)
        # Editing it shows the SRT preset again, with the query in the hidden key field.
        dialog = panel.edit()
        assert dialog is not None
        widget = dialog.target_widget
        assert widget.preset.id == "srt" and widget.server_edit.text() == "srt://127.0.0.1:9000"
        assert widget.key_edit.echoMode() == QLineEdit.EchoMode.Password
        widget.key_edit.setText("streamid=x1&mode=listener")
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert dialog.isVisible()
        assert "mode=caller" in widget.error_label.text()
        dialog.reject()
