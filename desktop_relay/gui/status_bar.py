"""The status bar: where the relay listens, how many sessions are live, total ingest and
outgoing bitrate, CPU of the app and its ffmpeg processes."""

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
        self.outgoing_label = QLabel("Out 0 kbit/s")
        self.cpu_label = QLabel("")
        self.cpu_label.setToolTip("CPU of this app and of its ffmpeg processes (% of one core)")
        labels = (
            self.address_label,
            self.live_label,
            self.ingest_label,
            self.outgoing_label,
            self.cpu_label,
        )
        for label in labels:
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

    def set_counts(
        self,
        live: int,
        ingest_kbps: float,
        outgoing_kbps: float = 0.0,
        cpu: tuple[float, float] | None = None,
    ) -> None:
        """Live sessions, what they send us and what we send on in total, and the CPU the
        app and its ffmpeg processes use (None: not known here)."""
        self.live_label.setText(f"{live} live")
        self.ingest_label.setText(f"Ingest {format_kbps(ingest_kbps) or '0 kbit/s'}")
        self.outgoing_label.setText(f"Out {format_kbps(outgoing_kbps) or '0 kbit/s'}")
        if cpu is not None:
            own, ffmpeg = cpu
            self.cpu_label.setText(f"CPU app {own:.0f} % \u00b7 ffmpeg {ffmpeg:.0f} %")
