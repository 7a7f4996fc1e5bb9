"""The Settings dialog: every option of the relay's options table, one tab per group."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..relay import (
    OPTION_GROUPS,
    OPTIONS,
    Option,
    OptionKind,
    TlsFiles,
    default_recordings_dir,
    lan_addresses,
)
from .settings import GuiSettings

log = logging.getLogger(__name__)

_SPIN_MAX = 2**31 - 1  # the most a QSpinBox holds


class _Editor:
    """An option's widget, read and written as the option's text (what `Option.read` takes)."""

    def __init__(self, widget: QWidget, get: Callable[[], str], put: Callable[[str], None]) -> None:
        self.widget = widget
        self.text = get
        self.set_text = put


def _number_box(opt: Option) -> tuple[QSpinBox | QDoubleSpinBox, _Editor]:
    # 0 stands for None ("unlimited", "never") where the option has a word for it.
    low = 0 if opt.zero_text else opt.minimum or 0
    box: QSpinBox | QDoubleSpinBox
    if opt.kind is OptionKind.INT:
        box = QSpinBox()
        box.setRange(int(low), int(min(opt.maximum or _SPIN_MAX, _SPIN_MAX)))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(1)
        box.setRange(low, opt.maximum or 1e9)
    if opt.zero_text:
        box.setSpecialValueText(opt.zero_text)
    if opt.unit:
        box.setSuffix(f" {opt.unit}")
    # Large amounts read better grouped; a port number is a name, not an amount.
    if (opt.maximum is None or opt.maximum > 10_000) and opt.name != "port":
        box.setGroupSeparatorShown(True)

    def put(text: str) -> None:
        value = opt.read(text)
        box.setValue(0 if value is None else value)

    return box, _Editor(box, lambda: opt.format(box.value()), put)


class SettingsDialog(QDialog):
    """Edits a `GuiSettings`; `settings_chosen` carries the result when OK is pressed."""

    settings_chosen = Signal(object)  # GuiSettings

    def __init__(self, settings: GuiSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._original = settings
        self.editors: dict[str, _Editor] = {}
        self.tabs = QTabWidget()
        self._tab_of: dict[str, int] = {}
        forms: dict[str, QFormLayout] = {}
        for group in OPTION_GROUPS:
            page = QWidget()
            forms[group] = QFormLayout(page)
            self.tabs.addTab(page, group)
        for opt in OPTIONS:
            editor = self._make_editor(opt)
            self.editors[opt.name] = editor
            self._tab_of[opt.name] = OPTION_GROUPS.index(opt.group)
            editor.widget.setToolTip(opt.help)
            try:
                editor.set_text(opt.format(settings.get(opt.name)))
            except ValueError as exc:
                # A config made in code may hold what the table refuses: shown as the
                # widget's default, which OK would then save.
                log.warning("settings: %s cannot be shown (%s)", opt.label, exc)
            form = forms[opt.group]
            if opt.name == "allowed_target_pattern":
                form.addRow(self.allow_client)
            if opt.kind is OptionKind.BOOL:
                form.addRow(editor.widget)
            else:
                form.addRow(opt.label, editor.widget)

        # The names the rest of the window and its tests know the main widgets by.
        self.host_combo: QComboBox = self._widget("host", QComboBox)
        self.port_spin: QSpinBox = self._widget("port", QSpinBox)
        self.max_spin: QSpinBox = self._widget("max_streams", QSpinBox)
        self.level_combo: QComboBox = self._widget("log_level", QComboBox)
        self.allow_client.setChecked(settings.allowed_target_pattern is not None)
        self.allow_client.toggled.connect(self.pattern_edit.setEnabled)
        self.pattern_edit.setEnabled(self.allow_client.isChecked())

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #dc3c3c;")  # reads on light and dark
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        at_once = " and the ".join(opt.label.lower() for opt in OPTIONS if not opt.restart)
        note = QLabel(
            f"Changing a setting other than the {at_once} restarts the relay: live sessions "
            f"end. The {at_once} applies at once."
        )
        note.setWordWrap(True)
        self.buttons = buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())

    def _widget(self, name: str, kind: type[Any]) -> Any:
        widget = self.editors[name].widget
        assert isinstance(widget, kind)
        return widget

    def _make_editor(self, opt: Option) -> _Editor:
        if opt.kind in (OptionKind.INT, OptionKind.FLOAT):
            return _number_box(opt)[1]
        if opt.kind is OptionKind.BOOL:
            check = QCheckBox(opt.label)
            return _Editor(
                check,
                lambda: "true" if check.isChecked() else "false",
                lambda text: check.setChecked(bool(opt.read(text))),
            )
        if opt.kind is OptionKind.CHOICE or opt.name == "host":
            combo = QComboBox()
            if opt.name == "host":
                combo.setEditable(True)
                combo.addItems(["0.0.0.0", "127.0.0.1", *lan_addresses()])
                combo.setToolTip(
                    "0.0.0.0 accepts browsers from every network interface; "
                    "127.0.0.1 only this computer"
                )
            else:
                combo.addItems(list(opt.choices))
            return _Editor(combo, combo.currentText, combo.setCurrentText)
        edit = QLineEdit()
        edit.setPlaceholderText(opt.placeholder)
        editor = _Editor(edit, edit.text, edit.setText)
        if opt.name == "allowed_target_pattern":
            self.allow_client = QCheckBox("Browsers may choose their own target, if it matches:")
            self.pattern_edit = edit
            editor = _Editor(
                edit, lambda: edit.text() if self.allow_client.isChecked() else "", edit.setText
            )
        elif opt.name == "recordings_dir":
            edit.setPlaceholderText(str(default_recordings_dir()))
            self.recordings_edit = edit
        elif opt.name == "ffmpeg_path":
            self.ffmpeg_edit = edit
        elif opt.name == "tls_cert":
            self.cert_edit = edit
        elif opt.name == "tls_key":
            self.key_edit = edit
        if opt.kind is OptionKind.PATH:
            editor.widget = self._with_browse(edit, lambda: self._browse(opt, edit))
        return editor

    def _read(self) -> tuple[GuiSettings, tuple[str, str] | None]:
        """The settings as edited, and the first option that cannot be used: its name and
        why (the message the command line gives for the same value)."""
        values: dict[str, Any] = {}
        problem: tuple[str, str] | None = None
        for opt in OPTIONS:
            text = self.editors[opt.name].text()
            try:
                values[opt.name] = opt.read(text)
            except ValueError as exc:
                values[opt.name] = self._original.get(opt.name)
                problem = problem or (opt.name, f"{opt.label}: {exc}")
        return self._original.replace(**values), problem

    def chosen(self) -> GuiSettings:
        """The settings as edited (not validated: an unusable value is left as it was)."""
        return self._read()[0]

    def validate(self) -> str | None:
        """Why the edited settings cannot be used, or None."""
        return self._problem()[1]

    def _problem(self) -> tuple[str | None, str | None]:
        settings, problem = self._read()
        if problem:
            return problem
        if self.allow_client.isChecked() and not settings.allowed_target_pattern:
            return (
                "allowed_target_pattern",
                "Give the pattern client targets must match, or untick the option.",
            )
        if bool(settings.tls_cert) != bool(settings.tls_key):
            return "tls_cert", "Give both the certificate and its key, or neither."
        if settings.tls_cert and settings.tls_key:
            try:
                TlsFiles(Path(settings.tls_cert), Path(settings.tls_key)).context()
            except ValueError as exc:
                return "tls_cert", f"The certificate cannot be used: {exc}"
        return None, None

    def _accept(self) -> None:
        name, problem = self._problem()
        if problem:
            self.error_label.setText(problem)
            self.error_label.show()
            if name is not None:
                self.tabs.setCurrentIndex(self._tab_of[name])  # show what to fix
            return
        self.settings_chosen.emit(self.chosen())
        self.accept()

    @staticmethod
    def _with_browse(edit: QLineEdit, browse: Callable[[], None]) -> QWidget:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        row.addWidget(button)
        return box

    def _browse(self, opt: Option, edit: QLineEdit) -> None:
        if opt.directory:
            start = edit.text() or edit.placeholderText()
            chosen = QFileDialog.getExistingDirectory(self, opt.label, start)
        elif opt.group == "Security":
            chosen, _ = QFileDialog.getOpenFileName(
                self, "PEM file", edit.text(), "PEM files (*.pem *.crt *.key);;All files (*)"
            )
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, opt.label, edit.text())
        if chosen:
            edit.setText(chosen)
