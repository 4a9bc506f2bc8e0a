#!/usr/bin/env bash
# Install Debian's Chromium, the headless browser the audit page's test renders
# in (tests/e2e/test_audit_page.py).
#
# Promises: on success a chromium binary exists (/usr/bin/chromium or on PATH)
# and the last line names it and its version. When it already exists it changes
# nothing and takes well under a second. Otherwise it runs `apt-get update` and
# `apt-get install chromium` (as root, or through sudo), bounded by a timeout.
# Exit codes: 0 ready, 1 the install failed, 2 no way to install (no apt-get, no root).
set -euo pipefail
# shellcheck source=toolchain/apt-install.sh
source "$(dirname "$0")/apt-install.sh"

# apt-get update + install of chromium and its libraries takes a few minutes on a
# fresh machine; far beyond that is a hung mirror or a held lock.
APT_TIMEOUT_S=900

find_chromium() {
  local candidate
  for candidate in /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)" "$(command -v chromium-browser 2>/dev/null || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then echo "$candidate"; return; fi
  done
}

report() {
  # --version reads no profile and opens no window.
  echo "chromium: $("$1" --version 2>/dev/null | head -n1) at $1"
}

binary=$(find_chromium)
if [[ -n "$binary" ]]; then
  report "$binary"
  exit 0
fi

started=$SECONDS
# Fonts come with the package's dependencies: the screenshot needs glyphs.
apt_install chromium "$APT_TIMEOUT_S" "not found" chromium

binary=$(find_chromium)
if [[ -z "$binary" ]]; then
  echo "chromium: the chromium package installed, but no chromium binary is on PATH or in /usr/bin" >&2
  exit 1
fi
echo "chromium: installed in $((SECONDS - started))s"
report "$binary"
