"""The Program panel: Preview and Program monitors, Take / Fade / Slate, picture-in-picture,
the program's state and destinations, and the control API's token.

It shows `ProgramStatus` snapshots (`show_status`) and pictures (`show_picture`) and asks
for commands with signals; the window runs them through the RelayController. Combo boxes
report the operator's choices with `activated` only, so a snapshot shown never sends one.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...relay import CORNERS, PIP_SIZES, ProgramStatus, Thumbnail
from .control_token import ControlTokenBox
from .monitor import PREVIEW_COLOUR, PROGRAM_COLOUR, Monitor
from .words import CORNER_NAMES, OFF_HINT, destination_lines, state_line

DEFAULT_FADE_MS = 500
MAX_FADE_MS = 10_000  # the relay's own limit (a longer fade is refused)


class ProgramPanel(QWidget):
    """Everything the operator runs the show with; see module doc."""

    preview_requested = Signal(object)  # a session id, or None for no preview
    take_requested = Signal()  # cut to the preview
    fade_requested = Signal(int)  # fade to the preview over this many ms
    slate_requested = Signal(bool)
    pip_requested = Signal(object, str, str)  # session id or None, corner, size

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status: ProgramStatus | None = None
        self._sources: tuple[tuple[str, str, str], ...] | None = None

        self.off_label = QLabel(OFF_HINT)
        self.off_label.setWordWrap(True)
        self.off_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.preview_monitor = Monitor("Preview", PREVIEW_COLOUR)
        self.program_monitor = Monitor("Program", PROGRAM_COLOUR)
        monitors = QHBoxLayout()
        monitors.setSpacing(4)
        monitors.addWidget(self.preview_monitor)
        monitors.addWidget(self.program_monitor)

        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.state_label.setAccessibleName("Program state")

        self.preview_combo = QComboBox()
        self.preview_combo.setToolTip("The session to take next (keys 1 to 9: the Nth row)")
        self.preview_combo.activated.connect(self._preview_chosen)

        self.fade_ms = QSpinBox()
        self.fade_ms.setRange(0, MAX_FADE_MS)
        self.fade_ms.setSingleStep(100)
        self.fade_ms.setValue(DEFAULT_FADE_MS)
        self.fade_ms.setSuffix(" ms")
        self.fade_ms.setToolTip("How long Fade takes")
        self.fade_ms.setAccessibleName("Fade duration")
        self.take_button = QPushButton("Take")
        self.take_button.setToolTip("Cut to the preview (Space)")
        self.take_button.clicked.connect(self.take_requested.emit)
        self.fade_button = QPushButton("Fade")
        self.fade_button.setToolTip("Fade to the preview over the time beside it (F)")
        self.fade_button.clicked.connect(lambda: self.fade_requested.emit(self.fade_ms.value()))
        self.slate_button = QPushButton("Slate")
        self.slate_button.setCheckable(True)
        self.slate_button.setToolTip("Cover the program with the slate, or uncover it (B)")
        # (Its checked state after the click: `clicked` would reach a signal with no value.)
        self.slate_button.clicked.connect(
            lambda: self.slate_requested.emit(self.slate_button.isChecked())
        )

        self.pip_source = QComboBox()
        self.pip_source.setToolTip("A second session in a corner of the program")
        self.pip_source.activated.connect(self._pip_chosen)
        self.pip_corner = QComboBox()
        for corner in CORNERS:
            self.pip_corner.addItem(CORNER_NAMES.get(corner, corner), corner)
        self.pip_corner.setCurrentIndex(self.pip_corner.findData("br"))
        self.pip_corner.setToolTip("The picture-in-picture's corner")
        self.pip_corner.activated.connect(self._pip_chosen)
        self.pip_size = QComboBox()
        for size in PIP_SIZES:
            self.pip_size.addItem(size, size)
        self.pip_size.setToolTip("The picture-in-picture's width, of the program's")
        self.pip_size.activated.connect(self._pip_chosen)

        for button in (self.take_button, self.fade_button, self.slate_button):
            button.setMinimumWidth(48)  # the styles' 75 px would widen the side panel
        buttons = QHBoxLayout()
        buttons.addWidget(self.take_button)
        buttons.addWidget(self.fade_button)
        buttons.addWidget(self.fade_ms)
        buttons.addWidget(self.slate_button)
        pip_place = QHBoxLayout()
        pip_place.addWidget(self.pip_corner, 1)
        pip_place.addWidget(self.pip_size)
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Preview"), 0, 0)
        grid.addWidget(self.preview_combo, 0, 1)
        grid.addLayout(buttons, 1, 0, 1, 2)
        grid.addWidget(QLabel("PiP"), 2, 0)
        grid.addWidget(self.pip_source, 2, 1)
        grid.addLayout(pip_place, 3, 1)
        grid.setColumnStretch(1, 1)
        for combo in (self.preview_combo, self.pip_source):
            # Session names may be long: they are elided, the panel stays narrow.
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(6)
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

        self.destinations_label = QLabel()
        self.destinations_label.setWordWrap(True)
        self.destinations_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        destinations = QGroupBox("Destinations")
        QVBoxLayout(destinations).addWidget(self.destinations_label)

        self.controls = QWidget()
        controls = QVBoxLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addLayout(monitors)
        controls.addWidget(self.state_label)
        controls.addLayout(grid)
        controls.addWidget(destinations)

        self.token_box = ControlTokenBox()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.off_label)
        layout.addWidget(self.controls)
        layout.addWidget(self.token_box)
        layout.addStretch(1)
        self.show_status(None)

    # ---- what the relay says ----------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the relay has a program (the controls work)."""
        return self.status is not None and self.status.enabled

    @property
    def manual_slate(self) -> bool:
        """Whether the operator's slate covers the program (the Slate toggle's state)."""
        return self.status is not None and self.status.slate_reason == "manual"

    def show_status(self, status: ProgramStatus | None) -> None:
        """Show a snapshot of the program (None: the relay is not running)."""
        before = self.status
        self.status = status
        on = status is not None and status.enabled
        self.off_label.setVisible(not on)
        self.off_label.setText(OFF_HINT if status is not None else "The relay is not running.")
        self.controls.setEnabled(on)
        if status is None or not on:
            self._show_off()
            return
        live = status.live
        self.state_label.setText(state_line(status))
        self._update_sources(status)
        self._select(self.preview_combo, status.preview)
        pip = status.pip
        self._select(self.pip_source, pip.source if pip else None)
        if pip is not None:
            self._select(self.pip_corner, pip.corner)
            self._select(self.pip_size, pip.size)
        has_preview = live and status.preview is not None
        self.take_button.setEnabled(has_preview)
        self.fade_button.setEnabled(has_preview)
        self.slate_button.setEnabled(live)
        self.slate_button.setChecked(status.slate_reason == "manual")
        lines = destination_lines(status)
        self.destinations_label.setText("\n".join(lines) if lines else "none")
        self.program_monitor.set_placeholder("No picture yet" if live else "Not live")
        self.preview_monitor.set_placeholder(
            "Press 1-9 to preview a session" if status.preview is None else "No picture yet"
        )
        if not live:
            self.program_monitor.show_thumbnail(None)
        if not live or status.preview is None or (before and before.preview != status.preview):
            # Never the last source's picture under the new one's name.
            self.preview_monitor.show_thumbnail(None)

    def show_picture(self, which: str, thumbnail: Thumbnail) -> None:
        """A small picture of the program ("program") or of the preview ("preview")."""
        if not self.enabled:
            return
        if which == "program":
            self.program_monitor.show_thumbnail(thumbnail)
        elif which == "preview" and self.status is not None and self.status.preview:
            self.preview_monitor.show_thumbnail(thumbnail)

    def _show_off(self) -> None:
        self.state_label.setText("Program off")
        self.destinations_label.setText("none")
        self._update_sources(None)
        self.slate_button.setChecked(False)
        for monitor in (self.preview_monitor, self.program_monitor):
            monitor.show_thumbnail(None)
            monitor.set_placeholder("Program off")

    def _update_sources(self, status: ProgramStatus | None) -> None:
        sources = tuple((s.id, s.name, s.state) for s in status.sources) if status else ()
        if sources == self._sources:
            return  # rebuilding would close an open list under the operator's pointer
        self._sources = sources
        for combo, none in ((self.preview_combo, "none"), (self.pip_source, "off")):
            combo.clear()
            combo.addItem(none, None)
            for source_id, name, state in sources:
                text = name or source_id[:8]
                combo.addItem(text if state == "live" else f"{text} ({state})", source_id)

    @staticmethod
    def _select(combo: QComboBox, data: str | None) -> None:
        index = combo.findData(data)
        if index >= 0 and index != combo.currentIndex():
            combo.setCurrentIndex(index)

    # ---- what the operator asks -------------------------------------------------------

    def _preview_chosen(self, index: int) -> None:
        self.preview_requested.emit(self.preview_combo.itemData(index))

    def _pip_chosen(self, _index: int) -> None:
        source = self.pip_source.currentData()
        if source is None and (self.status is None or self.status.pip is None):
            return  # a corner or size chosen ahead, with no picture-in-picture yet
        self.pip_requested.emit(source, self.pip_corner.currentData(), self.pip_size.currentData())
