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

if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not found and apt-get is missing; install Chromium with this system's package manager" >&2
  exit 2
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "chromium: installing needs root: run \`sudo $0\` (or as root: apt-get update && apt-get install -y chromium)" >&2
  exit 2
fi

started=$SECONDS
echo "chromium: not installed; apt-get update && apt-get install chromium (up to ${APT_TIMEOUT_S}s)"
if ! timeout "$APT_TIMEOUT_S" "${as_root[@]}" apt-get update -qq; then
  echo "chromium: apt-get update failed; check the package mirror, then rerun $0" >&2
  exit 1
fi
# Fonts come with the package's dependencies: the screenshot needs glyphs.
if ! timeout "$APT_TIMEOUT_S" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq chromium >/dev/null; then
  echo "chromium: apt-get install chromium failed; rerun $0 to see apt's messages" >&2
  exit 1
fi

binary=$(find_chromium)
if [[ -z "$binary" ]]; then
  echo "chromium: the chromium package installed, but no chromium binary is on PATH or in /usr/bin" >&2
  exit 1
fi
echo "chromium: installed in $((SECONDS - started))s"
report "$binary"
