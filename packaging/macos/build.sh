#!/usr/bin/env bash
# macOS build: "Desktop Relay.app" (PyInstaller BUNDLE in the spec) and a drag-to-Applications
# .dmg made with hdiutil, into dist/. Run on macOS 12+ (on the architecture to ship: arm64 on
# Apple silicon, x86_64 on Intel; imageio-ffmpeg's wheel brings the matching ffmpeg).
#   bash packaging/macos/build.sh
# Optional signing and notarisation (unsigned apps need right-click > Open the first time):
#   CODESIGN_IDENTITY="Developer ID Application: Name (TEAMID)" NOTARY_PROFILE=profile-name \
#     bash packaging/macos/build.sh
# where the profile was stored once with `xcrun notarytool store-credentials profile-name`.
# Needs: python3 (3.11+), Node.js with npm, Xcode command line tools (hdiutil, codesign).
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e . "pyinstaller>=6.22,<7"

if [ -f resources/web/package.json ]; then
  (cd resources/web && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)
fi

.venv/bin/python -m PyInstaller --noconfirm --log-level WARN --distpath dist \
  --workpath build/pyinstaller packaging/desktop-relay.spec
app="dist/Desktop Relay.app"
[ -d "$app" ] || { echo "no $app: the spec's BUNDLE did not run" >&2; exit 1; }

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
  # Hardened runtime is required for notarisation; the bundled ffmpeg is signed with the rest.
  codesign --force --deep --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$app"
  codesign --verify --strict --verbose=2 "$app"
fi

version=$(.venv/bin/python -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")
dmg="dist/desktop-relay-$version-macos-$(uname -m).dmg"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"  # the drag target in the opened image
rm -f "$dmg"
hdiutil create -volname "Desktop Relay $version" -srcfolder "$stage" -ov -format UDZO "$dmg"

if [ -n "${CODESIGN_IDENTITY:-}" ] && [ -n "${NOTARY_PROFILE:-}" ]; then
  codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$dmg"
  xcrun notarytool submit "$dmg" --keychain-profile "$NOTARY_PROFILE" --wait
  xcrun stapler staple "$dmg"
fi

echo "app: $(du -sh "$app" | cut -f1), dmg: $(du -h "$dmg" | cut -f1), build: $(( $(date +%s) - started )) s"
