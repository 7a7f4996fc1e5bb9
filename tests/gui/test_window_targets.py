"""Targets from the window: the default for new sessions, and "Change target…" per session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from desktop_relay.gui.app import startup_config
from desktop_relay.gui.destinations import DestinationStore
from desktop_relay.gui.settings import SettingsStore
from desktop_relay.gui.target_dialog import TargetDialog
from desktop_relay.relay import RelayConfig, mask_target
from desktop_relay.relay.status import OutputState

from ..media import H264_FIXTURE, RtmpReceiver, probe
from .conftest import make_store
from .helpers import OpenWindow, frames, new_session, pid_of, row_of, streaming, until

pytestmark = pytest.mark.media


async def test_default_target_applies_to_new_sessions(
    open_window: OpenWindow,
    rtmp_receiver: Callable[..., RtmpReceiver],
    settings_store: SettingsStore,
    settings_path: Path,
) -> None:
    # (The single default target became a list of destinations, issue 14: one destination
    # added in the panel's dialog is the default target.)
    receiver = rtmp_receiver()
    server, _, key = receiver.url.rpartition("/")
    async with open_window() as window:
        panel = window.destinations_panel
        dialog = panel.add()
        dialog.target_widget.set_preset("custom")
        dialog.target_widget.server_edit.setText(server)
        dialog.target_widget.key_edit.setText(key)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert window.controller.relay is not None
        assert window.controller.relay.default_target == receiver.url
        assert "127.0.0.1" in panel.summary.text()
        shown = [panel.summary.text(), panel.list.item(0).text(), panel.list.item(0).toolTip()]
        assert "****" in panel.list.item(0).toolTip()
        assert not any(key in text for text in shown)

        async with streaming(window) as streamer:
            session = await new_session(window, streamer, "to-default")
            await streamer.replay(H264_FIXTURE, seconds=5)
            await until(lambda: frames(row_of(window, session)) > 0, 10, "frames")
            assert row_of(window, session).status.target == mask_target(receiver.url)
            await streamer.stop()
    await asyncio.to_thread(receiver.wait, 20)
    assert probe(receiver.path).video_frames > 0
    # Saved for next time: server in the settings file, key in the key store only.
    (saved,) = DestinationStore(make_store(settings_path)).all()
    assert saved.server == server and saved.enabled
    assert settings_store.load_key(saved.key_name) == key
    settings_store.qsettings.sync()
    assert key not in Path(settings_store.qsettings.fileName()).read_text(encoding="utf-8")
    # The next start of the app sends new sessions to the same target.
    assert startup_config(make_store(settings_path), RelayConfig()).default_target == receiver.url


async def test_change_target_reaches_the_new_receiver(
    open_window: OpenWindow, rtmp_receiver: Callable[..., RtmpReceiver]
) -> None:
    first, second = rtmp_receiver(), rtmp_receiver()
    async with open_window() as window, streaming(window) as streamer:
        window.controller.set_default_target(first.url)
        session = await new_session(window, streamer, "moving")
        # The new target's output starts from the relay's cached header and group of
        # pictures in progress: stream long enough for it to go live.
        replay = asyncio.create_task(streamer.replay(H264_FIXTURE, seconds=9))
        await until(lambda: frames(row_of(window, session)) > 0, 10, "frames at the first")
        old_pid = pid_of(window, session)

        window.view.select_session(session)
        window.change_target_action.trigger()
        dialog = window.dialog
        assert isinstance(dialog, TargetDialog)
        dialog.target_widget.set_target(second.url)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

        await until(
            lambda: row_of(window, session).status.target == mask_target(second.url),
            10,
            "the row to show the new target",
        )
        await until(
            lambda: any(
                o.target == mask_target(second.url) and o.state == OutputState.LIVE
                for o in row_of(window, session).status.outputs
            ),
            10,
            "the new target's output to go live",
        )
        # Encode once: the encoder is not restarted for a new destination.
        assert pid_of(window, session) == old_pid
        await replay
        await streamer.stop()
    await asyncio.to_thread(first.wait, 20)
    await asyncio.to_thread(second.wait, 20)
    assert probe(second.path).video_frames > 0
    assert probe(first.path).video_frames > 0
