#!/usr/bin/env bash
# Install Desktop Relay from this checkout into .venv and run it.
# Usage: bash scripts/run.sh            (the window)
#        bash scripts/run.sh --headless (no window; see --help for options)
set -euo pipefail
cd "$(dirname "$0")/.."

# Qt's X11 platform needs these on a real desktop; npm builds the browser page once.
SYSTEM_PACKAGES=(python3-venv libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0
                 libegl1 libgl1 libfontconfig1 libdbus-1-3 nodejs npm)
bash scripts/ensure-packages.sh "${SYSTEM_PACKAGES[@]}"

page=desktop_relay/web/dist/index.html
if [ -f resources/web/package.json ] && { [ ! -f "$page" ] || [ -n "$(find resources/web/src \
    resources/web/build.mjs resources/web/package-lock.json -newer "$page" | head -1)" ]; }; then
  (cd resources/web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q .
exec .venv/bin/desktop-relay "$@"
