"""The join panel shows the pairing token in its links and QR code, and rotates it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import socketio

from desktop_relay.relay import RelayConfig

from ..replay import Streamer
from .helpers import OpenWindow

TOKEN = "first-pairing-token"


async def test_new_token_changes_links_refuses_the_old_and_is_kept(
    open_window: OpenWindow, relay_config: RelayConfig, tmp_path: Path
) -> None:
    async with open_window(replace(relay_config, auth_token=TOKEN)) as window:
        panel = window.join_panel
        window.controller.token_file = tmp_path / "token"
        assert panel.urls and all(url.endswith(f"?token={TOKEN}") for url in panel.urls)
        assert panel.qr_url in panel.urls
        assert TOKEN in panel.token_label.text()
        port = window.controller.listen_address[1]  # type: ignore[index]
        streaming = await Streamer(f"http://127.0.0.1:{port}").connect(auth={"token": TOKEN})

        panel.rotate_button.click()
        new = window.controller.auth_token
        assert new and new != TOKEN
        assert all(url.endswith(f"?token={new}") for url in panel.urls)
        assert panel.qr_url is not None and new in panel.qr_url
        assert (tmp_path / "token").read_text().strip() == new  # the next start uses it
        with pytest.raises(socketio.exceptions.ConnectionError):
            await socketio.AsyncClient().connect(f"http://127.0.0.1:{port}",
                                                 transports=["websocket"], auth={"token": TOKEN})
        fresh = await Streamer(f"http://127.0.0.1:{port}?token={new}").connect()
        assert streaming.client.connected  # browsers already in stay
        await fresh.close()
        await streaming.close()


async def test_without_pairing_the_panel_says_so(open_window: OpenWindow) -> None:
    async with open_window() as window:
        assert "off" in window.join_panel.token_label.text()
        assert not window.join_panel.rotate_button.isVisible()
        assert "anyone on the network" in window.join_panel.note.text()


async def test_https_relay_shows_the_fingerprint_the_page_shows(
    open_window: OpenWindow, relay_config: RelayConfig, tmp_path: Path
) -> None:
    from desktop_relay.relay.security.tls import ensure_certificate, fingerprint

    tls = ensure_certificate(tmp_path / "tls", ["127.0.0.1"])
    async with open_window(replace(relay_config, tls=tls)) as window:
        assert tls.ca_cert is not None
        shown = window.join_panel.fingerprint_label.text().replace("\n", ":")
        assert shown == fingerprint(tls.ca_cert)
        assert window.join_panel.fingerprint_label.isVisible()
        assert all(url.startswith("https://") for url in window.join_panel.urls)
