#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed yet (apt-get, as
# root or with sudo). Node.js and npm count as present when on PATH, whatever installed them.
# Usage: bash scripts/ensure-packages.sh PACKAGE...
set -euo pipefail
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "Not a Debian system: make sure these (or their equivalents) are installed: $*" >&2
  exit 0
fi
missing=()
for pkg in "$@"; do
  case "$pkg" in nodejs|npm) command -v "${pkg/nodejs/node}" >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -gt 0 ] || exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
