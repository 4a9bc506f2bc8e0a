#!/usr/bin/env bash
# Install Debian's GnuPG, which makes the throwaway OpenPGP key the chart
# provenance test signs with (tests/integration/test_chart_sync.py: `helm
# package --sign` and `helm pull --verify` read GnuPG keyrings).
#
# Promises: on success gpg and gpgconf are on PATH and the last line names gpg
# and its version. When they already are it changes nothing and takes well
# under a second. Otherwise it runs `apt-get update` and `apt-get install gnupg`
# (as root, or through sudo), bounded by a timeout.
# Exit codes: 0 ready, 1 the install failed, 2 no way to install (no apt-get, no root).
set -euo pipefail
# shellcheck source=toolchain/apt-install.sh
source "$(dirname "$0")/apt-install.sh"

# gnupg is a few small packages; far beyond this is a hung mirror or a held lock.
APT_TIMEOUT_S=600

report() {
  echo "gnupg: $(gpg --version | head -n1) at $(command -v gpg)"
}

if command -v gpg >/dev/null 2>&1 && command -v gpgconf >/dev/null 2>&1; then
  report
  exit 0
fi

started=$SECONDS
apt_install gnupg "$APT_TIMEOUT_S" "gpg not found" gnupg --no-install-recommends
if ! command -v gpg >/dev/null 2>&1 || ! command -v gpgconf >/dev/null 2>&1; then
  echo "gnupg: the gnupg package installed, but gpg or gpgconf is not on PATH" >&2
  exit 1
fi
echo "gnupg: installed in $((SECONDS - started))s"
report
