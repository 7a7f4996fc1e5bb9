"""Stream keys at rest: the system keyring, else a file only the user can read."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from .private_files import private_dir, tighten, write_private

log = logging.getLogger(__name__)

SERVICE = "desktop-relay"


def _keyring_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception as exc:  # a broken backend must not stop the app
        log.debug("no keyring: %s", exc)
        return False
    # Headless Linux has no Secret Service: keyring answers with its "fail" backend.
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 1) > 0


class KeyStore:
    """Named secrets. Where no keyring backend exists it falls back to a 0600 JSON file and
    says so in `warning`, for the window to show."""

    def __init__(self, fallback_file: Path, *, use_keyring: bool | None = None) -> None:
        self.fallback_file = fallback_file
        self.uses_keyring = _keyring_usable() if use_keyring is None else use_keyring

    @property
    def warning(self) -> str | None:
        """Why secrets are less protected than they should be, or None."""
        if self.uses_keyring:
            return None
        return (
            f"No system keyring: stream keys are stored in {self.fallback_file}, "
            "readable only by your user account."
        )

    def get(self, name: str) -> str | None:
        """The secret called `name`, or None."""
        if self.uses_keyring:
            import keyring

            try:
                return keyring.get_password(SERVICE, name)
            except Exception as exc:
                log.warning("keyring read failed (%s); using the file store", exc)
                self.uses_keyring = False
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        """Store `value` under `name`."""
        if self.uses_keyring:
            import keyring

            try:
                keyring.set_password(SERVICE, name, value)
                return
            except Exception as exc:
                log.warning("keyring write failed (%s); using the file store", exc)
                self.uses_keyring = False
        data = self._read()
        data[name] = value
        self._write(data)

    def delete(self, name: str) -> None:
        """Forget `name` (no error if absent)."""
        if self.uses_keyring:
            import keyring

            with contextlib.suppress(Exception):
                keyring.delete_password(SERVICE, name)
        data = self._read()
        if data.pop(name, None) is not None:
            self._write(data)

    def _read(self) -> dict[str, str]:
        # A file an older version (or a copy) left readable by others: fix it before use.
        tighten(self.fallback_file)
        try:
            data = json.loads(self.fallback_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, data: dict[str, str]) -> None:
        private_dir(self.fallback_file.parent)
        tmp = self.fallback_file.with_suffix(".tmp")
        # 0600 before the first byte, also over a stale temporary file: then swapped in whole.
        write_private(tmp, json.dumps(data).encode())
        os.replace(tmp, self.fallback_file)
