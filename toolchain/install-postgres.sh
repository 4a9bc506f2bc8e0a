#!/usr/bin/env bash
# Install PostgreSQL's server programs from the distribution's packages, for the
# test of Pulumi's postgres:// state backend (tests/e2e/test_postgres_backend.py).
#
# Promises: on success initdb, pg_ctl, postgres and psql exist (on PATH or in
# /usr/lib/postgresql/<major>/bin) and the last line names their folder and
# version. When they already exist it changes nothing and takes well under a
# second. Otherwise it runs `apt-get update` and `apt-get install postgresql`
# (as root, or through sudo), bounded by a timeout.
# Exit codes: 0 ready, 1 the install failed, 2 no way to install (no apt-get, no root).
set -euo pipefail
# shellcheck source=toolchain/apt-install.sh
source "$(dirname "$0")/apt-install.sh"

PROGRAMS=(initdb pg_ctl postgres psql)
# apt-get update + install of the server and client packages takes about a
# minute on a fresh machine; far beyond that is a hung mirror or a held lock.
APT_TIMEOUT_S=600

# The folder holding every program, or nothing. Debian and Ubuntu keep the
# server programs out of PATH, in one folder per major version: take the newest.
find_bindir() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dir=$(dirname "$(readlink -f "$(command -v initdb)")")
    if has_all "$dir"; then echo "$dir"; return; fi
  fi
  while IFS= read -r dir; do
    if has_all "$dir"; then echo "$dir"; return; fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
}

has_all() {
  local program
  for program in "${PROGRAMS[@]}"; do
    [[ -x "$1/$program" ]] || return 1
  done
}

report() {
  echo "postgres: $("$1/postgres" --version) in $1"
}

bindir=$(find_bindir)
if [[ -n "$bindir" ]]; then
  report "$bindir"
  exit 0
fi

started=$SECONDS
apt_install postgres "$APT_TIMEOUT_S" "initdb/pg_ctl/postgres/psql not found" postgresql --no-install-recommends

bindir=$(find_bindir)
if [[ -z "$bindir" ]]; then
  echo "postgres: the postgresql package installed, but no folder holds ${PROGRAMS[*]}; look in /usr/lib/postgresql" >&2
  exit 1
fi
echo "postgres: installed in $((SECONDS - started))s"
report "$bindir"
