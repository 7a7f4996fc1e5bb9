"""What the window does with the relay's per-session events: rows, log lines, and errors put
where the operator sees them (the banner for failures, the status bar for the rest)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ...relay import ErrorName, ServerError, SessionStatus, Thumbnail
from ..error_banner import ErrorBanner
from ..log_store import LineKind, LogStore
from ..relay_controller import RelayController
from ..status_bar import RelayStatusBar
from ..user_agent import describe_user_agent
from .model import SessionsModel, session_label


class SessionEvents(QObject):
    """Routes `RelayController` signals into the model, the log store and the banner."""

    ended = Signal(str)  # a session ended (its row may stay, as ended or failed)
    thumbnail_changed = Signal(str)  # a session's row has a new picture

    def __init__(
        self,
        controller: RelayController,
        model: SessionsModel,
        logs: LogStore,
        banner: ErrorBanner,
        status: RelayStatusBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.logs, self.banner, self.status = model, logs, banner, status
        controller.session_opened.connect(self.connected)
        # A state change (waiting, resumed, live...) shows at once, not at the next refresh;
        # the model's upsert stays the one writer of a row.
        controller.session_changed.connect(model.upsert)
        controller.ffmpeg_output.connect(lambda sid, line: logs.append(sid, LineKind.FFMPEG, line))
        controller.session_log.connect(lambda sid, text: logs.append(sid, LineKind.RELAY, text))
        controller.session_error.connect(self.failed)
        controller.session_ended.connect(self.destroyed_session)
        controller.connection_refused.connect(self.refused)
        controller.thumbnail.connect(self.picture)

    def connected(self, status: SessionStatus) -> None:
        """A browser connected: its row appears at once, not at the next refresh."""
        self.model.upsert(status)
        client = describe_user_agent(status.user_agent)
        self.logs.append(
            status.uuid, LineKind.RELAY, f"Connected from {status.remote_address} ({client})"
        )

    def failed(self, session_id: str, error: ServerError) -> None:
        """An error of one session: in its log always; fatal ones in the banner."""
        self.logs.append(session_id, LineKind.ERROR, f"{error.name}: {error.message}")
        if error.details:
            self.logs.append(session_id, LineKind.ERROR, error.details)
        if error.name == ErrorName.KILLED_BY_OPERATOR:
            return
        row = self.model.row(session_id)
        who = session_label(row.status) if row else session_id[:8]
        if error.fatal:
            self.banner.report(f"Session {who} failed: {error.message}", session_id)
        elif error.name != ErrorName.FFMPEG_NOT_RUNNING:
            # (A client still sending after its stream ended gets one per chunk: the
            # session's log has them; in the status bar they would only flicker.)
            self.status.showMessage(f"Session {who}: {error.message}", 8000)

    def destroyed_session(self, session_id: str, final: SessionStatus) -> None:
        """The relay forgot a session: its row keeps the final snapshot until dismissed."""
        self.logs.append(session_id, LineKind.RELAY, f"Session ended ({final.state})")
        self.model.end_session(session_id, final)
        if self.model.row(session_id) is None:
            self.logs.forget(session_id)
        self.ended.emit(session_id)

    def picture(self, session_id: str, thumbnail: Thumbnail) -> None:
        """A new thumbnail: into the session's row, and the preview if it is selected."""
        if self.model.set_thumbnail(session_id, thumbnail):
            self.thumbnail_changed.emit(session_id)

    def refused(self, remote_address: str, error: ServerError) -> None:
        """A socket refused at connect (wrong or missing pairing token)."""
        # A status message, not the banner: anyone on the LAN can knock, repeatedly.
        self.status.showMessage(f"Refused a browser at {remote_address}: {error.message}", 10000)
