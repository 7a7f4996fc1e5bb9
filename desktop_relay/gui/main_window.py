"""The operator's window: sessions, their logs, targets, join URLs, settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QHideEvent,
    QKeySequence,
    QScreen,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ..relay import ProgramStatus, RelayConfig, join_urls
from .cpu_usage import CpuUsage
from .destinations import DefaultOutputs, DestinationStore
from .destinations_panel import DestinationsPanel
from .error_banner import ErrorBanner
from .help_menu import add_help_menu
from .join_panel import JoinPanel
from .log_pane import LogPane
from .log_store import LogStore
from .program.panel import ProgramPanel
from .program.words import session_marks
from .questions import ask
from .relay_controller import RelayController
from .sessions.events import SessionEvents
from .sessions.model import UUID_ROLE, SessionRow, SessionsModel, session_label
from .sessions.preview import PreviewPanel
from .sessions.view import SessionsView
from .settings import GuiSettings, SettingsStore, apply_log_level, restart_reasons
from .settings_dialog import SettingsDialog
from .shortcuts import key_of, shortcuts_html
from .status_bar import RelayStatusBar
from .target_dialog import TargetDialog
from .user_agent import describe_user_agent

log = logging.getLogger(__name__)

REFRESH_MS = 500  # counters at 2 Hz: ffmpeg reports progress every 0.5 s anyway


def initial_size(screen: QScreen | None) -> tuple[int, int]:
    """1400x820 where it fits, else most of the screen (a 1280x800 laptop must see it all)."""
    if screen is None:
        return 1400, 820
    room = screen.availableGeometry()
    return min(1400, int(room.width() * 0.95)), min(820, int(room.height() * 0.9))


class MainWindow(QMainWindow):
    """Observes the relay through `RelayController` signals and a refresh timer."""

    closed = Signal()  # the relay has stopped and the window is gone: the app may end

    def __init__(
        self,
        controller: RelayController,
        store: SettingsStore,
        parent: QWidget | None = None,
        *,
        destinations: DestinationStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Desktop Relay")
        self.controller = controller
        self.store = store
        self.model = SessionsModel(self)
        self.cpu = CpuUsage()
        self.logs = LogStore()
        self.pending_question: QMessageBox | None = None
        self.dialog: SettingsDialog | TargetDialog | None = None
        self._pending_config: RelayConfig | None = None
        self._quitting = False
        self._may_close = False
        self._quit_task: asyncio.Task[None] | None = None

        self.view = SessionsView(self.model)
        self.log_pane = LogPane(self.logs)
        self.banner = ErrorBanner()
        self.destinations_panel = DestinationsPanel(
            destinations or DestinationStore(store), self.model
        )
        self.join_panel = JoinPanel()
        self.preview = PreviewPanel()
        self.program_panel = ProgramPanel()
        self._program_shown = False  # the Program tab comes forward once, when it turns on
        self.status = RelayStatusBar()
        self.setStatusBar(self.status)
        self._build_layout()
        self._build_actions()
        self._connect()

        self.timer = QTimer(self, interval=REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._restore_state()
        for problem in store.problems:  # e.g. an unreadable settings file set aside
            self.banner.report(problem)
        if controller.running:
            self._relay_started()
        else:
            self.status.set_address(None)

    # ---- layout ----------------------------------------------------------------------

    def _build_layout(self) -> None:
        left = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.banner)
        top_layout.addWidget(self.view)
        left.addWidget(top)
        left.addWidget(self.log_pane)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 2)
        self.left_splitter = left

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.preview)
        side_layout.addWidget(self.destinations_panel)
        side_layout.addWidget(self.join_panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The side panel's fields must not be clipped: never narrower than its content, and
        # wide enough that a join URL with its token stays mostly readable.
        scrollbar = scroll.verticalScrollBar().sizeHint().width()
        scroll.setMinimumWidth(max(330, side.sizeHint().width() + scrollbar))
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        program = QScrollArea()
        program.setWidget(self.program_panel)
        program.setWidgetResizable(True)
        program.setFrameShape(QScrollArea.Shape.NoFrame)
        program.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.program_scroll = program
        # Tabs keep the window within 1280x800: the program's monitors and controls beside
        # the table, in the side panel's width, not a third column.
        tabs = QTabWidget()
        tabs.setDocumentMode(True)
        tabs.addTab(scroll, "Sessions")
        tabs.addTab(program, "Program")
        tabs.setTabToolTip(0, "The selected session's picture, destinations, join links")
        tabs.setTabToolTip(1, "Preview and Program, Take, Fade, Slate, the control API")
        self.side_tabs = tabs

        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(tabs)
        self.side_panel = scroll
        main.setStretchFactor(0, 1)
        main.setStretchFactor(1, 0)
        main.setContentsMargins(6, 6, 6, 0)
        self.main_splitter = main
        self.setCentralWidget(main)
        self.resize(*initial_size(QGuiApplication.primaryScreen()))

    def rotate_token(self) -> None:
        """New pairing token: new join links and QR code; streaming browsers stay."""
        if self.controller.rotate_token() is None:
            return
        address = self.controller.listen_address
        if address is not None:
            self.join_panel.set_address(
                address,
                tls=self.controller.uses_tls,
                token=self.controller.auth_token,
                fingerprint=self.controller.certificate_fingerprint,
            )
        self.status.showMessage("New pairing token: browsers need the new link or QR code", 6000)

    def _build_actions(self) -> None:
        def action(text: str, slot: Callable[[], object], shortcut: str | None = None) -> QAction:
            act = QAction(text, self)
            act.triggered.connect(slot)
            if shortcut:
                act.setShortcut(key_of(shortcut))
                act.setToolTip(f"{text.rstrip('…')} ({act.shortcut().toString()})")
            return act

        self.settings_action = action("Settings…", self.open_settings, "settings")
        self.restart_action = action("Restart relay", self.restart_relay, "restart")
        self.quit_action = action("Quit", self.close, "quit")
        self.change_target_action = action(
            "Change target…", self.view.request_change_target, "change_target"
        )
        self.kill_action = action("Kill", self.view.request_kill, "kill")
        self.kill_all_action = action("Kill all…", self.ask_kill_all, "kill_all")
        self.dismiss_action = action("Dismiss", self.view.request_dismiss, "dismiss")
        self.clear_ended_action = action("Clear ended", self.clear_ended, "clear_ended")
        self.copy_link_action = action("Copy join link", self.copy_join_link, "copy_join_link")
        self.find_action = action("Find in log", self.log_pane.focus_filter, "find_in_log")
        self.shortcuts_action = action("Keyboard shortcuts", self.show_shortcuts, "shortcuts")
        self.take_action = action("Take", self.take, "take")
        self.fade_action = action("Fade", self.fade, "fade")
        self.slate_action = action("Slate on/off", self.toggle_slate, "slate")
        self.addActions([self.copy_link_action, self.find_action])
        # Keys without a modifier (Space, F, B, 1-9): a focused text field takes them first
        # (line edits and spin boxes accept printable keys' ShortcutOverride), so typing a
        # name or a filter never cuts the show.
        self.addActions([self.take_action, self.fade_action, self.slate_action])
        self.preview_actions: list[QAction] = []
        for number in range(1, 10):
            select = QAction(self)
            select.setShortcut(QKeySequence(f"Alt+{number}"))
            select.triggered.connect(lambda _=False, n=number: self.select_nth_session(n))
            self.addAction(select)
            preview = QAction(self)
            preview.setShortcut(QKeySequence(str(number)))
            preview.triggered.connect(lambda _=False, n=number: self.preview_nth_session(n))
            self.addAction(preview)
            self.preview_actions.append(preview)

        relay_menu = self.menuBar().addMenu("&Relay")
        relay_menu.addActions([self.settings_action, self.restart_action])
        relay_menu.addSeparator()
        relay_menu.addAction(self.quit_action)
        sessions_menu = self.menuBar().addMenu("&Sessions")
        sessions_menu.addActions(
            [self.change_target_action, self.kill_action, self.kill_all_action]
        )
        sessions_menu.addSeparator()
        sessions_menu.addActions([self.dismiss_action, self.clear_ended_action])
        program_menu = self.menuBar().addMenu("&Program")
        program_menu.addActions([self.take_action, self.fade_action, self.slate_action])
        self.program_menu = program_menu
        self.help_menu = add_help_menu(self)
        self.help_menu.insertAction(self.help_menu.actions()[0], self.shortcuts_action)

        toolbar = QToolBar("Sessions")
        toolbar.setObjectName("sessionsToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        toolbar.addActions([self.change_target_action, self.kill_action, self.kill_all_action])
        toolbar.addSeparator()
        toolbar.addActions([self.dismiss_action, self.clear_ended_action])
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        self.addToolBar(toolbar)
        self.toolbar = toolbar
        self._update_actions()

    def _connect(self) -> None:
        c = self.controller
        self.events = SessionEvents(c, self.model, self.logs, self.banner, self.status, self)
        self.events.ended.connect(lambda _session_id: self._update_actions())
        self.events.thumbnail_changed.connect(self._thumbnail_changed)
        c.started.connect(self._relay_started)
        c.start_failed.connect(self._relay_start_failed)
        c.stopped.connect(lambda: self.status.set_address(None))
        c.stopped.connect(lambda: self.join_panel.set_address(None))
        c.action_failed.connect(self.banner.report)
        self.view.selected_session.connect(self._session_selected)
        self.view.kill_requested.connect(self.controller.kill)
        self.view.dismiss_requested.connect(self.dismiss)
        self.view.change_target_requested.connect(self.ask_session_target)
        self.banner.show_session.connect(self.view.select_session)
        self.destinations_panel.applied.connect(self._default_target_applied)
        self.destinations_panel.message.connect(self.banner.report)
        self.view.destinations = self.destinations_panel.destinations
        self.view.add_output_requested.connect(self.controller.add_output)
        self.view.remove_output_requested.connect(self.controller.remove_output)
        self.join_panel.copied.connect(lambda url: self.status.showMessage(f"Copied {url}", 4000))
        self.join_panel.rotate_token_requested.connect(self.rotate_token)
        panel = self.program_panel
        c.program_changed.connect(self._program_changed)
        c.program_picture.connect(panel.show_picture)
        c.stopped.connect(lambda: self._program_changed(None))
        c.stopped.connect(self._show_control_token)  # (no address: nothing to call)
        panel.preview_requested.connect(c.program_preview)
        panel.take_requested.connect(self.take)
        panel.fade_requested.connect(c.program_take_preview)
        panel.slate_requested.connect(c.program_slate)
        panel.pip_requested.connect(c.program_pip)
        panel.token_box.copied.connect(
            lambda: self.status.showMessage("Copied the control token", 4000)
        )
        panel.token_box.rotate_requested.connect(self.ask_rotate_control_token)

    # ---- refresh ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Pull snapshots from the relay (the timer calls this at 2 Hz)."""
        if self.controller.running:
            self.model.refresh(self.controller.sessions())
            # (Also catches the program's start, which follows the relay's, and its outputs'
            # retry countdowns; program_changed brings takes at once.)
            self._program_changed(self.controller.program_status())
        self.status.set_counts(
            self.model.live_count(),
            self.model.total_ingest_kbps(),
            self.model.total_outgoing_kbps(),
            self.cpu.sample(self.model.ffmpeg_pids()),
        )
        # The log's title follows the row (a session gets its name only at `start`).
        self._session_selected(self.view.current_session())
        self._update_actions()

    def _update_actions(self) -> None:
        self.view.update_actions()
        self.change_target_action.setEnabled(self.view.change_target_action.isEnabled())
        self.kill_action.setEnabled(self.view.change_target_action.isEnabled())
        self.dismiss_action.setEnabled(self.view.dismiss_action.isEnabled())
        self.kill_all_action.setEnabled(self.model.live_count() > 0)
        self.clear_ended_action.setEnabled(any(row.ended for row in self.model.rows()))
        self.restart_action.setEnabled(not self._quitting)

    # ---- relay events ----------------------------------------------------------------

    def _relay_started(self) -> None:
        address = self.controller.listen_address
        tls = self.controller.uses_tls
        self.status.set_address(address, scheme="https" if tls else "http")
        self.join_panel.set_address(
            address,
            tls=tls,
            token=self.controller.auth_token,
            fingerprint=self.controller.certificate_fingerprint,
        )
        self.destinations_panel.show_relay_defaults(self.controller.config)
        self._show_control_token()
        self._program_changed(self.controller.program_status())

    def _relay_start_failed(self, message: str) -> None:
        self.status.set_address(None, "Not listening")
        self.join_panel.set_address(None)
        self.banner.report(f"{message}. Change the port or address in Settings.")

    def _program_changed(self, status: ProgramStatus | None) -> None:
        self.program_panel.show_status(status)
        self.model.set_program_marks(session_marks(status) if status is not None else {})
        if status is not None and status.enabled and not self._program_shown:
            self._program_shown = True
            self.side_tabs.setCurrentWidget(self.program_scroll)

    def _show_control_token(self) -> None:
        address = self.controller.listen_address
        api_url = None
        if address is not None:
            host, port = address
            urls = join_urls(host, port, tls=self.controller.uses_tls)
            api_url = urls[0].rstrip("/") + "/api/program" if urls else None
        self.program_panel.token_box.set_token(self.controller.control_token, api_url)

    def _thumbnail_changed(self, session_id: str) -> None:
        if session_id == self.view.current_session():
            self._show_preview(self.model.row(session_id))

    def _show_preview(self, row: SessionRow | None) -> None:
        picture = row.picture if row else None
        if picture is not self.preview.thumbnail:  # converted once per picture, not per refresh
            self.preview.show_thumbnail(picture)

    def _session_selected(self, session_id: str | None) -> None:
        row = self.model.row(session_id) if session_id else None
        self._show_preview(row)
        if row is None:
            self.log_pane.show_session(None)
            return
        status = row.status
        client = describe_user_agent(status.user_agent)
        self.log_pane.show_session(
            status.uuid, f"Log of {session_label(status)} · {status.remote_address} · {client}"
        )

    # ---- operator actions ------------------------------------------------------------

    def select_nth_session(self, number: int) -> bool:
        """Select the table's row `number` (1-based, as shown)."""
        proxy = self.view.proxy
        if not 1 <= number <= proxy.rowCount():
            return False
        self.view.selectRow(number - 1)
        self.view.setFocus()
        return True

    def preview_nth_session(self, number: int) -> bool:
        """Put the table's row `number` (1-based, as shown) on the program's preview."""
        proxy = self.view.proxy
        if not self._program_ready() or not 1 <= number <= proxy.rowCount():
            return False
        session_id = proxy.index(number - 1, 0).data(UUID_ROLE)
        if not isinstance(session_id, str):
            return False
        self.controller.program_preview(session_id)
        return True

    def take(self) -> None:
        """Cut to the session on preview."""
        if self._program_ready():
            self.controller.program_take_preview(0)

    def fade(self) -> None:
        """Fade to the session on preview, over the panel's fade time."""
        if self._program_ready():
            self.controller.program_take_preview(self.program_panel.fade_ms.value())

    def toggle_slate(self) -> None:
        """The operator's slate on, or off."""
        if self._program_ready():
            self.controller.program_slate(not self.program_panel.manual_slate)

    def _program_ready(self) -> bool:
        if self.controller.program_on:
            return True
        # A key pressed by habit: a word in the status bar, not an error in the banner.
        self.status.showMessage("The program is off: start with --program-url to turn it on", 6000)
        return False

    def ask_rotate_control_token(self) -> None:
        """Replace the control API's token, once the operator confirms."""
        self.ask(
            "New control token",
            "Make a new control token? Stream Deck, Companion and scripts using the current "
            "one are refused until they are given the new one.",
            "New token",
            self.rotate_control_token,
        )

    def rotate_control_token(self) -> None:
        """Replace the control API's token now (kept for the next start)."""
        try:
            token = self.controller.rotate_control_token()
        except OSError as exc:  # kept in use, but not saved: say so
            self.banner.report(f"The new control token could not be saved: {exc}")
            token = self.controller.control_token
        self._show_control_token()
        if token is not None:
            self.status.showMessage("New control token: controllers need it now", 6000)

    def copy_join_link(self) -> None:
        """Copy the first join link (with its pairing token) to the clipboard."""
        if self.join_panel.urls:
            self.join_panel.copy(self.join_panel.urls[0])

    def show_shortcuts(self) -> QMessageBox:
        """List the keyboard shortcuts (non-modal)."""
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", shortcuts_html())
        box.setParent(self, box.windowFlags())
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def dismiss(self, session_id: str) -> None:
        """Remove an ended session's row and its log."""
        row = self.model.row(session_id)
        if row is None or not row.ended:
            return
        self.model.dismiss(session_id)
        self.logs.forget(session_id)
        self._update_actions()

    def clear_ended(self) -> None:
        """Dismiss every ended session."""
        for row in [r for r in self.model.rows() if r.ended]:
            self.dismiss(row.status.uuid)

    def ask_kill_all(self) -> None:
        """Kill every session, once the operator confirms."""
        live = self.model.live_count()
        if live == 0:
            return
        self.ask(
            "Kill all sessions",
            f"End all {live} live session(s) now? Their browsers are told and disconnected.",
            "Kill all",
            self.controller.kill_all,
        )

    def ask_session_target(self, session_id: str) -> None:
        """Open "Change target…" for a session."""
        row = self.model.row(session_id)
        if row is None or row.ended:
            return
        dialog = TargetDialog(session_label(row.status), row.status.target, self)
        dialog.accepted.connect(
            lambda: self.controller.set_session_target(session_id, dialog.target_url)
        )
        self._open_dialog(dialog)

    def open_settings(self) -> None:
        """Open the Settings dialog on the running config (or the one waiting for a restart)."""
        shown = self._pending_config or self.controller.config
        dialog = SettingsDialog(GuiSettings.from_config(shown, like=self.store.load()), self)
        dialog.settings_chosen.connect(self.apply_settings)
        self._open_dialog(dialog)

    def apply_settings(self, settings: GuiSettings) -> None:
        """Save settings, apply what applies at once, offer a restart for the rest."""
        self.store.save(settings)
        apply_log_level(settings.log_level)
        new_config = settings.to_config(self.controller.config)
        reasons = restart_reasons(self.controller.config, new_config)
        if not reasons:
            self.controller.applied_live(new_config)
            self.status.showMessage("Settings saved", 4000)
            return
        self._pending_config = new_config
        if not self.controller.running:
            self.restart_relay()
            return
        live = self.model.live_count()
        ending = f" {live} live session(s) will end." if live else ""
        self.ask(
            "Restart the relay",
            f"Restart the relay now to apply the new {', '.join(reasons)}?{ending}",
            "Restart now",
            self.restart_relay,
            on_no=lambda: self.status.showMessage(
                "Settings saved; they apply when the relay restarts (Relay → Restart relay)"
            ),
        )

    def restart_relay(self) -> None:
        """Stop the relay and start a new one with the pending (or current) settings."""
        if self._quitting or self.controller.busy:
            return
        config, self._pending_config = self._pending_config or self.controller.config, None
        self.status.showMessage("Restarting the relay…", 4000)
        self.controller.run(self.controller.restart(config), "Restart relay")

    def ask(
        self,
        title: str,
        text: str,
        yes_text: str,
        on_yes: Callable[[], None],
        on_no: Callable[[], None] | None = None,
    ) -> QMessageBox:
        """Ask without blocking; `pending_question` holds the box until it is answered."""

        def answered(then: Callable[[], None] | None) -> Callable[[], None]:
            def run() -> None:
                self.pending_question = None
                if then is not None:
                    then()

            return run

        self.pending_question = ask(self, title, text, yes_text, answered(on_yes), answered(on_no))
        return self.pending_question

    def _open_dialog(self, dialog: SettingsDialog | TargetDialog) -> None:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _default_target_applied(self, outputs: DefaultOutputs) -> None:
        try:
            self.controller.set_default_targets(list(outputs.urls), record=outputs.record)
        except ValueError as exc:  # TargetError: the store validated, but be safe
            self.banner.report(f"The destinations were not applied: {exc}")

    # ---- visibility --------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """Pictures are decoded only while someone can see them."""
        super().showEvent(event)
        self._update_thumbnails()

    def hideEvent(self, event: QHideEvent) -> None:
        """Hidden (or closed): no thumbnails."""
        super().hideEvent(event)
        self._update_thumbnails()

    def changeEvent(self, event: QEvent) -> None:
        """Minimized: no thumbnails; restored: thumbnails again."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange:
            self._update_thumbnails()

    def _update_thumbnails(self) -> None:
        wanted = self.isVisible() and not self.isMinimized() and not self._quitting
        self.controller.set_thumbnails(wanted)

    # ---- closing ---------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Ask first when sessions are live; then stop every session before closing."""
        if self._may_close:
            event.accept()
            return
        event.ignore()
        if self._quitting:
            return
        live = self.model.live_count()
        if live and self.pending_question is None:
            self.ask(
                "Quit Desktop Relay",
                f"{live} session(s) are live. Quitting ends them (each recording or stream "
                "is closed properly). Quit now?",
                "Quit",
                self.quit,
            )
        elif not live:
            self.quit()

    def quit(self) -> None:
        """Stop every session gracefully, then close the window and emit `closed`."""
        if self._quitting:
            return
        self._quitting = True
        self._save_state()
        self.status.showMessage("Stopping every session…")
        self.main_splitter.setEnabled(False)
        self.toolbar.setEnabled(False)
        self._quit_task = asyncio.ensure_future(self._shutdown())

    @property
    def quitting(self) -> bool:
        """Whether the window is stopping the relay to close."""
        return self._quitting

    async def _shutdown(self) -> None:
        try:
            await self.controller.shutdown()
        except Exception:
            log.exception("stopping the relay failed")
        finally:
            self.timer.stop()
            self._may_close = True
            self.close()
            self.closed.emit()

    def _save_state(self) -> None:
        self.store.save_window_state(
            self.saveGeometry(), [self.main_splitter.saveState(), self.left_splitter.saveState()]
        )

    def _restore_state(self) -> None:
        geometry, splitters = self.store.load_window_state(2)
        if geometry is not None:
            self.restoreGeometry(geometry)
        panes = (self.main_splitter, self.left_splitter)
        for splitter, state in zip(panes, splitters, strict=True):
            if state is not None:
                splitter.restoreState(state)
