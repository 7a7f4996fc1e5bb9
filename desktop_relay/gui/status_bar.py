"""The status bar: where the relay listens, how many sessions are live, total ingest."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from .formatting import format_kbps


class RelayStatusBar(QStatusBar):
    """Permanent fields on the right; transient messages on the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.address_label = QLabel("Not listening")
        self.live_label = QLabel("0 live")
        self.ingest_label = QLabel("Ingest 0 kbit/s")
        for label in (self.address_label, self.live_label, self.ingest_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.addPermanentWidget(label)

    def set_address(
        self, address: tuple[str, int] | None, note: str = "", scheme: str = "http"
    ) -> None:
        """The listening address, or why there is none."""
        if address is None:
            self.address_label.setText(note or "Not listening")
        else:
            host, port = address
            self.address_label.setText(f"Listening on {scheme}://{host}:{port}")

    def set_counts(self, live: int, ingest_kbps: float) -> None:
        """Live sessions and what they send us in total."""
        self.live_label.setText(f"{live} live")
        self.ingest_label.setText(f"Ingest {format_kbps(ingest_kbps) or '0 kbit/s'}")
