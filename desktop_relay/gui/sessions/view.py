"""The sessions table: sortable view over `SessionsModel`, with its context menu and keys."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QModelIndex, QPoint, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableView, QWidget

from ...relay import OutputState, OutputStatus, SessionState, SessionStatus
from .columns import COLUMNS, THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH, Column
from .model import SORT_ROLE, UUID_ROLE, SessionsModel
from .row import output_place

# Sessions whose outputs can change: their stream (encoder and outputs) is up.
_STREAMING = (SessionState.STARTING, SessionState.LIVE, SessionState.WAITING)


class DestinationMenus(Protocol):
    """Where "Add destination" and "Remove destination" get their entries."""

    def choices_for(self, status: SessionStatus) -> list[tuple[str, str | None]]:
        """(name, URL or None for a recording) of the saved destinations it may add."""
        ...

    def label_of(self, output: OutputStatus) -> str:
        """How the menu names one of its outputs."""
        ...


class SessionsView(QTableView):
    """One row per session; asks the window to act through signals, never acts itself."""

    selected_session = Signal(object)  # str | None
    kill_requested = Signal(str)
    dismiss_requested = Signal(str)
    change_target_requested = Signal(str)
    add_output_requested = Signal(str, object)  # session id, URL (None: a local recording)
    remove_output_requested = Signal(str, str)  # session id, output id

    def __init__(self, model: SessionsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sessions = model
        # The saved destinations, for the context menu (None: no such submenus' entries).
        self.destinations: DestinationMenus | None = None
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setSortRole(SORT_ROLE)
        # Re-sorting on every refresh would make rows jump under the operator's cursor
        # while counters tick; rows are sorted when a header is clicked (and on insert).
        self.proxy.setDynamicSortFilter(False)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        # Two lines of text, or a 16:9 picture, whichever is taller.
        line = self.fontMetrics().lineSpacing()
        self.verticalHeader().setDefaultSectionSize(max(2 * line + 10, THUMBNAIL_HEIGHT + 6))
        self.setIconSize(QSize(THUMBNAIL_WIDTH, THUMBNAIL_HEIGHT))
        header = self.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, spec in COLUMNS.items():
            self.setColumnWidth(column, spec.width)
            if spec.stretch:
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(Column.PICTURE, QHeaderView.ResizeMode.Fixed)

        self.change_target_action = QAction("Change target…", self)
        self.kill_action = QAction("Kill", self)
        # Delete kills a live session and dismisses an ended one: one key, "make it go away".
        self.kill_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.kill_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.kill_action)
        self.dismiss_action = QAction("Dismiss", self)
        self.copy_id_action = QAction("Copy session id", self)
        self.change_target_action.triggered.connect(self.request_change_target)
        self.kill_action.triggered.connect(self._kill_or_dismiss)
        self.dismiss_action.triggered.connect(self.request_dismiss)
        self.copy_id_action.triggered.connect(self._copy_id)

        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.selectionModel().selectionChanged.connect(self._selection_changed)
        self.proxy.rowsInserted.connect(self._rows_inserted)

    def current_session(self) -> str | None:
        """The selected session's id."""
        rows = self.selectionModel().selectedRows()
        if not rows:
            return None
        value = rows[0].data(UUID_ROLE)
        return str(value) if value else None

    def select_session(self, session_id: str) -> bool:
        """Select a session's row (e.g. from the error banner)."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(UUID_ROLE) == session_id:
                self.selectRow(row)
                self.scrollTo(index)
                return True
        return False

    def update_actions(self) -> None:
        """Enable what applies to the selected session."""
        session_id = self.current_session()
        row = self.sessions.row(session_id) if session_id else None
        alive = row is not None and not row.ended
        self.change_target_action.setEnabled(alive)
        self.kill_action.setEnabled(row is not None)
        self.kill_action.setText("Kill" if row is None or alive else "Dismiss")
        self.dismiss_action.setEnabled(row is not None and row.ended)
        self.copy_id_action.setEnabled(row is not None)

    # ---- internals -------------------------------------------------------------------

    def _rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        column = self.horizontalHeader().sortIndicatorSection()
        if 0 <= column < len(Column):
            self.proxy.sort(column, self.horizontalHeader().sortIndicatorOrder())
        if self.current_session() is None and self.proxy.rowCount() == 1:
            # The first session is almost always the one the operator wants to watch.
            self.selectRow(0)

    def _selection_changed(self) -> None:
        self.update_actions()
        self.selected_session.emit(self.current_session())

    def _context_menu(self, position: QPoint) -> None:
        index = self.indexAt(position)
        if index.isValid():
            self.selectRow(index.row())
        self.build_menu().popup(self.viewport().mapToGlobal(position))

    def build_menu(self) -> QMenu:
        """The context menu for the selected session (deleted once closed)."""
        self.update_actions()
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.change_target_action)
        self._add_destination_menus(menu)
        kill = menu.addAction("Kill")
        kill.setEnabled(self.change_target_action.isEnabled())
        kill.triggered.connect(self.request_kill)
        menu.addAction(self.dismiss_action)
        menu.addSeparator()
        menu.addAction(self.copy_id_action)
        return menu

    def _add_destination_menus(self, menu: QMenu) -> None:
        """The submenus Add destination (saved destinations it does not go to yet) and
        Remove destination (its outputs): each entry only asks, through a signal."""
        add = menu.addMenu("Add destination")
        remove = menu.addMenu("Remove destination")
        remove.setToolTipsVisible(True)
        session_id = self.current_session()
        row = self.sessions.row(session_id) if session_id else None
        if session_id is None or row is None or row.ended or row.status.state not in _STREAMING:
            add.setEnabled(False)
            remove.setEnabled(False)
            return
        status = row.status
        choices = self.destinations.choices_for(status) if self.destinations else []
        for name, url in choices:
            action = add.addAction(name)
            action.triggered.connect(
                lambda _=False, u=url: self.add_output_requested.emit(session_id, u)
            )
        add.setEnabled(bool(choices))
        outputs = [o for o in status.outputs if o.state != OutputState.STOPPED]
        for output in outputs:
            label = self.destinations.label_of(output) if self.destinations else None
            action = remove.addAction(label or output_place(output))
            action.triggered.connect(
                lambda _=False, o=output.id: self.remove_output_requested.emit(session_id, o)
            )
            if len(outputs) == 1:
                # Its only destination: going nowhere is what Kill is for, or Change target.
                action.setEnabled(False)
                action.setToolTip("The session's only destination: use Change target…")
        remove.setEnabled(bool(outputs))

    def request_kill(self) -> None:
        """Ask to kill the selected session."""
        session_id = self.current_session()
        if session_id:
            self.kill_requested.emit(session_id)

    def _kill_or_dismiss(self) -> None:
        session_id = self.current_session()
        row = self.sessions.row(session_id) if session_id else None
        if session_id is None or row is None:
            return
        if row.ended:
            self.dismiss_requested.emit(session_id)
        else:
            self.kill_requested.emit(session_id)

    def request_dismiss(self) -> None:
        """Ask to dismiss the selected (ended) session."""
        session_id = self.current_session()
        if session_id:
            self.dismiss_requested.emit(session_id)

    def request_change_target(self) -> None:
        """Ask to change the selected session's target."""
        session_id = self.current_session()
        if session_id:
            self.change_target_requested.emit(session_id)

    def _copy_id(self) -> None:
        session_id = self.current_session()
        if session_id:
            QGuiApplication.clipboard().setText(session_id)
