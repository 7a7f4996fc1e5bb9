"""Entry script of the frozen app: the same `main` as the `desktop-relay` console script.

PyInstaller runs its entry as a top-level script, where desktop_relay/__main__.py's relative
import would fail; this imports the package absolutely instead.
"""

import multiprocessing
import os
import sys

from desktop_relay.cli import main

# Platform plugins the spec keeps on Linux; Wayland sessions reach the window through XWayland.
_BUNDLED_PLATFORMS = ("xcb", "offscreen", "minimal")


def _platform_with_fallback() -> None:
    """Let Qt fall back to xcb when the desktop asks for a platform the bundle lacks.

    Some desktops export QT_QPA_PLATFORM=wayland; the bundle has no Wayland plugin, and Qt
    gives up on a single name it can't load, but tries a `first;second` list in order.
    """
    wanted = os.environ.get("QT_QPA_PLATFORM", "")
    if wanted and not any(name in wanted for name in _BUNDLED_PLATFORMS):
        os.environ["QT_QPA_PLATFORM"] = f"{wanted};xcb"


if __name__ == "__main__":
    # The program's worker is a multiprocessing 'spawn' child: in the frozen app it is this
    # executable again, which must run the child's code instead of the app.
    multiprocessing.freeze_support()
    if sys.platform.startswith("linux") and getattr(sys, "frozen", False):
        _platform_with_fallback()
    sys.exit(main())
