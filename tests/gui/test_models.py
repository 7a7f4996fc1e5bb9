"""The window's pure parts: the sessions model, the log store, user agents, settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication

from desktop_relay.gui.log_store import LineKind, LogStore
from desktop_relay.gui.sessions.model import UUID_ROLE, Column, SessionsModel
from desktop_relay.gui.sessions.view import SessionsView
from desktop_relay.gui.settings import (
    GuiSettings,
    command_line_overrides,
    restart_reasons,
)
from desktop_relay.gui.target_presets import CUSTOM, guess_preset, join_target
from desktop_relay.gui.user_agent import describe_user_agent
from desktop_relay.relay import (
    ErrorName,
    FfmpegState,
    FfmpegStats,
    FfmpegStatus,
    HealthCheck,
    HealthWarning,
    RelayConfig,
    ServerError,
    SessionState,
    SessionStatus,
)

from .conftest import make_store


def snapshot(uuid: str, frames: int = 0, state: SessionState = SessionState.LIVE) -> SessionStatus:
    ffmpeg = FfmpegStatus(
        FfmpegState.RUNNING, frames, None, 1234, {}, FfmpegStats(frames=frames, fps=30.0)
    )
    return SessionStatus(
        uuid=uuid,
        remote_address="127.0.0.1",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",
        name=None,
        state=state,
        connected_at=0.0,
        started_at=1.0,
        uptime_s=5.0,
        bytes_received=1000,
        chunks_received=1,
        buffered_bytes=0,
        target="rtmp://live.example/app/****abcd",
        recording_path=None,
        ffmpeg=ffmpeg,
    )


def test_model_signals_only_changed_rows(qapp: QApplication) -> None:
    model = SessionsModel()
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, *_: changed.append((a.row(), b.row())))
    a, b = snapshot("a" * 36), snapshot("b" * 36)
    model.refresh([a, b], now=0.0)
    assert model.rowCount() == 2 and not changed
    model.refresh([a, b], now=0.05)  # same snapshots: nothing to repaint
    assert not changed
    model.refresh([a, replace(b, ffmpeg=snapshot(b.uuid, frames=50).ffmpeg)], now=0.1)
    assert changed == [(1, 1)]
    assert model.data(model.index(1, Column.FRAMES)) == "50"
    assert model.data(model.index(1, Column.SESSION), UUID_ROLE) == b.uuid
    assert model.data(model.index(0, Column.OUTPUTS)) == "rtmp://live.example/app/****abcd"
    assert "Chrome 126 on Linux" in model.data(model.index(0, Column.SESSION))
    assert model.rowCount(model.index(0, 0)) == 0  # a table: no children
    assert model.columnCount(QModelIndex()) == len(Column)


def test_ended_sessions_stay_until_dismissed_and_failures_are_coloured(
    qapp: QApplication,
) -> None:
    model = SessionsModel()
    ok, bad, idle = snapshot("o" * 36), snapshot("f" * 36), snapshot("i" * 36)
    idle = replace(idle, started_at=None, state=SessionState.CONNECTED, ffmpeg=None)
    model.refresh([ok, bad, idle])
    error = ServerError(ErrorName.RTMP_CONNECTION_FAILED, "Connection to the RTMP server failed")
    model.end_session(bad.uuid, replace(bad, state=SessionState.FAILED, error=error))
    model.end_session(ok.uuid, replace(ok, state=SessionState.ENDED, uptime_s=0.0))
    model.end_session(idle.uuid, replace(idle, state=SessionState.ENDED))
    assert model.rowCount() == 2  # a socket that never streamed leaves no row
    model.refresh([])  # the relay forgot them: rows stay
    assert model.rowCount() == 2
    row = model.row_of(bad.uuid)
    assert row is not None
    state = model.index(row, Column.STATE)
    assert state.data() == "failed: Connection to the RTMP server failed"
    assert state.data(Qt.ItemDataRole.ForegroundRole) is not None
    assert state.data(Qt.ItemDataRole.BackgroundRole) is not None
    assert "RTMP_CONNECTION_FAILED" in state.data(Qt.ItemDataRole.ToolTipRole)
    ok_row = model.row_of(ok.uuid)
    assert ok_row is not None
    assert model.index(ok_row, Column.STATE).data() == "ended"
    assert model.index(ok_row, Column.LIVE).data() == "0:05"  # kept from before the end
    assert model.live_count() == 0
    assert model.dismiss_ended() == 2 and model.rowCount() == 0


def test_log_store_is_bounded_and_reports_what_is_new() -> None:
    store = LogStore(max_lines=5)
    store.append("s", LineKind.FFMPEG, "one\ntwo")
    assert store.since("s", 0) is not None and len(store.since("s", 0) or []) == 2
    assert [line.text for line in store.since("s", 1) or []] == ["two"]
    for i in range(10):
        store.append("s", LineKind.RELAY, f"line {i}")
    assert len(store.lines("s")) == 5 and store.total("s") == 12
    assert store.since("s", 1) is None  # too far behind: the reader starts again
    assert "[relay] line 9" in store.lines("s")[-1].format()
    store.forget("s")
    assert store.lines("s") == []


def test_user_agents_read_as_browser_on_device() -> None:
    android = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    )
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    )
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
    assert describe_user_agent(android) == "Chrome 126 on Android (Pixel 7)"
    assert describe_user_agent(iphone) == "Safari 17 on iPhone"
    assert describe_user_agent(firefox) == "Firefox 127 on Windows"
    assert describe_user_agent("") == "unknown browser"


def test_targets_split_into_preset_server_and_key() -> None:
    url = "rtmp://live.twitch.tv/app/live_123_abcdef"
    preset, server, key = guess_preset(url)
    assert (preset.id, server, key) == ("twitch", "rtmp://live.twitch.tv/app", "live_123_abcdef")
    assert join_target(server, key) == url
    assert guess_preset("rtmp://127.0.0.1:1935/live/k")[0] is CUSTOM
    assert join_target("rtmp://host/app/full", "") == "rtmp://host/app/full"


def test_srt_targets_split_into_the_srt_preset_server_and_query() -> None:
    url = "srt://ingest.example.com:2088?streamid=abc-123&passphrase=0123456789ab"
    preset, server, key = guess_preset(url)
    assert (preset.id, server, key) == (
        "srt", "srt://ingest.example.com:2088", "streamid=abc-123&passphrase=0123456789ab")
    assert join_target(server, key) == url
    assert join_target(server, "?" + key) == url
    assert join_target("srt://h:1/", "") == "srt://h:1/"


def test_command_line_wins_over_saved_settings_and_restarts_are_named() -> None:
    saved = RelayConfig(port=9000, max_ffmpeg_instances=4, default_target="rtmp://a/b/c")
    merged = command_line_overrides(saved, RelayConfig(port=9100))
    assert merged.port == 9100 and merged.max_ffmpeg_instances == 4
    assert merged.default_target == "rtmp://a/b/c"
    # Told exactly what was given, the command line wins even with a default value...
    merged = command_line_overrides(saved, RelayConfig(port=8086, auth_token="t"), {"port"})
    assert merged.port == 8086 and merged.max_ffmpeg_instances == 4
    assert merged.auth_token == "t"  # not a window setting: always the command line's
    changed = replace(saved, port=9001, log_level="DEBUG", max_ffmpeg_instances=None)
    assert restart_reasons(saved, changed) == ["port", "max streams"]


def test_settings_round_trip_through_qsettings(qapp: QApplication, tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    settings = GuiSettings(
        host="127.0.0.1",
        port=0,
        max_streams=2,
        allowed_target_pattern="rtmp://x/.*",
        ffmpeg_path="/usr/bin/ffmpeg",
        recordings_dir=str(tmp_path),
        log_level="DEBUG",
        target_preset="youtube",
        target_server="rtmp://a.rtmp.youtube.com/live2",
    )
    make_store(path).save(settings)
    assert make_store(path).load() == settings
    assert make_store(tmp_path / "none.ini").load() == GuiSettings()


def test_the_table_sorts_by_a_columns_value(qapp: QApplication) -> None:
    model = SessionsModel()
    view = SessionsView(model)
    model.refresh(
        [snapshot(f"{n}" * 36, frames=frames) for n, frames in ((1, 5), (2, 900), (3, 80))]
    )
    view.sortByColumn(Column.FRAMES, Qt.SortOrder.DescendingOrder)
    shown = [view.proxy.index(r, Column.FRAMES).data() for r in range(3)]
    assert shown == ["900", "80", "5"]  # by number, not by text
    view.sortByColumn(Column.FRAMES, Qt.SortOrder.AscendingOrder)
    assert view.proxy.index(0, Column.FRAMES).data() == "5"


def test_cli_tells_the_window_which_options_were_given() -> None:
    from desktop_relay.cli import given_fields

    assert given_fields([]) == frozenset()
    assert given_fields(["--port", "8086", "--log-level", "info"]) == {"port", "log_level"}
    assert given_fields(["--no-tls", "--max-streams", "2"]) == {"tls", "max_ffmpeg_instances"}
    assert given_fields(["--rtmp-url", "rtmp://h/app/key"]) == {"default_target"}


def test_the_window_fits_a_small_laptop_screen(qapp: QApplication) -> None:
    from PySide6.QtCore import QRect

    from desktop_relay.gui.main_window import initial_size

    class Screen:
        def __init__(self, w: int, h: int) -> None:
            self.rect = QRect(0, 0, w, h)

        def availableGeometry(self) -> QRect:
            return self.rect

    assert initial_size(Screen(1920, 1080)) == (1400, 820)  # type: ignore[arg-type]
    width, height = initial_size(Screen(1280, 760))  # type: ignore[arg-type]
    assert width <= 1280 and height <= 760
    assert initial_size(None) == (1400, 820)


def test_the_state_column_tells_of_waiting_and_of_outputs_reconnecting(qapp: QApplication) -> None:
    from desktop_relay.relay import OutputState, OutputStatus

    def output(i: int, state: OutputState, next_in: float | None = None) -> OutputStatus:
        return OutputStatus(
            id=f"out{i}", target=f"rtmp://host{i}/app/****abcd", state=state, bytes_sent=0,
            uptime_s=0.0, reconnects=1 if state == OutputState.LIVE else 0, attempts=2,
            next_attempt_in_s=next_in, last_error="The RTMP server closed the connection"
            if state != OutputState.LIVE else None,
        )

    model = SessionsModel()
    live = output(1, OutputState.LIVE)
    down = output(2, OutputState.RECONNECTING, 4.2)
    model.upsert(replace(snapshot("a"), outputs=(live, down)))
    model.upsert(replace(snapshot("b", state=SessionState.WAITING)))
    model.upsert(replace(snapshot("c"), outputs=(live,)))
    state = [model.index(i, Column.STATE).data() for i in range(3)]
    assert state == [
        "live\n1/2 outputs retrying in 4 s",  # (two lines: the state, then what is wrong)
        "waiting for browser",
        "live",
    ]
    # The target's tooltip lists every destination with its state.
    tip = model.index(0, Column.OUTPUTS).data(Qt.ItemDataRole.ToolTipRole)
    assert "rtmp://host1/app/****abcd: live, 1 reconnect(s)" in tip
    assert "rtmp://host2/app/****abcd: reconnecting, next try in 4 s" in tip
    # A resumed session says how often, and what the audience missed while catching up.
    model.upsert(replace(snapshot("d"), resumes=2, outputs=(replace(live, skipped_s=4.4),)))
    model.upsert(replace(snapshot("e"), resumes=1, outputs=(live,)))
    assert model.index(3, Column.STATE).data() == "live · 2 reconnects · 4 s skipped"
    assert model.index(4, Column.STATE).data() == "live · 1 reconnect"
    # A session whose outputs are down is not painted as healthy.
    assert model.index(0, Column.STATE).data(Qt.ItemDataRole.ForegroundRole) != model.index(
        2, Column.STATE).data(Qt.ItemDataRole.ForegroundRole)


def test_health_warnings_show_in_the_state_column_with_their_sentences(qapp: QApplication) -> None:
    model = SessionsModel()
    silent = HealthWarning(HealthCheck.NO_AUDIO, "The stream has no sound: no microphone is being sent.")
    slow = HealthWarning(HealthCheck.KEYFRAME_INTERVAL, "A keyframe comes only every 10 s.")
    model.upsert(replace(snapshot("a"), health=(silent,)))
    model.upsert(replace(snapshot("b"), health=(silent, slow)))
    model.upsert(snapshot("c"))
    assert [model.index(i, Column.STATE).data() for i in range(3)] == [
        "live\n\u26a0 no audio", "live\n\u26a0 2 warnings", "live"]
    tip = model.index(1, Column.STATE).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == f"\u26a0 {silent.message}\n\u26a0 {slow.message}"
    # A stream with warnings is not painted as healthy.
    colour = model.index(0, Column.STATE).data(Qt.ItemDataRole.ForegroundRole)
    assert colour != model.index(2, Column.STATE).data(Qt.ItemDataRole.ForegroundRole)


def test_the_audio_column_shows_the_level_silence_or_no_audio(qapp: QApplication) -> None:
    from desktop_relay.relay import AudioLevel

    model = SessionsModel()
    no_audio = HealthWarning(HealthCheck.NO_AUDIO, "The stream has no sound.")
    model.upsert(replace(snapshot("a"), audio=AudioLevel(-15.0, -27.0, 0.0)))
    model.upsert(replace(snapshot("b"), audio=AudioLevel(float("-inf"), float("-inf"), 12.4)))
    model.upsert(replace(snapshot("c"), health=(no_audio,)))
    model.upsert(snapshot("d"))  # not measured yet
    assert [model.index(i, Column.AUDIO).data() for i in range(4)] == [
        "\u25ae\u25ae\u25ae\u25af\u25af\u25af -27 dB",
        "\u25af\u25af\u25af\u25af\u25af\u25af -\u221e dB silent 12 s",
        "no audio",
        "",
    ]
    assert model.headerData(Column.AUDIO, Qt.Orientation.Horizontal) == "Audio"


def test_the_status_bar_totals_outgoing_bitrate_and_cpu(qapp: QApplication) -> None:
    import subprocess
    import sys
    import time

    from desktop_relay.gui.cpu_usage import CpuUsage
    from desktop_relay.gui.status_bar import RelayStatusBar
    from desktop_relay.relay import OutputState, OutputStatus

    def with_sent(uuid: str, sent: int) -> SessionStatus:
        out = OutputStatus(id="out1", target="rtmp://host/app/****abcd", state=OutputState.LIVE,
                           bytes_sent=sent, uptime_s=1.0, reconnects=0, attempts=0,
                           next_attempt_in_s=None, last_error=None, pid=4321)
        return replace(snapshot(uuid), outputs=(out,))

    model = SessionsModel()
    model.upsert(with_sent("a", 0), now=10.0)
    model.upsert(with_sent("a", 125_000), now=11.0)  # 1000 kbit/s over that second
    assert round(model.total_outgoing_kbps()) == 1000
    assert model.ffmpeg_pids() == [1234, 4321]  # the encoder's and the output's

    # A real busy child, measured as `top` would: most of one core.
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cpu = CpuUsage()
        assert cpu.available
        assert cpu.sample([busy.pid]) is None  # the first sample has nothing to compare to
        time.sleep(1.0)
        figures = cpu.sample([busy.pid, 999_999_999])  # a pid that is gone counts nothing
        assert figures is not None
        own, children = figures
        assert children > 50 and 0 <= own < 50, figures
    finally:
        busy.kill()
        busy.wait()
    bar = RelayStatusBar()
    bar.set_counts(2, 800.0, 1000.0, (12.4, 61.0))
    assert bar.outgoing_label.text() == "Out 1.00 Mbit/s"
    assert bar.cpu_label.text() == "CPU app 12 % \u00b7 ffmpeg 61 %"


def test_the_controllers_relay_signals_carry_the_events_names() -> None:
    """One name per event: the window's signals are named as the observer's methods."""
    from PySide6.QtCore import Signal

    from desktop_relay.gui.relay_controller import RelayController
    from desktop_relay.relay.events import EVENTS

    signals = {name for name, value in vars(RelayController).items() if isinstance(value, Signal)}
    own = {"started", "start_failed", "stopped", "action_failed"}
    assert signals - own <= EVENTS, signals - own - EVENTS
    assert {"session_opened", "ffmpeg_output", "session_ended"} <= signals
