"""A short "browser on device" label from a User-Agent header, for the sessions table.

Deliberately rough: it only has to let an operator tell the phone from the laptop.
"""

from __future__ import annotations

import re

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS: tuple[tuple[str, str], ...] = (
    (r"EdgA?/(\d+)", "Edge"),
    (r"OPR/(\d+)", "Opera"),
    (r"SamsungBrowser/(\d+)", "Samsung Internet"),
    (r"Firefox/(\d+)", "Firefox"),
    (r"FxiOS/(\d+)", "Firefox"),
    (r"CriOS/(\d+)", "Chrome"),
    (r"Chrom(?:e|ium)/(\d+)", "Chrome"),
    (r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/", "Safari"),
    (r"python-socketio|aiohttp|Python/", "Python client"),
)

_DEVICES: tuple[tuple[str, str], ...] = (
    (r"iPhone", "iPhone"),
    (r"iPad", "iPad"),
    (r"Android", "Android"),
    (r"Windows", "Windows"),
    (r"Macintosh|Mac OS X", "macOS"),
    (r"CrOS", "ChromeOS"),
    (r"Linux", "Linux"),
)

_ANDROID_MODEL = re.compile(r"Android [\d.]+; ([^;)]+?)(?: Build/[^;)]*)?\)")


def describe_user_agent(user_agent: str) -> str:
    """`Chrome 126 on Android (Pixel 7)`, `Safari 17 on iPhone`, or `unknown browser`."""
    if not user_agent:
        return "unknown browser"
    browser = ""
    for pattern, name in _BROWSERS:
        match = re.search(pattern, user_agent)
        if match:
            version = match.group(1) if match.groups() else None
            browser = f"{name} {version}" if version else name
            break
    device = next((name for pattern, name in _DEVICES if re.search(pattern, user_agent)), "")
    if device == "Android":
        model = _ANDROID_MODEL.search(user_agent)
        # Chrome's reduced UA says "K" instead of the model: not worth showing.
        if model and model.group(1).strip() not in ("K", ""):
            device = f"Android ({model.group(1).strip()})"
    if browser and device:
        return f"{browser} on {device}"
    return browser or device or user_agent[:40]
