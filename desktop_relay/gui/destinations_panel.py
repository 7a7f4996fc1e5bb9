"""The side panel's destinations: each on or off with its live state, added and edited in a
small dialog. Every change is saved and handed to the relay for sessions that start next."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..relay import RelayConfig, TargetError, mask_target
from .destinations import DefaultOutputs, Destination, DestinationStore, default_name, new_id
from .questions import ask
from .sessions.model import SessionsModel
from .target_presets import RECORDING, guess_preset
from .target_widget import TargetWidget

STATE_MS = 500  # as often as the table's counters: a destination's state comes from them
_ID_ROLE = Qt.ItemDataRole.UserRole


class DestinationDialog(QDialog):
    """Add or edit one destination: a name, and a service, server and key (TargetWidget,
    rtmp:// or rtmps:// only). After `accepted`, `destination` and `key` hold the result."""

    def __init__(
        self,
        existing: Destination | None,
        key: str = "",
        *,
        allow_recording: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit destination" if existing else "Add destination")
        self._existing = existing
        self.destination: Destination | None = None
        self.key = ""
        self.name_edit = QLineEdit()
        self.target_widget = TargetWidget(allow_recording=allow_recording)
        if existing is not None:
            self.name_edit.setText(existing.name)
            # The key sits in a password field (hidden unless "Show" is ticked), as before.
            self.target_widget.set_fields(existing.service, existing.server, key)
        else:
            self.target_widget.set_preset("twitch")
        self.target_widget.changed.connect(self._update_name_hint)
        self._update_name_hint()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Save" if existing else "Add"
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name_edit)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.target_widget)
        layout.addWidget(self.buttons)
        self.resize(460, self.sizeHint().height())

    def _update_name_hint(self) -> None:
        widget = self.target_widget
        self.name_edit.setPlaceholderText(default_name(widget.preset.id, widget.server_edit.text()))

    def _accept(self) -> None:
        try:
            url = self.target_widget.check()
        except TargetError:
            return
        if url is None:
            service, server, self.key = RECORDING.id, "", ""
        else:
            # The server as typed may hold the key (a whole URL): keep the two apart.
            service, server, self.key = self.target_widget.preset.id, *guess_preset(url)[1:]
        name = self.name_edit.text().strip() or default_name(service, server)
        base = self._existing or Destination(new_id(), name)
        self.destination = replace(
            base, name=name, service=service, server=server, has_key=bool(self.key)
        )
        self.accept()


class DestinationsPanel(QGroupBox):
    """The destinations, each with an on/off box and its state; Add, Edit and Remove.

    `applied` carries the enabled destinations' `DefaultOutputs` after every change; the
    window hands them to the relay. The state of each comes from the sessions table's model.
    """

    applied = Signal(object)  # DefaultOutputs
    message = Signal(str)

    def __init__(
        self,
        destinations: DestinationStore,
        sessions: SessionsModel | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Destinations", parent)
        self.destinations = destinations
        self._sessions = sessions
        self._warned: str | None = None
        self._updating = False
        self._relay_urls: tuple[str, ...] | None = None  # masked, when not the destinations'
        self.dialog: DestinationDialog | None = None
        self.question: QMessageBox | None = None

        self.list = QListWidget()
        self.list.setSizeAdjustPolicy(QAbstractScrollArea.SizeAdjustPolicy.AdjustToContents)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setToolTip("Ticked destinations get every new session")
        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)

        self.add_button.clicked.connect(self.add)
        self.edit_button.clicked.connect(self.edit)
        self.remove_button.clicked.connect(self.ask_remove)
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.edit())
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self._fill()
        self._show_summary()
        self.timer = QTimer(self, interval=STATE_MS)
        self.timer.timeout.connect(self.update_states)
        self.timer.start()

    # ---- what the relay does ---------------------------------------------------------

    def defaults(self) -> DefaultOutputs:
        """What new sessions get from the enabled destinations."""
        return self.destinations.defaults()

    def show_relay_defaults(self, config: RelayConfig) -> None:
        """Say where the running relay sends new sessions: the destinations, unless the
        command line (`--rtmp-url`) gave it other targets; those stay until a change here."""
        ours = self.defaults()
        theirs = [config.default_target, *config.extra_targets] if config.default_target else []
        same = theirs == list(ours.urls) and (config.record == ours.record or not theirs)
        self._relay_urls = None if same else tuple(mask_target(u) or "****" for u in theirs)
        self._show_summary()

    def apply(self) -> DefaultOutputs:
        """Hand the enabled destinations to the relay (through `applied`)."""
        outputs = self.defaults()
        self._relay_urls = None
        self.applied.emit(outputs)
        self._show_summary()
        return outputs

    # ---- the operator's changes ------------------------------------------------------

    def selected(self) -> Destination | None:
        """The highlighted destination."""
        item = self.list.currentItem()
        return self.destinations.get(str(item.data(_ID_ROLE))) if item is not None else None

    def add(self) -> DestinationDialog:
        """Open the dialog for a new destination (switched on once added)."""
        dialog = DestinationDialog(
            None, allow_recording=not self.destinations.has_recording(), parent=self
        )
        dialog.accepted.connect(lambda: self._saved(dialog))
        return self._open(dialog)

    def edit(self) -> DestinationDialog | None:
        """Open the dialog on the highlighted destination."""
        destination = self.selected()
        if destination is None:
            return None
        dialog = DestinationDialog(
            destination,
            self.destinations.key_of(destination),
            allow_recording=destination.recording or not self.destinations.has_recording(),
            parent=self,
        )
        dialog.accepted.connect(lambda: self._saved(dialog))
        return self._open(dialog)

    def ask_remove(self) -> QMessageBox | None:
        """Ask, then forget the highlighted destination and its stream key."""
        destination = self.selected()
        if destination is None:
            return None
        key = " and its stream key" if destination.has_key else ""
        self.question = ask(
            self,
            "Remove destination",
            f"Forget {destination.name}{key}? Sessions streaming there now go on.",
            "Remove",
            lambda: self.remove(destination.id),
        )
        return self.question

    def remove(self, destination_id: str) -> None:
        """Forget a destination and its key; new sessions no longer go there."""
        removed = self.destinations.remove(destination_id)
        self._fill()
        if removed is not None and removed.enabled:
            self.apply()

    def set_enabled(self, destination_id: str, enabled: bool) -> None:
        """Switch a destination on or off (for sessions that start from now on)."""
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(_ID_ROLE) == destination_id:
                check = Qt.CheckState.Checked if enabled else Qt.CheckState.Unchecked
                item.setCheckState(check)  # -> _item_changed

    # ---- the list --------------------------------------------------------------------

    def update_states(self) -> None:
        """Each destination's second line: its service and how its outputs are doing."""
        statuses = (
            [r.status for r in self._sessions.rows() if not r.ended] if self._sessions else []
        )
        self._updating = True
        try:
            for row in range(self.list.count()):
                item = self.list.item(row)
                destination = self.destinations.get(str(item.data(_ID_ROLE)))
                if destination is None:
                    continue
                state = self.destinations.live_state(destination, statuses)
                text = f"{destination.name}\n{self._state_line(destination, state.text())}"
                if item.text() != text:  # repaint only what changed
                    item.setText(text)
                tip = self._tooltip(destination, state.reasons)
                if item.toolTip() != tip:
                    item.setToolTip(tip)
        finally:
            self._updating = False

    def _state_line(self, destination: Destination, live: str) -> str:
        problem = self.destinations.problem(destination)
        words = [destination.service_label]
        if problem is not None:
            words.append(problem)
        elif not destination.enabled:
            words.append("off")
        words.append(live or ("no session" if destination.enabled else ""))
        return " · ".join(w for w in words if w)

    def _tooltip(self, destination: Destination, reasons: tuple[str, ...]) -> str:
        where = (
            "A file per session in the recordings folder"
            if destination.recording
            else self.destinations.masked_url(destination) or destination.server
        )
        lines = [f"{destination.name}: {where}"]
        lines += list(reasons)
        return "\n".join(lines)

    def _fill(self) -> None:
        current = self.selected()
        self._updating = True
        try:
            self.list.clear()
            for destination in self.destinations.all():
                item = QListWidgetItem(destination.name)
                item.setData(_ID_ROLE, destination.id)
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsUserCheckable
                )
                item.setCheckState(
                    Qt.CheckState.Checked if destination.enabled else Qt.CheckState.Unchecked
                )
                self.list.addItem(item)
                if current is not None and current.id == destination.id:
                    self.list.setCurrentItem(item)
        finally:
            self._updating = False
        self.list.setVisible(self.list.count() > 0)
        self.update_states()
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.selected() is not None
        self.edit_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        enabled = item.checkState() == Qt.CheckState.Checked
        destination = self.destinations.get(str(item.data(_ID_ROLE)))
        if destination is None or destination.enabled == enabled:
            return
        self.destinations.set_enabled(destination.id, enabled)
        self.update_states()
        self.apply()

    def _saved(self, dialog: DestinationDialog) -> None:
        destination = dialog.destination
        if destination is None:
            return
        warning = self.destinations.put(destination, dialog.key)
        if warning and warning != self._warned:
            self._warned = warning  # once: it does not change until the app restarts
            self.message.emit(warning)
        self._fill()
        for row in range(self.list.count()):
            if self.list.item(row).data(_ID_ROLE) == destination.id:
                self.list.setCurrentRow(row)
        if destination.enabled:
            self.apply()

    def _open(self, dialog: DestinationDialog) -> DestinationDialog:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _show_summary(self) -> None:
        if self._relay_urls is not None:
            shown = ", ".join(self._relay_urls) or "a local recording"
            self.summary.setText(
                f"New sessions go to {shown} (from the command line, until a destination "
                "changes here)."
            )
            return
        self.summary.setText(self.defaults().describe())
