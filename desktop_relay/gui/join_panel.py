"""Where browsers connect: the join URLs (one per LAN address) and a QR code of one of them."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno
from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..relay import join_urls

QR_SIZE = 176


def qr_svg(url: str) -> bytes:
    """The QR code of `url` as SVG, with a quiet zone phone cameras need."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(
        buffer, kind="svg", scale=4, border=2, dark="#000", light="#fff", xmldecl=False
    )
    return buffer.getvalue()


class JoinPanel(QGroupBox):
    """The URLs to open on phones and laptops, each with a Copy button, and a QR code."""

    copied = Signal(str)
    rotate_token_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Join from a browser", parent)
        self.urls: list[str] = []
        self.qr_url: str | None = None
        self._rows = QGridLayout()
        self._rows.setColumnStretch(0, 1)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._group.idClicked.connect(self._choose_qr)
        self.qr = QSvgWidget()
        self.qr.setFixedSize(QR_SIZE, QR_SIZE)
        self.qr.renderer().setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
        self.note = QLabel()
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note.setWordWrap(True)
        self.fingerprint_label = QLabel()
        self.fingerprint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint_label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.fingerprint_label.setToolTip("SHA-256 of the certificate devices should trust")
        self.token_label = QLabel()
        self.token_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.token_label.setWordWrap(True)  # the token on its own line: the panel is narrow
        self.rotate_button = QPushButton("New token")
        self.rotate_button.setToolTip(
            "Make a new pairing token: browsers already streaming stay; new ones need the new "
            "link or QR code"
        )
        self.rotate_button.clicked.connect(self.rotate_token_requested.emit)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token_label, 1)
        token_row.addWidget(self.rotate_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self._rows)
        layout.addLayout(token_row)
        layout.addWidget(self.qr, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.note)
        layout.addWidget(self.fingerprint_label)
        self.set_address(None)

    def set_address(
        self,
        address: tuple[str, int] | None,
        *,
        tls: bool = False,
        token: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """The relay's listening address (None: not listening), scheme and pairing token."""
        self._clear_rows()
        self.token_label.setText(f"Pairing token:\n{token}" if token else "Pairing token: off")
        self.rotate_button.setVisible(address is not None and token is not None)
        if address is None:
            self.urls = []
            self.qr_url = None
            self.qr.hide()
            self.fingerprint_label.hide()
            self.note.setText("The relay is not listening.")
            return
        host, port = address
        # The token rides in the URL so that opening the link (or scanning) is the pairing.
        query = f"?{urlencode({'token': token})}" if token else ""
        self.urls = [url + query for url in join_urls(host, port, tls=tls)]
        for number, url in enumerate(self.urls):
            field = QLineEdit(url)
            field.setReadOnly(True)
            field.setMinimumWidth(120)  # long with its token: it scrolls, the panel stays narrow
            field.setCursorPosition(0)
            field.setToolTip(url)
            copy = QToolButton()
            copy.setText("Copy")
            copy.setToolTip(f"Copy {url}")
            copy.clicked.connect(lambda _=False, u=url: self.copy(u))
            show = QToolButton()
            show.setText("QR")
            show.setCheckable(True)
            show.setToolTip("Show this address as a QR code")
            self._group.addButton(show, number)
            self._rows.addWidget(field, number, 0)
            self._rows.addWidget(copy, number, 1)
            self._rows.addWidget(show, number, 2)
        notes = []
        if host in ("127.0.0.1", "::1", "localhost"):
            notes.append(
                "Only this computer can connect: the relay listens on a loopback address "
                "(Settings → Bind address)."
            )
        else:
            notes.append("Phones and laptops on the same network open this address.")
        if tls:
            notes.append(
                "The relay signs its own certificate: a device warns on its first visit "
                "unless it trusts the relay once (/ca.crt)."
            )
        self.fingerprint_label.setVisible(bool(tls and fingerprint))
        if tls and fingerprint:
            notes.append("The page shows the certificate's fingerprint; compare it with:")
            parts = fingerprint.split(":")
            # Eight bytes a line: one unbreakable 95-character string would widen the panel.
            self.fingerprint_label.setText(
                "\n".join(":".join(parts[i : i + 8]) for i in range(0, len(parts), 8))
            )
        if token is None:
            notes.append("No pairing token: anyone on the network may stream.")
        self.note.setText(" ".join(notes))
        if self.urls:
            self._choose_qr(0)

    def copy(self, url: str) -> None:
        """Put a URL on the clipboard."""
        QGuiApplication.clipboard().setText(url)
        self.copied.emit(url)

    def _choose_qr(self, number: int) -> None:
        url = self.urls[number]
        button = self._group.button(number)
        if button is not None:
            button.setChecked(True)
        self.qr_url = url
        self.qr.load(QByteArray(qr_svg(url)))
        self.qr.show()
        self.qr.setToolTip(url)

    def _clear_rows(self) -> None:
        for button in self._group.buttons():
            self._group.removeButton(button)
        while self._rows.count():
            item = self._rows.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
