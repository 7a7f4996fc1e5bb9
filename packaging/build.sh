#!/usr/bin/env bash
# Linux build: one-folder app, .deb and .tar.gz into dist/, with figures (see build.py).
# Usage: bash packaging/build.sh [--skip-web] [--no-deb] [--fast]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || { echo "no $PYTHON: run scripts/test.sh or scripts/run.sh first" >&2; exit 1; }
# The same pin as pyproject's `package` extra; installed here so a plain dev venv can build.
"$PYTHON" -c "import PyInstaller" 2>/dev/null || "$PYTHON" -m pip install -q "pyinstaller>=6.22,<7"
exec "$PYTHON" packaging/build.py "$@"
