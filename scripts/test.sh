#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: system packages, a virtualenv with the
# project and its test extra, the browser page build, lint, types, then pytest.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  ffmpeg                      # ffprobe and the RTMP receiver used by the tests
  nginx libnginx-mod-rtmp     # a many-publisher RTMP server for the output tests
  chromium                    # real headless browser for the e2e tests
  # Real Firefox and WebKit engines (tests/e2e/test_engine_*.py). Firefox encodes H.264 with
  # the system's libavcodec (ffmpeg brings it); puppeteer-core drives it, installed by the
  # tests' fixture from tests/e2e/engines/package-lock.json. WebKitGTK's VideoEncoder is
  # GStreamer's OpenH264 (plugins-bad) and its video element decodes with libav: both only
  # recommended by libwebkit2gtk, which this script's --no-install-recommends leaves out.
  firefox-esr
  webkit2gtk-driver gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-gl
  nodejs npm                  # builds the browser page and client
  xvfb xauth x11-utils        # a virtual display for the window (xwininfo times start-up)
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0
  libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0
)
bash scripts/ensure-packages.sh "${SYSTEM_PACKAGES[@]}"

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

if [ -f resources/web/package.json ]; then
  (cd resources/web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
  (cd resources/web && npm test --silent)
fi

.venv/bin/ruff check desktop_relay tests scripts packaging
.venv/bin/ruff format --check desktop_relay
.venv/bin/mypy
# --no-cache: its cache once reported a circle that a refactor had removed.
.venv/bin/lint-imports --no-cache

export CI="${CI:-}"
# Three workers on two cores: most tests wait on real time (media replayed at its pace, links
# cut for seconds), so the machine idled 60 % of a run with two (48 % with three, 13 -> 10 min).
.venv/bin/python -m pytest -n 3 --durations=15 "$@"
