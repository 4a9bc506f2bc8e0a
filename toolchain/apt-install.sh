# Sourced by install-chromium.sh and install-postgres.sh: the Debian package install they share.
#
# apt_install LABEL TIMEOUT_S MISSING PACKAGE [apt-get install options...]
# Installs PACKAGE with `apt-get update` and `apt-get install -y` (as root, or
# through sudo), each bounded by TIMEOUT_S, printing "LABEL: ..." lines. Exits
# the calling script with 2 when there is no way to install (no apt-get, no
# root; MISSING says what was not found) and 1 when apt fails; returns on success.
apt_install() {
  local label=$1 timeout_s=$2 missing=$3 package=$4
  shift 4
  local -a as_root
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$label: $missing and apt-get is missing; install $package with this system's package manager" >&2
    exit 2
  fi
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "$label: installing needs root: run \`sudo $0\` (or as root: apt-get update && apt-get install -y $package)" >&2
    exit 2
  fi
  echo "$label: not installed; apt-get update && apt-get install $package (up to ${timeout_s}s)"
  # The package lists may be missing or stale on a fresh machine: update first.
  if ! timeout "$timeout_s" "${as_root[@]}" apt-get update -qq; then
    echo "$label: apt-get update failed; check the package mirror, then rerun $0" >&2
    exit 1
  fi
  if ! timeout "$timeout_s" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq "$@" "$package" >/dev/null; then
    echo "$label: apt-get install $package failed; rerun $0 to see apt's messages" >&2
    exit 1
  fi
}
