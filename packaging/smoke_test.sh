#!/usr/bin/env bash
# Build, install and smoke-test the Linux package (see smoke_test.py for the steps).
# Usage: bash packaging/smoke_test.sh [--no-build] [--fast] [--tarball] [--keep-installed]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || { echo "no $PYTHON: run scripts/test.sh first" >&2; exit 1; }
"$PYTHON" -c "import PyInstaller" 2>/dev/null || "$PYTHON" -m pip install -q "pyinstaller>=6.22,<7"
exec "$PYTHON" packaging/smoke_test.py "$@"
