#!/usr/bin/env bash
# Installs what vaani needs to build, run and test on a Debian machine with Rust (rustup).
# Idempotent: installs only what is missing. Run as root or with sudo available.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in sip-tester espeak-ng sox libopus-dev pkg-config; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done

if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding rustup target wasm32-wasip2"
  rustup target add wasm32-wasip2
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$comp"; then
    rustup component add "$comp"
  fi
done
echo "setup: ok"
